/** The real cluster's consensus checks that do not need processes. */
import assert from "node:assert/strict";
import { parseScenario } from "../sim/scenario.ts";
import { ClusterConsensus, trustBoundsFromMetrics } from "./consensus_load.ts";

Deno.test("trust bounds from /metrics: holds in [0, 1], fires outside it or with no scores", () => {
  const good = 'mycelium_trust_score{node="aa"} 0.9\nmycelium_trust_score{node="bb"} 0\n';
  assert.equal(trustBoundsFromMetrics([{ name: "v0", body: good }]).ok, true);
  const bad = trustBoundsFromMetrics([
    { name: "v0", body: good },
    { name: "v1", body: 'mycelium_trust_score{node="cc"} 1.2\n' },
  ]);
  assert.equal(bad.ok, false);
  assert.match(bad.detail, /v1 holds cc at 1\.2/);
  assert.equal(trustBoundsFromMetrics([{ name: "v0", body: "" }]).ok, false);
  assert.equal(
    trustBoundsFromMetrics([{ name: "v0", body: 'mycelium_trust_score{node="x"} NaN\n' }]).ok,
    false,
  );
});

Deno.test("validity on a real cluster: an operation no client sent is not 'submitted'", () => {
  const s = parseScenario({
    name: "t",
    duration: "10s",
    nodes: [{ group: "voter", count: 4 }],
    consensus: {},
  });
  const nodes = [0, 1, 2, 3].map((i) => ({
    index: i,
    name: `voter-${i}`,
    group: "voter",
    indexInGroup: i,
    tier: "sclerotia" as const,
    region: "default",
    dataDir: "/nonexistent",
    proc: null,
    up: false,
  }));
  const cc = new ClusterConsensus(s, nodes, () => 0);
  assert.deepEqual(cc.voterIndexes, [0, 1, 2, 3]);
  const is = cc.observer.isSubmitted;
  assert.equal(
    is({ id: "n/1", client: "n", op: { kind: "put", key: "k0", value: "forged" } }),
    false,
  );
  assert.equal(is({ id: "n/2", client: "n", op: { kind: "get", key: "k0" } }), false);
  assert.equal(
    is({ id: "n/3", client: "n", op: { kind: "config.set", key: "a", value: "b" } }),
    false,
  );
});
