import assert from "node:assert/strict";
import fc from "fast-check";
import { z } from "zod";
import { ConfigError } from "../errors.ts";
import { throttleCurveSchema } from "../throttle.ts";
import {
  DEFAULT_PROFILES,
  parseRamConfig,
  type RamConfig,
  ramConfigSchema,
  resolveParams,
} from "./config.ts";
import { type LatencyProfileName, PAGE_SIZE, type ReplicationParams } from "./params.ts";

const MiB = 1024 * 1024;
const PROFILES: LatencyProfileName[] = ["low", "medium", "high"];

function configErrorOf(input: unknown, path?: string): string {
  try {
    parseRamConfig(input, path);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.kind, "config");
    return e.message;
  }
  assert.fail(`expected ConfigError for ${JSON.stringify(input)}`);
}

/** `{a: {b: value}}` from "a.b". */
function nested(path: string, value: unknown): Record<string, unknown> {
  const keys = path.split(".");
  let out: unknown = value;
  for (let i = keys.length - 1; i >= 0; i--) out = { [keys[i]]: out };
  return out as Record<string, unknown>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Deep merge of plain objects; arrays, curves (objects with a `curve` key) and leaves replace. */
function deepMerge(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over) || "curve" in over && typeof over.curve === "string") {
    return over;
  }
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

// ---------------------------------------------------------------------------------------
// Defaults and merging

Deno.test("ram config: defaults are DESIGN.md's numbers", () => {
  const c = parseRamConfig({});
  assert.deepEqual(c, {
    backupNodeCount: 2,
    maxBufferBytes: 64 * MiB,
    resumeLevel: 0.8,
    windowBytes: 16 * MiB,
    chunkBytes: 1 * MiB,
    migration: { catchUpLevel: 0.05, downtimeBudgetMs: 300 },
    lease: { durationMs: 1500, renewMs: 500 },
    profile: "auto",
    profiles: {
      low: {
        intervalMs: 5,
        curve: { curve: "linear", threshold: 0.6, maxIntensity: 0.9 },
        pauseEnabled: true,
        convergenceTimeoutMs: 2000,
        migrationAbortMs: 5000,
      },
      medium: {
        intervalMs: 25,
        curve: { curve: "exponential", threshold: 0.7, maxIntensity: 0.9, exponent: 2 },
        pauseEnabled: true,
        convergenceTimeoutMs: 5000,
        migrationAbortMs: 15000,
      },
      high: {
        intervalMs: 100,
        curve: { curve: "exponential", threshold: 0.8, maxIntensity: 0.9, exponent: 3 },
        pauseEnabled: false,
        convergenceTimeoutMs: 10000,
        migrationAbortMs: 30000,
      },
    },
    rtt: { ewmaAlpha: 0.2, lowBelowMs: 10, mediumBelowMs: 100, hysteresis: 0.2 },
    paths: { degradedLatencyMs: 100, degradedLoss: 0.01, probeIntervalMs: 100, failedProbes: 3 },
  });
  assert.deepEqual(c.profiles, JSON.parse(JSON.stringify(DEFAULT_PROFILES)));
});

Deno.test("ram config: parsing twice gives independent objects", () => {
  const a = parseRamConfig({});
  const b = parseRamConfig({});
  a.profiles.low.curve.threshold = 0.1;
  a.lease.durationMs = 1;
  assert.equal(b.profiles.low.curve.threshold, 0.6);
  assert.equal(b.lease.durationMs, 1500);
  assert.equal(DEFAULT_PROFILES.low.curve.threshold, 0.6);
  assert.ok(Object.isFrozen(DEFAULT_PROFILES.low) && Object.isFrozen(DEFAULT_PROFILES.low.curve));
});

Deno.test("ram config: a partial profile keeps the rest of its defaults", () => {
  const c = parseRamConfig({ profiles: { low: { intervalMs: 8 } } });
  assert.deepEqual(c.profiles.low, { ...DEFAULT_PROFILES.low, intervalMs: 8 });
  assert.deepEqual(c.profiles.medium, DEFAULT_PROFILES.medium);
  assert.deepEqual(c.profiles.high, DEFAULT_PROFILES.high);
  assert.equal(c.maxBufferBytes, 64 * MiB);
});

