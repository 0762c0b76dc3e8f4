import fc from "fast-check";
import assert from "node:assert/strict";
import { parseThrottleCurve, type ThrottleCurve, throttleIntensity } from "../throttle.ts";
import type { ThrottleDecision, ThrottlePolicy, TickStats } from "./params.ts";
import {
  type AutoConvergeParams,
  autoConvergePolicy,
  intensityProblem,
  myceliumPolicy,
  type MyceliumPolicyParams,
  remusPolicy,
} from "./policies.ts";

// ---------------------------------------------------------------------------------------
// Arbitraries

const unit = fc.double({ min: 0, max: 1, noNaN: true });
const curveArb: fc.Arbitrary<ThrottleCurve> = fc.oneof(
  fc.record({
    curve: fc.constant("linear"),
    threshold: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    maxIntensity: unit,
  }),
  fc.record({
    curve: fc.constant("exponential"),
    threshold: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    maxIntensity: unit,
    exponent: fc.double({ min: 0.1, max: 8, noNaN: true }),
  }),
  fc.record({
    curve: fc.constant("custom"),
    threshold: fc.constantFrom(0, 0.6),
    maxIntensity: unit,
    points: fc.constant([{ x: 0, y: 0.1 }, { x: 0.5, y: 0.3 }, { x: 1, y: 1 }]),
  }),
).map((c) => parseThrottleCurve(c));

/** Buffer levels including out-of-range values, exact boundaries and NaN. */
const levelArb = fc.oneof(
  fc.double({ min: -0.5, max: 1.5, noNaN: true }),
  fc.constantFrom(0, 0.05, 0.6, 0.8, 1, 1.2, Number.NaN),
);

interface Step {
  dt: number;
  b: number;
  migrating: boolean;
}
const stepsArb = fc.array(
  fc.record({ dt: fc.integer({ min: 0, max: 50 }), b: levelArb, migrating: fc.boolean() }),
  { minLength: 1, maxLength: 80 },
);

const myceliumParamsArb: fc.Arbitrary<MyceliumPolicyParams> = fc.record({
  curve: curveArb,
  pauseEnabled: fc.boolean(),
  resumeLevel: fc.constantFrom(0.5, 0.8, 0.95),
  convergenceTimeoutMs: fc.integer({ min: 0, max: 200 }),
});

function statsOf(now: number, b: number, migrating = false): TickStats {
  return { now, bufferLevel: b, dirtiedBytes: 0, transferredBytes: 0, migrating };
}

interface Tick {
  stats: TickStats;
  decision: ThrottleDecision;
}
function run(policy: ThrottlePolicy, steps: readonly Step[]): Tick[] {
  let now = 0;
  return steps.map((s) => {
    now += s.dt;
    const stats = statsOf(now, s.b, s.migrating);
    return { stats, decision: policy.tick(stats) };
  });
}

