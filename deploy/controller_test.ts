/**
 * The controller loop: against a stand-in for the Kubernetes API server (testing.ts: HTTPS,
 * client-certificate and token auth, the status subresource, watch) and three real node
 * processes, `deno task k8s controller --once` lists the resources of its namespace,
 * reconciles them and writes their status with merge patches; later passes write nothing
 * once the status holds still; a watch event for a spec change is acted on without waiting
 * for the resync; bad credentials and no credentials fail with a message naming why.
 * And, when KUBECONFIG points at a reachable cluster, the same against the real thing
 * (otherwise that test is registered as ignored, its name saying so and why).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import YAML from "yaml";
import { until } from "../node/testing.ts";
import { Controller, jsonLogger } from "./controller.ts";
import { GROUP, PLURAL, VERSION, vmReplicationCrd } from "./crd.ts";
import { KubeClient, parseKubeconfig, resolveKubeConfig } from "./kube.ts";
import { staticNodeApi, type VMReplication } from "./reconcile.ts";
import { FakeKubeApi, makeTestPki, startTestNodes } from "./testing.ts";

const CLI = new URL("./cli.ts", import.meta.url).pathname;
const b64 = (s: string) => btoa(s);

/**
 * Runs `deno task k8s controller ARGS` (deploy/cli.ts) with exactly `env` (plus PATH etc.), or
 * with this process's environment too when `inherit` (a real cluster's exec plugin may need it).
 */
