import assert from "node:assert/strict";
import fc from "fast-check";
import { MemberTable, UNKNOWN } from "./members.ts";
import { MemberState } from "./messages.ts";

// ---------------------------------------------------------------------------------------
// Helpers

/** Random source cycling through fast-check doubles in [0, 1) (edges 0 and 1-eps included). */
const randomArb = fc
  .array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
    minLength: 1,
    maxLength: 20,
  })
  .map((rs) => {
    let i = 0;
    return () => rs[i++ % rs.length];
  });

const isLive = (s: number) => s === MemberState.Alive || s === MemberState.Suspect;
const stateArb = fc.constantFrom(
  MemberState.Alive,
  MemberState.Suspect,
  MemberState.Dead,
  MemberState.Left,
);
const MAX_IDX = 40;
const idxArb = fc.integer({ min: 0, max: MAX_IDX });
const incArb = fc.integer({ min: 0, max: 2 ** 32 - 1 });

function sorted(xs: Iterable<number>): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** Asserts the table agrees with the reference `known` map (self never known). */
function assertMatches(t: MemberTable, known: Map<number, { state: number; inc: number }>) {
  assert.deepEqual(sorted(t.members()), sorted(known.keys()), "members() is not the known set");
  assert.equal(t.known, known.size, "known counter");
  const states = [...known.values()].map((v) => v.state);
  assert.equal(t.live, states.filter(isLive).length, "live counter");
  assert.equal(t.dead, states.filter((s) => s === MemberState.Dead).length, "dead counter");
  for (let i = 0; i <= MAX_IDX + 1; i++) {
    const k = known.get(i);
    assert.equal(t.get(i), k ? k.state : UNKNOWN, `state of ${i}`);
    if (k) assert.equal(t.inc[i], k.inc, `incarnation of ${i}`);
  }
}

type Op =
  | { op: "load"; members: number[]; incs: number[] }
  | { op: "add"; idx: number; slot: number; state: number; inc: number }
  | { op: "set"; pick: number; state: number; inc: number }
  | { op: "probe" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("load" as const),
      members: fc.array(idxArb, { maxLength: 25 }),
      incs: fc.array(incArb, { minLength: 25, maxLength: 25 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("add" as const),
      idx: idxArb,
      slot: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      state: stateArb,
      inc: incArb,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("set" as const),
      pick: fc.nat(),
      state: stateArb,
      inc: incArb,
    }),
  },
  { weight: 2, arbitrary: fc.constant({ op: "probe" as const }) },
);

// ---------------------------------------------------------------------------------------
// Properties

Deno.test("MemberTable: counters and contents match a reference after random operations", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 12 }),
      idxArb,
      fc.array(opArb, { maxLength: 40, size: "max" }),
      randomArb,
      (capacity, self, ops, random) => {
        const t = new MemberTable(capacity);
        const known = new Map<number, { state: number; inc: number }>();
        for (const o of ops) {
          if (o.op === "load") {
            const fresh = t.loadAlive(Int32Array.from(o.members), o.incs, self, random);
            const want: number[] = [];
            o.members.forEach((idx, i) => {
              if (idx === self || known.has(idx)) return;
              known.set(idx, { state: MemberState.Alive, inc: o.incs[i] });
              want.push(idx);
            });
            assert.deepEqual(fresh, want, "loadAlive returns the fresh members in input order");
          } else if (o.op === "add") {
            // As the protocol does: add an unknown member, then set its state.
            if (o.idx === self || known.has(o.idx)) continue;
            t.add(o.idx, o.slot);
            t.set(o.idx, o.state, o.inc);
            known.set(o.idx, { state: o.state, inc: o.inc });
          } else if (o.op === "set") {
            if (known.size === 0) continue;
            const idx = [...known.keys()][o.pick % known.size];
            t.set(idx, o.state, o.inc);
            known.set(idx, { state: o.state, inc: o.inc });
          } else {
            // Never a dead, left or unknown member, and -1 only when nobody is live.
            const target = t.nextProbeTarget(random);
            if (t.live === 0) assert.equal(target, -1);
            else {
              assert.ok(known.has(target), `probe target ${target} is not a member`);
              assert.ok(isLive(known.get(target)!.state), `probe target ${target} is not live`);
            }
          }
          assertMatches(t, known);
        }
      },
    ),
  );
});