Deno.test("ram config: a partial curve of the default's kind merges over the profile default", () => {
  const c = parseRamConfig({
    profiles: {
      low: { curve: { threshold: 0.5 } }, // no kind: merged over Low's linear curve
      medium: { curve: { curve: "exponential", threshold: 0.75 } }, // keeps Medium's e = 2
      high: { curve: { curve: "linear" } }, // another kind: that kind's own defaults
    },
  });
  assert.deepEqual(c.profiles.low.curve, { curve: "linear", threshold: 0.5, maxIntensity: 0.9 });
  assert.deepEqual(c.profiles.medium.curve, {
    curve: "exponential",
    threshold: 0.75,
    maxIntensity: 0.9,
    exponent: 2,
  });
  assert.deepEqual(c.profiles.high.curve, { curve: "linear", threshold: 0.6, maxIntensity: 0.9 });
  // A custom curve replaces the default entirely.
  const points = [{ x: 0, y: 0 }, { x: 1, y: 0.5 }];
  const d = parseRamConfig({ profiles: { high: { curve: { curve: "custom", points } } } });
  assert.deepEqual(d.profiles.high.curve, {
    curve: "custom",
    threshold: 0.6,
    maxIntensity: 0.9,
    points,
  });
});

// ---------------------------------------------------------------------------------------
// Arbitraries

const frac = (minExcl: boolean, maxExcl: boolean) =>
  fc.double({ min: 0, max: 1, minExcluded: minExcl, maxExcluded: maxExcl, noNaN: true });
const posMs = fc.oneof(
  fc.double({ min: 1e-3, max: 1e7, noNaN: true }),
  fc.integer({ min: 1, max: 10 ** 6 }),
);

const curveArb = fc.oneof(
  fc.record({
    curve: fc.constant("linear" as const),
    threshold: frac(false, true),
    maxIntensity: frac(false, false),
  }),
  fc.record({
    curve: fc.constant("exponential" as const),
    threshold: frac(false, true),
    maxIntensity: frac(false, false),
    exponent: fc.double({ min: 0.01, max: 20, noNaN: true }),
  }),
  fc.record({
    curve: fc.constant("custom" as const),
    threshold: frac(false, true),
    maxIntensity: frac(false, false),
    points: fc
      .uniqueArray(fc.integer({ min: 0, max: 100 }), { minLength: 2, maxLength: 5 })
      .map((xs) => xs.sort((a, b) => a - b).map((x) => ({ x: x / 100, y: x / 100 }))),
  }),
);

const profileArb = fc.record({
  intervalMs: posMs,
  curve: curveArb,
  pauseEnabled: fc.boolean(),
  convergenceTimeoutMs: posMs,
  migrationAbortMs: posMs,
});

