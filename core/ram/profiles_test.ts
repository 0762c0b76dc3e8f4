import assert from "node:assert/strict";
import fc from "fast-check";
import { parseRamConfig } from "./config.ts";
import type { LatencyProfileName } from "./params.ts";
import { plainProfile, profileFor, type RttConfig, RttProfileSelector } from "./profiles.ts";

const DEFAULT_RTT = parseRamConfig({}).rtt;
const PROFILES: LatencyProfileName[] = ["low", "medium", "high"];
const level = (p: LatencyProfileName) => PROFILES.indexOf(p);

type Select = typeof profileFor;

/** Valid RTT configs (through the parser), including the default and h = 0. */
const rttArb: fc.Arbitrary<RttConfig> = fc.oneof(
  fc.constant(DEFAULT_RTT),
  fc
    .tuple(
      fc.double({ min: 0.01, max: 1, noNaN: true }),
      fc.double({ min: 0.1, max: 100, noNaN: true }),
      fc.double({ min: 1.01, max: 100, noNaN: true }),
      fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.99, noNaN: true })),
    )
    .map(([ewmaAlpha, lowBelowMs, ratio, t]) => {
      const mediumBelowMs = lowBelowMs * ratio;
      const hysteresis = t * ((ratio - 1) / (ratio + 1)); // bands stay disjoint
      return parseRamConfig({ rtt: { ewmaAlpha, lowBelowMs, mediumBelowMs, hysteresis } }).rtt;
    }),
);
const profileArb = fc.constantFrom(...PROFILES);

/** RTTs concentrated around the band edges of `rtt`, plus anything in [0, 3 * medium]. */
const rttNear = (rtt: RttConfig) =>
  fc.oneof(
    fc.double({ min: 0, max: rtt.mediumBelowMs * 3, noNaN: true }),
    fc
      .tuple(
        fc.constantFrom(rtt.lowBelowMs, rtt.mediumBelowMs),
        fc.constantFrom(1 - rtt.hysteresis, 1, 1 + rtt.hysteresis),
        fc.constantFrom(1 - 1e-12, 1, 1 + 1e-12),
      )
      .map(([b, f, e]) => b * f * e),
  );

/** Whether `s` lies inside `current`'s band widened by the margins (no boundary crossed). */
function withinBand(s: number, current: LatencyProfileName, rtt: RttConfig): boolean {
  const bounds = [rtt.lowBelowMs, rtt.mediumBelowMs];
  const i = level(current);
  const aboveFloor = i === 0 || s >= bounds[i - 1] * (1 - rtt.hysteresis);
  const belowCeiling = i === 2 || s < bounds[i] * (1 + rtt.hysteresis);
  return aboveFloor && belowCeiling;
}

// ---------------------------------------------------------------------------------------
// profileFor (pure)

function stayWithinBand(select: Select) {
  return fc.property(
    rttArb.chain((rtt) => fc.tuple(fc.constant(rtt), profileArb, rttNear(rtt))),
    ([rtt, current, s]) => {
      const next = select(s, current, rtt);
      if (withinBand(s, current, rtt)) assert.equal(next, current);
      else assert.notEqual(next, current); // a crossed margin does switch
    },
  );
}

function monotone(select: Select) {
  return fc.property(
    rttArb.chain((rtt) => fc.tuple(fc.constant(rtt), profileArb, rttNear(rtt), rttNear(rtt))),
    ([rtt, current, a, b]) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      assert.ok(level(select(lo, current, rtt)) <= level(select(hi, current, rtt)));
    },
  );
}

Deno.test("profileFor: switches exactly when a hysteresis margin is crossed", () => {
  fc.assert(stayWithinBand(profileFor));
});

Deno.test("profileFor: the band check catches a selector without hysteresis", () => {
  const plain: Select = (s, _current, rtt) => plainProfile(s, rtt);
  assert.ok(fc.check(stayWithinBand(plain)).failed);
});

Deno.test("profileFor: a higher RTT never selects a lower profile from the same one", () => {
  fc.assert(monotone(profileFor));
});

Deno.test("profileFor: the monotonicity check catches a non-monotone selector", () => {
  const broken: Select = (s, c, rtt) => s >= rtt.mediumBelowMs * 2 ? "low" : profileFor(s, c, rtt);
  assert.ok(fc.check(monotone(broken)).failed);
});