async function controllerCli(args: string[], env: Record<string, string>, inherit = false) {
  const base: Record<string, string> = inherit ? Deno.env.toObject() : {};
  for (const k of ["PATH", "DENO_DIR", "TMPDIR", "LANG"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) base[k] = v;
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "controller", ...args],
    env: { NO_COLOR: "1", ...base, ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  // JSON lines (the help text is not).
  const logs = stdout.split("\n").filter((l) => l.startsWith("{")).map((l) =>
    JSON.parse(l) as Record<string, unknown>
  );
  return { code: out.code, stdout, logs, stderr: new TextDecoder().decode(out.stderr) };
}

const cond = (cr: VMReplication | undefined, type: string) =>
  cr?.status?.conditions?.find((c) => c.type === type);

Deno.test({
  name: "controller: --once against an API server over mutual TLS and 3 real nodes; no-op " +
    "passes write nothing; a watched spec change is acted on; bad or no credentials fail clearly",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const pki = await makeTestPki();
    const api = await new FakeKubeApi(pki).start();
    const nodes = await startTestNodes("mycelium-k8s-controller-");
    const dir = await Deno.makeTempDir({ prefix: "mycelium-k8s-kubeconfig-" });
    try {
      const kubeconfig = (user: Record<string, unknown>) => ({
        apiVersion: "v1",
        kind: "Config",
        "current-context": "test",
        contexts: [{
          name: "test",
          context: { cluster: "fake", user: "me", namespace: "default" },
        }],
        clusters: [{
          name: "fake",
          cluster: { server: api.url, "certificate-authority-data": b64(pki.ca) },
        }],
        users: [{ name: "me", user }],
      });
      const certFile = join(dir, "cert.yaml");
      await Deno.writeTextFile(
        certFile,
        YAML.stringify(kubeconfig({
          "client-certificate-data": b64(pki.clientCert),
          "client-key-data": b64(pki.clientKey),
        })),
      );
      const spec = (vmId: string) => ({
        vmId,
        primaryNode: "a",
        backupNodes: ["b", nodes.ids[2]],
        memoryMiB: 4,
      });
      api.create({ metadata: { name: "web", namespace: "default" }, spec: spec("vm-web") });
      api.create({
        metadata: { name: "bad", namespace: "default" },
        spec: { vmId: "vm-bad", primaryNode: "a" },
      });
      api.create({ metadata: { name: "elsewhere", namespace: "other" }, spec: spec("vm-other") });
      const endpoints = nodes.admins.join(",");

      await t.step("--once: lists its namespace, reconciles, patches the status", async () => {
        const r = await controllerCli(["--once", "--node-endpoints", endpoints], {
          KUBECONFIG: certFile,
        });
        assert.equal(r.code, 0, r.stderr);
        const started = r.logs.find((l) => l.event === "controller_started")!;
        assert.match(String(started.source), /^kubeconfig .*cert\.yaml \(context test\)$/);
        assert.equal(started.namespace, "default");
        assert.deepEqual(
          r.logs.filter((l) => l.event === "node_action").map((l) => [l.name, l.node, l.role]),
          [["web", "b", "backup"], ["web", nodes.ids[2], "backup"], ["web", "a", "primary"]],
        );
        assert.deepEqual(
          r.logs.filter((l) => l.event === "status_updated").map((l) => l.name).sort(),
          ["bad", "web"],
        );
        const lines = r.stdout.split("\n").filter(Boolean);
        assert.equal(r.logs.length, lines.length, "stdout is JSON lines only");
        for (const l of r.logs) assert.ok(typeof l.ts === "string" && typeof l.level === "string");
        const patches = api.requests.filter((x) => x.method === "PATCH");
        assert.deepEqual(patches.map((x) => x.path).sort(), [
          `/apis/${GROUP}/${VERSION}/namespaces/default/${PLURAL}/bad/status`,
          `/apis/${GROUP}/${VERSION}/namespaces/default/${PLURAL}/web/status`,
        ]);
        for (const p of patches) {
          assert.equal(p.contentType, "application/merge-patch+json");
          assert.equal(p.auth, "cert:admin", "the client certificate authenticates");
          assert.deepEqual(Object.keys(p.body as object), ["status"]);
        }
        const web = api.get("default", "web");
        assert.equal(cond(web, "Valid")?.status, "True");
        assert.equal(cond(web, "Degraded")?.status, "False");
        assert.equal(web?.status?.observedGeneration, 1);
        const bad = api.get("default", "bad");
        assert.equal(cond(bad, "Valid")?.status, "False");
        assert.equal(cond(bad, "Valid")?.reason, "InvalidSpec");
        assert.match(cond(bad, "Valid")!.message, /^spec\.backupNodes: /);
        assert.equal(api.get("other", "elsewhere")?.status, undefined, "not its namespace");
        const vm = await nodes.procs[0].json<{ role: string }>("/v1/ram/vms/vm-web");
        assert.equal(vm.role, "primary");
      });

      const token = parseKubeconfig([{
        path: "token.yaml",
        text: YAML.stringify(kubeconfig({ token: api.token })),
      }]);
      const lines: string[] = [];
      const controller = new Controller({
        kube: new KubeClient(token),
        namespace: null,
        nodes: () => staticNodeApi(nodes.admins),
        log: jsonLogger("debug", (l) => lines.push(l)),
      });

      // No guest writes to these VMs: once Ready, their status (epoch included) holds still.
      await t.step("every namespace, a token: Ready, then passes that write nothing", async () => {
        await until("web and elsewhere Ready", 20_000, async () => {
          await controller.pass();
          return ["default/web", "other/elsewhere"].every((k) => {
            const [ns, name] = k.split("/");
            return cond(api.get(ns, name), "Ready")?.status === "True";
          });
        }).catch((e) => assert.fail(`${e.message}: ${JSON.stringify(api.get("default", "web"))}`));
        const web = api.get("default", "web")!;
        assert.equal(web.status?.primary, "a");
        assert.equal(web.status?.term, 1);
        const patches = api.requests.filter((x) => x.method === "PATCH").length;
        const r = await controller.pass();
        assert.deepEqual([r.listed, r.patched, r.unchanged, r.failed], [3, 0, 3, 0]);
        assert.equal(api.requests.filter((x) => x.method === "PATCH").length, patches);
        assert.ok(api.requests.filter((x) => x.auth === "token").length > 0);
        assert.deepEqual(api.get("default", "web"), web, "nothing moved, not even a timestamp");
      });

      await t.step(
        "watch: a spec change is reconciled without waiting for the resync",
        async () => {
          const stop = new AbortController();
          const running = controller.run({ resyncMs: 600_000, signal: stop.signal, watch: true });
          try {
            await until(
              "the watch",
              10_000,
              () => Promise.resolve(api.requests.some((x) => x.path.includes("watch=1"))),
            );
            api.updateSpec("default", "bad", spec("vm-fixed"));
            await until("bad: generation 2 observed, Valid", 10_000, () => {
              const bad = api.get("default", "bad");
              return Promise.resolve(
                bad?.status?.observedGeneration === 2 && cond(bad, "Valid")?.status === "True",
              );
            });
            assert.ok(lines.some((l) => l.includes('"event":"watch_event"')));
          } finally {
            stop.abort();
            await running;
          }
          const vm = await nodes.procs[1].json<{ role: string }>("/v1/ram/vms/vm-fixed");
          assert.equal(vm.role, "backup");
        },
      );

      await t.step("a refused token: --once exits 1 and says why", async () => {
        const file = join(dir, "wrong.yaml");
        await Deno.writeTextFile(file, YAML.stringify(kubeconfig({ token: "wrong" })));
        const r = await controllerCli(["--once", "--node-endpoints", endpoints], {
          KUBECONFIG: file,
        });
        assert.equal(r.code, 1);
        const failed = r.logs.find((l) => l.event === "list_failed");
        assert.match(String(failed?.error), /401 Unauthorized/);
      });

      await t.step("no KUBECONFIG and not in a cluster: exits 2 naming both", async () => {
        const r = await controllerCli(["--once"], { HOME: dir });
        assert.equal(r.code, 2);
        assert.match(r.stderr, /KUBECONFIG is not set/);
        assert.match(r.stderr, /not a pod \(KUBERNETES_SERVICE_HOST is not set\)/);
        const help = await controllerCli(["--help"], {});
        assert.equal(help.code, 0);
        assert.match(help.stdout, /--resync S/);
      });
    } finally {
      await api.close();
      await nodes.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// ---- a real cluster ----

async function probeCluster(): Promise<{ kube: KubeClient } | { why: string }> {
  const path = Deno.env.get("KUBECONFIG");
  if (!path) return { why: "KUBECONFIG is not set" };
  try {
    const kube = new KubeClient(resolveKubeConfig({ env: Deno.env.toObject() }), 5000);
    await kube.json("GET", "/version");
    return { kube };
  } catch (e) {
    return { why: `the cluster of KUBECONFIG=${path} is not reachable (${(e as Error).message})` };
  }
}

const cluster = await probeCluster();

Deno.test({
  name: "kube" in cluster
    ? "real cluster (KUBECONFIG): the CRD applies, a VMReplication gets its status from " +
      "`controller --once` (nodes: 3 local processes)"
    : `real-cluster e2e: SKIPPED, not run: ${cluster.why}`,
  ignore: !("kube" in cluster),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const kube = (cluster as { kube: KubeClient }).kube;
    // The CRD: created, or updated in place (never deleted: it would take resources with it).
    const crd = vmReplicationCrd().toJSON() as {
      metadata: { name: string; resourceVersion?: string };
    };
    const crdPath = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    const made = await kube.request("POST", crdPath, crd);
    if (made.status === 409) {
      const cur = await kube.json<{ metadata: { resourceVersion: string } }>(
        "GET",
        `${crdPath}/${crd.metadata.name}`,
      );
      crd.metadata.resourceVersion = cur.metadata.resourceVersion;
      await kube.json("PUT", `${crdPath}/${crd.metadata.name}`, crd);
    } else assert.equal(made.status, 201, JSON.stringify(made.body));
    await until("the CRD is established", 30_000, async () => {
      const c = await kube.json<
        { status?: { conditions?: Array<{ type: string; status: string }> } }
      >(
        "GET",
        `${crdPath}/${crd.metadata.name}`,
      );
      return !!c.status?.conditions?.some((x) => x.type === "Established" && x.status === "True");
    });
    const ns = `mycelium-e2e-${crypto.randomUUID().slice(0, 8)}`;
    await kube.json("POST", "/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: ns },
    });
    const nodes = await startTestNodes("mycelium-k8s-e2e-");
    try {
      const base = `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`;
      await until("the resource is accepted", 30_000, async () => {
        const r = await kube.request("POST", base, {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: "VMReplication",
          metadata: { name: "e2e" },
          spec: { vmId: "vm-e2e", primaryNode: "a", backupNodes: ["b", "c"], memoryMiB: 4 },
        });
        return r.status === 201 || r.status === 409;
      });
      const r = await controllerCli(
        ["--once", "--namespace", ns, "--node-endpoints", nodes.admins.join(",")],
        {},
        true,
      );
      assert.equal(r.code, 0, `${r.stderr}\n${JSON.stringify(r.logs)}`);
      const cr = await kube.json<VMReplication>("GET", `${base}/e2e`);
      assert.equal(cond(cr, "Valid")?.status, "True", JSON.stringify(cr.status));
      assert.equal(cond(cr, "Degraded")?.status, "False", JSON.stringify(cr.status));
      assert.equal(cr.status?.observedGeneration, cr.metadata.generation);
      assert.equal(
        (await nodes.procs[0].json<{ role: string }>("/v1/ram/vms/vm-e2e")).role,
        "primary",
      );
    } finally {
      await nodes.close();
      await kube.request("DELETE", `/api/v1/namespaces/${ns}`);
    }
  },
});
