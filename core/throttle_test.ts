import fc from "fast-check";
import { z } from "zod";
import { ConfigError } from "./errors.ts";
import { formatPath, formatZodError } from "./config_errors.ts";
import {
  parseThrottleCurve,
  type ThrottleCurve,
  throttleCurveSchema,
  throttleIntensity,
} from "./throttle.ts";

// Minimal assertions (no jsr dependency: the lock file and import map are shared).
function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}
function assertEquals(actual: unknown, expected: unknown, msg?: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (!Object.is(actual, expected) && (typeof actual !== "object" || a !== e)) {
    throw new Error(`${msg ?? "values differ"}: actual ${a}, expected ${e}`);
  }
}
function configErrorOf(input: unknown, path?: string): string {
  try {
    parseThrottleCurve(input, path);
  } catch (e) {
    assert(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assertEquals(e.kind, "config");
    return e.message;
  }
  throw new Error(`expected ConfigError for ${JSON.stringify(input)}`);
}
function assertIncludes(haystack: string, needle: string): void {
  assert(haystack.includes(needle), `expected ${JSON.stringify(needle)} in: ${haystack}`);
}

// ---------------------------------------------------------------------------------------
// Arbitraries (curves are built through the parser, so they are valid by construction)

const thresholdArb = fc.oneof(
  fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
  fc.constantFrom(0, 0.6, 0.8, 0.999999),
);
const intensityArb = fc.oneof(
  fc.double({ min: 0, max: 1, noNaN: true }),
  fc.constantFrom(0, 0.9, 0.99, 1),
);
const exponentArb = fc.oneof(
  fc.double({ min: Number.MIN_VALUE, max: 20, noNaN: true }),
  fc.constantFrom(0.5, 1, 2, 3),
);

const linearArb = fc
  .record({ threshold: thresholdArb, maxIntensity: intensityArb })
  .map((c) => parseThrottleCurve({ curve: "linear", ...c }));
const exponentialArb = fc
  .record({ threshold: thresholdArb, maxIntensity: intensityArb, exponent: exponentArb })
  .map((c) => parseThrottleCurve({ curve: "exponential", ...c }));

/** x on a 1/1000 grid (so slopes stay bounded), strictly increasing; y free or sorted. */
const pointsArb = (sortedY: boolean) =>
  fc
    .uniqueArray(fc.integer({ min: 0, max: 1000 }), { minLength: 2, maxLength: 8 })
    .chain((xs) =>
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), {
        minLength: xs.length,
        maxLength: xs.length,
      }).map((ys) => {
        xs.sort((a, b) => a - b);
        if (sortedY) ys.sort((a, b) => a - b);
        return xs.map((x, i) => ({ x: x / 1000, y: ys[i] }));
      })
    );
const customArb = (sortedY: boolean) =>
  fc
    .record({ threshold: thresholdArb, maxIntensity: intensityArb, points: pointsArb(sortedY) })
    .map((c) => parseThrottleCurve({ curve: "custom", ...c }));

const anyCurveArb: fc.Arbitrary<ThrottleCurve> = fc.oneof(
  linearArb,
  exponentialArb,
  customArb(false),
);
const monotoneCurveArb: fc.Arbitrary<ThrottleCurve> = fc.oneof(
  linearArb,
  exponentialArb,
  customArb(true),
);

const anyBufferArb = fc.oneof(
  fc.double(), // includes NaN, +-Infinity, -0, huge values
  fc.double({ min: -0.5, max: 1.5, noNaN: true }),
  fc.double({ min: 0, max: 1, noNaN: true }),
  fc.constantFrom(NaN, Infinity, -Infinity, 0, 1, -0),
);

// ---------------------------------------------------------------------------------------
// Properties

Deno.test("throttle: intensity is always in [0, M] for any buffer level", () => {
  fc.assert(
    fc.property(anyCurveArb, anyBufferArb, (curve, b) => {
      const i = throttleIntensity(curve, b);
      assert(!Number.isNaN(i), `NaN for b=${b}`);
      assert(
        i >= 0 && i <= curve.maxIntensity,
        `I(${b}) = ${i} outside [0, ${curve.maxIntensity}]`,
      );
    }),
    { numRuns: 3000 },
  );
});

