import assert from "node:assert/strict";
import fc from "fast-check";
import type { NodeId } from "../ids.ts";
import { testNode } from "../spores/testing.ts";
import {
  compareVersions,
  consistencySchema,
  quorumsIntersect,
  readOutcome,
  readQuorum,
  type ReadResponse,
  readWithQuorum,
  type Version,
  writeOutcome,
  writeQuorum,
  writeWithQuorum,
} from "./consistency.ts";

const OLD: Version = { hlc: { ms: 1, c: 0 }, writer: "w" };
const NEW: Version = { hlc: { ms: 2, c: 0 }, writer: "w" };

Deno.test("quorum sizes: Strong floor(rf/2)+1, Eventual 1", () => {
  assert.deepEqual([1, 2, 3, 4, 5].map((rf) => writeQuorum("strong", rf)), [1, 2, 2, 3, 3]);
  assert.deepEqual([1, 2, 3, 4, 5].map((rf) => readQuorum("strong", rf)), [1, 2, 2, 3, 3]);
  assert.equal(writeQuorum("eventual", 3), 1);
  assert.equal(readQuorum("eventual", 3), 1);
  assert.throws(() => writeQuorum("strong", 0), RangeError);
  assert.ok(
    consistencySchema.safeParse("strong").success && !consistencySchema.safeParse("x").success,
  );
});

Deno.test("writes: acknowledged at the quorum of distinct replicas; duplicate acks count once", () => {
  const a = testNode(1);
  const b = testNode(2);
  assert.ok(!writeOutcome("strong", 3, [{ replica: a, stored: true }]).acknowledged);
  assert.ok(
    !writeOutcome("strong", 3, [{ replica: a, stored: true }, { replica: a, stored: true }])
      .acknowledged,
    "one replica acking twice is not a quorum",
  );
  assert.ok(
    !writeOutcome("strong", 3, [{ replica: a, stored: true }, { replica: b, stored: false }])
      .acknowledged,
  );
  assert.ok(
    writeOutcome("strong", 3, [{ replica: a, stored: true }, { replica: b, stored: true }])
      .acknowledged,
  );
  assert.ok(writeOutcome("eventual", 3, [{ replica: a, stored: true }]).acknowledged);
});

Deno.test("reads: the newest verified version of a quorum; unverified replies do not count", () => {
  const r = (i: number, version: Version | null, verified = true): ReadResponse => ({
    replica: testNode(i),
    version,
    verified,
  });
  const got = readOutcome("strong", 3, [r(1, OLD), r(2, NEW)]);
  assert.ok(got.ok && got.newest.version === NEW);
  const corrupt = readOutcome("strong", 3, [r(1, OLD), r(2, NEW, false)]);
  assert.ok(!corrupt.ok && corrupt.reason === "no-quorum" && corrupt.responded === 1);
  const none = readOutcome("strong", 3, [r(1, null), r(2, null)]);
  assert.ok(none.ok && none.newest.version === null, "not found anywhere");
  const tie = readWithQuorum([r(3, NEW), r(2, NEW)], 2);
  assert.ok(tie.ok && tie.newest.replica === testNode(2), "ties to the smaller replica id");
  // Eventual reads answer from one replica: possibly stale (anti-entropy repairs it later).
  const stale = readOutcome("eventual", 3, [r(1, OLD)]);
  assert.ok(stale.ok && stale.newest.version === OLD);
  assert.ok(!readWithQuorum([], 0).ok, "no replies is never a read");
});

/**
 * A world of rf replicas: the replicas in the write set hold NEW (the write was acknowledged
 * by them), the others hold OLD or nothing; a read asks the read set.
 */
const worldArb = fc.integer({ min: 1, max: 9 }).chain((rf) =>
  fc.record({
    rf: fc.constant(rf),
    writeSet: fc.shuffledSubarray([...Array(rf).keys()]),
    readSet: fc.shuffledSubarray([...Array(rf).keys()]),
    others: fc.array(fc.boolean(), { minLength: rf, maxLength: rf }),
  })
);

function lostWrite(
  w: { rf: number; writeSet: number[]; readSet: number[]; others: boolean[] },
  r: number,
  wq: number,
): boolean {
  const ids: NodeId[] = [...Array(w.rf).keys()].map((i) => testNode(i + 1));
  const acks = w.writeSet.map((i) => ({ replica: ids[i], stored: true }));
  if (!writeWithQuorum(acks, wq).acknowledged) return false; // not acknowledged: nothing owed
  const holds = (i: number) => (w.writeSet.includes(i) ? NEW : w.others[i] ? OLD : null);
  const read = readWithQuorum(
    w.readSet.map((i) => ({ replica: ids[i], version: holds(i), verified: true })),
    r,
  );
  if (!read.ok) return false; // no quorum: the read fails rather than lies
  return read.newest.version === null || compareVersions(read.newest.version, NEW) < 0;
}

Deno.test("Strong: every read quorum meets every write quorum, so no acknowledged write is lost", () => {
  fc.assert(
    fc.property(worldArb, (w) => {
      assert.ok(quorumsIntersect(w.rf, readQuorum("strong", w.rf), writeQuorum("strong", w.rf)));
      assert.ok(!lostWrite(w, readQuorum("strong", w.rf), writeQuorum("strong", w.rf)));
    }),
    { numRuns: 1000 },
  );
});

Deno.test("a broken quorum size (floor(rf/2)) loses acknowledged writes: the check catches it", () => {
  const broken = (rf: number) => Math.max(1, Math.floor(rf / 2));
  const result = fc.check(
    fc.property(
      worldArb.filter((w) => w.rf >= 2),
      (w) => !lostWrite(w, broken(w.rf), broken(w.rf)),
    ),
    { numRuns: 2000, seed: 42 },
  );
  assert.ok(result.failed, "fast-check finds a lost acknowledged write");
  const [w] = result.counterexample!;
  assert.ok(!quorumsIntersect(w.rf, broken(w.rf), broken(w.rf)));
  // Eventual is the same non-intersecting shape by design.
  assert.ok(!quorumsIntersect(3, readQuorum("eventual", 3), writeQuorum("eventual", 3)));
});

Deno.test("quorumsIntersect is exactly r + w > rf (pigeonhole), checked by enumeration", () => {
  for (let rf = 1; rf <= 6; rf++) {
    for (let r = 1; r <= rf; r++) {
      for (let w = 1; w <= rf; w++) {
        // Disjoint sets of sizes r and w exist among rf replicas iff r + w <= rf.
        assert.equal(quorumsIntersect(rf, r, w), !(r + w <= rf));
      }
    }
  }
});
