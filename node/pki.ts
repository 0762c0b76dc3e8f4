/**
 * Node identity and network set-up (DESIGN.md §5 "Identity").
 *
 * A network is created once by `genesis`, which writes into a directory:
 *
 * | file              | mode | content                                                        |
 * |-------------------|------|----------------------------------------------------------------|
 * | `network.json`    | 0644 | `{ networkId, name, protocolMajor, publicKey, createdAt, ... }` |
 * | `network-key.pem` | 0600 | the genesis Ed25519 key (PKCS#8); NetworkId = hash of its public key |
 * | `isolation.key`   | 0600 | 32 random bytes, hex; never sent on the wire (keys datagram MACs) |
 * | `ca.pem`          | 0644 | the network CA: self-signed Ed25519 certificate                |
 * | `ca-key.pem`      | 0600 | the CA's Ed25519 private key (PKCS#8)                          |
 *
 * `issueNodeCert` gives a node its Ed25519 identity: `node-key.pem` (0600; the same key signs
 * TLS handshakes and protocol messages), `node.pem` (signed by the network CA; subject CN =
 * NodeId, SAN = IPs, DNS names and `mycelium://<networkId>/<nodeId>`), `node.json`, plus copies
 * of `ca.pem`, `network.json` and `isolation.key` so a node directory is self-contained. The CA
 * key and the genesis key stay in the network directory.
 *
 * Bindings that make a file "of the wrong network" detectable (every load checks them all):
 * - `network.json`: networkId = hash of its publicKey (same derivation as NodeId: first 16
 *   bytes of SHA-256 of the raw 32-byte Ed25519 key, hex);
 * - `ca.pem`: endorsed by the genesis key (`caSignature` in network.json signs the CA's DER);
 * - `isolation.key`: its fingerprint (`isolationKeyCheck`, a domain-separated SHA-256 prefix)
 *   is recorded in network.json;
 * - `node.pem`: signed by ca.pem, CN = nodeIdFromPublicKey(its key), URI SAN names the network;
 * - `node-key.pem`: proves possession (signs a challenge that node.pem's key verifies);
 * - `node.json`: its nodeId and networkId equal the derived ones.
 *
 * TLS: Deno's `node:tls` (checked with Deno 2.9.6) completes a TLS 1.3 mutual-TLS handshake
 * with Ed25519 certificates on both sides, so the node's Ed25519 identity key is also its TLS
 * key (no ECDSA fallback). Because the CA is private to the network, a peer of another network
 * (or one without a certificate) fails the handshake. The client's server check is by network
 * and node id, not by host name (see `tlsOptions`).
 *
 * All I/O goes through `node:` modules and WebCrypto so the module also runs under Node.
 * Secrets are written atomically (temporary file, fsync, rename, fsync of the directory) with
 * mode 0600.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { Buffer } from "node:buffer";
import { mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { isIP } from "node:net";
import { basename, dirname, join, resolve } from "node:path";
import tls from "node:tls";
import { z } from "zod";
import { MyceliumError } from "../core/errors.ts";
import { type NodeId, nodeIdFromPublicKey } from "../core/ids.ts";

x509.cryptoProvider.set(crypto);

/** Peers must share the major protocol version. */
export const PROTOCOL_MAJOR = 1;
export const ISOLATION_KEY_BYTES = 32;

/** File names inside a network or node directory. */
export const FILES = {
  network: "network.json",
  networkKey: "network-key.pem",
  isolationKey: "isolation.key",
  ca: "ca.pem",
  caKey: "ca-key.pem",
  nodeKey: "node-key.pem",
  nodeCert: "node.pem",
  node: "node.json",
} as const;

export type NodeTier = "sclerotia" | "rhizomorph" | "hypha";
export const NODE_TIERS: readonly NodeTier[] = ["sclerotia", "rhizomorph", "hypha"];

/** Hex string of 32 characters: the first 16 bytes of SHA-256 of the genesis public key. */
export type NetworkId = string & { readonly __brand: "NetworkId" };

export function networkIdFromPublicKey(publicKey: Uint8Array): NetworkId {
  return bytesToHex(sha256(publicKey).subarray(0, 16)) as NetworkId;
}

export function isNetworkId(s: unknown): s is NetworkId {
  return typeof s === "string" && /^[0-9a-f]{32}$/.test(s);
}