Deno.test("MemberTable: loadAlive loads a permutation, skipping self and known members", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 120 }),
      fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 120 }),
      fc.integer({ min: 0, max: 300 }),
      randomArb,
      (first, second, self, random) => {
        const t = new MemberTable(4);
        const incs = (xs: number[]) => xs.map((x) => x * 3 + 1);
        t.loadAlive(Int32Array.from(first), incs(first), self, random);
        t.loadAlive(Int32Array.from(second), incs(second), self, random);
        const expected = new Set([...first, ...second].filter((x) => x !== self));
        const got = [...t.members()];
        assert.equal(got.length, expected.size, "a member is missing or duplicated");
        assert.deepEqual(sorted(got), sorted(expected));
        assert.equal(t.get(self), UNKNOWN);
        for (const x of expected) {
          assert.equal(t.get(x), MemberState.Alive);
          assert.equal(t.inc[x], x * 3 + 1);
        }
        assert.equal(t.live, expected.size);
        assert.equal(t.known, expected.size);
        assert.equal(t.dead, 0);
      },
    ),
  );
});

Deno.test("MemberTable: the first probe pass visits every live member exactly once", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 0, max: 200 }), { maxLength: 60 }),
      fc.array(stateArb, { maxLength: 60 }),
      fc.array(fc.record({ idx: fc.integer({ min: 201, max: 260 }), state: stateArb })),
      randomArb,
      (loaded, states, added, random) => {
        const t = new MemberTable(16);
        t.loadAlive(Int32Array.from(loaded), loaded.map(() => 1), -1, random);
        loaded.forEach((idx, i) => {
          if (i < states.length) t.set(idx, states[i], 2);
        });
        for (const a of added) {
          if (t.get(a.idx) !== UNKNOWN) continue;
          t.add(a.idx, random());
          t.set(a.idx, a.state, 1);
        }
        const live = sorted([...t.members()].filter((i) => isLive(t.get(i))));
        assert.equal(live.length, t.live);
        if (live.length === 0) {
          assert.equal(t.nextProbeTarget(random), -1);
          return;
        }
        const seen: number[] = [];
        for (let i = 0; i < live.length; i++) seen.push(t.nextProbeTarget(random));
        assert.deepEqual(sorted(seen), live, "the first pass is not a permutation of the live set");
      },
    ),
  );
});

Deno.test("MemberTable: with every member live, each reshuffled pass is a permutation", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 0, max: 200 }), { maxLength: 60 }),
      fc.array(fc.constantFrom(MemberState.Alive, MemberState.Suspect), { maxLength: 60 }),
      fc.uniqueArray(fc.integer({ min: 201, max: 260 }), { maxLength: 20 }),
      randomArb,
      (loaded, states, added, random) => {
        const t = new MemberTable(16);
        t.loadAlive(Int32Array.from(loaded), loaded.map(() => 1), -1, random);
        loaded.forEach((idx, i) => {
          if (i < states.length) t.set(idx, states[i], 2);
        });
        for (const idx of added) {
          t.add(idx, random());
          t.set(idx, MemberState.Alive, 1);
        }
        const all = sorted(t.members());
        if (all.length === 0) return;
        for (let pass = 0; pass < 3; pass++) {
          const seen: number[] = [];
          for (let i = 0; i < all.length; i++) seen.push(t.nextProbeTarget(random));
          assert.deepEqual(sorted(seen), all, `pass ${pass} is not a permutation of the members`);
        }
      },
    ),
  );
});

Deno.test("MemberTable: a member added mid-pass is probed within two passes", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 60 }),
      fc.uniqueArray(fc.integer({ min: 201, max: 260 }), { minLength: 1, maxLength: 20 }),
      fc.integer({ min: 0, max: 100 }),
      randomArb,
      (loaded, added, warmup, random) => {
        const t = new MemberTable(16);
        t.loadAlive(Int32Array.from(loaded), loaded.map(() => 1), -1, random);
        for (let i = 0; i < warmup; i++) t.nextProbeTarget(random);
        for (const idx of added) {
          t.add(idx, random());
          t.set(idx, MemberState.Alive, 1);
        }
        const n = t.members().length;
        const seen = new Set<number>();
        for (let i = 0; i < 2 * n; i++) seen.add(t.nextProbeTarget(random));
        assert.deepEqual(sorted(seen), sorted(t.members()));
      },
    ),
  );
});

