/**
 * Distributed RAM throttling curve (DESIGN.md section 5). Given the replication buffer level
 * b = unacknowledged bytes / max_buffer_size, the throttle intensity I(b) in [0, M] slows the
 * guest's dirty rate to r0 * (1 - I):
 *
 * - b is clamped to [0, 1]; I = 0 for b <= T (threshold, in [0, 1));
 * - n = (b - T) / (1 - T), the normalised overshoot in (0, 1];
 * - linear: I = M * n; exponential: I = M * n^e (e > 0);
 * - custom: piecewise-linear interpolation of `points` (x strictly increasing in [0, 1],
 *   y in [0, 1]) evaluated at n, constant beyond the first and last points; y is an
 *   intensity (not scaled by M) and the result is clamped to [0, M].
 *
 * A NaN buffer level is treated as 1 (fail safe: full throttle) because a NaN means the
 * accounting is broken and the safe response is to slow the guest, not to let it run free.
 */
import { z } from "zod";
import { ConfigError } from "./errors.ts";
import { formatZodError } from "./config_errors.ts";

const threshold = (def: number) =>
  z
    .number({ error: "expected a number in [0, 1)" })
    .min(0, { error: "must be >= 0 (expected a buffer fraction in [0, 1))" })
    .lt(1, { error: "must be < 1 (expected a buffer fraction in [0, 1))" })
    .default(def)
    .describe(
      "T: buffer level (fraction of max_buffer_size) at or below which no throttling is applied; in [0, 1)",
    );

const maxIntensity = z
  .number({ error: "expected a number in [0, 1]" })
  .min(0, { error: "must be >= 0 (expected an intensity in [0, 1])" })
  .max(1, { error: "must be <= 1 (expected an intensity in [0, 1])" })
  .default(0.9)
  .describe("M: the largest intensity the curve produces (guest dirty rate r0 * (1 - M)); [0, 1]");

const unit = (what: string) =>
  z
    .number({ error: `expected ${what}: a number in [0, 1]` })
    .min(0, { error: `must be >= 0 (expected ${what} in [0, 1])` })
    .max(1, { error: `must be <= 1 (expected ${what} in [0, 1])` });

export const throttlePointSchema = z
  .strictObject({
    x: unit("normalised overshoot n").describe(
      "n = (b - T) / (1 - T) at which the curve passes through y; in [0, 1]",
    ),
    y: unit("intensity").describe("intensity at x; in [0, 1], clamped to maxIntensity"),
  })
  .describe("one point of a custom piecewise-linear throttle curve");

export const linearThrottleSchema = z
  .strictObject({
    curve: z.literal("linear").describe("I = M * n"),
    threshold: threshold(0.6),
    maxIntensity,
  })
  .describe("linear throttling above the threshold (the Low latency profile's curve)");

export const exponentialThrottleSchema = z
  .strictObject({
    curve: z.literal("exponential").describe("I = M * n^e"),
    threshold: threshold(0.8),
    maxIntensity,
    exponent: z
      .number({ error: "expected a number > 0" })
      .gt(0, { error: "must be > 0 (expected a positive exponent, e.g. 3)" })
      .default(3)
      .describe("e: exponent of the normalised overshoot; > 0 (e > 1 throttles late and hard)"),
  })
  .describe("exponential throttling above the threshold (the High latency profile's curve)");

export const customThrottleSchema = z
  .strictObject({
    curve: z.literal("custom").describe("piecewise-linear interpolation of points over n"),
    threshold: threshold(0.6),
    maxIntensity,
    points: z
      .array(throttlePointSchema, { error: "expected an array of {x, y} points" })
      .min(2, { error: "must have at least 2 points (expected [{x, y}, ...] with x increasing)" })
      .superRefine((points, ctx) => {
        for (let i = 1; i < points.length; i++) {
          const prev = points[i - 1].x;
          if (!(points[i].x > prev)) {
            ctx.addIssue({
              code: "custom",
              path: [i, "x"],
              message: `must be strictly greater than points[${i - 1}].x (${prev})`,
            });
          }
        }
      })
      .describe("points {x: n, y: intensity}, x strictly increasing in [0, 1], at least 2"),
  })
  .describe("custom piecewise-linear throttling curve above the threshold");

export const throttleCurveSchema = z
  .discriminatedUnion(
    "curve",
    [linearThrottleSchema, exponentialThrottleSchema, customThrottleSchema],
    {
      error: (iss) =>
        typeof iss.input !== "object" || iss.input === null || Array.isArray(iss.input)
          ? 'expected an object with a "curve" field ("linear", "exponential" or "custom")'
          : 'expected curve to be "linear", "exponential" or "custom"',
    },
  )
  .describe("throttle intensity I(buffer level) for distributed RAM replication");

export type ThrottleCurve = z.infer<typeof throttleCurveSchema>;
export type ThrottlePoint = z.infer<typeof throttlePointSchema>;

/**
 * Validates a throttle curve (applying defaults). Throws `ConfigError` whose message names
 * the full path of every bad field below `path`, e.g.
 * `throttle.points[2].x: must be strictly greater than points[1].x (0.5)`.
 */
export function parseThrottleCurve(input: unknown, path = "throttle"): ThrottleCurve {
  const r = throttleCurveSchema.safeParse(input);
  if (!r.success) throw new ConfigError(formatZodError(r.error, path), undefined, r.error);
  return r.data;
}

function interpolate(points: readonly ThrottlePoint[], n: number): number {
  const first = points[0];
  if (n <= first.x) return first.y;
  for (let i = 1; i < points.length; i++) {
    const p1 = points[i];
    if (n <= p1.x) {
      if (n === p1.x) return p1.y; // exact at the points, whatever the magnitudes
      const p0 = points[i - 1];
      const v = p0.y + (p1.y - p0.y) * ((n - p0.x) / (p1.x - p0.x));
      // Clamp to the segment's range so rounding never overshoots an end point (this keeps
      // the curve monotone across segment boundaries when the y values are).
      const lo = p0.y < p1.y ? p0.y : p1.y;
      const hi = p0.y < p1.y ? p1.y : p0.y;
      return v < lo ? lo : v > hi ? hi : v;
    }
  }
  return points[points.length - 1].y;
}

/**
 * The throttle intensity I(b) in [0, M] for buffer level `bufferLevel` (b). b is clamped to
 * [0, 1]; NaN counts as 1 (fail safe). Pure and allocation-free; called every tick.
 */
export function throttleIntensity(curve: ThrottleCurve, bufferLevel: number): number {
  const b = Number.isNaN(bufferLevel) ? 1 : bufferLevel < 0 ? 0 : bufferLevel > 1 ? 1 : bufferLevel;
  const t = curve.threshold;
  if (b <= t) return 0;
  const m = curve.maxIntensity;
  let n = (b - t) / (1 - t);
  if (n > 1) n = 1;
  let v: number;
  switch (curve.curve) {
    case "linear":
      v = m * n;
      break;
    case "exponential":
      v = m * Math.pow(n, curve.exponent);
      break;
    case "custom":
      v = interpolate(curve.points, n);
      break;
  }
  // NaN cannot arise from a valid curve; map it to M anyway (fail safe) rather than leak it.
  if (Number.isNaN(v)) return m;
  return v < 0 ? 0 : v > m ? m : v;
}