/** A missing, unreadable, malformed or wrong-network identity file; `input` is its path. */
export class IdentityError extends MyceliumError {
  constructor(file: string, message: string, cause?: unknown) {
    super("config", message, { input: file, cause });
    this.name = "IdentityError";
  }
}

/** What `genesis` created. */
export interface NetworkInfo {
  /** Absolute path of the network directory. */
  dir: string;
  networkId: NetworkId;
  name: string;
  protocolMajor: number;
  createdAt: string;
  /** Raw 32-byte Ed25519 genesis public key. */
  publicKeyRaw: Uint8Array;
  caPem: string;
  /** Absolute paths of the files written. */
  files: string[];
}

/** A validated network directory, with its secrets (only the genesis directory has them). */
export interface Network {
  dir: string;
  networkId: NetworkId;
  name: string;
  protocolMajor: number;
  createdAt: string;
  publicKeyRaw: Uint8Array;
  isolationKey: Uint8Array;
  /** The genesis key (sign only). */
  networkKey: CryptoKey;
  /** The CA key (sign only). */
  caKey: CryptoKey;
  caCert: x509.X509Certificate;
  caPem: string;
}

/** What `issueNodeCert` created. */
export interface NodeIdentityInfo {
  dir: string;
  nodeId: NodeId;
  name: string;
  tier: NodeTier;
  networkId: NetworkId;
  certPem: string;
  notAfter: Date;
  files: string[];
}

/** A validated node directory. */
export interface NodeIdentity {
  dir: string;
  nodeId: NodeId;
  name: string;
  tier: NodeTier;
  networkId: NetworkId;
  /** 32 bytes; never sent on the wire. */
  isolationKey: Uint8Array;
  /** The node's Ed25519 private key, usable with `crypto.subtle.sign("Ed25519", ...)`. */
  privateKey: CryptoKey;
  /** Raw 32-byte Ed25519 public key; NodeId = nodeIdFromPublicKey(publicKeyRaw). */
  publicKeyRaw: Uint8Array;
  keyPem: string;
  certPem: string;
  caPem: string;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const ED25519 = { name: "Ed25519" } as const;
/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw key follows. */
const ED25519_SPKI_PREFIX = copyBytes(Buffer.from("302a300506032b6570032100", "hex"));
const CA_ENDORSEMENT_DOMAIN = "mycelium/ca-endorsement/v1\n";
const ISOLATION_CHECK_DOMAIN = "mycelium/isolation-key-check/v1\n";
const CLOCK_SKEW_MS = 5 * 60_000;
const DAY_MS = 86_400_000;
const NAME_RE = /^[^\p{Cc}]{1,128}$/u;
const DNS_RE =
  /^(?=.{1,253}$)(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const utf8 = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function copyBytes(b: Uint8Array | ArrayBuffer): Uint8Array<ArrayBuffer> {
  return new Uint8Array(b instanceof ArrayBuffer ? b.slice(0) : b);
}

function isolationKeyCheck(key: Uint8Array): string {
  return bytesToHex(sha256(concat(utf8.encode(ISOLATION_CHECK_DOMAIN), key)).subarray(0, 8));
}

function caEndorsementMessage(caDer: Uint8Array): Uint8Array<ArrayBuffer> {
  return concat(utf8.encode(CA_ENDORSEMENT_DOMAIN), caDer);
}

/** A positive 128-bit serial number, hex. */
function randomSerial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0] & 0x3f) | 0x40;
  return bytesToHex(b);
}

function errnoCode(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e ? String(e.code) : undefined;
}

function describeFsError(e: unknown): string {
  switch (errnoCode(e)) {
    case "ENOENT":
      return "file is missing";
    case "EISDIR":
      return "is a directory, expected a file";
    case "EACCES":
    case "EPERM":
      return "cannot be read (permission denied)";
    default:
      return `cannot be read: ${e instanceof Error ? e.message : String(e)}`;
  }
}

async function readBytes(file: string): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return copyBytes(await readFile(file));
  } catch (e) {
    throw new IdentityError(file, describeFsError(e), e);
  }
}

async function readText(file: string): Promise<string> {
  const bytes = await readBytes(file);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    throw new IdentityError(file, "is not a text file (invalid UTF-8)", e);
  }
}

