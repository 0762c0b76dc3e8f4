/**
 * Kubeconfig and in-cluster credentials: token, token-file, client-certificate (inline and
 * by file, relative to the kubeconfig), exec-plugin and basic users; KUBECONFIG lists merged
 * the kubectl way; every missing or bad field named with its file; the in-cluster service
 * account; and what is said when there are no credentials at all.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import YAML from "yaml";
import {
  inClusterConfig,
  KubeClient,
  KubeConfigError,
  loadKubeconfig,
  parseKubeconfig,
  resolveKubeConfig,
} from "./kube.ts";

const PEM = (what: string) =>
  `-----BEGIN ${what}-----\nMIIBfake${what.replace(/ /g, "")}\n-----END ${what}-----\n`;
const b64 = (s: string) => Buffer.from(s).toString("base64");

function config(user: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: "v1",
    kind: "Config",
    "current-context": "dev",
    contexts: [{ name: "dev", context: { cluster: "c1", user: "u1", namespace: "team" } }],
    clusters: [{
      name: "c1",
      cluster: {
        server: "https://10.0.0.1:6443",
        "certificate-authority-data": b64(PEM("CERTIFICATE")),
      },
    }],
    users: [{ name: "u1", user }],
    ...extra,
  };
}

const parse = (doc: unknown, path = "/home/me/.kube/config", o = {}) =>
  parseKubeconfig([{ path, text: YAML.stringify(doc) }], o);

const rejects = (doc: unknown, re: RegExp, o = {}) =>
  assert.throws(() => parse(doc, "/home/me/.kube/config", o), (e: Error) => {
    assert.ok(e instanceof KubeConfigError, e.message);
    assert.match(e.message, re);
    return true;
  });

Deno.test("kubeconfig: a token user", () => {
  const c = parse(config({ token: "abc.def" }));
  assert.equal(c.server, "https://10.0.0.1:6443");
  assert.equal(c.ca, PEM("CERTIFICATE"));
  assert.equal(c.token, "abc.def");
  assert.equal(c.cert, undefined);
  assert.equal(c.namespace, "team");
  assert.equal(c.source, "kubeconfig /home/me/.kube/config (context dev)");
});

Deno.test("kubeconfig: a client-certificate user, inline and by (relative) file", () => {
  const inline = parse(config({
    "client-certificate-data": b64(PEM("CERTIFICATE")),
    "client-key-data": b64(PEM("EC PRIVATE KEY")),
  }));
  assert.equal(inline.cert, PEM("CERTIFICATE"));
  assert.equal(inline.key, PEM("EC PRIVATE KEY"));
  assert.equal(inline.token, undefined);

  const read: string[] = [];
  const files = parse(
    config({ "client-certificate": "certs/me.crt", "client-key": "/abs/me.key" }, {
      clusters: [{
        name: "c1",
        cluster: { server: "https://k:6443", "certificate-authority": "ca.crt" },
      }],
    }),
    "/home/me/.kube/config",
    { readFile: (p: string) => (read.push(p), `pem of ${p}`) },
  );
  assert.deepEqual(read.sort(), [
    "/abs/me.key",
    "/home/me/.kube/ca.crt",
    "/home/me/.kube/certs/me.crt",
  ]);
  assert.equal(files.cert, "pem of /home/me/.kube/certs/me.crt");
  assert.equal(files.ca, "pem of /home/me/.kube/ca.crt");
});

Deno.test("kubeconfig: missing or bad fields are named, with the file", () => {
  rejects(
    config({ "client-certificate-data": b64(PEM("CERTIFICATE")) }),
    /^\/home\/me\/\.kube\/config: users\[name=u1\]\.user\.client-key-data: missing/,
  );
  rejects(
    config({ "client-key-data": b64(PEM("EC PRIVATE KEY")) }),
    /users\[name=u1\]\.user\.client-certificate-data: missing/,
  );
  rejects(config({}), /users\[name=u1\]\.user: no credentials \(expected token, tokenFile/);
  rejects(
    config({ "client-certificate-data": "bm90IGEgcGVt", "client-key-data": "eA==" }),
    /client-certificate-data: not base64 of a PEM block/,
  );
  rejects(config({ "auth-provider": { name: "gcp" } }), /user\.auth-provider: legacy/);
  rejects(config({ username: "me" }), /user\.password: missing/);
  rejects({ ...config({ token: "t" }), "current-context": undefined }, /current-context: not set/);
  rejects(config({ token: "t" }), /context "prod" is not defined \(contexts: dev\)/, {
    context: "prod",
  });
  rejects(
    config({ token: "t" }, { clusters: [{ name: "c1", cluster: {} }] }),
    /clusters\[name=c1\]\.cluster\.server: missing/,
  );
  rejects(
    config({ token: "t" }, { clusters: [{ name: "c1", cluster: { server: "ftp://x" } }] }),
    /cluster\.server: expected https:\/\/ or http:\/\//,
  );
  rejects(
    config({ token: "t" }, { clusters: [] }),
    /contexts\[name=dev\]\.context\.cluster: names "c1", which is not defined/,
  );
  rejects(config({ token: "t" }, { users: [] }), /context\.user: names "u1", which is not defined/);
  rejects(
    config({ token: "t" }, {
      clusters: [{
        name: "c1",
        cluster: { server: "https://k", "certificate-authority": "nope.crt" },
      }],
    }),
    /cluster\.certificate-authority: cannot read nope\.crt/,
    {
      readFile: () => {
        throw new Error("ENOENT");
      },
    },
  );
  assert.throws(
    () => parseKubeconfig([{ path: "/k", text: "- just\n- a list" }]),
    { message: /^\/k: expected a kubeconfig mapping$/ },
  );
});

Deno.test("kubeconfig: a KUBECONFIG list merges, first definition wins; missing files skipped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mycelium-kubeconfig-" });
  try {
    const first = join(dir, "a.yaml"), second = join(dir, "b.yaml");
    await Deno.writeTextFile(
      first,
      YAML.stringify({ users: [{ name: "u1", user: { token: "first" } }] }),
    );
    await Deno.writeTextFile(second, YAML.stringify(config({ token: "second" })));
    const c = loadKubeconfig([first, join(dir, "missing.yaml"), second]);
    assert.equal(c.token, "first");
    assert.equal(c.server, "https://10.0.0.1:6443");
    assert.throws(() => loadKubeconfig([join(dir, "missing.yaml")]), /cannot read/);
    // tokenFile is relative to its kubeconfig and read per request.
    await Deno.writeTextFile(second, YAML.stringify(config({ tokenFile: "tok" })));
    assert.equal(loadKubeconfig([second]).tokenFile, join(dir, "tok"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kubeconfig: an exec credential plugin's token is used (and its failure named)", async () => {
  const cred = JSON.stringify({
    apiVersion: "client.authentication.k8s.io/v1",
    kind: "ExecCredential",
    status: { token: "from-plugin", expirationTimestamp: "2999-01-01T00:00:00Z" },
  });
  const c = parse(config({ exec: { command: "sh", args: ["-c", `printf '%s' '${cred}'`] } }));
  assert.equal(c.exec?.command, "sh");
  // Against a throwaway plain-HTTP server, to see the header the plugin's token makes.
  let seen = "";
  const ac = new AbortController();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: ac.signal, onListen() {} },
    (r) => {
      seen = r.headers.get("authorization") ?? "";
      return Response.json({ kind: "APIVersions" });
    },
  );
  try {
    const client = new KubeClient({ ...c, server: `http://127.0.0.1:${server.addr.port}` });
    await client.json("GET", "/api");
    assert.equal(seen, "Bearer from-plugin");
    const failing = new KubeClient({
      ...c,
      server: `http://127.0.0.1:${server.addr.port}`,
      exec: { command: "sh", args: ["-c", "echo no login >&2; exit 3"], env: {}, dir: "/" },
    });
    await assert.rejects(
      failing.json("GET", "/api"),
      /exec credential plugin sh failed \(3\): no login/,
    );
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("in-cluster: the service account's token, CA and namespace; what is missing is named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mycelium-sa-" });
  try {
    const env = { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" };
    assert.throws(() => inClusterConfig(env, dir), new RegExp(`${dir}/token does not exist`));
    await Deno.writeTextFile(join(dir, "token"), "sa-token\n");
    assert.throws(() => inClusterConfig(env, dir), new RegExp(`cannot read ${dir}/ca.crt`));
    await Deno.writeTextFile(join(dir, "ca.crt"), PEM("CERTIFICATE"));
    await Deno.writeTextFile(join(dir, "namespace"), "mycelium");
    const c = inClusterConfig(env, dir);
    assert.equal(c.server, "https://10.96.0.1:443");
    assert.equal(c.tokenFile, join(dir, "token"));
    assert.equal(c.namespace, "mycelium");
    assert.equal(c.source, "in-cluster");
    assert.throws(
      () => inClusterConfig({ KUBERNETES_SERVICE_HOST: "10.96.0.1" }, dir),
      /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT/,
    );
    // The order: KUBECONFIG first, then the pod's service account.
    assert.equal(resolveKubeConfig({ env, serviceAccountDir: dir }).source, "in-cluster");
    assert.throws(
      () =>
        resolveKubeConfig({
          env: { ...env, KUBECONFIG: join(dir, "nope") },
          serviceAccountDir: dir,
        }),
      /kubeconfig .*nope: cannot read/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("no credentials at all: the error names KUBECONFIG, the pod variables and ~/.kube/config", () => {
  assert.throws(
    () => resolveKubeConfig({ env: { HOME: "/nonexistent-home" } }),
    (e: Error) => {
      assert.ok(e instanceof KubeConfigError);
      assert.match(e.message, /KUBECONFIG is not set/);
      assert.match(e.message, /KUBERNETES_SERVICE_HOST is not set/);
      assert.match(e.message, /\/nonexistent-home\/\.kube\/config does not exist/);
      return true;
    },
  );
});
