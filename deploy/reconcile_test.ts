/**
 * The VMReplication reconcile step against three real node processes (node/testing.ts; the
 * built binary when MYCELIUM_BINARY is set): a resource creates the VM on the backups and then
 * the primary, a second pass changes nothing, the status turns Ready once replication runs,
 * condition transition times hold still while nothing changes, an invalid spec is refused
 * naming the field without a node call, and a killed backup makes the resource Degraded.
 */
import assert from "node:assert/strict";
import { nodeEnv, NodeProcess, until } from "../node/testing.ts";
import { startTestNodes } from "./testing.ts";
import {
  clusterNodeApi,
  type Condition,
  type NodeApi,
  reconcile,
  staticNodeApi,
  type VMReplication,
  type VMReplicationStatus,
} from "./reconcile.ts";

const BINARY = Deno.env.get("MYCELIUM_BINARY") || undefined;

/** The real NodeApi, recording each call (method, endpoint, path) in order. */
function recording(inner: NodeApi) {
  const calls: Array<{ method: string; endpoint: string; path: string }> = [];
  const api: NodeApi = {
    endpoint: (ref) => inner.endpoint(ref),
    request: (endpoint, method, path, body) => {
      calls.push({ method, endpoint, path });
      return inner.request(endpoint, method, path, body);
    },
  };
  return { api, calls };
}

const cond = (s: VMReplicationStatus, type: string): Condition => {
  const c = s.conditions.find((x) => x.type === type);
  assert.ok(c, `no ${type} condition in ${JSON.stringify(s)}`);
  return c;
};

const resource = (spec: unknown, status?: VMReplicationStatus, generation = 1): VMReplication => ({
  apiVersion: "mycelium.network/v1",
  kind: "VMReplication",
  metadata: { name: "web", namespace: "default", generation },
  spec,
  status,
});

Deno.test("reconcile: an invalid spec is refused naming the field, without a node call", async () => {
  const { api, calls } = recording(staticNodeApi(["127.0.0.1:9"]));
  const now = new Date("2030-01-01T00:00:00Z");
  const bad = await reconcile(
    resource({
      vmId: "web",
      primaryNode: "sclerotia-0",
      backupNodes: ["sclerotia-1"],
      replicationConfig: { profiles: { low: { curve: { curve: "linear", threshold: 1.5 } } } },
    }),
    api,
    now,
  );
  assert.deepEqual(bad.actions, []);
  assert.deepEqual(calls, []);
  const valid = cond(bad.status, "Valid");
  assert.equal(valid.status, "False");
  assert.equal(valid.reason, "InvalidSpec");
  assert.match(valid.message, /^spec\.replicationConfig\.profiles\.low\.curve\.threshold: /);
  assert.equal(valid.lastTransitionTime, "2030-01-01T00:00:00Z");
  assert.equal(cond(bad.status, "Ready").status, "False");
  assert.equal(bad.status.observedGeneration, 1);

  const missing = await reconcile(resource({ vmId: "web", primaryNode: "a" }), api, now);
  assert.match(cond(missing.status, "Valid").message, /^spec\.backupNodes: /);
  const twice = await reconcile(
    resource({ vmId: "web", primaryNode: "a", backupNodes: ["b", "a"] }),
    api,
    now,
  );
  assert.match(cond(twice.status, "Valid").message, /^spec\.backupNodes\[1\]: names a twice/);
  const unknown = await reconcile(
    resource({ vmId: "web", primaryNode: "a", backupNodes: ["b"], colour: "red" }),
    api,
    now,
  );
  assert.match(cond(unknown.status, "Valid").message, /^spec\.colour: unknown field/);
  assert.deepEqual(calls, []);
});