Deno.test("throttle: I(b) = 0 for b <= T", () => {
  fc.assert(
    fc.property(anyCurveArb, fc.double({ min: 0, max: 1, noNaN: true }), (curve, f) => {
      const b = curve.threshold * f; // in [0, T]
      assertEquals(throttleIntensity(curve, b), 0);
      assertEquals(throttleIntensity(curve, curve.threshold), 0);
      assertEquals(throttleIntensity(curve, -f * 10), 0);
      assertEquals(throttleIntensity(curve, -Infinity), 0);
    }),
    { numRuns: 1000 },
  );
});

Deno.test("throttle: monotone non-decreasing in b (linear, exponential, sorted-y custom)", () => {
  fc.assert(
    fc.property(monotoneCurveArb, anyBufferArb, anyBufferArb, (curve, b1, b2) => {
      // NaN is treated as 1, so order it there.
      const k1 = Number.isNaN(b1) ? 1 : b1;
      const k2 = Number.isNaN(b2) ? 1 : b2;
      const [lo, hi] = k1 <= k2 ? [b1, b2] : [b2, b1];
      const ilo = throttleIntensity(curve, lo);
      const ihi = throttleIntensity(curve, hi);
      assert(ilo <= ihi, `I(${lo}) = ${ilo} > I(${hi}) = ${ihi} for ${JSON.stringify(curve)}`);
    }),
    { numRuns: 3000 },
  );
});

Deno.test("throttle: monotone on a fine grid of buffer levels", () => {
  fc.assert(
    fc.property(monotoneCurveArb, (curve) => {
      let prev = -1;
      for (let k = 0; k <= 2000; k++) {
        const i = throttleIntensity(curve, k / 2000);
        assert(i >= prev, `I(${k / 2000}) = ${i} < ${prev}`);
        prev = i;
      }
    }),
    { numRuns: 200 },
  );
});

Deno.test("throttle: linear reaches exactly M at b = 1 (and beyond, and for NaN)", () => {
  fc.assert(
    fc.property(linearArb, (curve) => {
      assertEquals(throttleIntensity(curve, 1), curve.maxIntensity);
      assertEquals(throttleIntensity(curve, 7), curve.maxIntensity);
      assertEquals(throttleIntensity(curve, Infinity), curve.maxIntensity);
      assertEquals(throttleIntensity(curve, NaN), curve.maxIntensity);
    }),
    { numRuns: 1000 },
  );
});

Deno.test("throttle: NaN buffer level behaves as b = 1 (fail safe)", () => {
  fc.assert(
    fc.property(anyCurveArb, (curve) => {
      assertEquals(throttleIntensity(curve, NaN), throttleIntensity(curve, 1));
    }),
    { numRuns: 500 },
  );
});

Deno.test("throttle: exponential <= linear for the same T and M when e >= 1", () => {
  fc.assert(
    fc.property(
      thresholdArb,
      intensityArb,
      fc.oneof(fc.double({ min: 1, max: 20, noNaN: true }), fc.constant(1)),
      anyBufferArb,
      (threshold, maxIntensity, exponent, b) => {
        const lin = parseThrottleCurve({ curve: "linear", threshold, maxIntensity });
        const exp = parseThrottleCurve({ curve: "exponential", threshold, maxIntensity, exponent });
        const il = throttleIntensity(lin, b);
        const ie = throttleIntensity(exp, b);
        assert(ie <= il, `exponential ${ie} > linear ${il} at b=${b}, e=${exponent}`);
        if (exponent === 1) assertEquals(ie, il);
      },
    ),
    { numRuns: 3000 },
  );
});