/** Decodes the one PEM block labelled `label`; anything else is an error naming the file. */
function decodePem(file: string, text: string, label: string): Uint8Array<ArrayBuffer> {
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END ([A-Z0-9 ]+)-----/g;
  const blocks = [...text.matchAll(re)];
  if (blocks.length === 0) {
    throw new IdentityError(file, `not a PEM file (no "-----BEGIN ${label}-----" block found)`);
  }
  const ours = blocks.filter((m) => m[1] === label);
  if (ours.length === 0) {
    const found = [...new Set(blocks.map((m) => m[1]))].join(", ");
    throw new IdentityError(file, `expected a PEM "${label}" block, found: ${found}`);
  }
  if (ours.length > 1) {
    throw new IdentityError(file, `contains ${ours.length} "${label}" blocks, expected exactly 1`);
  }
  const [, , body, end] = ours[0];
  if (end !== label) throw new IdentityError(file, `PEM block "${label}" ends with "${end}"`);
  const b64 = body.replace(/\s+/g, "");
  if (b64.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw new IdentityError(
      file,
      `PEM "${label}" block is not valid base64 (truncated or corrupt)`,
    );
  }
  return copyBytes(Buffer.from(b64, "base64"));
}

function encodePem(der: Uint8Array | ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString(
    "base64",
  );
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

async function loadPrivateKey(file: string): Promise<{ key: CryptoKey; pem: string }> {
  const pem = await readText(file);
  const der = decodePem(file, pem, "PRIVATE KEY");
  try {
    const key = await crypto.subtle.importKey("pkcs8", der, ED25519, false, ["sign"]);
    return { key, pem };
  } catch (e) {
    throw new IdentityError(file, "not an Ed25519 private key (PKCS#8)", e);
  }
}

async function loadCertificate(
  file: string,
): Promise<{ cert: x509.X509Certificate; pem: string; der: Uint8Array<ArrayBuffer> }> {
  const pem = await readText(file);
  const der = decodePem(file, pem, "CERTIFICATE");
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(der);
  } catch (e) {
    throw new IdentityError(file, "not a valid X.509 certificate (DER does not parse)", e);
  }
  return { cert, pem, der };
}

/** The raw 32-byte key of an Ed25519 SubjectPublicKeyInfo, or null for any other key type. */
function ed25519RawFromSpki(spki: Uint8Array): Uint8Array<ArrayBuffer> | null {
  if (spki.length !== ED25519_SPKI_PREFIX.length + 32) return null;
  for (let i = 0; i < ED25519_SPKI_PREFIX.length; i++) {
    if (spki[i] !== ED25519_SPKI_PREFIX[i]) return null;
  }
  return copyBytes(spki.subarray(ED25519_SPKI_PREFIX.length));
}

function certPublicKeyRaw(file: string, cert: x509.X509Certificate): Uint8Array<ArrayBuffer> {
  const raw = ed25519RawFromSpki(new Uint8Array(cert.publicKey.rawData));
  if (!raw) throw new IdentityError(file, "certificate key is not an Ed25519 key");
  return raw;
}

function importPublic(raw: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw, ED25519, true, ["verify"]);
}

/** True when `privateKey` and the raw public key form a pair (signs a random challenge). */
async function keysMatch(privateKey: CryptoKey, publicRaw: Uint8Array<ArrayBuffer>) {
  const challenge = crypto.getRandomValues(new Uint8Array(32));
  const sig = await crypto.subtle.sign(ED25519, privateKey, challenge);
  return crypto.subtle.verify(ED25519, await importPublic(publicRaw), sig, challenge);
}

function checkValidity(file: string, cert: x509.X509Certificate, what: string) {
  const now = Date.now();
  if (cert.notBefore.getTime() > now + CLOCK_SKEW_MS) {
    throw new IdentityError(
      file,
      `${what} is not valid before ${cert.notBefore.toISOString()} (check the clock)`,
    );
  }
  if (cert.notAfter.getTime() < now) {
    throw new IdentityError(file, `${what} expired on ${cert.notAfter.toISOString()}`);
  }
}

function uriSans(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (!san) return [];
  return san.names.items.filter((n) => n.type === "url").map((n) => n.value);
}

function nodeUri(networkId: string, nodeId: string): string {
  return `mycelium://${networkId}/${nodeId}`;
}

const MYCELIUM_URI_RE = /^mycelium:\/\/([0-9a-f]{32})\/([0-9a-f]{32})$/;

