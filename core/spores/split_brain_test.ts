import assert from "node:assert/strict";
import fc from "fast-check";
import type { NodeId } from "../ids.ts";
import {
  type Absence,
  compareSingletonClaims,
  cpPlaneMode,
  excuseAbsences,
  genesisEpoch,
  healEpochs,
  inMinority,
  nextEpoch,
  type PartitionRecord,
  resolveSingletons,
  sideHasQuorum,
  type SingletonClaim,
} from "./split_brain.ts";
import { TEST_NETWORK, testNode } from "./testing.ts";

const six = [1, 2, 3, 4, 5, 6].map(testNode);

Deno.test("CP plane: a side commits only with a quorum of the certified voters", () => {
  // 3|3 of 6: quorum(6) = 5, neither half may commit; both serve reads.
  assert.equal(cpPlaneMode(six.slice(0, 3), six), "read-only");
  assert.equal(cpPlaneMode(six.slice(3), six), "read-only");
  assert.equal(cpPlaneMode(six.slice(0, 5), six), "read-write");
  // 3 voters (crash-only mode): a majority of 2.
  assert.equal(cpPlaneMode(six.slice(0, 2), six.slice(0, 3)), "read-write");
  // Non-voters and duplicates on a side do not count.
  assert.ok(!sideHasQuorum([six[0], six[0], six[0], testNode(99), testNode(98)], six.slice(0, 4)));
  assert.ok(!sideHasQuorum(six, []));
});

const claimArb: fc.Arbitrary<SingletonClaim> = fc.record({
  service: fc.constantFrom("dns", "sched"),
  node: fc.integer({ min: 1, max: 4 }).map(testNode),
  processingVolume: fc.integer({ min: 0, max: 3 }),
  lastWrite: fc.record({ ms: fc.nat(3), c: fc.nat(1) }),
}).map((c) => ({ ...c, lastWrite: { ...c.lastWrite } })); // plain prototypes for deepEqual

Deno.test("singleton order is total: reflexive, antisymmetric, transitive", () => {
  fc.assert(
    fc.property(claimArb, claimArb, claimArb, (a, b, c) => {
      assert.equal(compareSingletonClaims(a, a), 0);
      assert.equal(
        Math.sign(compareSingletonClaims(a, b)) + Math.sign(compareSingletonClaims(b, a)),
        0,
      );
      assert.equal(compareSingletonClaims(a, b) === 0, JSON.stringify(a) === JSON.stringify(b));
      if (compareSingletonClaims(a, b) > 0 && compareSingletonClaims(b, c) > 0) {
        assert.ok(compareSingletonClaims(a, c) > 0);
      }
    }),
    { numRuns: 1000 },
  );
});

Deno.test("singleton resolution: one winner per service, the greatest, in any input order", () => {
  fc.assert(
    fc.property(
      fc.array(claimArb, { maxLength: 10 }).chain((cs) =>
        fc.tuple(fc.constant(cs), fc.shuffledSubarray(cs, { minLength: cs.length }))
      ),
      ([claims, shuffled]) => {
        const r = resolveSingletons(claims);
        assert.deepEqual(resolveSingletons(shuffled), r);
        for (const res of r) {
          const mine = claims.filter((c) => c.service === res.service);
          for (const c of mine) assert.ok(compareSingletonClaims(res.winner, c) >= 0);
          assert.ok(res.losers.every((l) => compareSingletonClaims(l, res.winner) < 0));
        }
        assert.deepEqual(
          r.map((x) => x.service),
          [...new Set(claims.map((c) => c.service))].sort(),
        );
      },
    ),
  );
});

Deno.test("singleton resolution keys: processing volume, then last write, then id", () => {
  const c = (node: number, vol: number, ms: number): SingletonClaim => ({
    service: "s",
    node: testNode(node),
    processingVolume: vol,
    lastWrite: { ms, c: 0 },
  });
  assert.equal(resolveSingletons([c(1, 5, 1), c(2, 4, 9)])[0].winner.node, testNode(1));
  assert.equal(resolveSingletons([c(1, 5, 1), c(2, 5, 9)])[0].winner.node, testNode(2));
  assert.equal(resolveSingletons([c(1, 5, 9), c(2, 5, 9)])[0].winner.node, testNode(2));
  assert.throws(() => resolveSingletons([c(1, NaN, 1)]), RangeError);
  assert.throws(() => resolveSingletons([c(1, -1, 1)]), RangeError);
});

Deno.test("healing epoch chains: a prefix is not a fork; a manual override forks and is flagged", () => {
  const g = genesisEpoch(TEST_NETWORK);
  const e1 = nextEpoch(g);
  const e2 = nextEpoch(e1);
  assert.deepEqual(healEpochs([g, e1], [g, e1, e2]), { chain: [g, e1, e2], fork: null });
  assert.deepEqual(healEpochs([g, e1, e2], [g, e1, e2]).fork, null);

  const forced = nextEpoch(e1, { by: "operator", reason: "minority must write", at: 5 });
  assert.notEqual(forced.id, e2.id, "a fork epoch has its own id");
  const quorumSide = [g, e1, e2, nextEpoch(e2)];
  const minoritySide = [g, e1, forced];
  const h = healEpochs(minoritySide, quorumSide);
  assert.ok(h.fork, "flagged");
  assert.equal(h.fork!.ancestor, e1.id);
  assert.deepEqual(h.fork!.overrides, [forced]);
  assert.equal(h.fork!.kept, "b");
  assert.equal(h.chain, quorumSide, "the side without an override is kept");
  // Symmetric: both sides choose the same chain.
  const h2 = healEpochs(quorumSide, minoritySide);
  assert.equal(h2.chain, quorumSide);
  assert.equal(h2.fork!.kept, "a");
});

