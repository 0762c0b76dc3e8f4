import assert from "node:assert/strict";
import fc from "fast-check";
import type { NodeId } from "../ids.ts";
import {
  type AbsenceState,
  EMPTY_ABSENCE_BOOK,
  excusePartition,
  keptPenalties,
  penalizeAbsences,
} from "./absence.ts";
import { inMinority, type PartitionRecord } from "./split_brain.ts";
import { testNode } from "./testing.ts";

const four = [1, 2, 3, 4].map(testNode);

function start(trust: number, nodes: readonly NodeId[] = four): AbsenceState {
  return { trust: new Map(nodes.map((n) => [n, trust])), book: EMPTY_ABSENCE_BOOK };
}

Deno.test("absence: a 3|1 split penalises the lone voter, the record refunds it exactly", () => {
  let s = start(0.9);
  // Rounds 5..7 commit on the 3-side; node 4 (alone, below quorum(4) = 3) is absent.
  for (const r of [5, 6, 7]) s = penalizeAbsences(s, r, four, four.slice(0, 3));
  assert.equal(s.trust.get(four[3]), 0.84);
  assert.equal(s.book.applied, 3);
  // Round 8 after the heal: node 1 crashed (on the quorum side), also absent.
  s = penalizeAbsences(s, 8, four, four.slice(1));
  assert.equal(s.trust.get(four[0]), 0.88);
  const unchanged = penalizeAbsences(s, 9, four, four);
  assert.equal(unchanged, s, "nobody absent: the same state");
  assert.throws(() => penalizeAbsences(s, 8, four, []), /already penalised/);

  const record: PartitionRecord = {
    fromRound: 5,
    toRound: 8,
    groups: [four.slice(0, 3), [four[3]]],
  };
  const off = excusePartition(s, record, new Set(), false);
  assert.equal(off.trust, s.trust, "the knob: recorded, nothing excused");
  assert.equal(off.book.partitions.length, 1);
  assert.equal(keptPenalties(off.book).length, 4);

  const e = excusePartition(s, record);
  assert.equal(e.trust.get(four[3]), 0.9, "the minority node's three penalties are refunded");
  assert.equal(e.trust.get(four[0]), 0.88, "a crash on the quorum side stays penalised");
  assert.deepEqual(keptPenalties(e.book), [{ node: four[0], round: 8, bp: 200 }]);
  assert.deepEqual([e.book.applied, e.book.excused, e.book.refundedBp], [4, 3, 600]);
  // The same record again excuses nothing more.
  const again = excusePartition(e, record);
  assert.equal(again.trust, e.trust);
  assert.equal(again.book.excused, 3);
});

Deno.test("absence: the refund is what was taken (clamp at 0), excluded nodes get none", () => {
  let s: AbsenceState = {
    trust: new Map([[four[3], 0.03], [four[2], 0.9]]),
    book: EMPTY_ABSENCE_BOOK,
  };
  for (const r of [1, 2, 3]) s = penalizeAbsences(s, r, [four[2], four[3]], []);
  assert.equal(s.trust.get(four[3]), 0);
  assert.deepEqual(
    keptPenalties(s.book).filter((k) => k.node === four[3]).map((k) => k.bp),
    [200, 100, 0],
  );
  const record = { fromRound: 1, toRound: 4, groups: [[four[2]], [four[3]]] };
  // Voters of those rounds are nodes 3 and 4: each alone is below quorum(2) = 2.
  const e = excusePartition(s, record, new Set([four[2]]));
  assert.equal(e.trust.get(four[3]), 0.03);
  assert.equal(e.trust.get(four[2]), 0.84, "excluded: no refund");
  assert.equal(keptPenalties(e.book).length, 0, "its entries are dropped all the same");
});

// ---- properties ----

const N = 5;
const ids = Array.from({ length: N }, (_, i) => testNode(i + 1));

const roundArb = fc.record({
  present: fc.array(fc.boolean(), { minLength: N, maxLength: N }),
});
const recordArb = fc.record({
  fromRound: fc.integer({ min: 1, max: 12 }),
  len: fc.integer({ min: 0, max: 12 }),
  side: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: N, maxLength: N }),
}).map(({ fromRound, len, side }): PartitionRecord => ({
  fromRound,
  toRound: fromRound + len,
  groups: [0, 1, 2].map((g) => ids.filter((_, i) => side[i] === g)),
}));

function run(
  trust0: readonly number[],
  rounds: ReadonlyArray<{ present: readonly boolean[] }>,
  skip: (node: NodeId, round: number) => boolean = () => false,
): AbsenceState {
  let s: AbsenceState = {
    trust: new Map(ids.map((id, i) => [id, trust0[i]])),
    book: EMPTY_ABSENCE_BOOK,
  };
  rounds.forEach((r, k) => {
    const round = k + 1;
    const present = ids.filter((id, i) => r.present[i] || skip(id, round));
    s = penalizeAbsences(s, round, ids, present);
  });
  return s;
}

Deno.test("property: trust stays in [0, 1] through any penalties and refunds", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 10_000 }).map((b) => b / 10_000), {
        minLength: N,
        maxLength: N,
      }),
      fc.array(roundArb, { maxLength: 14 }),
      fc.array(recordArb, { maxLength: 3 }),
      (trust0, rounds, records) => {
        let s = run(trust0, rounds);
        for (const rec of records) s = excusePartition(s, rec);
        for (const t of s.trust.values()) assert.ok(t >= 0 && t <= 1, `trust ${t}`);
        assert.equal(s.book.applied, s.book.excused + keptPenalties(s.book).length);
      },
    ),
  );
});

/** N starting scores between `minBp` and `maxBp` basis points. */
const startingTrust = (minBp: number, maxBp: number) =>
  fc.array(fc.integer({ min: minBp, max: maxBp }).map((b) => b / 10_000), {
    minLength: N,
    maxLength: N,
  });

/** Whether a record excuses (node, round): the node was on a minority side then. */
const excusedBy = (record: PartitionRecord) => (node: NodeId, round: number) =>
  inMinority(node, round, [record], () => ids);

Deno.test("property: penalise then excuse = never penalising the excused rounds (no clamp)", () => {
  fc.assert(
    fc.property(
      // At most 14 rounds of -0.02 from >= 0.3: the clamp at 0 is never hit.
      startingTrust(3_000, 10_000),
      fc.array(roundArb, { maxLength: 14 }),
      recordArb,
      (trust0, rounds, record) => {
        const excused = excusedBy(record);
        const a = excusePartition(run(trust0, rounds), record);
        const b = run(trust0, rounds, excused);
        assert.deepEqual(a.trust, b.trust);
        assert.deepEqual(keptPenalties(a.book), keptPenalties(b.book));
        // Nothing kept is excusable by the record (what spores.absence-excused checks).
        for (const k of keptPenalties(a.book)) assert.ok(!excused(k.node, k.round));
      },
    ),
  );
});

Deno.test("property: with the clamp, the refund never leaves a node below never-penalised", () => {
  fc.assert(
    fc.property(
      startingTrust(0, 1_000),
      fc.array(roundArb, { maxLength: 14 }),
      recordArb,
      (trust0, rounds, record) => {
        const excused = excusedBy(record);
        const a = excusePartition(run(trust0, rounds), record);
        const b = run(trust0, rounds, excused);
        for (const id of ids) assert.ok(a.trust.get(id)! >= b.trust.get(id)!);
        // Excusing twice changes nothing more.
        assert.deepEqual(excusePartition(a, record).trust, a.trust);
      },
    ),
  );
});