/**
 * The node id and network id a certificate claims, if it is a well-formed node certificate:
 * Ed25519 key, CN = nodeIdFromPublicKey(key), and one `mycelium://<net>/<node>` URI naming the
 * same node. Does not check who signed it (TLS or `loadNodeIdentity` does that).
 */
export function nodeCertIdentity(
  der: Uint8Array,
): { nodeId: NodeId; networkId: NetworkId } | null {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(copyBytes(der));
  } catch {
    return null;
  }
  const raw = ed25519RawFromSpki(new Uint8Array(cert.publicKey.rawData));
  if (!raw) return null;
  const nodeId = nodeIdFromPublicKey(raw);
  const cn = cert.subjectName.getField("CN");
  if (cn.length !== 1 || cn[0] !== nodeId) return null;
  const uris = uriSans(cert).map((u) => MYCELIUM_URI_RE.exec(u)).filter((m) => m !== null);
  if (uris.length !== 1 || uris[0][2] !== nodeId) return null;
  return { nodeId, networkId: uris[0][1] as NetworkId };
}

// ---------------------------------------------------------------------------------------------
// Writing files

interface PendingFile {
  name: string;
  data: string | Uint8Array;
  mode: number;
}

async function writeFileAtomic(file: string, data: string | Uint8Array, mode: number) {
  const tmp = join(dirname(file), `.${basename(file)}.${randomSerial().slice(0, 12)}.tmp`);
  let fh;
  try {
    fh = await open(tmp, "wx", mode);
  } catch (e) {
    throw new IdentityError(file, `cannot be written: ${(e as Error).message}`, e);
  }
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // the umask may have removed bits from 0644; never adds any
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw new IdentityError(file, `cannot be written: ${(e as Error).message}`, e);
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new IdentityError(file, `cannot be written: ${(e as Error).message}`, e);
  }
}

async function fsyncDir(dir: string) {
  try {
    const fh = await open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some platforms cannot fsync a directory; the files themselves are synced.
  }
}

async function prepareOutDir(dir: string, names: string[], what: string) {
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw new IdentityError(dir, `cannot create the output directory: ${(e as Error).message}`, e);
  }
  const st = await stat(dir);
  if (!st.isDirectory()) throw new IdentityError(dir, "is not a directory");
  for (const name of names) {
    const file = join(dir, name);
    try {
      await stat(file);
    } catch (e) {
      if (errnoCode(e) === "ENOENT") continue;
      throw new IdentityError(file, describeFsError(e), e);
    }
    throw new IdentityError(file, `already exists; refusing to overwrite ${what}`);
  }
}

async function writeAll(dir: string, files: PendingFile[]): Promise<string[]> {
  const written: string[] = [];
  for (const f of files) {
    const file = join(dir, f.name);
    await writeFileAtomic(file, f.data, f.mode);
    written.push(file);
  }
  await fsyncDir(dir);
  return written;
}

function checkValidDays(days: number | undefined, def: number): number {
  const d = days ?? def;
  if (!Number.isInteger(d) || d < 1 || d > 36_500) {
    throw new MyceliumError("config", `must be a whole number of days in [1, 36500], got ${d}`, {
      input: "validDays",
    });
  }
  return d;
}

function checkName(name: string, input: string): string {
  if (!NAME_RE.test(name) || name.trim() !== name) {
    throw new MyceliumError(
      "config",
      `must be 1-128 characters, without control characters or surrounding spaces, got ${
        JSON.stringify(name)
      }`,
      { input },
    );
  }
  return name;
}

// ---------------------------------------------------------------------------------------------
// Genesis

const networkJsonSchema = z.object({
  networkId: z.string().refine(isNetworkId, "expected 32 lowercase hex characters"),
  name: z.string().min(1),
  protocolMajor: z.number().int().positive(),
  publicKey: z.string().min(1),
  createdAt: z.string().min(1),
  caSignature: z.string().min(1),
  isolationKeyCheck: z.string().regex(/^[0-9a-f]{16}$/, "expected 16 lowercase hex characters"),
});

const nodeJsonSchema = z.object({
  nodeId: z.string().regex(/^[0-9a-f]{32}$/, "expected 32 lowercase hex characters"),
  name: z.string().min(1),
  tier: z.enum(["sclerotia", "rhizomorph", "hypha"]),
  networkId: z.string().refine(isNetworkId, "expected 32 lowercase hex characters"),
});