/** Groups of fields constrained together (kept or dropped as one unit in partial inputs). */
const unitsArb = fc.record({
  backupNodeCount: fc.record({ backupNodeCount: fc.integer({ min: 0, max: 16 }) }),
  maxBufferBytes: fc.record({ maxBufferBytes: fc.integer({ min: PAGE_SIZE, max: 2 ** 40 }) }),
  resumeLevel: fc.record({ resumeLevel: frac(true, true) }),
  chunkWindow: fc
    .tuple(fc.integer({ min: PAGE_SIZE, max: 2 ** 24 }), fc.integer({ min: 0, max: 2 ** 30 }))
    .map(([chunkBytes, extra]) => ({ chunkBytes, windowBytes: chunkBytes + extra })),
  migration: fc.record({
    migration: fc.record(
      { catchUpLevel: frac(false, true), downtimeBudgetMs: posMs },
      { requiredKeys: [] },
    ),
  }),
  lease: fc
    .tuple(fc.integer({ min: 3, max: 10 ** 6 }), fc.double({ min: 0.01, max: 0.49, noNaN: true }))
    .map(([durationMs, f]) => ({ lease: { durationMs, renewMs: durationMs * f } })),
  profile: fc.record({ profile: fc.constantFrom("auto", "low", "medium", "high") }),
  profiles: fc.record({
    profiles: fc.record({
      low: fc
        .subarray(["intervalMs", "curve", "pauseEnabled", "convergenceTimeoutMs"])
        .chain((keep) => profileArb.map((p) => pick(p, keep))),
      medium: profileArb,
      high: profileArb.map((p) => pick(p, ["curve", "migrationAbortMs"])),
    }, { requiredKeys: [] }),
  }),
  rtt: fc
    .tuple(
      fc.double({ min: 0.01, max: 1, noNaN: true }),
      fc.double({ min: 0.1, max: 100, noNaN: true }),
      fc.double({ min: 1.01, max: 100, noNaN: true }),
      frac(false, true),
    )
    .map(([ewmaAlpha, lowBelowMs, ratio, t]) => {
      const mediumBelowMs = lowBelowMs * ratio;
      // Largest h with low*(1+h) <= medium*(1-h) is (ratio-1)/(ratio+1); stay below it.
      const hysteresis = t * ((ratio - 1) / (ratio + 1)) * 0.99;
      return { rtt: { ewmaAlpha, lowBelowMs, mediumBelowMs, hysteresis } };
    }),
  paths: fc.record({
    paths: fc.record({
      degradedLatencyMs: posMs,
      degradedLoss: frac(false, false),
      probeIntervalMs: posMs,
      failedProbes: fc.integer({ min: 1, max: 10 }),
    }, { requiredKeys: [] }),
  }),
});

function pick<T extends object>(o: T, keys: readonly string[]): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => keys.includes(k))) as Partial<T>;
}

/** fast-check records have null prototypes; inputs from YAML/JSON have Object's. */
const plain = (o: unknown): Obj => JSON.parse(JSON.stringify(o));

/** A partial input: a random subset of the units, each valid on its own against defaults. */
const partialArb = unitsArb.chain((units) =>
  fc.subarray(Object.values(units)).map((kept) => plain(Object.assign({}, ...kept)))
);
/** A complete input (every unit present). */
const fullArb = unitsArb.map((units) => plain(Object.assign({}, ...Object.values(units))));

Deno.test("ram config: any valid partial input equals the defaults deep-merged with it", () => {
  const defaults = parseRamConfig({});
  fc.assert(
    fc.property(partialArb, (input) => {
      assert.deepEqual(parseRamConfig(input), deepMerge(defaults, input));
    }),
  );
});

Deno.test("ram config: the merge check catches a dropped default", () => {
  // The same comparison as above against a parser that forgets nested defaults must fail.
  const noDefaults = (input: Obj) => ({ ...parseRamConfig({}), ...input });
  const defaults = parseRamConfig({});
  const r = fc.check(
    fc.property(partialArb, (input) => {
      assert.deepEqual(noDefaults(input), deepMerge(defaults, input));
    }),
  );
  assert.ok(r.failed);
});

// ---------------------------------------------------------------------------------------
// Errors name their paths

const NUMERIC_LEAVES = [
  "backupNodeCount",
  "maxBufferBytes",
  "resumeLevel",
  "windowBytes",
  "chunkBytes",
  "migration.catchUpLevel",
  "migration.downtimeBudgetMs",
  "lease.durationMs",
  "lease.renewMs",
  ...PROFILES.flatMap((p) => [
    `profiles.${p}.intervalMs`,
    `profiles.${p}.convergenceTimeoutMs`,
    `profiles.${p}.migrationAbortMs`,
    `profiles.${p}.curve.threshold`,
    `profiles.${p}.curve.maxIntensity`,
  ]),
  "profiles.medium.curve.exponent",
  "profiles.high.curve.exponent",
  "rtt.ewmaAlpha",
  "rtt.lowBelowMs",
  "rtt.mediumBelowMs",
  "rtt.hysteresis",
  "paths.degradedLatencyMs",
  "paths.degradedLoss",
  "paths.probeIntervalMs",
  "paths.failedProbes",
];

