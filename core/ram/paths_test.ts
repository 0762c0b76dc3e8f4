import assert from "node:assert/strict";
import fc from "fast-check";
import { MyceliumError } from "../errors.ts";
import { parseRamConfig } from "./config.ts";
import { type PathMeasurement, type PathsConfig, PathSet, type PathState } from "./paths.ts";

const DEFAULT_PATHS = parseRamConfig({}).paths;

type Make = (config: PathsConfig, ids: string[]) => PathSet;
const real: Make = (config, ids) => new PathSet(config, ids);

// ---------------------------------------------------------------------------------------
// Scenarios: a config, some paths, and a sequence of measurements and probe outcomes

type Op =
  | { kind: "observe"; i: number; m: PathMeasurement }
  | { kind: "probe"; i: number; ok: boolean };

interface Scenario {
  config: PathsConfig;
  ids: string[];
  ops: Op[];
}

const configArb: fc.Arbitrary<PathsConfig> = fc.oneof(
  fc.constant(DEFAULT_PATHS),
  fc
    .record({
      degradedLatencyMs: fc.double({ min: 1, max: 300, noNaN: true }),
      degradedLoss: fc.double({ min: 0, max: 0.1, noNaN: true }),
      probeIntervalMs: fc.constant(100),
      failedProbes: fc.integer({ min: 1, max: 4 }),
    })
    .map((paths) => parseRamConfig({ paths: { ...paths } }).paths),
);

const measurementArb: fc.Arbitrary<PathMeasurement> = fc.record({
  bandwidthBytesPerMs: fc.oneof(
    { weight: 4, arbitrary: fc.double({ min: 1e-3, max: 1e7, noNaN: true }) },
    fc.constantFrom(1, 1000, 0, -5, NaN, Infinity),
  ),
  latencyMs: fc.oneof(
    { weight: 4, arbitrary: fc.double({ min: 0, max: 300, noNaN: true }) },
    fc.constantFrom(100, NaN, -1, Infinity),
  ),
  lossRate: fc.oneof(
    { weight: 4, arbitrary: fc.double({ min: 0, max: 0.05, noNaN: true }) },
    fc.constantFrom(0.01, NaN, -0.1, 2),
  ),
}, { requiredKeys: [] });

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .tuple(configArb, fc.integer({ min: 1, max: 6 }))
  .chain(([config, n]) =>
    fc.record({
      config: fc.constant(config),
      ids: fc.constant(Array.from({ length: n }, (_, i) => `relay-${i}`)),
      ops: fc.array(
        fc.oneof(
          fc.record({
            kind: fc.constant("observe" as const),
            i: fc.nat(n - 1),
            m: measurementArb,
          }),
          fc.record({
            kind: fc.constant("probe" as const),
            i: fc.nat(n - 1),
            ok: fc.integer({ min: 0, max: 9 }).map((x) => x < 3), // mostly failures
          }),
        ),
        { maxLength: 40 },
      ),
    })
  );

function run(make: Make, s: Scenario): PathSet {
  const set = make(s.config, s.ids);
  for (const op of s.ops) {
    if (op.kind === "observe") set.observe(s.ids[op.i], op.m);
    else set.probeResult(s.ids[op.i], op.ok);
  }
  return set;
}

/** An independent model of the same rules: latest valid values, consecutive failures. */
function model(s: Scenario) {
  const paths = s.ids.map(() => ({
    bw: undefined as number | undefined,
    lat: undefined as number | undefined,
    loss: undefined as number | undefined,
    fails: 0,
  }));
  for (const op of s.ops) {
    const p = paths[op.i];
    if (op.kind === "probe") {
      p.fails = op.ok ? 0 : p.fails + 1;
      continue;
    }
    const { bandwidthBytesPerMs: bw, latencyMs: lat, lossRate: loss } = op.m;
    if (bw !== undefined && bw > 0 && bw < Infinity) p.bw = bw;
    if (lat !== undefined && lat >= 0 && lat < Infinity) p.lat = lat;
    if (loss !== undefined && loss >= 0 && loss <= 1) p.loss = loss;
  }
  const states: PathState[] = paths.map((p) =>
    p.fails >= s.config.failedProbes
      ? "failed"
      : (p.lat ?? 0) > s.config.degradedLatencyMs || (p.loss ?? 0) > s.config.degradedLoss
      ? "degraded"
      : "healthy"
  );
  const live = s.ids.map((_, i) => i).filter((i) => states[i] !== "failed");
  const measured = live.filter((i) => paths[i].bw !== undefined).map((i) => paths[i].bw!);
  const mean = measured.length > 0 ? measured.reduce((a, b) => a + b, 0) / measured.length : 1;
  const w = live.map((i) => (paths[i].bw ?? mean) * (states[i] === "degraded" ? 0.5 : 1));
  const total = w.reduce((a, b) => a + b, 0);
  const shares = new Map(live.map((i, k) => [s.ids[i], w[k] / total]));
  return { states, shares };
}