function parseJson<T>(file: string, text: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new IdentityError(file, `not valid JSON: ${(e as Error).message}`, e);
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue.path.length ? issue.path.join(".") : "(root)";
    throw new IdentityError(file, `field "${field}": ${issue.message}`);
  }
  return r.data;
}

/**
 * Creates a network in `outDir` (created if missing): genesis key, network id, isolation key
 * and network CA. Refuses to overwrite any of those files if one already exists there.
 */
export async function genesis(
  outDir: string,
  opts: { name?: string; validDays?: number } = {},
): Promise<NetworkInfo> {
  const dir = resolve(outDir);
  const name = checkName(opts.name ?? "mycelium", "name");
  const validDays = checkValidDays(opts.validDays, 3650);
  await prepareOutDir(
    dir,
    [FILES.network, FILES.networkKey, FILES.isolationKey, FILES.ca, FILES.caKey],
    "an existing network",
  );

  const netKeys = await crypto.subtle.generateKey(ED25519, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const publicKeyRaw = new Uint8Array(await crypto.subtle.exportKey("raw", netKeys.publicKey));
  const networkId = networkIdFromPublicKey(publicKeyRaw);
  const isolationKey = crypto.getRandomValues(new Uint8Array(ISOLATION_KEY_BYTES));

  const caKeys = await crypto.subtle.generateKey(ED25519, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [`Mycelium network CA ${networkId}`] }, { O: [name] }],
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + validDays * DAY_MS),
    keys: caKeys,
    signingAlgorithm: ED25519,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const caDer = new Uint8Array(ca.rawData);
  const caSignature = new Uint8Array(
    await crypto.subtle.sign(ED25519, netKeys.privateKey, caEndorsementMessage(caDer)),
  );
  const createdAt = new Date(now).toISOString();
  const networkJson = {
    networkId,
    name,
    protocolMajor: PROTOCOL_MAJOR,
    publicKey: Buffer.from(publicKeyRaw).toString("base64"),
    createdAt,
    caSignature: Buffer.from(caSignature).toString("base64"),
    isolationKeyCheck: isolationKeyCheck(isolationKey),
  };
  const caPem = ca.toString("pem") + "\n";
  const pkcs8 = async (k: CryptoKey) =>
    encodePem(await crypto.subtle.exportKey("pkcs8", k), "PRIVATE KEY");

  // Secrets first, network.json last: a directory with network.json is complete.
  const files = await writeAll(dir, [
    { name: FILES.networkKey, data: await pkcs8(netKeys.privateKey), mode: 0o600 },
    { name: FILES.caKey, data: await pkcs8(caKeys.privateKey), mode: 0o600 },
    { name: FILES.isolationKey, data: bytesToHex(isolationKey) + "\n", mode: 0o600 },
    { name: FILES.ca, data: caPem, mode: 0o644 },
    { name: FILES.network, data: JSON.stringify(networkJson, null, 2) + "\n", mode: 0o644 },
  ]);
  return {
    dir,
    networkId,
    name,
    protocolMajor: PROTOCOL_MAJOR,
    createdAt,
    publicKeyRaw,
    caPem,
    files,
  };
}

// ---------------------------------------------------------------------------------------------
// Loading

interface NetworkPublic {
  dir: string;
  networkId: NetworkId;
  name: string;
  protocolMajor: number;
  createdAt: string;
  publicKeyRaw: Uint8Array<ArrayBuffer>;
  isolationKey: Uint8Array;
  caCert: x509.X509Certificate;
  caPem: string;
  caPublicRaw: Uint8Array<ArrayBuffer>;
}

