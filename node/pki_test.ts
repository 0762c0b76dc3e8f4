import "reflect-metadata";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import * as x509 from "@peculiar/x509";
import { nodeIdFromPublicKey } from "../core/ids.ts";
import {
  FILES,
  genesis,
  IdentityError,
  issueNodeCert,
  loadNetwork,
  loadNodeIdentity,
  networkIdFromPublicKey,
  type NodeIdentity,
  peerNodeId,
  tlsOptions,
} from "./pki.ts";
import { genesisCommand, nodeCertCommand } from "./pki_cli.ts";

async function withTmp(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "mycelium-pki-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function mode(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

/** Asserts that `p` rejects with an IdentityError about `file` whose message matches `re`. */
async function rejectsNaming(p: Promise<unknown>, file: string, re: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof IdentityError, `expected IdentityError, got ${e}`);
    assert.equal(e.kind, "config");
    assert.equal(e.input, file);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    assert.match(e.message, re);
    return true;
  });
}

/** Two nodes of network A, one of network B. */
async function fixture(root: string) {
  const netA = await genesis(`${root}/netA`, { name: "alpha" });
  const netB = await genesis(`${root}/netB`, { name: "beta" });
  const a1 = await issueNodeCert(netA.dir, `${root}/a1`, { name: "a1" });
  const a2 = await issueNodeCert(netA.dir, `${root}/a2`, { name: "a2", tier: "hypha" });
  const b1 = await issueNodeCert(netB.dir, `${root}/b1`, { name: "b1" });
  return { netA, netB, a1, a2, b1 };
}

Deno.test("genesis writes the network files, secrets with mode 0600", async () => {
  await withTmp(async (root) => {
    const dir = `${root}/new/net`; // created if missing
    const info = await genesis(dir, { name: "lab net" });
    assert.equal(info.dir, dir);
    for (const f of [FILES.networkKey, FILES.caKey, FILES.isolationKey]) {
      assert.equal(await mode(`${dir}/${f}`), 0o600, f);
    }
    for (const f of [FILES.network, FILES.ca]) {
      assert.equal((await mode(`${dir}/${f}`)) & 0o077 & 0o022, 0, `${f} not writable by others`);
    }
    // No temporary files left behind.
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names.sort(), [
      "ca-key.pem",
      "ca.pem",
      "isolation.key",
      "network-key.pem",
      "network.json",
    ]);

    const json = JSON.parse(await Deno.readTextFile(`${dir}/network.json`));
    assert.equal(json.name, "lab net");
    assert.equal(json.protocolMajor, 1);
    assert.ok(!Number.isNaN(Date.parse(json.createdAt)));
    const pub = new Uint8Array(Buffer.from(json.publicKey, "base64"));
    assert.equal(pub.length, 32);
    assert.equal(json.networkId, networkIdFromPublicKey(pub));
    assert.equal(info.networkId, json.networkId);
    assert.match(json.networkId, /^[0-9a-f]{32}$/);

    const iso = (await Deno.readTextFile(`${dir}/isolation.key`)).trim();
    assert.match(iso, /^[0-9a-f]{64}$/);

    const ca = new x509.X509Certificate(await Deno.readTextFile(`${dir}/ca.pem`));
    assert.equal(ca.getExtension(x509.BasicConstraintsExtension)?.ca, true);
    const ku = ca.getExtension(x509.KeyUsagesExtension)!;
    assert.ok(ku.usages & x509.KeyUsageFlags.keyCertSign);
    assert.equal(ca.publicKey.algorithm.name, "Ed25519");
    assert.ok(await ca.verify({ signatureOnly: true }));

    const net = await loadNetwork(dir);
    assert.equal(net.networkId, info.networkId);
    assert.deepEqual(net.publicKeyRaw, pub);
    assert.equal(Buffer.from(net.isolationKey).toString("hex"), iso);
  });
});