/** The first intensity problem in a run, if any. */
function runProblem(curve: ThrottleCurve, trace: readonly Tick[]): string | undefined {
  for (const t of trace) {
    const p = intensityProblem(curve, t.stats, t.decision);
    if (p !== undefined) return p;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Mycelium: intensity

Deno.test("mycelium: intensity is in [0, M] and equals I(b) (M in catch-up) every tick", () => {
  fc.assert(
    fc.property(myceliumParamsArb, stepsArb, (params, steps) => {
      const trace = run(myceliumPolicy(params), steps);
      const m = params.curve.maxIntensity;
      for (const { stats, decision } of trace) {
        assert.ok(decision.intensity >= 0 && decision.intensity <= m);
        if (!stats.migrating && !decision.pause) {
          assert.equal(decision.intensity, throttleIntensity(params.curve, stats.bufferLevel));
        }
        if (stats.migrating) assert.equal(decision.intensity, m);
      }
      assert.equal(runProblem(params.curve, trace), undefined);
    }),
    { numRuns: 300 },
  );
});

Deno.test("mycelium: intensity falls back to 0 when b drops below the threshold", () => {
  const curve = parseThrottleCurve({ curve: "linear", threshold: 0.6, maxIntensity: 0.9 });
  const p = myceliumPolicy({
    curve,
    pauseEnabled: false,
    resumeLevel: 0.8,
    convergenceTimeoutMs: 0,
  });
  assert.equal(p.tick(statsOf(0, 1)).intensity, 0.9);
  assert.ok(Math.abs(p.tick(statsOf(5, 0.8)).intensity - 0.45) < 1e-12);
  assert.equal(p.tick(statsOf(10, 0.1)).intensity, 0);
  assert.equal(p.tick(statsOf(15, 0.1, true)).intensity, 0.9);
});

Deno.test("mycelium: a maxIntensity override caps the curve and sets the catch-up level", () => {
  const curve = parseThrottleCurve({ curve: "linear", threshold: 0, maxIntensity: 0.9 });
  const p = myceliumPolicy({
    curve,
    pauseEnabled: false,
    resumeLevel: 0.8,
    convergenceTimeoutMs: 0,
    maxIntensity: 0.5,
  });
  const d1 = p.tick(statsOf(0, 1));
  const d2 = p.tick(statsOf(1, 0.2, true));
  assert.equal(d1.intensity, 0.5);
  assert.equal(d2.intensity, 0.5);
  assert.equal(intensityProblem(curve, statsOf(0, 1), d1, 0.5), undefined);
  assert.match(intensityProblem(curve, statsOf(0, 1), d1) ?? "", /!= 0.9/);
});

/** Deliberately broken policies: each must be caught by the same predicate. */
const broken: Record<string, (curve: ThrottleCurve) => ThrottlePolicy> = {
  // Applies the previous tick's level (off by one step).
  lagging(curve) {
    let prev = 0;
    return {
      name: "lagging",
      tick(s) {
        const i = throttleIntensity(curve, prev);
        prev = s.bufferLevel;
        return { intensity: s.migrating ? curve.maxIntensity : i, pause: false };
      },
      reset() {},
    };
  },
  // Forgets to run at M during migration catch-up.
  noCatchUp: (curve) => ({
    name: "noCatchUp",
    tick: (s) => ({ intensity: throttleIntensity(curve, s.bufferLevel), pause: false }),
    reset() {},
  }),
  // Ignores the M cap at full buffer.
  overshoot: (curve) => ({
    name: "overshoot",
    tick: (s) => ({
      intensity: s.bufferLevel >= 1 ? 1 : throttleIntensity(curve, s.bufferLevel),
      pause: false,
    }),
    reset() {},
  }),
};

for (const [name, make] of Object.entries(broken)) {
  Deno.test(`intensityProblem catches a broken policy (${name})`, () => {
    const result = fc.check(
      fc.property(curveArb.filter((c) => c.maxIntensity < 1), stepsArb, (curve, steps) => {
        assert.equal(runProblem(curve, run(make(curve), steps)), undefined);
      }),
      { numRuns: 500, seed: 7 },
    );
    assert.ok(result.failed, `broken policy ${name} was not caught`);
  });
}

Deno.test("intensityProblem rejects NaN and out-of-range intensities", () => {
  const curve = parseThrottleCurve({ curve: "linear" });
  const s = statsOf(0, 0.5);
  assert.equal(intensityProblem(curve, s, { intensity: 0, pause: false }), undefined);
  assert.match(intensityProblem(curve, s, { intensity: NaN, pause: false }) ?? "", /outside/);
  assert.match(intensityProblem(curve, s, { intensity: -0.1, pause: false }) ?? "", /outside/);
  assert.match(intensityProblem(curve, s, { intensity: 0.1, pause: false }) ?? "", /!= 0/);
});

// ---------------------------------------------------------------------------------------
// Mycelium: emergency pause

/** The pause rules over a trace; the first violation, if any. */
function pauseProblem(params: MyceliumPolicyParams, trace: readonly Tick[]): string | undefined {
  const { pauseEnabled, resumeLevel: resume, convergenceTimeoutMs: timeout } = params;
  let start = -1; // start of the current pause run, -1 when running
  let armed = true; // no timeout-ended pause since b last dropped to the resume level
  for (const { stats, decision } of trace) {
    const b = Number.isNaN(stats.bufferLevel) ? 1 : stats.bufferLevel;
    const at = `at ${stats.now} (b = ${b})`;
    if (decision.pause) {
      if (!pauseEnabled) return `paused with pause disabled ${at}`;
      if (b <= resume) return `paused at or below the resume level ${at}`;
      if (start < 0) {
        if (b < 1) return `pause began below b = 1 ${at}`;
        if (!armed) return `pause re-entered after a timeout before b reached resume ${at}`;
        start = stats.now;
      }
      if (stats.now - start >= timeout) return `pause outlasted the timeout ${at}`;
    } else {
      if (start >= 0 && b > resume) armed = false; // ended by the timeout
      start = -1;
      if (b <= resume) armed = true;
      if (pauseEnabled && armed && b >= 1 && timeout > 0) return `not paused ${at}`;
    }
  }
  return undefined;
}

/** Levels that spend time at and above 1, so pauses and timeouts happen. */
const pressureStepsArb = fc.array(
  fc.record({
    dt: fc.integer({ min: 1, max: 40 }),
    b: fc.oneof(
      { arbitrary: fc.constantFrom(1, 1.1, 1.5, 0.9), weight: 4 },
      { arbitrary: fc.constantFrom(0.8, 0.5), weight: 1 },
      { arbitrary: fc.double({ min: 0, max: 1.2, noNaN: true }), weight: 1 },
    ),
    migrating: fc.boolean(),
  }),
  { minLength: 1, maxLength: 100 },
);

Deno.test("mycelium: pauses start at b >= 1, end at resume level and never outlast the timeout", () => {
  let timedOut = 0;
  let resumed = 0;
  fc.assert(
    fc.property(myceliumParamsArb, pressureStepsArb, (params, steps) => {
      const trace = run(myceliumPolicy(params), steps);
      assert.equal(pauseProblem(params, trace), undefined);
      trace.forEach((t, k) => {
        if (!t.decision.pause || k + 1 === trace.length) return;
        const next = trace[k + 1];
        if (next.decision.pause) return;
        if (next.stats.bufferLevel > params.resumeLevel) timedOut++;
        else resumed++;
      });
    }),
    { numRuns: 400 },
  );
  // The runs exercise both ways a pause ends.
  assert.ok(timedOut > 10 && resumed > 10, `timed out ${timedOut}, resumed ${resumed}`);
});

Deno.test("pauseProblem catches a pause without a timeout", () => {
  const unbounded = (p: MyceliumPolicyParams): ThrottlePolicy => {
    return myceliumPolicy({ ...p, convergenceTimeoutMs: 1e12 });
  };
  const result = fc.check(
    fc.property(myceliumParamsArb, pressureStepsArb, (params, steps) => {
      assert.equal(pauseProblem(params, run(unbounded(params), steps)), undefined);
    }),
    { numRuns: 500, seed: 3 },
  );
  assert.ok(result.failed);
});

Deno.test("mycelium: after a timed-out pause, no new pause until b reaches the resume level", () => {
  const curve = parseThrottleCurve({ curve: "linear" });
  const p = myceliumPolicy({
    curve,
    pauseEnabled: true,
    resumeLevel: 0.8,
    convergenceTimeoutMs: 100,
  });
  assert.equal(p.tick(statsOf(0, 1)).pause, true);
  assert.equal(p.tick(statsOf(50, 1)).pause, true);
  assert.equal(p.tick(statsOf(99, 0.9)).pause, true);
  assert.equal(p.tick(statsOf(100, 1)).pause, false); // timed out
  assert.equal(p.tick(statsOf(150, 1)).pause, false); // disarmed
  assert.equal(p.tick(statsOf(200, 0.85)).pause, false);
  assert.equal(p.tick(statsOf(250, 0.8)).pause, false); // re-armed here
  assert.equal(p.tick(statsOf(300, 1.2)).pause, true);
  assert.equal(p.paused, true);
  assert.equal(p.tick(statsOf(310, 0.7)).pause, false); // resumed by level
  assert.equal(p.tick(statsOf(320, 1)).pause, true);
  p.reset();
  assert.equal(p.paused, false);
});

Deno.test("mycelium: with pause disabled, shouldDrop is b >= 1 and pause is never set", () => {
  const curve = parseThrottleCurve({ curve: "exponential" });
  const off = myceliumPolicy({
    curve,
    pauseEnabled: false,
    resumeLevel: 0.8,
    convergenceTimeoutMs: 1e3,
  });
  const on = myceliumPolicy({
    curve,
    pauseEnabled: true,
    resumeLevel: 0.8,
    convergenceTimeoutMs: 1e3,
  });
  assert.deepEqual([0.5, 0.999, 1, 1.5, NaN].map((b) => off.shouldDrop(b)), [
    false,
    false,
    true,
    true,
    true,
  ]);
  assert.equal(on.shouldDrop(2), false);
  assert.deepEqual(off.tick(statsOf(0, 2)), { intensity: curve.maxIntensity, pause: false });
});

Deno.test("mycelium: invalid parameters are rejected", () => {
  const curve = parseThrottleCurve({ curve: "linear" });
  const ok = { curve, pauseEnabled: true, resumeLevel: 0.8, convergenceTimeoutMs: 10 };
  assert.throws(() => myceliumPolicy({ ...ok, maxIntensity: 1.5 }), RangeError);
  assert.throws(() => myceliumPolicy({ ...ok, convergenceTimeoutMs: -1 }), RangeError);
  assert.throws(() => myceliumPolicy({ ...ok, resumeLevel: NaN }), RangeError);
});

// ---------------------------------------------------------------------------------------
// Auto-converge

const acParamsArb: fc.Arbitrary<Required<AutoConvergeParams>> = fc
  .record({
    initial: unit,
    increment: fc.double({ min: 0, max: 0.5, noNaN: true }),
    max: unit,
    dirtyRatio: fc.double({ min: 0, max: 2, noNaN: true }),
    passes: fc.integer({ min: 1, max: 4 }),
  })
  .map((p) => ({ ...p, initial: Math.min(p.initial, p.max) }));

const passArb = fc.record({
  dirtiedBytes: fc.integer({ min: 0, max: 1000 }),
  transferredBytes: fc.integer({ min: 0, max: 1000 }),
});

function passStats(dirtiedBytes: number, transferredBytes: number): TickStats {
  return { now: 0, bufferLevel: 0, dirtiedBytes, transferredBytes, migrating: true };
}

/** Auto-converge's range and monotonicity over a run of decisions. */
function acProblem(max: number, intensities: readonly number[]): string | undefined {
  let prev = 0;
  for (const [k, i] of intensities.entries()) {
    if (!(i >= 0 && i <= max)) return `tick ${k}: throttle ${i} outside [0, ${max}]`;
    if (i < prev) return `tick ${k}: throttle decreased from ${prev} to ${i}`;
    prev = i;
  }
  return undefined;
}

Deno.test("auto-converge: throttle is in [0, max], never decreases and never pauses", () => {
  fc.assert(
    fc.property(acParamsArb, fc.array(passArb, { maxLength: 100 }), (params, passes) => {
      const p = autoConvergePolicy(params);
      const ds = passes.map((s) => p.tick(passStats(s.dirtiedBytes, s.transferredBytes)));
      assert.ok(ds.every((d) => !d.pause));
      assert.equal(acProblem(params.max, ds.map((d) => d.intensity)), undefined);
    }),
    { numRuns: 300 },
  );
});

Deno.test("acProblem catches a throttle that relaxes on a quiet pass", () => {
  const relaxing = (params: Required<AutoConvergeParams>): ThrottlePolicy => {
    const inner = autoConvergePolicy(params);
    return {
      name: "relaxing",
      tick(s) {
        const d = inner.tick(s);
        return s.dirtiedBytes > params.dirtyRatio * s.transferredBytes ? d : { ...d, intensity: 0 };
      },
      reset: () => inner.reset(),
    };
  };
  const result = fc.check(
    fc.property(acParamsArb, fc.array(passArb, { maxLength: 100 }), (params, passes) => {
      const p = relaxing(params);
      const is = passes.map((s) => p.tick(passStats(s.dirtiedBytes, s.transferredBytes)).intensity);
      assert.equal(acProblem(params.max, is), undefined);
    }),
    { numRuns: 500, seed: 11 },
  );
  assert.ok(result.failed);
});

Deno.test("auto-converge: first throttle is exactly `initial` after exactly `passes` high ticks", () => {
  fc.assert(
    fc.property(acParamsArb, fc.integer({ min: 1, max: 6 }), (params, steps) => {
      const p = autoConvergePolicy(params);
      const high = passStats(1 + params.dirtyRatio * 1000, 1000);
      for (let k = 1; k < params.passes; k++) assert.equal(p.tick(high).intensity, 0);
      assert.equal(p.tick(high).intensity, params.initial);
      // Each further run of `passes` high ticks adds one increment (capped at max).
      for (let s = 2; s <= steps; s++) {
        for (let k = 1; k < params.passes; k++) p.tick(high);
        const want = Math.min(params.initial + (s - 1) * params.increment, params.max);
        assert.equal(p.tick(high).intensity, want);
      }
      p.reset();
      assert.equal(p.throttle, 0);
    }),
    { numRuns: 300 },
  );
});

Deno.test("auto-converge: a quiet pass restarts the count; equality is not high", () => {
  const p = autoConvergePolicy(); // QEMU defaults
  const high = passStats(600, 1000);
  const quiet = passStats(500, 1000); // exactly 50 %: not above the threshold
  assert.equal(p.tick(high).intensity, 0);
  assert.equal(p.tick(quiet).intensity, 0);
  assert.equal(p.tick(high).intensity, 0);
  assert.equal(p.tick(high).intensity, 0.2);
  assert.equal(p.tick(high).intensity, 0.2);
  assert.equal(p.tick(high).intensity, 0.30000000000000004);
  for (let k = 0; k < 40; k++) p.tick(high);
  assert.equal(p.throttle, 0.99);
  assert.equal(p.tick(passStats(0, 1000)).intensity, 0.99); // never decreases
});

Deno.test("auto-converge: invalid parameters are rejected", () => {
  assert.throws(() => autoConvergePolicy({ passes: 0 }), RangeError);
  assert.throws(() => autoConvergePolicy({ passes: 1.5 }), RangeError);
  assert.throws(() => autoConvergePolicy({ max: 2 }), RangeError);
  assert.throws(() => autoConvergePolicy({ increment: -0.1 }), RangeError);
});

// ---------------------------------------------------------------------------------------
// Remus

Deno.test("remus: no throttle, a checkpoint pause every tick, pauseMs charged", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1000 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      stepsArb,
      (intervalMs, frac, steps) => {
        const p = remusPolicy({ checkpointPauseMs: frac * intervalMs, intervalMs });
        for (const { decision } of run(p, steps)) {
          assert.deepEqual(decision, { intensity: 0, pause: true });
        }
        assert.equal(p.pauseMs(), frac * intervalMs);
        assert.ok(Math.abs(p.pauseFraction() - frac) < 1e-12);
      },
    ),
  );
  assert.throws(() => remusPolicy({ checkpointPauseMs: 20, intervalMs: 10 }), RangeError);
  assert.throws(() => remusPolicy({ checkpointPauseMs: 1, intervalMs: 0 }), RangeError);
  assert.equal(remusPolicy({ checkpointPauseMs: 2, intervalMs: 40 }).name, "remus");
});