Deno.test("throttle: custom curve passes through its points (mapped back to b)", () => {
  fc.assert(
    fc.property(customArb(false), (curve) => {
      assert(curve.curve === "custom");
      const t = curve.threshold;
      for (const p of curve.points) {
        const b = t + p.x * (1 - t);
        const i = throttleIntensity(curve, b);
        const want = p.x === 0 ? 0 : Math.min(p.y, curve.maxIntensity); // b = T gives 0
        // Mapping x back to b loses about ulp(1) / (1 - T) of n; slopes are at most 1000.
        const tol = 1e-12 + (1000 * 4 * Number.EPSILON) / (1 - t);
        assert(Math.abs(i - want) <= tol, `I(${b}) = ${i}, want ${want} at point ${p.x}`);
      }
      // Constant extrapolation beyond the last point.
      const last = curve.points[curve.points.length - 1];
      assertEquals(throttleIntensity(curve, 1), Math.min(last.y, curve.maxIntensity));
    }),
    { numRuns: 1000 },
  );
});

Deno.test("throttle: every generated curve satisfies the schema unchanged", () => {
  fc.assert(
    fc.property(anyCurveArb, (curve) => {
      assertEquals(throttleCurveSchema.parse(curve), curve);
    }),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------------------------------
// Examples

Deno.test("throttle: defaults", () => {
  assertEquals(parseThrottleCurve({ curve: "linear" }), {
    curve: "linear",
    threshold: 0.6,
    maxIntensity: 0.9,
  });
  assertEquals(parseThrottleCurve({ curve: "exponential" }), {
    curve: "exponential",
    threshold: 0.8,
    maxIntensity: 0.9,
    exponent: 3,
  });
});

Deno.test("throttle: worked values", () => {
  const lin = parseThrottleCurve({ curve: "linear", threshold: 0.6, maxIntensity: 1 });
  assert(Math.abs(throttleIntensity(lin, 0.8) - 0.5) < 1e-12);
  const exp = parseThrottleCurve({ curve: "exponential", threshold: 0.5, maxIntensity: 0.8 });
  assert(Math.abs(throttleIntensity(exp, 0.75) - 0.8 * 0.125) < 1e-12); // n = 0.5, n^3
  const custom = parseThrottleCurve({
    curve: "custom",
    threshold: 0.5,
    maxIntensity: 0.7,
    points: [{ x: 0.2, y: 0.1 }, { x: 0.6, y: 0.5 }, { x: 0.8, y: 1 }],
  });
  assertEquals(throttleIntensity(custom, 0.5), 0); // at T
  assertEquals(throttleIntensity(custom, 0.55), 0.1); // n = 0.1, before the first point
  assert(Math.abs(throttleIntensity(custom, 0.7) - 0.3) < 1e-12); // n = 0.4, mid segment
  assertEquals(throttleIntensity(custom, 1), 0.7); // y = 1 clamped to M
  // A decreasing custom curve is allowed and stays in [0, M].
  const down = parseThrottleCurve({
    curve: "custom",
    threshold: 0,
    points: [{ x: 0, y: 1 }, { x: 1, y: 0 }],
  });
  assertEquals(throttleIntensity(down, 1), 0);
  assertEquals(throttleIntensity(down, 0.5), 0.5);
});

Deno.test("throttle: threshold 1.0 is rejected naming throttle.threshold", () => {
  const msg = configErrorOf({ curve: "linear", threshold: 1.0 });
  assertIncludes(msg, "throttle.threshold: must be < 1");
  assertIncludes(msg, "[0, 1)");
  assertIncludes(configErrorOf({ curve: "linear", threshold: -0.1 }), "throttle.threshold");
});

Deno.test("throttle: exponent 0 is rejected naming throttle.exponent", () => {
  assertIncludes(
    configErrorOf({ curve: "exponential", exponent: 0 }),
    "throttle.exponent: must be > 0",
  );
  assertIncludes(
    configErrorOf({ curve: "exponential", exponent: -2 }, "vm.profiles.high.throttle"),
    "vm.profiles.high.throttle.exponent:",
  );
  assertIncludes(configErrorOf({ curve: "exponential", exponent: Infinity }), "throttle.exponent");
});

Deno.test("throttle: unsorted custom points name the offending x and its predecessor", () => {
  const msg = configErrorOf({
    curve: "custom",
    points: [{ x: 0, y: 0 }, { x: 0.5, y: 0.2 }, { x: 0.5, y: 0.9 }, { x: 1, y: 1 }],
  });
  assertEquals(msg, "throttle.points[2].x: must be strictly greater than points[1].x (0.5)");
  const msg2 = configErrorOf({
    curve: "custom",
    points: [{ x: 0.7, y: 0 }, { x: 0.3, y: 0.2 }],
  });
  assertIncludes(msg2, "throttle.points[1].x: must be strictly greater than points[0].x (0.7)");
});

Deno.test("throttle: a custom curve with one point is rejected", () => {
  const msg = configErrorOf({ curve: "custom", points: [{ x: 0.5, y: 0.5 }] });
  assertIncludes(msg, "throttle.points: must have at least 2 points");
  assertIncludes(configErrorOf({ curve: "custom" }), "throttle.points:");
});

Deno.test("throttle: other invalid configs name their field", () => {
  assertIncludes(
    configErrorOf({ curve: "custom", points: [{ x: 0, y: 0 }, { x: 1.5, y: 2 }] }),
    "throttle.points[1].x: must be <= 1",
  );
  assertIncludes(
    configErrorOf({ curve: "custom", points: [{ x: 0, y: 0 }, { x: 1, y: 2 }] }),
    "throttle.points[1].y: must be <= 1",
  );
  assertIncludes(configErrorOf({ curve: "linear", maxIntensity: 1.01 }), "throttle.maxIntensity");
  assertIncludes(
    configErrorOf({ curve: "linear", threshold: "0.5" }),
    "throttle.threshold: expected",
  );
  assertIncludes(configErrorOf({ curve: "linear", threshold: NaN }), "throttle.threshold");
  assertIncludes(
    configErrorOf({ curve: "quadratic" }),
    'throttle.curve: expected curve to be "linear"',
  );
  assertIncludes(configErrorOf({ threshold: 0.5 }), "throttle.curve:");
  assertIncludes(configErrorOf("linear"), 'throttle: expected an object with a "curve" field');
  assertIncludes(
    configErrorOf({ curve: "linear", treshold: 0.5 }),
    "throttle.treshold: unknown field",
  );
  // Exponent is not a field of a linear curve.
  assertIncludes(
    configErrorOf({ curve: "linear", exponent: 2 }),
    "throttle.exponent: unknown field",
  );
});

// ---------------------------------------------------------------------------------------
// formatZodError

Deno.test("formatZodError: paths, expectations, unknown keys, unions", () => {
  const schema = z.strictObject({
    a: z.array(z.object({ "b-c": z.number().min(1) })),
    n: z.int(),
    u: z.union([z.string(), z.number()]),
  });
  const r = schema.safeParse({ a: [{ "b-c": 0 }], n: "x", u: true, extra: 1 });
  assert(!r.success);
  const msg = formatZodError(r.error, "cfg");
  assertIncludes(msg, 'cfg.a[0]["b-c"]: Too small');
  assertIncludes(msg, "cfg.n: Invalid input: expected number");
  assertIncludes(msg, "cfg.u: no variant matched (option 1: Invalid input: expected string");
  assertIncludes(msg, "cfg.extra: unknown field");
  const custom = z.number().refine((v) => v > 0, {
    message: "must be positive",
    params: { expected: "a positive number" },
  });
  const r2 = custom.safeParse(-1);
  assert(!r2.success);
  assertEquals(formatZodError(r2.error, "x"), "x: must be positive (expected a positive number)");
  assertEquals(
    formatZodError(r2.error, ""),
    "(root): must be positive (expected a positive number)",
  );
  assertEquals(formatPath("", ["a", 0, "b"]), "a[0].b");
  assertEquals(formatPath("root", []), "root");
});