Deno.test("genesis refuses to overwrite an existing network", async () => {
  await withTmp(async (root) => {
    const first = await genesis(root);
    await rejectsNaming(genesis(root), `${root}/network.json`, /already exists/);
    await Deno.remove(`${root}/network.json`);
    await rejectsNaming(genesis(root), `${root}/network-key.pem`, /already exists/);
    // The surviving files were not touched.
    assert.equal(await Deno.readTextFile(`${root}/ca.pem`), first.caPem);
  });
});

Deno.test("issueNodeCert + loadNodeIdentity round-trip", async () => {
  await withTmp(async (root) => {
    const net = await genesis(`${root}/net`);
    const info = await issueNodeCert(net.dir, `${root}/n1`, {
      name: "n1",
      tier: "rhizomorph",
      ips: ["127.0.0.1", "10.0.0.7", "::1"],
      dns: ["n1.example", "localhost"],
    });
    const dir = `${root}/n1`;
    for (const f of [FILES.nodeKey, FILES.isolationKey]) {
      assert.equal(await mode(`${dir}/${f}`), 0o600, f);
    }
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names.sort(), [
      "ca.pem",
      "isolation.key",
      "network.json",
      "node-key.pem",
      "node.json",
      "node.pem",
    ]);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/node.json`)), {
      nodeId: info.nodeId,
      name: "n1",
      tier: "rhizomorph",
      networkId: net.networkId,
    });

    const id = await loadNodeIdentity(dir);
    assert.equal(id.nodeId, info.nodeId);
    assert.equal(id.nodeId, nodeIdFromPublicKey(id.publicKeyRaw));
    assert.equal(id.publicKeyRaw.length, 32);
    assert.equal(id.name, "n1");
    assert.equal(id.tier, "rhizomorph");
    assert.equal(id.networkId, net.networkId);
    assert.equal(id.isolationKey.length, 32);
    const netFull = await loadNetwork(net.dir);
    assert.deepEqual(id.isolationKey, netFull.isolationKey);
    assert.equal(id.caPem, net.caPem);

    // The private key signs; the public key verifies.
    const msg = new TextEncoder().encode("hello");
    const sig = await crypto.subtle.sign("Ed25519", id.privateKey, msg);
    const pub = await crypto.subtle.importKey(
      "raw",
      new Uint8Array(id.publicKeyRaw),
      "Ed25519",
      true,
      [
        "verify",
      ],
    );
    assert.ok(await crypto.subtle.verify("Ed25519", pub, sig, msg));

    // Certificate contents.
    const cert = new x509.X509Certificate(id.certPem);
    assert.deepEqual(cert.subjectName.getField("CN"), [id.nodeId]);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    const sans = san.names.items.map((n) => `${n.type}:${n.value}`).sort();
    assert.deepEqual(
      sans,
      [
        "dns:localhost",
        "dns:n1.example",
        "ip:10.0.0.7",
        "ip:127.0.0.1",
        "ip:::1",
        `url:mycelium://${net.networkId}/${id.nodeId}`,
      ].sort(),
    );
    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)!;
    assert.deepEqual(
      [...eku.usages].sort(),
      [
        x509.ExtendedKeyUsage.clientAuth,
        x509.ExtendedKeyUsage.serverAuth,
      ].sort(),
    );
    const ca = new x509.X509Certificate(net.caPem);
    assert.ok(await cert.verify({ publicKey: ca.publicKey, signatureOnly: true }));

    // Defaults: tier sclerotia, 127.0.0.1 and localhost.
    const d = await issueNodeCert(net.dir, `${root}/n2`, { name: "n2" });
    assert.equal(d.tier, "sclerotia");
    const dsan = new x509.X509Certificate(d.certPem).getExtension(
      x509.SubjectAlternativeNameExtension,
    )!.names.items.map((n) => `${n.type}:${n.value}`).sort();
    assert.deepEqual(dsan, [
      "dns:localhost",
      "ip:127.0.0.1",
      `url:mycelium://${net.networkId}/${d.nodeId}`,
    ]);
    assert.notEqual(d.nodeId, info.nodeId);

    // An existing identity is never overwritten.
    const keyBefore = await Deno.readTextFile(`${dir}/node-key.pem`);
    await rejectsNaming(
      issueNodeCert(net.dir, dir, { name: "n1" }),
      `${dir}/node-key.pem`,
      /already exists/,
    );
    assert.equal(await Deno.readTextFile(`${dir}/node-key.pem`), keyBefore);
  });
});