Deno.test("ram config: a non-number in any numeric field is reported at its full path", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...NUMERIC_LEAVES),
      fc.constantFrom<unknown>(NaN, Infinity, -Infinity, "1", null, true, [], {}),
      fc.constantFrom("ram", "spec.replicationConfig"),
      (leaf, bad, root) => {
        const msg = configErrorOf(nested(leaf, bad), root);
        assert.ok(msg.startsWith(`${root}.${leaf}: `), msg);
        assert.ok(!msg.includes("; "), `one issue expected: ${msg}`);
      },
    ),
  );
});

Deno.test("ram config: each out-of-range value is reported at its full path", () => {
  const cases: Array<[string, unknown, string]> = [
    ["backupNodeCount", -1, ">= 0"],
    ["backupNodeCount", 1.5, "integer"],
    ["maxBufferBytes", 0, ">= 4096"],
    ["maxBufferBytes", 4095, ">= 4096"],
    ["resumeLevel", 0, "> 0"],
    ["resumeLevel", 1, "< 1"],
    ["windowBytes", 100, ">= 4096"],
    ["chunkBytes", 4095, ">= 4096"],
    ["chunkBytes", 4096.5, "integer"],
    ["migration.catchUpLevel", 1, "< 1"],
    ["migration.catchUpLevel", -0.01, ">= 0"],
    ["migration.downtimeBudgetMs", 0, "> 0"],
    ["lease.durationMs", 0, "> 0"],
    ["lease.renewMs", -1, "> 0"],
    ["lease.renewMs", 750, "< durationMs / 2 (750)"],
    ["profile", "fast", '"auto", "low", "medium" or "high"'],
    ["profiles.low.intervalMs", 0, "> 0"],
    ["profiles.low.curve.threshold", 1, "< 1"],
    ["profiles.low.curve.maxIntensity", 1.5, "<= 1"],
    ["profiles.low.curve.curve", "cubic", '"linear", "exponential" or "custom"'],
    ["profiles.low.curve", "linear", 'an object with a "curve" field'],
    ["profiles.low.pauseEnabled", "yes", "boolean"],
    ["profiles.low.convergenceTimeoutMs", 0, "> 0"],
    ["profiles.low.migrationAbortMs", -5, "> 0"],
    ["profiles.medium.curve.exponent", 0, "> 0"],
    ["profiles.medium.curve.threshold", -0.1, ">= 0"],
    ["profiles.high.intervalMs", -100, "> 0"],
    ["profiles.high.pauseEnabled", 1, "boolean"],
    ["rtt.ewmaAlpha", 0, "> 0"],
    ["rtt.ewmaAlpha", 1.5, "<= 1"],
    ["rtt.lowBelowMs", 0, "> 0"],
    ["rtt.mediumBelowMs", 5, "> lowBelowMs (10)"],
    ["rtt.hysteresis", 1, "< 1"],
    ["rtt.hysteresis", 0.9, "too large"],
    ["paths.degradedLatencyMs", 0, "> 0"],
    ["paths.degradedLoss", 1.5, "<= 1"],
    ["paths.probeIntervalMs", 0, "> 0"],
    ["paths.failedProbes", 0, ">= 1"],
    ["paths.failedProbes", 2.5, "integer"],
  ];
  for (const [leaf, bad, expect] of cases) {
    const msg = configErrorOf(nested(leaf, bad));
    assert.ok(msg.startsWith(`ram.${leaf}: `), `${leaf}=${bad}: ${msg}`);
    assert.ok(msg.includes(expect), `${leaf}=${bad}: expected ${expect} in ${msg}`);
  }
});

