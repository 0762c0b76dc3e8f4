import assert from "node:assert/strict";
import fc from "fast-check";
import type { NodeId } from "../ids.ts";
import { testNode } from "../spores/testing.ts";
import { type Tier } from "../spores/types.ts";
import { eligibleFor, type StorageClass } from "./classes.ts";
import {
  failureDomain,
  hash01,
  hrwScore,
  murmur3,
  placeReplicas,
  rankNodes,
  type StorageNode,
} from "./placement.ts";

const nodeArb = (i: number): fc.Arbitrary<StorageNode> =>
  fc.record({
    tier: fc.constantFrom<Tier>("sclerotia", "sclerotia", "rhizomorph", "hypha"),
    trust: fc.constantFrom(0.3, 0.6, 0.8, 0.95),
    weight: fc.integer({ min: 1, max: 4 }),
    domain: fc.integer({ min: 0, max: 4 }).map((d) => `d${d}`),
  }).map((n) => ({ id: testNode(i), ...n }));

const clusterArb: fc.Arbitrary<StorageNode[]> = fc.integer({ min: 0, max: 12 }).chain((n) =>
  fc.tuple(...Array.from({ length: n }, (_, i) => nodeArb(i + 1)))
);
const classArb = fc.constantFrom<StorageClass>("Critical", "Sensitive", "Standard", "Public");
const keyArb = fc.string({ minLength: 1, maxLength: 12 });
const rfArb = fc.integer({ min: 1, max: 5 });

function distinctEligibleDomains(nodes: readonly StorageNode[], cls: StorageClass): number {
  return new Set(nodes.filter((n) => eligibleFor(cls, n)).map((n) => n.domain)).size;
}

Deno.test("placement: min(rf, eligible domains) nodes, all eligible, on distinct domains", () => {
  fc.assert(
    fc.property(keyArb, classArb, rfArb, clusterArb, (key, cls, rf, nodes) => {
      const ids = placeReplicas(key, cls, nodes, { replicationFactor: rf });
      const byId = new Map(nodes.map((n) => [n.id, n]));
      assert.equal(ids.length, Math.min(rf, distinctEligibleDomains(nodes, cls)));
      assert.equal(new Set(ids.map((id) => byId.get(id)!.domain)).size, ids.length);
      for (const id of ids) assert.ok(eligibleFor(cls, byId.get(id)!));
      // In descending score order, the first being the top-scoring eligible node.
      const scores = ids.map((id) => hrwScore(key, id, byId.get(id)!.weight));
      assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
      const top = rankNodes(key, nodes.filter((n) => eligibleFor(cls, n)))[0];
      if (top) assert.equal(ids[0], top.node.id);
    }),
    { numRuns: 500 },
  );
});

Deno.test("placement is deterministic and independent of the node list's order", () => {
  fc.assert(
    fc.property(
      keyArb,
      classArb,
      clusterArb.chain((ns) =>
        fc.tuple(fc.constant(ns), fc.shuffledSubarray(ns, { minLength: ns.length }))
      ),
      (key, cls, [nodes, shuffled]) => {
        assert.deepEqual(placeReplicas(key, cls, shuffled), placeReplicas(key, cls, nodes));
      },
    ),
  );
});

Deno.test("minimal disruption: removing a node not chosen changes nothing", () => {
  fc.assert(
    fc.property(keyArb, classArb, rfArb, clusterArb, fc.nat(), (key, cls, rf, nodes, pick) => {
      const before = placeReplicas(key, cls, nodes, { replicationFactor: rf });
      const others = nodes.filter((n) => !before.includes(n.id));
      fc.pre(others.length > 0);
      const gone = others[pick % others.length].id;
      const after = placeReplicas(key, cls, nodes.filter((n) => n.id !== gone), {
        replicationFactor: rf,
      });
      assert.deepEqual(after, before);
    }),
    { numRuns: 500 },
  );
});

Deno.test("minimal disruption: removing a chosen node replaces only that replica", () => {
  fc.assert(
    fc.property(keyArb, classArb, rfArb, clusterArb, fc.nat(), (key, cls, rf, nodes, pick) => {
      const before = placeReplicas(key, cls, nodes, { replicationFactor: rf });
      fc.pre(before.length > 0);
      const gone = before[pick % before.length];
      const after = placeReplicas(key, cls, nodes.filter((n) => n.id !== gone), {
        replicationFactor: rf,
      });
      for (const id of before) if (id !== gone) assert.ok(after.includes(id), "survivors stay");
      assert.ok(after.filter((id) => !before.includes(id)).length <= 1, "at most one newcomer");
    }),
    { numRuns: 500 },
  );
});

Deno.test("minimal disruption: adding a node changes at most one replica", () => {
  fc.assert(
    fc.property(keyArb, classArb, rfArb, clusterArb, nodeArb(99), (key, cls, rf, nodes, extra) => {
      const before = placeReplicas(key, cls, nodes, { replicationFactor: rf });
      const after = placeReplicas(key, cls, [...nodes, extra], { replicationFactor: rf });
      const added = after.filter((id) => !before.includes(id));
      const removed = before.filter((id) => !after.includes(id));
      assert.ok(added.length <= 1 && removed.length <= 1);
      if (added.length === 1) assert.equal(added[0], extra.id);
    }),
    { numRuns: 500 },
  );
});

