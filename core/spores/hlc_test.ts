import assert from "node:assert/strict";
import fc from "fast-check";
import {
  compareHlc,
  formatHlc,
  type Hlc,
  HLC_ZERO,
  hlcReceive,
  hlcSchema,
  hlcTick,
  maxHlc,
} from "./hlc.ts";

const hlc: fc.Arbitrary<Hlc> = fc.record({
  ms: fc.integer({ min: 0, max: 1_000_000 }),
  c: fc.integer({ min: 0, max: 50 }),
});
const now = fc.integer({ min: 0, max: 1_000_000 });

Deno.test("hlcTick: strictly after the local clock and never behind physical time", () => {
  fc.assert(
    fc.property(hlc, now, (local, t) => {
      const next = hlcTick(local, t);
      assert.ok(compareHlc(next, local) > 0);
      assert.ok(next.ms >= t);
    }),
  );
});

Deno.test("hlcReceive: dominates both the local and the remote timestamp", () => {
  fc.assert(
    fc.property(hlc, hlc, now, (local, remote, t) => {
      const next = hlcReceive(local, remote, t);
      assert.ok(compareHlc(next, local) > 0, "after local");
      assert.ok(compareHlc(next, remote) > 0, "after remote");
      assert.ok(next.ms >= t);
      assert.equal(next.ms, Math.max(local.ms, remote.ms, t));
    }),
  );
});

type Action =
  | { kind: "tick"; node: number; dt: number }
  | { kind: "send"; from: number; to: number; dt: number }
  | { kind: "deliver"; dt: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({
    kind: fc.constant("tick" as const),
    node: fc.nat(3),
    dt: fc.integer({ min: -5, max: 5 }),
  }),
  fc.record({
    kind: fc.constant("send" as const),
    from: fc.nat(3),
    to: fc.nat(3),
    dt: fc.integer({ min: -5, max: 5 }),
  }),
  fc.record({ kind: fc.constant("deliver" as const), dt: fc.integer({ min: -5, max: 5 }) }),
);

Deno.test("a run of four skewed clocks: each is monotonic and every receive follows its send", () => {
  fc.assert(
    fc.property(
      fc.array(action, { maxLength: 80 }),
      fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 4, maxLength: 4 }),
      (actions, offsets) => {
        const clocks: Hlc[] = [HLC_ZERO, HLC_ZERO, HLC_ZERO, HLC_ZERO];
        const phys = offsets.map((o) => 100 + o); // skewed, and each may also step backwards
        const inflight: Array<{ to: number; ts: Hlc }> = [];
        let maxPhys = Math.max(...phys);
        const advance = (n: number, dt: number) => {
          phys[n] += dt;
          maxPhys = Math.max(maxPhys, phys[n]);
        };
        for (const a of actions) {
          if (a.kind === "tick") {
            advance(a.node, a.dt);
            const next = hlcTick(clocks[a.node], phys[a.node]);
            assert.ok(compareHlc(next, clocks[a.node]) > 0);
            clocks[a.node] = next;
          } else if (a.kind === "send") {
            advance(a.from, a.dt);
            clocks[a.from] = hlcTick(clocks[a.from], phys[a.from]);
            inflight.push({ to: a.to, ts: clocks[a.from] });
          } else if (inflight.length > 0) {
            const m = inflight.shift()!;
            advance(m.to, a.dt);
            const next = hlcReceive(clocks[m.to], m.ts, phys[m.to]);
            assert.ok(compareHlc(next, clocks[m.to]) > 0, "monotonic");
            assert.ok(compareHlc(next, m.ts) > 0, "receive after send");
            clocks[m.to] = next;
          }
          // The physical part never runs ahead of the fastest physical clock seen.
          for (const c of clocks) assert.ok(c.ms <= Math.max(maxPhys, 0));
        }
      },
    ),
  );
});

Deno.test("compareHlc is a total order and maxHlc picks the greater", () => {
  fc.assert(
    fc.property(hlc, hlc, hlc, (a, b, c) => {
      assert.equal(Math.sign(compareHlc(a, b)) + Math.sign(compareHlc(b, a)), 0);
      assert.equal(compareHlc(a, b) === 0, a.ms === b.ms && a.c === b.c);
      if (compareHlc(a, b) <= 0 && compareHlc(b, c) <= 0) assert.ok(compareHlc(a, c) <= 0);
      assert.ok(compareHlc(maxHlc(a, b), a) >= 0 && compareHlc(maxHlc(a, b), b) >= 0);
    }),
  );
});

Deno.test("a clock reading that is not finite is a bug, and negative time reads as 0", () => {
  assert.throws(() => hlcTick(HLC_ZERO, NaN), RangeError);
  assert.deepEqual(hlcTick(HLC_ZERO, -5), { ms: 0, c: 1 });
  assert.deepEqual(hlcTick({ ms: 7, c: 3 }, 7.9), { ms: 7, c: 4 });
  assert.equal(formatHlc({ ms: 12, c: 3 }), "12.3");
});

Deno.test("hlcSchema accepts timestamps and rejects malformed ones", () => {
  assert.ok(hlcSchema.safeParse({ ms: 5, c: 0 }).success);
  assert.ok(!hlcSchema.safeParse({ ms: -1, c: 0 }).success);
  assert.ok(!hlcSchema.safeParse({ ms: 1.5, c: 0 }).success);
  assert.ok(!hlcSchema.safeParse({ ms: 1, c: 0, x: 1 }).success);
});