Deno.test("ram config: cross-field rules", () => {
  assert.match(
    configErrorOf({ chunkBytes: 2 * MiB, windowBytes: 1 * MiB }),
    /^ram\.chunkBytes: must be <= windowBytes \(1048576\)/,
  );
  assert.equal(parseRamConfig({ chunkBytes: 4096, windowBytes: 4096 }).windowBytes, 4096);
  // renewMs < durationMs / 2, strictly.
  assert.match(
    configErrorOf({ lease: { durationMs: 1000, renewMs: 500 } }),
    /^ram\.lease\.renewMs/,
  );
  assert.equal(parseRamConfig({ lease: { durationMs: 1000, renewMs: 499 } }).lease.renewMs, 499);
  // Hysteresis bands must not overlap: low*(1+h) <= medium*(1-h).
  assert.equal(
    parseRamConfig({ rtt: { lowBelowMs: 10, mediumBelowMs: 30, hysteresis: 0.5 } })
      .rtt.hysteresis,
    0.5,
  );
  assert.match(
    configErrorOf({ rtt: { lowBelowMs: 10, mediumBelowMs: 30, hysteresis: 0.51 } }),
    /^ram\.rtt\.hysteresis: too large/,
  );
});

Deno.test("ram config: unknown fields are reported by name, at any depth", () => {
  const msg = configErrorOf({
    backupCount: 3,
    profiles: { low: { intervalMS: 5 }, ultra: {} },
    paths: { failedProbe: 2 },
  });
  for (
    const p of [
      "ram.backupCount",
      "ram.profiles.low.intervalMS",
      "ram.profiles.ultra",
      "ram.paths.failedProbe",
    ]
  ) assert.ok(msg.includes(`${p}: unknown field`), `${p} in ${msg}`);
  assert.match(configErrorOf(null), /^ram: .*object/);
  assert.match(configErrorOf([], "x"), /^x: /);
});

Deno.test("ram config: every field of the schema has a description", () => {
  const undocumented = (schema: z.ZodType): string[] => {
    const missing: string[] = [];
    const walk = (js: Obj, path: string) => {
      const props = js.properties;
      if (!isObj(props)) return;
      for (const [k, v] of Object.entries(props)) {
        if (!isObj(v)) continue;
        if (typeof v.description !== "string" || v.description === "") missing.push(path + k);
        walk(v, `${path}${k}.`);
      }
    };
    walk(z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Obj, "");
    return missing;
  };
  assert.deepEqual(undocumented(ramConfigSchema), []);
  // The check itself catches an undocumented field.
  assert.deepEqual(
    undocumented(
      z.strictObject({ a: z.number().describe("a"), b: z.strictObject({ c: z.number() }) }),
    ),
    ["b", "b.c"],
  );
});

// ---------------------------------------------------------------------------------------
// resolveParams

/** What any resolved parameter set must satisfy; one message per broken invariant. */
function paramViolations(p: ReplicationParams): string[] {
  const bad: string[] = [];
  const pos = (v: number) => Number.isFinite(v) && v > 0;
  const check = (ok: boolean, what: string) => {
    if (!ok) bad.push(what);
  };
  check(pos(p.intervalMs), "intervalMs > 0");
  check(throttleCurveSchema.safeParse(p.curve).success, "curve valid");
  check(typeof p.pauseEnabled === "boolean", "pauseEnabled boolean");
  check(pos(p.convergenceTimeoutMs), "convergenceTimeoutMs > 0");
  check(pos(p.migrationAbortMs), "migrationAbortMs > 0");
  check(Number.isSafeInteger(p.backupCount) && p.backupCount >= 0, "backupCount integer >= 0");
  check(Number.isSafeInteger(p.maxBufferBytes) && p.maxBufferBytes >= PAGE_SIZE, "maxBufferBytes");
  check(p.resumeLevel > 0 && p.resumeLevel < 1, "resumeLevel in (0, 1)");
  check(Number.isSafeInteger(p.chunkBytes) && p.chunkBytes >= PAGE_SIZE, "chunkBytes >= page");
  check(Number.isSafeInteger(p.windowBytes) && p.windowBytes >= p.chunkBytes, "window >= chunk");
  check(
    p.migrationCatchUpLevel >= 0 && p.migrationCatchUpLevel < 1,
    "migrationCatchUpLevel in [0, 1)",
  );
  check(pos(p.downtimeBudgetMs), "downtimeBudgetMs > 0");
  check(pos(p.leaseMs), "leaseMs > 0");
  check(pos(p.leaseRenewMs) && p.leaseRenewMs < p.leaseMs / 2, "0 < leaseRenewMs < leaseMs / 2");
  return bad;
}