/** network.json, ca.pem and isolation.key: present in both network and node directories. */
async function loadNetworkPublic(dir: string): Promise<NetworkPublic> {
  const netFile = join(dir, FILES.network);
  const net = parseJson(netFile, await readText(netFile), networkJsonSchema);
  if (net.protocolMajor !== PROTOCOL_MAJOR) {
    throw new IdentityError(
      netFile,
      `protocolMajor ${net.protocolMajor} is not supported (this node speaks ${PROTOCOL_MAJOR})`,
    );
  }
  const publicKeyRaw = copyBytes(Buffer.from(net.publicKey, "base64"));
  if (publicKeyRaw.length !== 32) {
    throw new IdentityError(
      netFile,
      `field "publicKey": expected 32 bytes (base64), got ${publicKeyRaw.length}`,
    );
  }
  const derivedId = networkIdFromPublicKey(publicKeyRaw);
  if (derivedId !== net.networkId) {
    throw new IdentityError(
      netFile,
      `networkId ${net.networkId} is not the hash of its publicKey (expected ${derivedId})`,
    );
  }
  let netPublic: CryptoKey;
  try {
    netPublic = await importPublic(publicKeyRaw);
  } catch (e) {
    throw new IdentityError(netFile, `field "publicKey": not an Ed25519 public key`, e);
  }

  const caFile = join(dir, FILES.ca);
  const { cert: caCert, pem: caPem, der: caDer } = await loadCertificate(caFile);
  const caPublicRaw = certPublicKeyRaw(caFile, caCert);
  const endorsed = await crypto.subtle.verify(
    ED25519,
    netPublic,
    copyBytes(Buffer.from(net.caSignature, "base64")),
    caEndorsementMessage(caDer),
  );
  if (!endorsed) {
    throw new IdentityError(
      caFile,
      `CA certificate does not belong to network ${net.networkId} (not endorsed by its genesis key in ${FILES.network})`,
    );
  }
  const bc = caCert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new IdentityError(caFile, "certificate is not a CA (basicConstraints)");
  if (!(await caCert.verify({ signatureOnly: true }).catch(() => false))) {
    throw new IdentityError(caFile, "CA certificate is not validly self-signed");
  }
  checkValidity(caFile, caCert, "CA certificate");

  const isoFile = join(dir, FILES.isolationKey);
  const isoText = (await readText(isoFile)).trim();
  if (!/^[0-9a-fA-F]*$/.test(isoText) || isoText.length !== ISOLATION_KEY_BYTES * 2) {
    throw new IdentityError(
      isoFile,
      `expected ${ISOLATION_KEY_BYTES} bytes as ${ISOLATION_KEY_BYTES * 2} hex characters, found ${
        /^[0-9a-fA-F]*$/.test(isoText) ? `${isoText.length} hex characters` : "non-hex content"
      }`,
    );
  }
  const isolationKey = copyBytes(Buffer.from(isoText, "hex"));
  if (isolationKeyCheck(isolationKey) !== net.isolationKeyCheck) {
    throw new IdentityError(
      isoFile,
      `isolation key does not belong to network ${net.networkId} (fingerprint differs from ${FILES.network})`,
    );
  }
  return {
    dir,
    networkId: net.networkId as NetworkId,
    name: net.name,
    protocolMajor: net.protocolMajor,
    createdAt: net.createdAt,
    publicKeyRaw,
    isolationKey,
    caCert,
    caPem,
    caPublicRaw,
  };
}

/** Loads and validates a network directory made by `genesis` (needs its private keys). */
export async function loadNetwork(dir: string): Promise<Network> {
  const abs = resolve(dir);
  const pub = await loadNetworkPublic(abs);
  const netKeyFile = join(abs, FILES.networkKey);
  const { key: networkKey } = await loadPrivateKey(netKeyFile).catch((e) => {
    if (e instanceof IdentityError && errnoCode(e.cause) === "ENOENT") {
      throw new IdentityError(
        netKeyFile,
        "file is missing (expected the network directory made by genesis, which holds the network's private keys)",
        e.cause,
      );
    }
    throw e;
  });
  if (!(await keysMatch(networkKey, pub.publicKeyRaw))) {
    throw new IdentityError(
      netKeyFile,
      `private key does not match the genesis public key of network ${pub.networkId} (${FILES.network})`,
    );
  }
  const caKeyFile = join(abs, FILES.caKey);
  const { key: caKey } = await loadPrivateKey(caKeyFile);
  if (!(await keysMatch(caKey, pub.caPublicRaw))) {
    throw new IdentityError(
      caKeyFile,
      `private key does not match the CA certificate (${FILES.ca})`,
    );
  }
  return {
    dir: abs,
    networkId: pub.networkId,
    name: pub.name,
    protocolMajor: pub.protocolMajor,
    createdAt: pub.createdAt,
    publicKeyRaw: pub.publicKeyRaw,
    isolationKey: pub.isolationKey,
    networkKey,
    caKey,
    caCert: pub.caCert,
    caPem: pub.caPem,
  };
}