Deno.test("weights bias selection in proportion (fixed keys, 20,000 placements)", () => {
  const nodes: StorageNode[] = [1, 2, 3, 4].map((w) => ({
    id: testNode(w),
    tier: "sclerotia",
    trust: 1,
    weight: w,
    domain: `d${w}`,
  }));
  const first = new Map<string, number>();
  const member = new Map<string, number>();
  const N = 20_000;
  for (let i = 0; i < N; i++) {
    const ids = placeReplicas(`chunk-${i}`, "Standard", nodes, { replicationFactor: 2 });
    first.set(ids[0], (first.get(ids[0]) ?? 0) + 1);
    for (const id of ids) member.set(id, (member.get(id) ?? 0) + 1);
  }
  for (const n of nodes) {
    const share = (first.get(n.id) ?? 0) / N;
    assert.ok(
      Math.abs(share - n.weight / 10) < 0.015,
      `weight ${n.weight}: first-replica share ${share}`,
    );
  }
  const shares = nodes.map((n) => member.get(n.id) ?? 0);
  assert.deepEqual(shares, [...shares].sort((a, b) => a - b), "heavier nodes hold more replicas");
  // Equal weights share evenly.
  const even = nodes.map((n) => ({ ...n, weight: 1 }));
  const counts = new Map<string, number>();
  for (let i = 0; i < N; i++) {
    const [id] = placeReplicas(`chunk-${i}`, "Standard", even, { replicationFactor: 1 });
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  for (const n of even) assert.ok(Math.abs((counts.get(n.id) ?? 0) / N - 0.25) < 0.015);
});

Deno.test("hash01 is in (0, 1) and roughly uniform; murmur3 agrees with the reference", () => {
  // MurmurHash3_x86_32 reference values for the empty input (this variant reads UTF-16 code
  // units in pairs, so longer strings differ from the byte-wise reference by design).
  assert.equal(murmur3("", 0), 0);
  assert.equal(murmur3("", 1), 0x514e28b7);
  let sum = 0;
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 10_000; i++) {
    const u = hash01(`k${i}`, "node");
    assert.ok(u > 0 && u < 1);
    sum += u;
    buckets[Math.floor(u * 10)]++;
  }
  assert.ok(Math.abs(sum / 10_000 - 0.5) < 0.01);
  for (const b of buckets) assert.ok(Math.abs(b - 1000) < 150, `bucket ${b}`);
});

Deno.test("keep: existing eligible replicas keep their slots, one per domain, at most rf", () => {
  const nodes: StorageNode[] = [1, 2, 3, 4, 5, 6].map((i) => ({
    id: testNode(i),
    tier: "sclerotia",
    trust: 1,
    weight: 1,
    domain: `d${Math.min(i, 4)}`, // 4, 5 and 6 share d4
  }));
  const domainOf = (id: string) => nodes.find((n) => n.id === id)!.domain;
  const free = placeReplicas("k", "Standard", nodes);
  // Two nodes HRW would not pick, on distinct domains, that already hold the chunk.
  const keep: NodeId[] = [];
  for (const n of nodes) {
    if (keep.length < 2 && !free.includes(n.id) && !keep.some((k) => domainOf(k) === n.domain)) {
      keep.push(n.id);
    }
  }
  assert.equal(keep.length, 2);
  const kept = placeReplicas("k", "Standard", nodes, { keep });
  for (const id of keep) assert.ok(kept.includes(id), "kept");
  assert.equal(kept.length, 3);
  assert.equal(new Set(kept.map(domainOf)).size, 3);
  // Two holders in one domain: only the better-ranked keeps its slot.
  const d4 = [testNode(4), testNode(5), testNode(6)];
  const ranked = rankNodes("k", nodes).map((r) => r.node.id).filter((id) => d4.includes(id));
  const two = placeReplicas("k", "Standard", nodes, { keep: d4 });
  assert.deepEqual(two.filter((id) => d4.includes(id)), [ranked[0]]);
  // More holders than rf: the best rf stay.
  const all = nodes.map((n) => n.id);
  assert.deepEqual(placeReplicas("k", "Standard", nodes, { keep: all }), free);
  // An ineligible node in `keep` is ignored.
  const low = nodes.map((n) => (n.id === keep[0] ? { ...n, trust: 0.2 } : n));
  assert.ok(!placeReplicas("k", "Standard", low, { keep }).includes(keep[0]));
});

Deno.test("failure domains by level; bad weights and rf are refused", () => {
  const labels = { region: "eu", zone: "a", host: "h1" };
  assert.equal(failureDomain(labels, "region"), "eu");
  assert.equal(failureDomain(labels, "zone"), "eu/a");
  assert.equal(failureDomain(labels, "host"), "eu/a/h1");
  const n: StorageNode = { id: testNode(1), tier: "sclerotia", trust: 1, weight: 0, domain: "d" };
  assert.throws(() => placeReplicas("k", "Public", [n]), RangeError);
  assert.throws(() => placeReplicas("k", "Public", [{ ...n, weight: NaN }]), RangeError);
  assert.throws(() => placeReplicas("k", "Public", [], { replicationFactor: 0 }), RangeError);
  assert.deepEqual(placeReplicas("k", "Public", [{ ...n, weight: 1 }, { ...n, weight: 1 }]), [
    n.id,
  ]);
});
