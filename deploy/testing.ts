/**
 * Test support for the controller: three real node processes (node/testing.ts), a throwaway PKI (a CA, a server certificate for 127.0.0.1,
 * a client certificate) and a stand-in for the Kubernetes API server's VMReplication endpoints
 * over HTTPS: list (one namespace or all), get, create, the status subresource (merge patch
 * only, the spec left alone), watch, bearer-token or client-certificate authentication, every
 * request recorded. It is not a cluster: the real-cluster test in controller_test.ts is.
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { loadNodeIdentity } from "../node/pki.ts";
import { createTestNetwork, nodeEnv, NodeProcess, until } from "../node/testing.ts";
import { GROUP, PLURAL, VERSION } from "./crd.ts";
import type { VMReplication } from "./reconcile.ts";

export interface TestNodes {
  /** a, b, c: identity names a, b and c. */
  procs: NodeProcess[];
  ids: string[];
  admins: string[];
  dataDirs: string[];
  seed: string;
  env: Record<string, string>;
  binary?: string;
  close(): Promise<void>;
}

/**
 * Three real nodes (named a, b, c) that see each other; the built binary when MYCELIUM_BINARY
 * is set. `close` kills them and removes their directory.
 */
export async function startTestNodes(prefix: string): Promise<TestNodes> {
  const binary = Deno.env.get("MYCELIUM_BINARY") || undefined;
  const dir = await Deno.makeTempDir({ prefix });
  const procs: NodeProcess[] = [];
  const close = async () => {
    for (const p of procs) p.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited.catch(() => undefined)));
    await Deno.remove(dir, { recursive: true });
  };
  try {
    const net = await createTestNetwork(dir, "k8s");
    const dataDirs = await Promise.all(["a", "b", "c"].map((n) => net.node(n)));
    const ids = await Promise.all(
      dataDirs.map(async (d) => (await loadNodeIdentity(join(d, "identity"))).nodeId),
    );
    const env = {
      MYCELIUM_STREAMS_RECONNECT_MAX_MS: "1000",
      MYCELIUM_RAM_REPLICATION_PROFILE: "low",
    };
    procs.push(new NodeProcess("a", dataDirs[0], nodeEnv(dataDirs[0], [], env), binary));
    const seed = (await procs[0].ready()).gossip;
    for (const i of [1, 2]) {
      procs.push(
        new NodeProcess("abc"[i], dataDirs[i], nodeEnv(dataDirs[i], [seed], env), binary),
      );
    }
    const addrs = await Promise.all(procs.map((p) => p.ready()));
    await until("every node sees the other two alive", 20_000, async () => {
      for (const p of procs) {
        const m = await p.json<Array<{ state: string }>>("/v1/members");
        if (m.filter((x) => x.state === "alive").length < 2) return false;
      }
      return true;
    });
    return { procs, ids, admins: addrs.map((a) => a.admin), dataDirs, seed, env, binary, close };
  } catch (e) {
    await close();
    throw e;
  }
}

x509.cryptoProvider.set(crypto);

export interface TestPki {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

async function keyPem(k: CryptoKey): Promise<string> {
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", k));
  const b64 = Buffer.from(der).toString("base64").replace(/(.{64})/g, "$1\n").trim();
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate (CN `cn`). */
export async function makeTestPki(cn = "admin"): Promise<TestPki> {
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 86_400_000);
  const gen = () =>
    crypto.subtle.generateKey(ALG, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
  const [caKeys, srvKeys, cliKeys] = await Promise.all([gen(), gen(), gen()]);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=mycelium-test-ca",
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
    ],
  });
  const leaf = (serial: string, subject: string, keys: CryptoKeyPair, ext: x509.Extension[]) =>
    x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject,
      issuer: ca.subject,
      notBefore,
      notAfter,
      signingKey: caKeys.privateKey,
      publicKey: keys.publicKey,
      signingAlgorithm: ALG,
      extensions: ext,
    });
  const srv = await leaf("02", "CN=kube-apiserver", srvKeys, [
    new x509.SubjectAlternativeNameExtension([
      { type: "ip", value: "127.0.0.1" },
      { type: "dns", value: "localhost" },
    ]),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
  ]);
  const cli = await leaf("03", `CN=${cn}`, cliKeys, [
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
  ]);
  return {
    ca: ca.toString("pem"),
    serverCert: srv.toString("pem"),
    serverKey: await keyPem(srvKeys.privateKey),
    clientCert: cli.toString("pem"),
    clientKey: await keyPem(cliKeys.privateKey),
  };
}

export interface RecordedRequest {
  method: string;
  path: string;
  contentType?: string;
  /** "token", "cert:<CN>" or "none". */
  auth: string;
  body?: unknown;
}

type Obj = Record<string, unknown>;

/** RFC 7386. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!patch || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Obj = target && typeof target === "object" && !Array.isArray(target)
    ? { ...(target as Obj) }
    : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

const status = (res: ServerResponse, code: number, reason: string, message: string) => {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(
    JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason, message, code }),
  );
};

/** The VMReplication endpoints of a Kubernetes API server (see the module doc). */
export class FakeKubeApi {
  readonly requests: RecordedRequest[] = [];
  private readonly objects = new Map<string, VMReplication>(); // ns/name
  private rv = 100;
  private uid = 0;
  private readonly watchers = new Set<{ ns: string | null; res: ServerResponse }>();
  private server!: https.Server;
  url = "";

