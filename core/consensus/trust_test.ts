import assert from "node:assert/strict";
import fc from "fast-check";
import { asNodeId, type NodeId } from "../ids.ts";
import {
  accessLevel,
  canRunCritical,
  canVote,
  roundsToDropBelow,
  roundsToReach,
  step,
  TRUST,
  TrustTable,
  type TrustVerdict,
} from "./trust.ts";

const node = (i: number): NodeId => asNodeId(i.toString(16).padStart(32, "0"));
const A = node(1);
const B = node(2);

type Action = { node: number; act: TrustVerdict | "slash" | "genesis" };
const action: fc.Arbitrary<Action> = fc.record({
  node: fc.integer({ min: 0, max: 5 }),
  act: fc.constantFrom<Action["act"]>("correct", "wrong", "absent", "neutral", "slash", "genesis"),
});

function run(actions: readonly Action[]): TrustTable {
  const t = new TrustTable();
  for (const a of actions) {
    const n = node(a.node);
    if (a.act === "slash") t.slash(n);
    else if (a.act === "genesis") t.setGenesis([n]);
    else t.applyDelta(n, a.act);
  }
  return t;
}

Deno.test("TRUST constants are the DESIGN.md numbers and deeply frozen", () => {
  assert.equal(TRUST.START, 0.5);
  assert.equal(TRUST.GENESIS, 0.9);
  assert.deepEqual({ ...TRUST.DELTA }, { correct: 0.01, wrong: -0.05, absent: -0.02 });
  assert.deepEqual({ ...TRUST.THRESHOLD }, { VOTE: 0.7, CRITICAL: 0.5 });
  assert.deepEqual({ ...TRUST.ACCESS }, {
    Full: 0.9,
    Standard: 0.7,
    Limited: 0.5,
    ReadOnly: 0.3,
    Restricted: 0.1,
  });
  assert.ok(Object.isFrozen(TRUST) && Object.isFrozen(TRUST.DELTA));
  assert.ok(Object.isFrozen(TRUST.THRESHOLD) && Object.isFrozen(TRUST.ACCESS));
  assert.throws(() => {
    (TRUST.DELTA as { correct: number }).correct = 1;
  }, TypeError);
});

Deno.test("unknown nodes start at 0.5, genesis nodes at 0.9", () => {
  const t = new TrustTable();
  assert.equal(t.get(A), 0.5);
  t.setGenesis([A]);
  assert.equal(t.get(A), 0.9);
  assert.equal(t.get(B), 0.5);
});

Deno.test("deltas: +0.01 correct, -0.05 wrong, -0.02 absent, neutral unchanged; slash gives 0", () => {
  const t = new TrustTable();
  assert.equal(t.applyDelta(A, "correct"), 0.51);
  assert.equal(t.applyDelta(A, "wrong"), 0.46);
  assert.equal(t.applyDelta(A, "absent"), 0.44);
  assert.equal(t.applyDelta(A, "neutral"), 0.44);
  assert.equal(t.slash(A), 0);
  assert.equal(t.get(A), 0);
  assert.throws(() => t.applyDelta(A, "bogus" as TrustVerdict), TypeError);
});

Deno.test("scores clamp at 0 and 1", () => {
  const t = new TrustTable();
  t.setGenesis([A]);
  for (let i = 0; i < 20; i++) t.applyDelta(A, "correct");
  assert.equal(t.get(A), 1);
  for (let i = 0; i < 30; i++) t.applyDelta(B, "wrong");
  assert.equal(t.get(B), 0);
});

Deno.test("no float drift: 40 correct outcomes from 0.5 land exactly on 0.9", () => {
  const t = new TrustTable();
  for (let i = 0; i < 40; i++) t.applyDelta(A, "correct");
  assert.equal(t.get(A), 0.9);
  assert.equal(t.accessLevel(A), "Full");
  // The naive float sum drifts, which is what the basis-point representation avoids.
  let naive = 0.5;
  for (let i = 0; i < 40; i++) naive += 0.01;
  assert.notEqual(naive, 0.9);
});

Deno.test("derived check: an honest node reaches 0.9 from 0.5 in 40 rounds", () => {
  assert.equal(roundsToReach(TRUST.START, TRUST.ACCESS.Full, "correct"), 40);
  // The check can fail: one round fewer is not enough.
  let s: number = TRUST.START;
  for (let i = 0; i < 39; i++) s = step(s, "correct");
  assert.ok(s < 0.9);
  assert.equal(step(s, "correct"), 0.9);
});

Deno.test("derived check: an always-wrong node drops below 0.3 after 5 rounds", () => {
  assert.equal(roundsToDropBelow(TRUST.START, TRUST.ACCESS.ReadOnly, "wrong"), 5);
  // After 4 it sits exactly on 0.3 (reached, not below).
  assert.equal(roundsToReach(TRUST.START, 0.3, "wrong"), 4);
  assert.equal(roundsToDropBelow(TRUST.START, 0.3, "absent"), 11);
});