Deno.test("reconcile: in a cluster, nodes are reached through the pods' DNS names", async () => {
  const api = clusterNodeApi({
    namespace: "mycelium",
    service: "sclerotia",
    adminPort: 8080,
    seeds: ["sclerotia-0"],
    timeoutMs: 2000,
  });
  await assert.rejects(
    api.endpoint("sclerotia-1"),
    /no node answers as sclerotia-1 \(GET http:\/\/sclerotia-1\.sclerotia\.mycelium\.svc:8080\/status: /,
  );
  await assert.rejects(
    api.endpoint("0123456789abcdef0123456789abcdef"),
    /node 0123456789abcdef0123456789abcdef not found through GET http:\/\/sclerotia-0\.sclerotia\.mycelium\.svc:8080\/status/,
  );
});

Deno.test({
  name: `reconcile (${BINARY ? "binary" : "deno run"}): 3 real nodes: creates the VM backups ` +
    "first, is idempotent, turns Ready, keeps transition times, a killed backup is Degraded",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const nodes = await startTestNodes("mycelium-k8s-reconcile-");
    const { procs, ids, dataDirs, seed, env: extra } = nodes;
    try {
      const [a, b, c] = procs;
      const { api, calls } = recording(staticNodeApi(nodes.admins));
      // Pod names (the nodes' identity names) and a node id, mixed.
      const spec = { vmId: "vm-k8s", primaryNode: "a", backupNodes: [ids[1], "c"], memoryMiB: 8 };
      const t0 = Date.parse("2030-01-01T00:00:00Z");
      let status: VMReplicationStatus | undefined;

      await t.step(
        "the first pass creates the replicas: the backups, then the primary",
        async () => {
          const r = await reconcile(resource(spec), api, t0);
          status = r.status;
          assert.deepEqual(
            r.actions.map((x) => [x.node, x.role, x.outcome, x.error]),
            [
              [ids[1], "backup", "created", undefined],
              ["c", "backup", "created", undefined],
              ["a", "primary", "created", undefined],
            ],
          );
          const posts = calls.filter((x) => x.method === "POST");
          assert.equal(posts.length, 3);
          assert.equal(posts[2].endpoint, `http://${nodes.admins[0]}`, "the primary comes last");
          for (const [p, role] of [[a, "primary"], [b, "backup"], [c, "backup"]] as const) {
            const s = await p.json<{ role: string; primary: string; term: number }>(
              "/v1/ram/vms/vm-k8s",
            );
            assert.deepEqual([s.role, s.primary, s.term], [role, ids[0], 1], p.name);
          }
          assert.equal(cond(status, "Valid").status, "True");
          assert.equal(cond(status, "Degraded").status, "False");
        },
      );

      await t.step("a second pass is a no-op", async () => {
        const before = calls.length;
        const r = await reconcile(resource(spec, status), api, t0 + 1000);
        assert.deepEqual(r.actions, []);
        assert.deepEqual(calls.slice(before).filter((x) => x.method !== "GET"), []);
        status = r.status;
      });

      await t.step("the status turns Ready once replication runs", async () => {
        let n = 0;
        await until("Ready=True", 20_000, async () => {
          const r = await reconcile(resource(spec, status), api, t0 + 2000 + n++ * 1000);
          assert.deepEqual(r.actions, []);
          status = r.status;
          return cond(status, "Ready").status === "True";
        }).catch((e) => assert.fail(`${e.message}: ${JSON.stringify(status)}`));
        const s = status!;
        assert.equal(s.primary, "a");
        assert.equal(s.term, 1);
        assert.equal(typeof s.epoch, "number");
        assert.equal(typeof s.bufferLevel, "number");
        assert.equal(s.observedGeneration, 1);
        assert.equal(cond(s, "Ready").reason, "Replicating");
        assert.match(cond(s, "Ready").message, new RegExp(`replicates to ${ids[1]}, c$`));
        assert.equal(cond(s, "Degraded").status, "False");
        // Valid has been True since the first pass.
        assert.equal(cond(s, "Valid").lastTransitionTime, "2030-01-01T00:00:00Z");
      });

      await t.step("transition times hold still while the conditions do", async () => {
        const r = await reconcile(resource(spec, status, 2), api, t0 + 3_600_000);
        for (const type of ["Valid", "Ready", "Degraded"]) {
          const [x, y] = [cond(status!, type), cond(r.status, type)];
          assert.equal(y.status, x.status, type);
          assert.equal(y.lastTransitionTime, x.lastTransitionTime, type);
          assert.equal(y.observedGeneration, 2);
        }
        assert.equal(r.status.observedGeneration, 2);
      });

      await t.step("a spec naming one node twice (by name and by id) is invalid", async () => {
        const r = await reconcile(
          resource({ ...spec, backupNodes: [ids[1], ids[0]] }, status),
          api,
          t0 + 3_700_000,
        );
        assert.deepEqual(r.actions, []);
        const v = cond(r.status, "Valid");
        assert.equal(v.status, "False");
        assert.match(
          v.message,
          /^spec\.backupNodes\[1\]: is node [0-9a-f]{32}, the same node as spec\.primaryNode/,
        );
      });

      await t.step("a killed backup: Degraded, naming it; nothing is recreated", async () => {
        c.kill("SIGKILL");
        await c.exited;
        const tKill = t0 + 7_200_000;
        const r = await reconcile(resource(spec, status), api, tKill);
        assert.deepEqual(r.actions, []);
        const d = cond(r.status, "Degraded");
        assert.equal(d.status, "True");
        assert.equal(d.reason, "NodeUnreachable");
        assert.match(d.message, /^spec\.backupNodes\[1\] \(c\): /);
        assert.equal(d.lastTransitionTime, "2030-01-01T02:00:00Z");
        assert.equal(cond(r.status, "Valid").status, "True");
        assert.equal(cond(r.status, "Ready").status, "False");
        assert.equal(r.status.primary, "a", "the primary is still known");
        status = r.status;
      });

      // c comes back (same identity, new ports) without its replica.
      const c2 = new NodeProcess(
        "c",
        dataDirs[2],
        nodeEnv(dataDirs[2], [seed], extra),
        nodes.binary,
      );
      procs.push(c2);
      const c2addr = await c2.ready();
      const api2 = staticNodeApi([nodes.admins[0], nodes.admins[1], c2addr.admin]);

      await t.step("the restarted backup gets its replica again (awaiting a resync)", async () => {
        let n = 0;
        const created: string[] = [];
        const ready: string[] = [];
        await until("Ready=True again", 20_000, async () => {
          const r = await reconcile(resource(spec, status), api2, t0 + 8_000_000 + n++ * 1000);
          created.push(...r.actions.map((x) => `${x.node}:${x.role}:${x.outcome}:${x.error}`));
          status = r.status;
          ready.push(cond(status, "Ready").reason);
          return cond(status, "Ready").status === "True";
        }).catch((e) => assert.fail(`${e.message}: ${JSON.stringify(status)}`));
        assert.deepEqual(created, ["c:backup:created:undefined"]);
        assert.notEqual(ready[0], "Replicating", "not Ready while the new replica is empty");
        const sc = await c2.json<{ role: string; imageValid: boolean }>("/v1/ram/vms/vm-k8s");
        assert.deepEqual([sc.role, sc.imageValid], ["backup", true], "resynced");
        assert.equal(cond(status!, "Degraded").status, "False");
      });

      await t.step("after a failover the status follows the new primary", async () => {
        a.kill("SIGKILL");
        await a.exited;
        let n = 0;
        await until("a new primary", 20_000, async () => {
          const r = await reconcile(resource(spec, status), api2, t0 + 9_000_000 + n++ * 1000);
          assert.deepEqual(r.actions, [], "nothing is recreated");
          status = r.status;
          return status.primary !== "a" && status.primary !== undefined;
        }).catch((e) => assert.fail(`${e.message}: ${JSON.stringify(status)}`));
        assert.ok([ids[1], "c"].includes(status!.primary!), status!.primary);
        assert.ok(status!.term! > 1);
        const d = cond(status!, "Degraded");
        assert.equal(d.status, "True");
        assert.match(d.message, /^spec\.primaryNode \(a\): /);
      });
    } finally {
      await nodes.close();
    }
  },
});