const PARAM_KEYS = [
  "intervalMs",
  "curve",
  "pauseEnabled",
  "convergenceTimeoutMs",
  "migrationAbortMs",
  "backupCount",
  "maxBufferBytes",
  "resumeLevel",
  "windowBytes",
  "chunkBytes",
  "migrationCatchUpLevel",
  "downtimeBudgetMs",
  "leaseMs",
  "leaseRenewMs",
].sort();

Deno.test("resolveParams: defaults per profile", () => {
  const c = parseRamConfig({});
  for (const name of PROFILES) {
    const p = resolveParams(c, name);
    assert.deepEqual(Object.keys(p).sort(), PARAM_KEYS);
    assert.deepEqual(
      { ...p },
      {
        ...DEFAULT_PROFILES[name],
        backupCount: 2,
        maxBufferBytes: 64 * MiB,
        resumeLevel: 0.8,
        windowBytes: 16 * MiB,
        chunkBytes: 1 * MiB,
        migrationCatchUpLevel: 0.05,
        downtimeBudgetMs: 300,
        leaseMs: 1500,
        leaseRenewMs: 500,
      },
    );
  }
});

Deno.test("resolveParams: any valid config resolves one to one, satisfying the invariants", () => {
  fc.assert(
    fc.property(fullArb, fc.constantFrom(...PROFILES), (input, name) => {
      const c: RamConfig = parseRamConfig(input);
      const p = resolveParams(c, name);
      assert.deepEqual(paramViolations(p), []);
      assert.deepEqual(Object.keys(p).sort(), PARAM_KEYS);
      const prof = c.profiles[name];
      assert.deepEqual(
        [p.intervalMs, p.curve, p.pauseEnabled, p.convergenceTimeoutMs, p.migrationAbortMs],
        [
          prof.intervalMs,
          prof.curve,
          prof.pauseEnabled,
          prof.convergenceTimeoutMs,
          prof.migrationAbortMs,
        ],
      );
      assert.deepEqual(
        [p.backupCount, p.maxBufferBytes, p.resumeLevel, p.windowBytes, p.chunkBytes],
        [c.backupNodeCount, c.maxBufferBytes, c.resumeLevel, c.windowBytes, c.chunkBytes],
      );
      assert.deepEqual(
        [p.migrationCatchUpLevel, p.downtimeBudgetMs, p.leaseMs, p.leaseRenewMs],
        [
          c.migration.catchUpLevel,
          c.migration.downtimeBudgetMs,
          c.lease.durationMs,
          c.lease
            .renewMs,
        ],
      );
    }),
  );
});

Deno.test("resolveParams: the invariant check catches each broken field", () => {
  const ok = resolveParams(parseRamConfig({}), "low");
  assert.deepEqual(paramViolations(ok), []);
  const mutants: Array<Partial<ReplicationParams>> = [
    { intervalMs: 0 },
    { intervalMs: NaN },
    { curve: { curve: "linear", threshold: 1, maxIntensity: 0.9 } },
    { pauseEnabled: "yes" as unknown as boolean },
    { convergenceTimeoutMs: -1 },
    { migrationAbortMs: 0 },
    { backupCount: -1 },
    { backupCount: 1.5 },
    { maxBufferBytes: 0 },
    { resumeLevel: 1 },
    { resumeLevel: 0 },
    { chunkBytes: 100 },
    { windowBytes: ok.chunkBytes - 1 },
    { migrationCatchUpLevel: 1 },
    { downtimeBudgetMs: 0 },
    { leaseMs: 0 },
    { leaseRenewMs: ok.leaseMs / 2 },
  ];
  for (const m of mutants) {
    assert.ok(paramViolations({ ...ok, ...m }).length > 0, `not caught: ${JSON.stringify(m)}`);
  }
});
