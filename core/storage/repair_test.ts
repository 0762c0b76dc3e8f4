import assert from "node:assert/strict";
import fc from "fast-check";
import type { NodeId } from "../ids.ts";
import { testNode } from "../spores/testing.ts";
import type { Tier } from "../spores/types.ts";
import { eligibleFor, type StorageClass } from "./classes.ts";
import { placeReplicas, type StorageNode } from "./placement.ts";
import { applyRepair, type ChunkPlacement, planRepair } from "./repair.ts";

function node(i: number, over: Partial<StorageNode> = {}): StorageNode {
  return { id: testNode(i), tier: "sclerotia", trust: 1, weight: 1, domain: `d${i}`, ...over };
}

Deno.test("a dead replica holder is replaced; the live replicas stay where they are", () => {
  const nodes = [1, 2, 3, 4, 5].map((i) => node(i));
  const replicas = placeReplicas("c1", "Standard", nodes);
  const dead = replicas[1];
  const live = new Set(nodes.map((n) => n.id).filter((id) => id !== dead));
  const plan = planRepair([{ chunk: "c1", class: "Standard", replicas }], nodes, live);
  assert.equal(plan.copies, 1);
  const [r] = plan.repairs;
  assert.equal(r.copies.length, 1);
  assert.ok(!replicas.includes(r.copies[0].to), "to a new node");
  assert.ok(
    replicas.includes(r.copies[0].from) && r.copies[0].from !== dead,
    "from a live replica",
  );
  for (const id of replicas) if (id !== dead) assert.ok(r.target.includes(id), "kept");
  const after = applyRepair([{ chunk: "c1", class: "Standard", replicas }], plan);
  const liveAfter = after[0].replicas.filter((id) => live.has(id));
  assert.equal(liveAfter.length, 3);
  // Repaired chunks need nothing more.
  const again = planRepair(after, nodes, live);
  assert.deepEqual([again.copies, again.repairs.length], [0, 0]);
});

Deno.test("chunks with no live replica are reported lost; a replica that lost eligibility is released", () => {
  const nodes = [1, 2, 3, 4].map((i) => node(i));
  const live = new Set([testNode(3), testNode(4), testNode(1), testNode(2)]);
  const lost = planRepair(
    [{ chunk: "gone", class: "Public", replicas: [testNode(8), testNode(9)] }],
    nodes,
    live,
  );
  assert.deepEqual(lost.lost, ["gone"]);
  // Node 1 fell below Critical's trust: its copy moves to an eligible node, then is released.
  const lowered = nodes.map((n) => (n.id === testNode(1) ? { ...n, trust: 0.8 } : n));
  const p: ChunkPlacement = {
    chunk: "c",
    class: "Critical",
    replicas: [testNode(1), testNode(2), testNode(3)],
  };
  const plan = planRepair([p], lowered, live);
  assert.deepEqual(plan.repairs[0].copies.map((c) => c.to), [testNode(4)]);
  assert.deepEqual(plan.repairs[0].release, [testNode(1)]);
  const [after] = applyRepair([p], plan);
  assert.deepEqual(after.replicas, [testNode(2), testNode(3), testNode(4)]);
  for (const id of after.replicas) {
    assert.ok(eligibleFor("Critical", lowered.find((n) => n.id === id)!));
  }
});

Deno.test("work per step is bounded and goes to the chunks most at risk first", () => {
  const nodes = [1, 2, 3, 4, 5, 6].map((i) => node(i));
  const live = new Set([3, 4, 5, 6].map(testNode));
  const placements: ChunkPlacement[] = [
    { chunk: "a", class: "Public", replicas: [testNode(1), testNode(3), testNode(4)] }, // 1 missing
    { chunk: "b", class: "Public", replicas: [testNode(1), testNode(2), testNode(5)] }, // 2 missing
  ];
  const plan = planRepair(placements, nodes, live, { maxCopies: 2 });
  assert.equal(plan.copies, 2);
  assert.deepEqual(plan.repairs.map((r) => [r.chunk, r.copies.length]), [["b", 2]]);
  assert.deepEqual(plan.deferred, ["a"]);
  const next = planRepair(applyRepair(placements, plan), nodes, live, { maxCopies: 2 });
  assert.deepEqual(next.repairs.map((r) => [r.chunk, r.copies.length]), [["a", 1]]);
  assert.deepEqual(next.deferred, []);
});

const clusterArb: fc.Arbitrary<StorageNode[]> = fc.integer({ min: 1, max: 10 }).chain((n) =>
  fc.tuple(
    ...Array.from({ length: n }, (_, i) =>
      fc.record({
        tier: fc.constantFrom<Tier>("sclerotia", "sclerotia", "rhizomorph", "hypha"),
        trust: fc.constantFrom(0.4, 0.75, 0.95),
        weight: fc.integer({ min: 1, max: 3 }),
        domain: fc.integer({ min: 0, max: 4 }).map((d) => `d${d}`),
      }).map((r) => ({ id: testNode(i + 1), ...r }))),
  )
);

Deno.test("repeated bounded steps restore min(rf, eligible domains) replicas on distinct domains", () => {
  fc.assert(
    fc.property(
      clusterArb,
      fc.array(
        fc.record({
          cls: fc.constantFrom<StorageClass>("Critical", "Sensitive", "Standard", "Public"),
          replicas: fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 4 }),
        }),
        { maxLength: 8 },
      ),
      fc.uniqueArray(fc.integer({ min: 1, max: 10 }), { maxLength: 5 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 4 }),
      (nodes, chunks, deadIdx, rf, maxCopies) => {
        const dead = new Set(deadIdx.map(testNode));
        const live = new Set(nodes.map((n) => n.id).filter((id) => !dead.has(id)));
        const byId = new Map(nodes.map((n) => [n.id, n]));
        let placements: ChunkPlacement[] = chunks.map((c, i) => ({
          chunk: `chunk-${i}`,
          class: c.cls,
          replicas: c.replicas.map(testNode),
        }));
        const initial = placements;
        let steps = 0;
        for (;;) {
          const plan = planRepair(placements, nodes, live, { replicationFactor: rf, maxCopies });
          assert.ok(plan.copies <= maxCopies, "bounded work");
          if (plan.repairs.length === 0) break;
          placements = applyRepair(placements, plan);
          assert.ok(++steps <= 50, "converges");
        }
        placements.forEach((p, i) => {
          const liveHolders = p.replicas.filter((id) => live.has(id));
          const original = initial[i].replicas.filter((id) => live.has(id));
          if (original.length === 0) return; // lost: nothing to copy from
          const liveEligible = nodes.filter((n) => live.has(n.id) && eligibleFor(p.class, n));
          const want = Math.min(rf, new Set(liveEligible.map((n) => n.domain)).size);
          assert.equal(liveHolders.length, want, `${p.chunk}: ${want} live replicas`);
          assert.equal(new Set(liveHolders.map((id) => byId.get(id)!.domain)).size, want);
          for (const id of liveHolders) assert.ok(eligibleFor(p.class, byId.get(id)!));
          // Live eligible holders on distinct domains (within rf) were never moved.
          const keepable = original.filter((id) => eligibleFor(p.class, byId.get(id)!));
          const domains = new Set(keepable.map((id) => byId.get(id)!.domain));
          if (domains.size === keepable.length && keepable.length <= rf) {
            for (const id of keepable) assert.ok(liveHolders.includes(id as NodeId), "kept");
          }
        });
      },
    ),
    { numRuns: 300 },
  );
});