Deno.test("roundsToReach: 0 when already there, null when unreachable", () => {
  assert.equal(roundsToReach(0.9, 0.9, "correct"), 0);
  assert.equal(roundsToReach(0.5, 0.9, "wrong"), null);
  assert.equal(roundsToReach(0.5, 0.9, "neutral"), null);
  assert.equal(roundsToDropBelow(0.5, 0, "wrong"), null);
  assert.equal(roundsToReach(0.5, 1, "correct"), 50);
  assert.equal(roundsToReach(0.5, 0, "wrong"), 10);
});

Deno.test("access levels at their boundaries", () => {
  const cases: Array<[number, string]> = [
    [1, "Full"],
    [0.9, "Full"],
    [0.8999, "Standard"],
    [0.7, "Standard"],
    [0.6999, "Limited"],
    [0.5, "Limited"],
    [0.4999, "ReadOnly"],
    [0.3, "ReadOnly"],
    [0.2999, "Restricted"],
    [0.1, "Restricted"],
    [0.0999, "None"],
    [0, "None"],
  ];
  for (const [score, level] of cases) assert.equal(accessLevel(score), level, String(score));
  // Float noise from arithmetic does not move a score across a boundary.
  assert.equal(accessLevel(0.1 + 0.2), "ReadOnly");
  assert.equal(accessLevel(0.7 - 1e-12), "Standard");
});

Deno.test("vote and critical thresholds", () => {
  assert.equal(canVote(0.7), true);
  assert.equal(canVote(0.6999), false);
  assert.equal(canRunCritical(0.5), true);
  assert.equal(canRunCritical(0.4999), false);
  const t = new TrustTable();
  assert.equal(t.canVote(A), false);
  assert.equal(t.canRunCritical(A), true);
  t.applyDelta(A, "absent");
  assert.equal(t.canRunCritical(A), false);
  t.setGenesis([B]);
  assert.equal(t.canVote(B), true);
});

Deno.test("snapshot is sorted, omits default scores, and round-trips", () => {
  const t = new TrustTable();
  t.applyDelta(node(9), "correct");
  t.applyDelta(node(3), "wrong");
  t.applyDelta(node(5), "correct");
  t.applyDelta(node(5), "wrong");
  t.applyDelta(node(5), "correct");
  t.applyDelta(node(5), "correct");
  t.applyDelta(node(5), "correct");
  t.applyDelta(node(5), "correct");
  assert.deepEqual(t.snapshot(), [[node(3), 0.45], [node(9), 0.51]]); // node 5 back at 0.5
  const u = TrustTable.fromSnapshot(t.snapshot());
  assert.equal(u.digest(), t.digest());
  assert.deepEqual(u.snapshot(), t.snapshot());
});

Deno.test("digest depends on content, not insertion order, and catches a difference", () => {
  const a = new TrustTable();
  a.applyDelta(A, "correct");
  a.applyDelta(B, "wrong");
  const b = new TrustTable();
  b.applyDelta(B, "wrong");
  b.applyDelta(A, "correct");
  assert.equal(a.digest(), b.digest());
  b.applyDelta(A, "correct");
  assert.notEqual(a.digest(), b.digest());
  assert.match(a.digest(), /^[0-9a-f]{64}$/);
});

Deno.test("property: scores stay in [0,1] on the basis-point grid under any sequence", () => {
  fc.assert(
    fc.property(fc.array(action, { maxLength: 300 }), (actions) => {
      const t = run(actions);
      for (let i = 0; i <= 5; i++) {
        const s = t.get(node(i));
        assert.ok(s >= 0 && s <= 1, `score ${s}`);
        assert.equal(Math.round(s * 10_000) / 10_000, s);
      }
      for (const [, s] of t.snapshot()) assert.ok(s >= 0 && s <= 1);
    }),
  );
});

Deno.test("property: the same sequence gives the same table", () => {
  fc.assert(
    fc.property(fc.array(action, { maxLength: 200 }), (actions) => {
      const a = run(actions);
      const b = run(actions);
      assert.deepEqual(a.snapshot(), b.snapshot());
      assert.equal(a.digest(), b.digest());
    }),
  );
});

Deno.test("property: slash always gives 0, whatever came before", () => {
  fc.assert(
    fc.property(fc.array(action, { maxLength: 100 }), fc.integer({ min: 0, max: 5 }), (xs, i) => {
      const t = run(xs);
      assert.equal(t.slash(node(i)), 0);
      assert.equal(t.get(node(i)), 0);
      assert.equal(t.accessLevel(node(i)), "None");
    }),
  );
});

Deno.test("property: correct never lowers a score, wrong and absent never raise it", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 10_000 }), (bp) => {
      const s = bp / 10_000;
      assert.ok(step(s, "correct") >= s);
      assert.ok(step(s, "wrong") <= s);
      assert.ok(step(s, "absent") <= s);
      assert.equal(step(s, "neutral"), s);
    }),
  );
});
