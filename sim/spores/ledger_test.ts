import assert from "node:assert/strict";
import fc from "fast-check";
import { testNode } from "../../core/spores/testing.ts";
import type { Tier } from "../../core/spores/types.ts";
import { PrimaryLedger, votersOf } from "./ledger.ts";

const NET = "a".repeat(32);

Deno.test("votersOf: exactly the Sclerotia members with trust >= 0.7 that are not excluded", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          tier: fc.constantFrom<Tier>("sclerotia", "rhizomorph", "hypha"),
          trust: fc.constantFrom(0.3, 0.69, 0.7, 0.9),
          excluded: fc.boolean(),
        }),
        { maxLength: 12 },
      ),
      (nodes) => {
        const ids = nodes.map((_, i) => testNode(i + 1));
        const v = {
          network: NET,
          height: 1,
          certified: true,
          members: new Map(ids.map((id, i) => [id, nodes[i].tier])),
          trust: new Map(ids.map((id, i) => [id, nodes[i].trust])),
          excluded: new Set(ids.filter((_, i) => nodes[i].excluded)),
          config: new Map(),
        };
        const expected = ids.filter((_, i) =>
          nodes[i].tier === "sclerotia" && nodes[i].trust >= 0.7 && !nodes[i].excluded
        );
        assert.deepEqual(votersOf(v), expected.sort());
      },
    ),
  );
});

Deno.test("the ledger applies operations into certified views and records every block", () => {
  const g = [1, 2, 3, 4].map((i) => ({ id: testNode(i), tier: "sclerotia" as Tier, trust: 0.9 }));
  const l = new PrimaryLedger(NET, g);
  const genesis = l.newest;
  assert.equal(genesis.height, 1);
  assert.ok(l.isCertified(genesis));
  const join = l.submit(
    { kind: "join", node: testNode(9), tier: "rhizomorph", trust: 0.5 },
    0,
    10,
  )!;
  assert.equal(
    l.submit({ kind: "join", node: testNode(9), tier: "rhizomorph", trust: 0.5 }, 1, 11),
    null,
    "one pending join per node",
  );
  const excl = l.submit({ kind: "exclude", node: testNode(4) }, -1, 12)!;
  let committed = 0;
  l.submit({ kind: "config", key: "k", value: "v" }, 0, 13, () => committed++);
  const { view, block } = l.commit(genesis, [...l.pending], 500, g.map((x) => x.id), true);
  assert.equal(view.height, 2);
  assert.equal(view.members.get(testNode(9)), "rhizomorph");
  assert.ok(view.excluded.has(testNode(4)));
  assert.equal(view.trust.get(testNode(4)), 0);
  assert.equal(view.config.get("k"), "v");
  assert.equal(committed, 1);
  assert.deepEqual([join.height, excl.height], [2, 2]);
  assert.equal(l.pending.length, 0);
  assert.equal(block.voters, 4);
  assert.deepEqual(votersOf(view), [1, 2, 3].map(testNode));
  assert.equal(l.viewAt(2), view);
  // A copy is not certified, but stands for the view of its height.
  const copy = { ...view, certified: false };
  assert.ok(!l.isCertified(copy));
  assert.equal(l.truthFor(copy), view);
  // A second block at the same height (split brain) is recorded as a fork.
  assert.deepEqual(l.forks, []);
  l.commit(genesis, [], 600, [testNode(1)], false);
  assert.deepEqual(l.forks, [2]);
  assert.equal(l.viewAt(2), view, "the first block of a height stays the reference");
});

Deno.test("the ledger penalises absent voters per block and a partition record excuses them", () => {
  const ids = [1, 2, 3, 4].map(testNode);
  const l = new PrimaryLedger(
    NET,
    ids.map((id) => ({ id, tier: "sclerotia" as Tier, trust: 0.9 })),
  );
  let v = l.newest;
  // Heights 2..4: node 4 is on the other side of a 3|1 split; height 3 also misses node 1.
  for (const side of [ids.slice(0, 3), ids.slice(1, 3), ids.slice(0, 3)]) {
    l.submit({ kind: "config", key: "k", value: `${v.height}` }, -1, 0);
    v = l.commit(v, [...l.pending], 0, side, side.length >= 3).view;
  }
  assert.deepEqual(l.blocks.map((b) => b.absent.length), [1, 0, 1], "no quorum: no penalty");
  assert.equal(v.trust.get(ids[3]), 0.86);
  assert.equal(v.trust.get(ids[0]), 0.9);
  const record = { fromRound: 2, toRound: 5, groups: [ids.slice(0, 3), [ids[3]]] };
  l.submit({ kind: "partition", record }, -1, 0);
  const healed = l.commit(v, [...l.pending], 0, ids, true).view;
  assert.equal(healed.trust.get(ids[3]), 0.9, "refunded exactly");
  assert.equal(l.absenceOf(healed).excused, 2);
  assert.equal(l.absenceOf(v).excused, 0, "the earlier view's book is unchanged");
  assert.deepEqual(l.chainOf(healed).map((b) => b.height), [2, 3, 4, 5]);
});