Deno.test("profileFor: with h = 0 it is the plain mapping, whatever the current profile", () => {
  fc.assert(
    fc.property(
      rttArb.map((r) => ({ ...r, hysteresis: 0 })).chain((rtt) =>
        fc.tuple(fc.constant(rtt), profileArb, rttNear(rtt))
      ),
      ([rtt, current, s]) => assert.equal(profileFor(s, current, rtt), plainProfile(s, rtt)),
    ),
  );
});

Deno.test("profileFor: worked values with the defaults (10 ms, 100 ms, h = 0.2)", () => {
  const cases: Array<[number, LatencyProfileName, LatencyProfileName]> = [
    [11.9, "low", "low"],
    [12, "low", "medium"], // leaving Low needs 10 * 1.2
    [119, "low", "medium"],
    [120, "low", "high"], // straight to High past 100 * 1.2
    [8, "medium", "medium"],
    [7.9, "medium", "low"], // re-entering Low needs < 10 * 0.8
    [119.9, "medium", "medium"],
    [120, "medium", "high"],
    [80, "high", "high"],
    [79.9, "high", "medium"],
    [7.9, "high", "low"],
    [NaN, "medium", "medium"],
  ];
  for (const [s, from, to] of cases) assert.equal(profileFor(s, from, DEFAULT_RTT), to, `${s}`);
  assert.deepEqual([9.99, 10, 99.99, 100].map((s) => plainProfile(s, DEFAULT_RTT)), [
    "low",
    "medium",
    "medium",
    "high",
  ]);
});

// ---------------------------------------------------------------------------------------
// RttProfileSelector

Deno.test("selector: the first sample initialises the average, then EWMA", () => {
  const s = new RttProfileSelector(DEFAULT_RTT);
  assert.equal(s.smoothedRttMs, undefined);
  assert.equal(s.profile, "medium");
  assert.equal(s.observe(50), "medium");
  assert.equal(s.smoothedRttMs, 50);
  s.observe(100);
  assert.equal(s.smoothedRttMs, 50 + 0.2 * (100 - 50));
  s.observe(0);
  assert.equal(s.smoothedRttMs, 60 + 0.2 * (0 - 60));
});

Deno.test("selector: NaN, negative and non-finite samples are ignored", () => {
  const s = new RttProfileSelector(DEFAULT_RTT);
  for (const bad of [NaN, -1, -0.001, Infinity, -Infinity]) {
    assert.equal(s.observe(bad), "medium");
    assert.equal(s.smoothedRttMs, undefined);
  }
  s.observe(5);
  for (const bad of [NaN, -1, Infinity]) assert.equal(s.observe(bad), "low");
  assert.equal(s.smoothedRttMs, 5);
  assert.equal(s.switches, 0);
});

Deno.test("selector: without an initial profile the first sample picks the plain mapping", () => {
  for (const [rtt, want] of [[1, "low"], [10, "medium"], [500, "high"]] as const) {
    const s = new RttProfileSelector(DEFAULT_RTT);
    assert.equal(s.observe(rtt), want);
    assert.equal(s.switches, 0); // choosing, not switching
  }
  // With an initial profile the first sample is already subject to hysteresis.
  const s = new RttProfileSelector(DEFAULT_RTT, "low");
  assert.equal(s.observe(11), "low");
  assert.equal(s.switches, 0);
  const t = new RttProfileSelector(DEFAULT_RTT, "low");
  assert.equal(t.observe(12), "medium");
  assert.equal(t.switches, 1);
});

Deno.test("selector: switches counts every profile change", () => {
  const s = new RttProfileSelector({ ...DEFAULT_RTT, ewmaAlpha: 1 });
  const seen = [1, 200, 1, 50, 50, 1].map((r) => s.observe(r));
  assert.deepEqual(seen, ["low", "high", "low", "medium", "medium", "low"]);
  assert.equal(s.switches, 4);
});

interface Selector {
  observe(rttMs: number): LatencyProfileName;
  readonly profile: LatencyProfileName;
}
type MakeSelector = (rtt: RttConfig, initial?: LatencyProfileName) => Selector;
const real: MakeSelector = (rtt, initial) => new RttProfileSelector(rtt, initial);