Deno.test("a divergence no override explains is flagged with no overrides (a safety bug)", () => {
  const g = genesisEpoch(TEST_NETWORK);
  const a = [g, nextEpoch(g)];
  const b = [g, nextEpoch(g, { by: "x", reason: "y", at: 1 })];
  const c = [g, { ...nextEpoch(g), id: "f".repeat(64) }];
  const h = healEpochs(a, c);
  assert.ok(h.fork && h.fork.overrides.length === 0);
  assert.deepEqual(healEpochs(c, a).chain, h.chain, "still symmetric");
  assert.equal(healEpochs(a, b).chain, a);
  const other = healEpochs([genesisEpoch(TEST_NETWORK)], [genesisEpoch("b".repeat(32))]);
  assert.equal(other.fork!.ancestor, null);
});

Deno.test("heal is symmetric for any two chains grown from one genesis", () => {
  const g = genesisEpoch(TEST_NETWORK);
  const chainArb = fc.array(fc.option(fc.nat(2), { nil: null }), { maxLength: 5 }).map((steps) => {
    const chain = [g];
    for (const s of steps) {
      chain.push(
        nextEpoch(chain.at(-1)!, s === null ? null : { by: "op", reason: `r${s}`, at: s }),
      );
    }
    return chain;
  });
  fc.assert(
    fc.property(chainArb, chainArb, (a, b) => {
      const ab = healEpochs(a, b);
      const ba = healEpochs(b, a);
      assert.deepEqual(ab.chain.map((e) => e.id), ba.chain.map((e) => e.id));
      assert.equal(ab.fork === null, ba.fork === null);
      if (ab.fork) assert.ok(ab.fork.a.length > 0 && ab.fork.b.length > 0);
    }),
  );
});

Deno.test("absences in a minority partition are excused; others are penalised", () => {
  const seven = [1, 2, 3, 4, 5, 6, 7].map(testNode);
  const membersAt = () => seven;
  const split: PartitionRecord = {
    fromRound: 10,
    toRound: 20,
    groups: [seven.slice(0, 5), seven.slice(5)],
  };
  const absences: Absence[] = [
    { round: 12, node: seven[6] }, // minority side during the split: excused
    { round: 12, node: seven[0] }, // majority side (5 of 7 = quorum): penalised
    { round: 20, node: seven[6] }, // after the heal: penalised
    { round: 9, node: seven[6] }, // before: penalised
  ];
  const { penalized, excused } = excuseAbsences(absences, [split], membersAt);
  assert.deepEqual(excused, [absences[0]]);
  assert.deepEqual(penalized, absences.slice(1));
  // 3|3 of 6: neither half has a quorum, both are excused.
  const half: PartitionRecord = {
    fromRound: 0,
    toRound: 5,
    groups: [six.slice(0, 3), six.slice(3)],
  };
  assert.ok(six.every((n) => inMinority(n, 2, [half], () => six)));
  // A node in no group of the record was cut off alone.
  const lone: PartitionRecord = { fromRound: 0, toRound: 5, groups: [six.slice(0, 5)] };
  assert.ok(inMinority(six[5], 1, [lone], () => six));
  assert.ok(!inMinority(six[0], 1, [lone], () => six));
});

Deno.test("excuseAbsences partitions its input and excuses exactly the minority rounds", () => {
  const pool = [1, 2, 3, 4, 5].map(testNode);
  const recordArb: fc.Arbitrary<PartitionRecord> = fc.record({
    from: fc.nat(10),
    len: fc.nat(5),
    cut: fc.integer({ min: 1, max: 4 }),
  }).map((r) => ({
    fromRound: r.from,
    toRound: r.from + r.len,
    groups: [pool.slice(0, r.cut), pool.slice(r.cut)],
  }));
  const absenceArb: fc.Arbitrary<Absence> = fc.record({
    round: fc.nat(15),
    node: fc.constantFrom<NodeId>(...pool),
  });
  fc.assert(
    fc.property(fc.array(recordArb, { maxLength: 3 }), fc.array(absenceArb, { maxLength: 20 }), (
      records,
      absences,
    ) => {
      const { penalized, excused } = excuseAbsences(absences, records, () => pool);
      assert.equal(penalized.length + excused.length, absences.length);
      for (const a of excused) {
        const r = records.find((p) =>
          a.round >= p.fromRound && a.round < p.toRound &&
          !sideHasQuorum(p.groups.find((g) => g.includes(a.node))!, pool)
        );
        assert.ok(r, "every excuse has a minority record behind it");
      }
      for (const a of penalized) {
        for (const p of records) {
          if (a.round < p.fromRound || a.round >= p.toRound) continue;
          assert.ok(sideHasQuorum(p.groups.find((g) => g.includes(a.node))!, pool));
        }
      }
    }),
  );
});