Deno.test("MemberTable: randomMembers returns at most k distinct members accepted by ok", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 0, max: 100 }), { maxLength: 40 }),
      fc.integer({ min: -1, max: 12 }),
      fc.integer({ min: 1, max: 5 }),
      randomArb,
      (loaded, k, mod, random) => {
        const t = new MemberTable(8);
        t.loadAlive(Int32Array.from(loaded), loaded.map(() => 0), -1, random);
        const ok = (i: number) => i % mod === 0;
        const got = t.randomMembers(k, random, ok);
        assert.ok(got.length <= Math.max(0, k), `${got.length} members for k=${k}`);
        assert.equal(new Set(got).size, got.length, "duplicate member");
        const members = new Set(t.members());
        for (const i of got) {
          assert.ok(members.has(i), `${i} is not a member`);
          assert.ok(ok(i), `${i} was not accepted by ok`);
        }
        // The first draw always succeeds when every member is acceptable.
        if (k >= 1 && loaded.length > 0) {
          assert.ok(t.randomMembers(k, random, () => true).length >= 1);
        }
      },
    ),
  );
});

// ---------------------------------------------------------------------------------------
// Examples

Deno.test("MemberTable: growth past the initial capacity keeps states and incarnations", () => {
  const t = new MemberTable(2);
  t.loadAlive(Int32Array.from([0, 1, 2, 3, 4, 5, 6]), [10, 11, 12, 13, 14, 15, 16], 0, () => 0.5);
  t.set(3, MemberState.Dead, 99);
  t.add(100, 0.3);
  t.set(100, MemberState.Suspect, 4_000_000_000);
  t.loadAlive(Int32Array.from([5000, 2, 7]), [1, 2, 3], 0, () => 0.7);
  t.add(20_000, 0.99);
  t.set(20_000, MemberState.Left, 5);
  assert.ok(t.state.length > 20_000);
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((i) => [t.get(i), t.inc[i]]),
    [[0, 11], [0, 12], [2, 99], [0, 14], [0, 15], [0, 16]],
  );
  assert.equal(t.get(0), UNKNOWN);
  assert.deepEqual([t.get(100), t.inc[100]], [MemberState.Suspect, 4_000_000_000]);
  assert.deepEqual([t.get(5000), t.inc[5000]], [MemberState.Alive, 1]);
  assert.deepEqual([t.get(7), t.inc[7]], [MemberState.Alive, 3]);
  assert.deepEqual([t.get(20_000), t.inc[20_000]], [MemberState.Left, 5]);
  for (const i of [8, 99, 101, 4999, 19_999, 20_001, 10 ** 7]) assert.equal(t.get(i), UNKNOWN);
  assert.deepEqual(sorted(t.members()), [1, 2, 3, 4, 5, 6, 7, 100, 5000, 20_000]);
  assert.deepEqual([t.known, t.live, t.dead], [10, 8, 1]);
});

Deno.test("MemberTable: no probe target when nobody is alive or suspect", () => {
  const t = new MemberTable(8);
  assert.equal(t.nextProbeTarget(() => 0), -1);
  t.loadAlive(Int32Array.from([1, 2, 3]), [1, 1, 1], 0, () => 0.2);
  t.set(1, MemberState.Dead, 1);
  t.set(2, MemberState.Left, 1);
  t.set(3, MemberState.Suspect, 2);
  assert.equal(t.nextProbeTarget(() => 0.1), 3);
  t.set(3, MemberState.Dead, 2);
  assert.equal(t.nextProbeTarget(() => 0.1), -1);
  assert.deepEqual([t.known, t.live, t.dead], [3, 0, 2]);
  // Dead -> alive (a refutation) restores the counters.
  t.set(1, MemberState.Alive, 3);
  assert.deepEqual([t.known, t.live, t.dead], [3, 1, 1]);
  assert.equal(t.nextProbeTarget(() => 0.1), 1);
  assert.deepEqual(t.randomMembers(0, () => 0, () => true), []);
});

Deno.test({
  name: "MemberTable: nextProbeTarget finds a live member whenever one exists",
  // Regression: it used to give up after orderLen + 1 slots from the cursor (the tail of the
  // pass plus only cursor + 1 slots of the reshuffled one), skipping a probe round although
  // a live member existed behind dead ones.
  fn() {
    const r = () => 0.1;
    const t = new MemberTable(8);
    t.loadAlive(Int32Array.from([0, 1]), [1, 1], -1, r); // order [0, 1]
    t.set(0, MemberState.Left, 1);
    t.set(1, MemberState.Left, 1);
    t.add(201, 0); // order [201, 1, 0]
    t.set(201, MemberState.Alive, 1);
    assert.equal(t.live, 1);
    assert.equal(t.nextProbeTarget(r), 201);
    // Tail [1, 0] is all left; the reshuffle gives [0, 1, 201] and the loop stops before 201.
    assert.equal(t.nextProbeTarget(r), 201);
  },
});