/** Loads and validates a node directory made by `issueNodeCert`. */
export async function loadNodeIdentity(dir: string): Promise<NodeIdentity> {
  const abs = resolve(dir);
  const net = await loadNetworkPublic(abs);

  const nodeJsonFile = join(abs, FILES.node);
  const nodeJson = parseJson(nodeJsonFile, await readText(nodeJsonFile), nodeJsonSchema);

  const keyFile = join(abs, FILES.nodeKey);
  const { key: privateKey, pem: keyPem } = await loadPrivateKey(keyFile);

  const certFile = join(abs, FILES.nodeCert);
  const { cert, pem: certPem } = await loadCertificate(certFile);
  const signed = await cert.verify({ publicKey: net.caCert.publicKey, signatureOnly: true })
    .catch(() => false);
  if (!signed) {
    throw new IdentityError(
      certFile,
      `certificate is not signed by this network's CA (${FILES.ca}); is it from another network?`,
    );
  }
  checkValidity(certFile, cert, "certificate");
  const publicKeyRaw = certPublicKeyRaw(certFile, cert);
  const nodeId = nodeIdFromPublicKey(publicKeyRaw);
  const claimed = nodeCertIdentity(new Uint8Array(cert.rawData));
  if (!claimed) {
    throw new IdentityError(
      certFile,
      `not a node certificate: expected subject CN=${nodeId} and URI ${
        nodeUri(net.networkId, nodeId)
      }`,
    );
  }
  if (claimed.networkId !== net.networkId) {
    throw new IdentityError(
      certFile,
      `certificate names network ${claimed.networkId}, but ${FILES.network} is network ${net.networkId}`,
    );
  }
  if (!(await keysMatch(privateKey, publicKeyRaw))) {
    throw new IdentityError(
      keyFile,
      `private key does not match the certificate (${FILES.nodeCert}, node ${nodeId})`,
    );
  }
  if (nodeJson.nodeId !== nodeId) {
    throw new IdentityError(
      nodeJsonFile,
      `nodeId ${nodeJson.nodeId} does not match the node's public key (expected ${nodeId})`,
    );
  }
  if (nodeJson.networkId !== net.networkId) {
    throw new IdentityError(
      nodeJsonFile,
      `networkId ${nodeJson.networkId} does not match ${FILES.network} (network ${net.networkId})`,
    );
  }
  return {
    dir: abs,
    nodeId,
    name: nodeJson.name,
    tier: nodeJson.tier,
    networkId: net.networkId,
    isolationKey: net.isolationKey,
    privateKey,
    publicKeyRaw,
    keyPem,
    certPem,
    caPem: net.caPem,
  };
}

// ---------------------------------------------------------------------------------------------
// Node certificates

/**
 * Issues a node identity signed by the network CA in `networkDir` (the genesis directory) and
 * writes a self-contained node directory `outDir`. Refuses to overwrite an existing identity.
 * Defaults: tier "sclerotia", IP 127.0.0.1, DNS localhost, 365 days.
 */