// ---------------------------------------------------------------------------------------
// Properties, each run against PathSet and against a broken variant it must catch

function sharesSumToOneOverLivePaths(make: Make) {
  return fc.property(scenarioArb, (s) => {
    const set = run(make, s);
    const shares = set.shares();
    const live = s.ids.filter((id) => set.state(id) !== "failed");
    assert.deepEqual([...shares.keys()], live); // failed paths are absent, i.e. get 0
    assert.equal(set.alive(), live.length > 0);
    if (live.length === 0) return;
    let sum = 0;
    for (const v of shares.values()) {
      assert.ok(Number.isFinite(v) && v > 0 && v <= 1, `share ${v}`);
      sum += v;
    }
    assert.ok(Math.abs(sum - 1) <= 1e-9, `sum ${sum}`);
  });
}

function matchesModel(make: Make) {
  return fc.property(scenarioArb, (s) => {
    const set = run(make, s);
    const m = model(s);
    assert.deepEqual(s.ids.map((id) => set.state(id)), m.states);
    const shares = set.shares();
    assert.deepEqual([...shares.keys()], [...m.shares.keys()]);
    for (const [id, v] of m.shares) {
      assert.ok(Math.abs(shares.get(id)! - v) <= 1e-12, `${id}: ${shares.get(id)} vs ${v}`);
    }
  });
}

const bytesArb = fc.oneof(
  fc.integer({ min: 0, max: 20 }),
  fc.integer({ min: 0, max: 2 ** 31 }),
  fc.maxSafeNat(),
  fc.constant(Number.MAX_SAFE_INTEGER),
);

function assignPreservesTotal(make: Make) {
  return fc.property(scenarioArb, bytesArb, (s, bytes) => {
    const set = run(make, s);
    const parts = set.assign(bytes);
    const shares = set.shares();
    assert.deepEqual([...parts.keys()], [...shares.keys()]);
    if (!set.alive()) return assert.equal(parts.size, 0);
    let sum = 0;
    for (const [id, part] of parts) {
      assert.ok(Number.isSafeInteger(part) && part >= 0, `${id}: ${part}`);
      // Largest remainder: within one byte of the exact quota (plus float slack).
      const quota = bytes * shares.get(id)!;
      assert.ok(Math.abs(part - quota) < 1 + quota * 1e-12, `${id}: ${part} vs ${quota}`);
      sum += part;
    }
    assert.equal(sum, bytes);
    assert.deepEqual(run(make, s).assign(bytes), parts); // deterministic
  });
}

/** A degraded path gets exactly half the share of a healthy path of equal bandwidth. */
function degradedHalves(make: Make) {
  return fc.property(
    scenarioArb,
    fc.double({ min: 1e-3, max: 1e7, noNaN: true }),
    fc.boolean(),
    (s, bw, byLoss) => {
      const ids = [...s.ids, "twin-healthy", "twin-degraded"];
      const set = run(make, { ...s, ids });
      set.observe("twin-healthy", { bandwidthBytesPerMs: bw, latencyMs: 1, lossRate: 0 });
      set.observe(
        "twin-degraded",
        byLoss
          ? { bandwidthBytesPerMs: bw, latencyMs: 1, lossRate: s.config.degradedLoss + 0.001 }
          : { bandwidthBytesPerMs: bw, latencyMs: s.config.degradedLatencyMs * 1.01, lossRate: 0 },
      );
      assert.equal(set.state("twin-healthy"), "healthy");
      assert.equal(set.state("twin-degraded"), "degraded");
      const shares = set.shares();
      assert.equal(shares.get("twin-degraded")! * 2, shares.get("twin-healthy"));
    },
  );
}