  constructor(private readonly pki: TestPki, readonly token = "test-token") {}

  async start(): Promise<this> {
    this.server = https.createServer({
      key: this.pki.serverKey,
      cert: this.pki.serverCert,
      ca: this.pki.ca,
      requestCert: true,
      rejectUnauthorized: false,
    }, (req, res) => this.handle(req, res));
    await new Promise<void>((ok) => this.server.listen(0, "127.0.0.1", ok));
    const port = (this.server.address() as { port: number }).port;
    this.url = `https://127.0.0.1:${port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }

  /** Creates a resource (generation 1) as `kubectl apply` would. */
  create(cr: { metadata: { name: string; namespace: string }; spec: unknown }): VMReplication {
    const obj: VMReplication = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "VMReplication",
      metadata: {
        ...cr.metadata,
        uid: `uid-${++this.uid}`,
        generation: 1,
        resourceVersion: String(++this.rv),
      },
      spec: structuredClone(cr.spec),
    };
    this.objects.set(`${cr.metadata.namespace}/${cr.metadata.name}`, obj);
    this.notify("ADDED", obj);
    return structuredClone(obj);
  }

  /** Replaces a resource's spec: the generation goes up. */
  updateSpec(namespace: string, name: string, spec: unknown): void {
    const obj = this.objects.get(`${namespace}/${name}`);
    if (!obj) throw new Error(`no ${namespace}/${name}`);
    obj.spec = structuredClone(spec);
    obj.metadata.generation = (obj.metadata.generation ?? 0) + 1;
    obj.metadata.resourceVersion = String(++this.rv);
    this.notify("MODIFIED", obj);
  }

  get(namespace: string, name: string): VMReplication | undefined {
    const o = this.objects.get(`${namespace}/${name}`);
    return o && structuredClone(o);
  }

  private notify(type: string, obj: VMReplication): void {
    for (const w of this.watchers) {
      if (w.ns === null || w.ns === obj.metadata.namespace) {
        w.res.write(JSON.stringify({ type, object: obj }) + "\n");
      }
    }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      const peer = (req.socket as TLSSocket).getPeerCertificate?.();
      const cn = peer && typeof peer === "object" && "subject" in peer
        ? peer.subject?.CN
        : undefined;
      const authz = req.headers.authorization;
      const auth = authz === `Bearer ${this.token}`
        ? "token"
        : authz
        ? "bad-token"
        : cn
        ? `cert:${cn}`
        : "none";
      const url = new URL(req.url ?? "/", "https://x");
      this.requests.push({
        method: req.method ?? "",
        path: url.pathname + url.search,
        contentType: req.headers["content-type"],
        auth,
        body,
      });
      if (auth !== "token" && auth !== "cert:admin") {
        return status(res, 401, "Unauthorized", "Unauthorized");
      }
      this.route(req.method ?? "GET", url, body, res);
    });
  }

  private route(method: string, url: URL, body: unknown, res: ServerResponse): void {
    const base = `/apis/${GROUP}/${VERSION}`;
    const p = url.pathname;
    let m: RegExpMatchArray | null;
    const reply = (code: number, obj: unknown) => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(obj));
    };
    if (p === "/version" && method === "GET") return reply(200, { major: "1", minor: "32" });
    const all = p === `${base}/${PLURAL}`;
    m = p.match(new RegExp(`^${base}/namespaces/([^/]+)/${PLURAL}$`));
    if ((all || m) && method === "GET") {
      const ns = all ? null : decodeURIComponent(m![1]);
      if (url.searchParams.get("watch") === "1") {
        res.writeHead(200, { "content-type": "application/json" });
        const w = { ns, res };
        this.watchers.add(w);
        res.on("close", () => this.watchers.delete(w));
        return;
      }
      const items = [...this.objects.values()]
        .filter((o) => ns === null || o.metadata.namespace === ns)
        .map((o) => structuredClone(o));
      return reply(200, {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "VMReplicationList",
        metadata: { resourceVersion: String(this.rv) },
        items,
      });
    }
    m = p.match(new RegExp(`^${base}/namespaces/([^/]+)/${PLURAL}/([^/]+)(/status)?$`));
    if (m) {
      const key = `${decodeURIComponent(m[1])}/${decodeURIComponent(m[2])}`;
      const obj = this.objects.get(key);
      if (!obj) return status(res, 404, "NotFound", `vmreplications "${m[2]}" not found`);
      if (method === "GET") return reply(200, obj);
      if (method === "PATCH" && m[3]) {
        const ct = this.requests.at(-1)!.contentType;
        if (ct !== "application/merge-patch+json") {
          return status(
            res,
            415,
            "UnsupportedMediaType",
            `the body of the request was in an unknown format: ${ct}`,
          );
        }
        const patch = body as { status?: unknown } | undefined;
        // The status subresource ignores everything but the status.
        obj.status = mergePatch(obj.status, patch?.status ?? {}) as VMReplication["status"];
        obj.metadata.resourceVersion = String(++this.rv);
        this.notify("MODIFIED", obj);
        return reply(200, obj);
      }
      return status(res, 405, "MethodNotAllowed", `${method} not allowed`);
    }
    return status(res, 404, "NotFound", `the server could not find the requested resource (${p})`);
  }
}