export async function issueNodeCert(
  networkDir: string,
  outDir: string,
  opts: { name: string; tier?: NodeTier; ips?: string[]; dns?: string[]; validDays?: number },
): Promise<NodeIdentityInfo> {
  const name = checkName(opts.name, "name");
  const tier = opts.tier ?? "sclerotia";
  if (!NODE_TIERS.includes(tier)) {
    throw new MyceliumError("config", `must be one of ${NODE_TIERS.join(", ")}, got ${tier}`, {
      input: "tier",
    });
  }
  const ips = opts.ips?.length ? opts.ips : ["127.0.0.1"];
  for (const ip of ips) {
    if (isIP(ip) === 0) {
      throw new MyceliumError("config", `not an IP address: ${JSON.stringify(ip)}`, {
        input: "ips",
      });
    }
  }
  const dns = opts.dns?.length ? opts.dns : ["localhost"];
  for (const d of dns) {
    if (!DNS_RE.test(d)) {
      throw new MyceliumError("config", `not a DNS name: ${JSON.stringify(d)}`, { input: "dns" });
    }
  }
  const validDays = checkValidDays(opts.validDays, 365);

  const net = await loadNetwork(networkDir);
  const dir = resolve(outDir);
  if (dir === net.dir) {
    throw new IdentityError(dir, "the node directory must differ from the network directory");
  }
  await prepareOutDir(
    dir,
    [FILES.nodeKey, FILES.nodeCert, FILES.node, FILES.ca, FILES.network, FILES.isolationKey],
    "an existing node identity",
  );

  const keys = await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"]) as CryptoKeyPair;
  const publicKeyRaw = new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey));
  const nodeId = nodeIdFromPublicKey(publicKeyRaw);
  const now = Date.now();
  // A node certificate never outlives its CA.
  const notAfter = new Date(Math.min(now + validDays * DAY_MS, net.caCert.notAfter.getTime()));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [nodeId] }],
    issuer: net.caCert.subjectName,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter,
    publicKey: keys.publicKey,
    signingKey: net.caKey,
    signingAlgorithm: ED25519,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension([
        ...ips.map((value) => ({ type: "ip" as const, value })),
        ...dns.map((value) => ({ type: "dns" as const, value })),
        { type: "url" as const, value: nodeUri(net.networkId, nodeId) },
      ]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(net.caCert.publicKey),
    ],
  });
  const certPem = cert.toString("pem") + "\n";
  const keyPem = encodePem(await crypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY");
  const nodeJson = { nodeId, name, tier, networkId: net.networkId };
  const networkJsonText = await readText(join(net.dir, FILES.network));

  // node.json last: its presence marks a complete node directory.
  const files = await writeAll(dir, [
    { name: FILES.nodeKey, data: keyPem, mode: 0o600 },
    { name: FILES.isolationKey, data: bytesToHex(net.isolationKey) + "\n", mode: 0o600 },
    { name: FILES.nodeCert, data: certPem, mode: 0o644 },
    { name: FILES.ca, data: net.caPem, mode: 0o644 },
    { name: FILES.network, data: networkJsonText, mode: 0o644 },
    { name: FILES.node, data: JSON.stringify(nodeJson, null, 2) + "\n", mode: 0o644 },
  ]);
  return { dir, nodeId, name, tier, networkId: net.networkId, certPem, notAfter, files };
}

// ---------------------------------------------------------------------------------------------
// TLS

/** Options for both `tls.createServer` and `tls.connect` (node:tls). */
export interface NodeTlsOptions {
  key: string;
  cert: string;
  ca: string;
  requestCert: true;
  rejectUnauthorized: true;
  minVersion: "TLSv1.3";
  /** Client side: accepts the server if its certificate is a node certificate of our network. */
  checkServerIdentity: (host: string, cert: tls.PeerCertificate) => Error | undefined;
}

/**
 * Mutual-TLS options for a node. Only the network CA is trusted, so a peer of another network
 * fails the handshake. The client's server check is by identity, not by host name: node
 * addresses come from membership (and may be NATed), so instead of matching the host against
 * the certificate's IP/DNS names it requires the URI `mycelium://<our network>/<node>`, and,
 * with `expectPeer`, that exact node id. Pass `checkHostname: true` to also run Node's
 * host-name check. Callers that dial without `expectPeer` must compare `peerNodeId(socket)`
 * with the node they meant to reach.
 */
export function tlsOptions(
  id: NodeIdentity,
  opts: { expectPeer?: NodeId; checkHostname?: boolean } = {},
): NodeTlsOptions {
  return {
    key: id.keyPem,
    cert: id.certPem,
    ca: id.caPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
    checkServerIdentity: (host, cert) => {
      const claimed = cert?.raw ? nodeCertIdentity(new Uint8Array(cert.raw)) : null;
      if (!claimed) return new Error(`server certificate is not a Mycelium node certificate`);
      if (claimed.networkId !== id.networkId) {
        return new Error(`server belongs to network ${claimed.networkId}, not ${id.networkId}`);
      }
      if (opts.expectPeer !== undefined && claimed.nodeId !== opts.expectPeer) {
        return new Error(`server is node ${claimed.nodeId}, expected ${opts.expectPeer}`);
      }
      return opts.checkHostname ? tls.checkServerIdentity(host, cert) : undefined;
    },
  };
}

/**
 * The node id of the peer of an authorized TLS socket (server or client side), taken from its
 * certificate and checked against the certificate's public key; null if the socket is not
 * authorized or the certificate is not a well-formed node certificate.
 */
export function peerNodeId(socket: tls.TLSSocket): NodeId | null {
  if (!socket.authorized) return null;
  const cert = socket.getPeerCertificate();
  if (!cert?.raw) return null;
  return nodeCertIdentity(new Uint8Array(cert.raw))?.nodeId ?? null;
}