Deno.test("issueNodeCert needs the genesis directory and valid options", async () => {
  await withTmp(async (root) => {
    const { a1 } = await fixture(root);
    // A node directory has no CA key: the error names the first missing secret.
    await rejectsNaming(
      issueNodeCert(a1.dir, `${root}/x`, { name: "x" }),
      `${a1.dir}/network-key.pem`,
      /missing/,
    );
    await assert.rejects(
      issueNodeCert(`${root}/netA`, `${root}/x`, { name: "x", ips: ["not-an-ip"] }),
      (e: unknown) => e instanceof Error && /not an IP address/.test(e.message),
    );
    await assert.rejects(
      issueNodeCert(`${root}/netA`, `${root}/x`, { name: "x", dns: ["bad name"] }),
      /not a DNS name/,
    );
    await assert.rejects(
      // deno-lint-ignore no-explicit-any
      issueNodeCert(`${root}/netA`, `${root}/x`, { name: "x", tier: "mushroom" as any }),
      /tier/,
    );
  });
});

Deno.test("load errors name the offending file", async (t) => {
  await withTmp(async (root) => {
    const { netA, a1, a2, b1 } = await fixture(root);
    const fresh = async (name: string) => {
      const dir = `${root}/case-${name}`;
      await Deno.mkdir(dir);
      for await (const e of Deno.readDir(a1.dir)) {
        await Deno.copyFile(`${a1.dir}/${e.name}`, `${dir}/${e.name}`);
      }
      await loadNodeIdentity(dir); // the copy is valid
      return dir;
    };

    await t.step("missing node-key.pem", async () => {
      const dir = await fresh("missing");
      await Deno.remove(`${dir}/node-key.pem`);
      await rejectsNaming(loadNodeIdentity(dir), `${dir}/node-key.pem`, /file is missing/);
    });
    await t.step("unreadable node.pem (a directory in its place)", async () => {
      const dir = await fresh("unreadable");
      await Deno.remove(`${dir}/node.pem`);
      await Deno.mkdir(`${dir}/node.pem`);
      await rejectsNaming(loadNodeIdentity(dir), `${dir}/node.pem`, /is a directory/);
    });
    await t.step("garbage node-key.pem", async () => {
      const dir = await fresh("garbage");
      await Deno.writeTextFile(`${dir}/node-key.pem`, "this is not a key\n");
      await rejectsNaming(loadNodeIdentity(dir), `${dir}/node-key.pem`, /not a PEM file/);
    });
    await t.step("truncated node.pem", async () => {
      const dir = await fresh("truncated");
      const pem = await Deno.readTextFile(`${dir}/node.pem`);
      await Deno.writeTextFile(`${dir}/node.pem`, pem.slice(0, pem.length / 2));
      await rejectsNaming(loadNodeIdentity(dir), `${dir}/node.pem`, /PEM/);
    });
    await t.step("corrupt base64 body in node.pem", async () => {
      const dir = await fresh("corrupt");
      const pem = await Deno.readTextFile(`${dir}/node.pem`);
      const lines = pem.split("\n");
      lines.splice(3, 2); // drop two body lines: still base64, no longer a certificate
      await Deno.writeTextFile(`${dir}/node.pem`, lines.join("\n"));
      await rejectsNaming(loadNodeIdentity(dir), `${dir}/node.pem`, /certificate|base64/);
    });
    await t.step("a key that is not Ed25519 PKCS#8", async () => {
      const dir = await fresh("rsa");
      const k = await crypto.subtle.generateKey(
        { name: "ECDSA", namedCurve: "P-256" },
        true,
        ["sign", "verify"],
      ) as CryptoKeyPair;
      const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", k.privateKey));
      await Deno.writeTextFile(
        `${dir}/node-key.pem`,
        x509.PemConverter.encode(der, "PRIVATE KEY"),
      );
      await rejectsNaming(loadNodeIdentity(dir), `${dir}/node-key.pem`, /not an Ed25519/);
    });
    await t.step("node.pem from another network", async () => {
      const dir = await fresh("foreign-cert");
      await Deno.copyFile(`${b1.dir}/node.pem`, `${dir}/node.pem`);
      await rejectsNaming(
        loadNodeIdentity(dir),
        `${dir}/node.pem`,
        /certificate is not signed by this network's CA \(ca\.pem\)/,
      );
    });
    await t.step("node-key.pem of another node", async () => {
      const dir = await fresh("other-key");
      await Deno.copyFile(`${a2.dir}/node-key.pem`, `${dir}/node-key.pem`);
      await rejectsNaming(loadNodeIdentity(dir), `${dir}/node-key.pem`, /does not match/);
    });
    await t.step("tampered node.json nodeId", async () => {
      const dir = await fresh("tampered");
      const json = JSON.parse(await Deno.readTextFile(`${dir}/node.json`));
      json.nodeId = a2.nodeId;
      await Deno.writeTextFile(`${dir}/node.json`, JSON.stringify(json));
      await rejectsNaming(
        loadNodeIdentity(dir),
        `${dir}/node.json`,
        new RegExp(`nodeId ${a2.nodeId} does not match`),
      );
    });
    await t.step("node.json with a bad field", async () => {
      const dir = await fresh("badfield");
      const json = JSON.parse(await Deno.readTextFile(`${dir}/node.json`));
      json.tier = "mushroom";
      await Deno.writeTextFile(`${dir}/node.json`, JSON.stringify(json));
      await rejectsNaming(loadNodeIdentity(dir), `${dir}/node.json`, /field "tier"/);
    });
    await t.step("node.json of another network", async () => {
      const dir = await fresh("node-json-net");
      const json = JSON.parse(await Deno.readTextFile(`${dir}/node.json`));
      json.networkId = b1.networkId;
      await Deno.writeTextFile(`${dir}/node.json`, JSON.stringify(json));
      await rejectsNaming(loadNodeIdentity(dir), `${dir}/node.json`, /networkId/);
    });
    await t.step("isolation.key of another network", async () => {
      const dir = await fresh("foreign-iso");
      await Deno.copyFile(`${b1.dir}/isolation.key`, `${dir}/isolation.key`);
      await rejectsNaming(
        loadNodeIdentity(dir),
        `${dir}/isolation.key`,
        /does not belong to network/,
      );
    });
    await t.step("isolation.key of the wrong length", async () => {
      const dir = await fresh("short-iso");
      await Deno.writeTextFile(`${dir}/isolation.key`, "00ff\n");
      await rejectsNaming(loadNodeIdentity(dir), `${dir}/isolation.key`, /32 bytes/);
    });
    await t.step("ca.pem of another network", async () => {
      const dir = await fresh("foreign-ca");
      await Deno.copyFile(`${b1.dir}/ca.pem`, `${dir}/ca.pem`);
      await rejectsNaming(loadNodeIdentity(dir), `${dir}/ca.pem`, /does not belong to network/);
    });
    await t.step("network.json with a networkId that is not the key's hash", async () => {
      const dir = await fresh("netid");
      const json = JSON.parse(await Deno.readTextFile(`${dir}/network.json`));
      json.networkId = b1.networkId;
      await Deno.writeTextFile(`${dir}/network.json`, JSON.stringify(json));
      await rejectsNaming(loadNodeIdentity(dir), `${dir}/network.json`, /not the hash/);
    });
    await t.step("network.json that is not JSON", async () => {
      const dir = await fresh("netjson");
      await Deno.writeTextFile(`${dir}/network.json`, "{");
      await rejectsNaming(loadNodeIdentity(dir), `${dir}/network.json`, /not valid JSON/);
    });
    await t.step("loadNetwork: network-key.pem of another network", async () => {
      const dir = `${root}/netA-copy`;
      await Deno.mkdir(dir);
      for await (const e of Deno.readDir(netA.dir)) {
        await Deno.copyFile(`${netA.dir}/${e.name}`, `${dir}/${e.name}`);
      }
      await loadNetwork(dir);
      await Deno.copyFile(`${root}/netB/network-key.pem`, `${dir}/network-key.pem`);
      await rejectsNaming(loadNetwork(dir), `${dir}/network-key.pem`, /does not match/);
      await Deno.copyFile(`${netA.dir}/network-key.pem`, `${dir}/network-key.pem`);
      await Deno.copyFile(`${root}/netB/ca-key.pem`, `${dir}/ca-key.pem`);
      await rejectsNaming(loadNetwork(dir), `${dir}/ca-key.pem`, /does not match/);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// TLS

interface Outcome {
  /** peerNodeId seen by the server for each connection that completed its handshake. */
  serverSaw: (string | null)[];
  serverErrors: Error[];
  clientSecure: boolean;
  clientSaw: string | null;
  clientData: string;
  clientError: Error | null;
}

/**
 * One connection from a client with `clientOpts` to a server of `server`. Resolves when the
 * client socket closes; the timeout is only a safety net (it fails the test).
 */
async function tryConnect(server: NodeIdentity, clientOpts: tls.ConnectionOptions) {
  const out: Outcome = {
    serverSaw: [],
    serverErrors: [],
    clientSecure: false,
    clientSaw: null,
    clientData: "",
    clientError: null,
  };
  const srv = tls.createServer(tlsOptions(server), (s) => {
    out.serverSaw.push(peerNodeId(s));
    s.on("error", () => {});
    s.end(`hello ${peerNodeId(s)}`);
  });
  srv.on("tlsClientError", (e) => out.serverErrors.push(e));
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as AddressInfo).port;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const c = tls.connect({ host: "127.0.0.1", port, ...clientOpts });
      timer = setTimeout(() => {
        c.destroy();
        reject(new Error("safety-net timeout: the connection neither completed nor failed"));
      }, 20_000);
      c.on("secureConnect", () => {
        out.clientSecure = true;
        out.clientSaw = peerNodeId(c);
      });
      c.on("data", (d) => out.clientData += String(d));
      c.on("end", () => c.end());
      c.on("error", (e) => out.clientError = e);
      c.on("close", () => resolve());
    });
  } finally {
    clearTimeout(timer);
    await new Promise<void>((r) => srv.close(() => r()));
  }
  return out;
}

Deno.test("mutual TLS between two nodes of the same network", async () => {
  await withTmp(async (root) => {
    const { a1, a2 } = await fixture(root);
    const id1 = await loadNodeIdentity(a1.dir);
    const id2 = await loadNodeIdentity(a2.dir);
    const out = await tryConnect(id1, { ...tlsOptions(id2, { expectPeer: id1.nodeId }) });
    assert.equal(out.clientError, null);
    assert.equal(out.clientSecure, true);
    assert.deepEqual(out.serverSaw, [id2.nodeId]);
    assert.equal(out.clientSaw, id1.nodeId);
    assert.equal(out.clientData, `hello ${id2.nodeId}`);
    assert.deepEqual(out.serverErrors, []);
  });
});

Deno.test("client refuses a server that is not the expected node", async () => {
  await withTmp(async (root) => {
    const { a1, a2 } = await fixture(root);
    const id1 = await loadNodeIdentity(a1.dir);
    const id2 = await loadNodeIdentity(a2.dir);
    const out = await tryConnect(id1, tlsOptions(id2, { expectPeer: id2.nodeId }));
    assert.match(String(out.clientError), new RegExp(`expected ${id2.nodeId}`));
    assert.equal(out.clientData, "");
  });
});

Deno.test("a client of another network fails the handshake", async () => {
  await withTmp(async (root) => {
    const { a1, b1 } = await fixture(root);
    const server = await loadNodeIdentity(a1.dir);
    const foreign = await loadNodeIdentity(b1.dir);

    // Plain foreign client: neither side trusts the other.
    const out = await tryConnect(server, tlsOptions(foreign));
    assert.deepEqual(out.serverSaw, [], "server's secureConnection must not fire");
    assert.ok(out.clientError, "client gets an error");
    assert.equal(out.clientData, "");

    // A foreign client that trusts our CA too: the server alone must reject it. With TLS 1.3
    // the client finishes its side of the handshake before the server checks the client
    // certificate; Deno's server then drops the connection (no alert), so the client sees
    // 'secureConnect' followed by end-of-stream, or an error, and never any data.
    const out2 = await tryConnect(server, {
      ...tlsOptions(foreign),
      ca: [foreign.caPem, server.caPem],
      checkServerIdentity: () => undefined,
    });
    assert.deepEqual(out2.serverSaw, [], "server's secureConnection must not fire");
    assert.equal(out2.clientData, "", "the rejected client never receives data");
  });
});

Deno.test("a client without a certificate is rejected", async () => {
  await withTmp(async (root) => {
    const { a1 } = await fixture(root);
    const server = await loadNodeIdentity(a1.dir);
    const out = await tryConnect(server, {
      ca: server.caPem,
      minVersion: "TLSv1.3",
      checkServerIdentity: () => undefined,
    });
    assert.deepEqual(out.serverSaw, []);
    assert.ok(out.clientError, "client gets an error");
    assert.equal(out.clientData, "");
  });
});

// ---------------------------------------------------------------------------------------------
// CLI

async function captured(fn: () => Promise<number>) {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await fn();
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("CLI: genesis and node-cert", async () => {
  await withTmp(async (root) => {
    const g = await captured(() => genesisCommand(["--out", `${root}/net`, "--name", "lab"]));
    assert.equal(g.code, 0, g.err);
    const net = await loadNetwork(`${root}/net`);
    assert.match(g.out, new RegExp(net.networkId));

    const again = await captured(() => genesisCommand(["--out", `${root}/net`]));
    assert.equal(again.code, 2);
    assert.match(again.err, /network\.json: already exists/);

    const n = await captured(() =>
      nodeCertCommand([
        "--network",
        `${root}/net`,
        "--out",
        `${root}/n1`,
        "--name",
        "n1",
        "--tier",
        "hypha",
        "--ip",
        "127.0.0.1",
        "--ip",
        "10.1.2.3",
        "--dns",
        "n1.lab",
      ])
    );
    assert.equal(n.code, 0, n.err);
    const id = await loadNodeIdentity(`${root}/n1`);
    assert.equal(id.tier, "hypha");
    assert.match(n.out, new RegExp(id.nodeId));

    const help = await captured(() => nodeCertCommand(["--help"]));
    assert.equal(help.code, 0);
    assert.match(help.out, /--network/);
    assert.equal((await captured(() => genesisCommand(["-h"]))).code, 0);

    const cases: [string[], RegExp][] = [
      [[], /--out/],
      [["--out"], /--out/],
      [["--out", `${root}/x`, "--bogus"], /--bogus/],
      [["--out", `${root}/x`, "extra"], /extra/],
    ];
    for (const [args, re] of cases) {
      const r = await captured(() => genesisCommand(args));
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.err, re);
    }
    const base = ["--network", `${root}/net`, "--out", `${root}/n2`];
    const nodeCases: [string[], RegExp][] = [
      [["--out", `${root}/n2`, "--name", "n2"], /--network/],
      [[...base], /--name/],
      [[...base, "--name", "n2", "--tier", "mushroom"], /--tier/],
      [[...base, "--name", "n2", "--ip", "300.1.1.1"], /--ip/],
      [[...base, "--name", "n2", "--dns", "a b"], /--dns/],
      [["--network", `${root}/nope`, "--out", `${root}/n2`, "--name", "n2"], /nope/],
    ];
    for (const [args, re] of nodeCases) {
      const r = await captured(() => nodeCertCommand(args));
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.err, re);
    }
  });
});