/** Constant RTT v (outside every hysteresis band) after any history ends in plain(v). */
function convergesOnConstant(make: MakeSelector) {
  return fc.property(
    rttArb
      .map((r) => ({ ...r, ewmaAlpha: Math.max(r.ewmaAlpha, 0.05) }))
      .chain((rtt) =>
        fc.tuple(
          fc.constant(rtt),
          fc.option(profileArb, { nil: undefined }),
          fc.array(fc.double({ min: 0, max: 1000, noNaN: true }), { maxLength: 20 }),
          fc.double({ min: 0, max: rtt.mediumBelowMs * 3, noNaN: true }),
        )
      ),
    ([rtt, initial, history, v]) => {
      const h = rtt.hysteresis;
      const margin = 1e-3;
      for (const b of [rtt.lowBelowMs, rtt.mediumBelowMs]) {
        fc.pre(v < b * (1 - h) * (1 - margin) || v >= b * (1 + h) * (1 + margin));
      }
      const sel = make(rtt, initial);
      for (const x of history) sel.observe(x);
      for (let i = 0; i < 1000; i++) sel.observe(v);
      assert.equal(sel.profile, plainProfile(v, rtt));
    },
  );
}

Deno.test("selector: a constant RTT converges to the profile its value maps to", () => {
  fc.assert(convergesOnConstant(real));
});

Deno.test("selector: the convergence check catches a selector that never switches", () => {
  const stuck: MakeSelector = (_rtt, initial) => ({
    profile: initial ?? "medium",
    observe() {
      return this.profile;
    },
  });
  assert.ok(fc.check(convergesOnConstant(stuck)).failed);
});

/** RTTs oscillating inside [B(1-h), B(1+h)) around one boundary B never cause a switch. */
function noFlapping(hysteresisOverride?: number) {
  return fc.property(
    rttArb
      .filter((r) => r.hysteresis >= 0.01)
      .chain((rtt) =>
        fc.tuple(
          fc.constant(rtt),
          fc.constantFrom(0, 1), // which boundary
          fc.boolean(), // start below (true) or above the boundary
          fc.boolean(), // give no initial profile
          fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
            minLength: 1,
            maxLength: 60,
          }),
        )
      ),
    ([rtt, bi, below, noInitial, ts]) => {
      const b = [rtt.lowBelowMs, rtt.mediumBelowMs][bi];
      const lo = b * (1 - rtt.hysteresis);
      const hi = b * (1 + rtt.hysteresis);
      // Strictly inside the band; alternate ends so the sequence really oscillates.
      const samples = ts.map((t, i) => {
        const x = i % 2 === 0 ? lo + (b - lo) * t : b + (hi - b) * t;
        return x < lo ? lo : x >= hi ? b : x;
      });
      const initial = noInitial ? undefined : PROFILES[below ? bi : bi + 1];
      const cfg = { ...rtt, hysteresis: hysteresisOverride ?? rtt.hysteresis };
      const sel = new RttProfileSelector(cfg, initial);
      const first = sel.observe(samples[0]);
      for (const x of samples.slice(1)) assert.equal(sel.observe(x), first);
      assert.equal(sel.switches, 0);
    },
  );
}

Deno.test("selector: no flapping while the RTT oscillates within the hysteresis band", () => {
  fc.assert(noFlapping());
  // Extreme oscillation with no smoothing: band edges, alternating.
  const sel = new RttProfileSelector({ ...DEFAULT_RTT, ewmaAlpha: 1 }, "low");
  for (let i = 0; i < 100; i++) sel.observe(i % 2 === 0 ? 8 : 11.999);
  assert.equal(sel.switches, 0);
  assert.equal(sel.profile, "low");
});

Deno.test("selector: the flapping check catches a selector with no hysteresis margin", () => {
  assert.ok(fc.check(noFlapping(0)).failed);
  const sel = new RttProfileSelector({ ...DEFAULT_RTT, ewmaAlpha: 1, hysteresis: 0 }, "low");
  for (let i = 0; i < 100; i++) sel.observe(i % 2 === 0 ? 8 : 11.999);
  assert.equal(sel.switches, 99);
});