/** Broken variants: each must be caught by at least one of the properties above. */
class EqualShares extends PathSet {
  override shares(): Map<string, number> {
    const live = [...super.shares().keys()];
    return new Map(live.map((id) => [id, 1 / live.length]));
  }
}
class IncludesFailed extends PathSet {
  readonly #ids: string[];
  constructor(config: PathsConfig, ids: string[]) {
    super(config, ids);
    this.#ids = ids;
  }
  override shares(): Map<string, number> {
    const s = super.shares();
    return new Map(this.#ids.map((id) => [id, s.get(id) ?? 1 / this.#ids.length]));
  }
}
class Unnormalised extends PathSet {
  override shares(): Map<string, number> {
    return new Map([...super.shares()].map(([id, v]) => [id, v * 1.01]));
  }
}
class RoundingAssign extends PathSet {
  override assign(bytes: number): Map<string, number> {
    return new Map([...this.shares()].map(([id, v]) => [id, Math.round(bytes * v)]));
  }
}

Deno.test("paths: shares sum to 1 over exactly the live paths", () => {
  fc.assert(sharesSumToOneOverLivePaths(real));
});

Deno.test("paths: the sum check catches unnormalised shares and shares for failed paths", () => {
  assert.ok(fc.check(sharesSumToOneOverLivePaths((c, ids) => new Unnormalised(c, ids))).failed);
  assert.ok(fc.check(sharesSumToOneOverLivePaths((c, ids) => new IncludesFailed(c, ids))).failed);
});

Deno.test("paths: states and shares match an independent model of the rules", () => {
  fc.assert(matchesModel(real));
});

Deno.test("paths: the model check catches bandwidth-blind shares", () => {
  assert.ok(fc.check(matchesModel((c, ids) => new EqualShares(c, ids))).failed);
});

Deno.test("paths: assign preserves the total exactly, parts integral, >= 0 and near quota", () => {
  fc.assert(assignPreservesTotal(real));
});

Deno.test("paths: the assign check catches per-path rounding", () => {
  assert.ok(fc.check(assignPreservesTotal((c, ids) => new RoundingAssign(c, ids))).failed);
});

Deno.test("paths: a degraded path's share is exactly half a healthy one's of equal bandwidth", () => {
  fc.assert(degradedHalves(real));
});

Deno.test("paths: the halving check catches shares that ignore degradation", () => {
  assert.ok(fc.check(degradedHalves((c, ids) => new EqualShares(c, ids))).failed);
});

// ---------------------------------------------------------------------------------------
// Worked examples

Deno.test("paths: shares proportional to bandwidth; unmeasured paths count as the mean", () => {
  const set = new PathSet(DEFAULT_PATHS, ["a", "b", "c"]);
  // Nothing measured: equal shares.
  assert.deepEqual([...set.shares().values()], [1 / 3, 1 / 3, 1 / 3]);
  set.observe("a", { bandwidthBytesPerMs: 300 });
  set.observe("b", { bandwidthBytesPerMs: 100 });
  // c counts as mean(300, 100) = 200.
  assertShares(set.shares(), { a: 0.5, b: 1 / 6, c: 1 / 3 });
  set.observe("b", { latencyMs: 150 }); // degraded: 100 -> 50
  assertShares(set.shares(), { a: 300 / 550, b: 50 / 550, c: 200 / 550 });
});

function assertShares(actual: Map<string, number>, expected: Record<string, number>): void {
  assert.deepEqual([...actual.keys()], Object.keys(expected));
  for (const [id, v] of Object.entries(expected)) {
    assert.ok(Math.abs(actual.get(id)! - v) <= 1e-15, `${id}: ${actual.get(id)} vs ${v}`);
  }
}

Deno.test("paths: degraded strictly above 100 ms or 1 % loss, by default", () => {
  const set = new PathSet(DEFAULT_PATHS, ["p"]);
  assert.equal(set.state("p"), "healthy");
  set.observe("p", { latencyMs: 100, lossRate: 0.01 });
  assert.equal(set.state("p"), "healthy");
  set.observe("p", { latencyMs: 100.5 });
  assert.equal(set.state("p"), "degraded");
  set.observe("p", { latencyMs: 20, lossRate: 0.02 });
  assert.equal(set.state("p"), "degraded");
  set.observe("p", { lossRate: 0 });
  assert.equal(set.state("p"), "healthy");
});

Deno.test("paths: invalid measurements are ignored, the last valid one kept", () => {
  const set = new PathSet(DEFAULT_PATHS, ["a", "b"]);
  set.observe("a", { bandwidthBytesPerMs: 30, latencyMs: 150 });
  set.observe("b", { bandwidthBytesPerMs: 10 });
  const before = set.shares();
  for (
    const m of [
      { bandwidthBytesPerMs: 0 },
      { bandwidthBytesPerMs: -1 },
      { bandwidthBytesPerMs: NaN },
      { bandwidthBytesPerMs: Infinity },
      { latencyMs: NaN },
      { latencyMs: -1 },
      { lossRate: 1.5 },
      { lossRate: NaN },
      {},
    ]
  ) set.observe("a", m);
  assert.equal(set.state("a"), "degraded");
  assert.deepEqual(set.shares(), before);
});

Deno.test("paths: failed after 3 consecutive failed probes; a success restores it", () => {
  const set = new PathSet(DEFAULT_PATHS, ["a", "b"]);
  set.observe("a", { latencyMs: 500 });
  set.probeResult("a", false);
  set.probeResult("a", false);
  set.probeResult("a", true); // not consecutive
  set.probeResult("a", false);
  set.probeResult("a", false);
  assert.equal(set.state("a"), "degraded");
  set.probeResult("a", false);
  assert.equal(set.state("a"), "failed");
  set.observe("a", { latencyMs: 5 }); // measurements alone do not revive a failed path
  assert.equal(set.state("a"), "failed");
  assert.deepEqual(Object.fromEntries(set.shares()), { b: 1 });
  set.probeResult("a", true);
  assert.equal(set.state("a"), "healthy"); // per its latest measurements
});

Deno.test("paths: replication continues while one path is alive and stops when all fail", () => {
  const ids = ["a", "b", "c"];
  const set = new PathSet(DEFAULT_PATHS, ids);
  ids.forEach((id, i) => set.observe(id, { bandwidthBytesPerMs: 10 * (i + 1) }));
  const failPath = (id: string) => {
    for (let k = 0; k < DEFAULT_PATHS.failedProbes; k++) set.probeResult(id, false);
  };
  failPath("a");
  failPath("c");
  assert.ok(set.alive());
  assert.deepEqual(Object.fromEntries(set.shares()), { b: 1 });
  assert.deepEqual(Object.fromEntries(set.assign(12345)), { b: 12345 });
  failPath("b");
  assert.equal(set.alive(), false);
  assert.equal(set.shares().size, 0);
  assert.equal(set.assign(12345).size, 0);
  set.probeResult("c", true);
  assert.ok(set.alive());
  assert.deepEqual(Object.fromEntries(set.assign(7)), { c: 7 });
  assert.equal(new PathSet(DEFAULT_PATHS, []).alive(), false);
});

Deno.test("paths: assign by largest remainder, ties to the earlier path", () => {
  const set = new PathSet(DEFAULT_PATHS, ["a", "b", "c"]);
  assert.deepEqual([...set.assign(10).values()], [4, 3, 3]);
  assert.deepEqual([...set.assign(2).values()], [1, 1, 0]);
  assert.deepEqual([...set.assign(0).values()], [0, 0, 0]);
  set.observe("a", { bandwidthBytesPerMs: 1 });
  set.observe("b", { bandwidthBytesPerMs: 1 });
  set.observe("c", { bandwidthBytesPerMs: 2 }); // shares 1/4, 1/4, 1/2 (exact in binary)
  assert.deepEqual([...set.assign(10).values()], [3, 2, 5]); // 2.5, 2.5, 5: tie -> a
  assert.deepEqual([...set.assign(3).values()], [1, 1, 1]); // .75, .75, 1.5: largest rems
  assert.deepEqual([...set.assign(19).values()], [5, 5, 9]); // 4.75, 4.75, 9.5
});

Deno.test("paths: bad ids and byte counts are rejected", () => {
  assert.throws(() => new PathSet(DEFAULT_PATHS, ["a", "a"]), MyceliumError);
  const set = new PathSet(DEFAULT_PATHS, ["a"]);
  assert.throws(() => set.observe("x", {}), /unknown path id "x"/);
  assert.throws(() => set.probeResult("x", true), /unknown path id/);
  assert.throws(() => set.state("x"), /unknown path id/);
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
    assert.throws(() => set.assign(bad), /safe integer/);
  }
});

Deno.test("paths: assign stays exact when float quotas overshoot or undershoot the total", () => {
  // Near 2^53, bytes * share rounds: the floors can sum to more than `bytes`, or leave as
  // many leftover bytes as there are paths. Find both cases and check the split is exact.
  const ids = ["a", "b", "c", "d", "e"];
  let over = 0;
  let under = 0;
  for (let k = 0; k < 20000 && (over < 5 || under < 5); k++) {
    const set = new PathSet(DEFAULT_PATHS, ids);
    ids.forEach((id, i) =>
      set.observe(id, { bandwidthBytesPerMs: 1 + ((k * 7919 + i * 104729) % 9973) / 7 })
    );
    const bytes = Number.MAX_SAFE_INTEGER - k;
    let floors = 0;
    for (const v of set.shares().values()) floors += Math.floor(bytes * v);
    if (floors > bytes) over++;
    else if (bytes - floors >= ids.length) under++;
    else continue;
    let sum = 0;
    for (const part of set.assign(bytes).values()) {
      assert.ok(Number.isSafeInteger(part) && part >= 0);
      sum += part;
    }
    assert.equal(sum, bytes);
  }
  assert.ok(over >= 5 && under >= 5, `edge cases found: over ${over}, under ${under}`);
});
