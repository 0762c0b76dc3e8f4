/**
 * Distributed RAM replication config of one VM (DESIGN.md section 5), shared by the node
 * config and the Kubernetes CRD (`replicationConfig`). Every field has a default in the
 * schema and nested objects are pre-filled, so a partial object keeps the defaults of the
 * fields it leaves out (`{profiles: {low: {intervalMs: 8}}}` keeps the rest of Low).
 *
 * A profile's `curve` given with the same `curve` kind as the profile's default (or with
 * no `curve` key) is merged over that default, so `{curve: "exponential", threshold: 0.75}`
 * for Medium keeps Medium's exponent 2; a different kind starts from that kind's defaults.
 */
import { z } from "zod";
import { ConfigError } from "../errors.ts";
import { formatZodError } from "../config_errors.ts";
import { type ThrottleCurve, throttleCurveSchema } from "../throttle.ts";
import { type LatencyProfileName, PAGE_SIZE, type ReplicationParams } from "./params.ts";

const MiB = 1024 * 1024;

const int = (min: number, what: string) =>
  z
    .number({ error: `expected ${what}: an integer >= ${min}` })
    .int({ error: `must be an integer (expected ${what} >= ${min})` })
    .min(min, { error: `must be >= ${min} (expected ${what})` });

const positive = (what: string) =>
  z
    .number({ error: `expected ${what}: a number > 0` })
    .gt(0, { error: `must be > 0 (expected ${what})` });

/** A fraction in [0, 1), (0, 1), [0, 1] or (0, 1] depending on the bounds' inclusivity. */
const fraction = (what: string, lowIncl: boolean, highIncl: boolean) => {
  const range = `${lowIncl ? "[" : "("}0, 1${highIncl ? "]" : ")"}`;
  const n = z.number({ error: `expected ${what}: a number in ${range}` });
  const lo = lowIncl
    ? n.min(0, { error: `must be >= 0 (expected ${what} in ${range})` })
    : n.gt(0, { error: `must be > 0 (expected ${what} in ${range})` });
  return highIncl
    ? lo.max(1, { error: `must be <= 1 (expected ${what} in ${range})` })
    : lo.lt(1, { error: `must be < 1 (expected ${what} in ${range})` });
};

/** Merges a partial curve over `def` when it names no kind or `def`'s kind (see above). */
function mergeCurve(def: ThrottleCurve) {
  return (input: unknown): unknown => {
    if (typeof input !== "object" || input === null || Array.isArray(input)) return input;
    const kind = (input as { curve?: unknown }).curve;
    return kind === undefined || kind === def.curve ? { ...def, ...input } : input;
  };
}

interface ProfileDefaults {
  intervalMs: number;
  curve: ThrottleCurve;
  pauseEnabled: boolean;
  convergenceTimeoutMs: number;
  migrationAbortMs: number;
}

const deepFreeze = <T>(o: T): T => {
  if (typeof o === "object" && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
};

/** DESIGN.md: Low < 10 ms RTT (LAN), Medium < 100 ms, High beyond (WAN). Deeply frozen. */
export const DEFAULT_PROFILES: Readonly<Record<LatencyProfileName, Readonly<ProfileDefaults>>> =
  deepFreeze({
    low: {
      intervalMs: 5,
      curve: { curve: "linear", threshold: 0.6, maxIntensity: 0.9 },
      pauseEnabled: true,
      convergenceTimeoutMs: 2000,
      migrationAbortMs: 5000,
    },
    medium: {
      intervalMs: 25,
      curve: { curve: "exponential", threshold: 0.7, exponent: 2, maxIntensity: 0.9 },
      pauseEnabled: true,
      convergenceTimeoutMs: 5000,
      migrationAbortMs: 15000,
    },
    high: {
      intervalMs: 100,
      curve: { curve: "exponential", threshold: 0.8, exponent: 3, maxIntensity: 0.9 },
      pauseEnabled: false,
      convergenceTimeoutMs: 10000,
      migrationAbortMs: 30000,
    },
  });

const profileSchema = (name: LatencyProfileName) => {
  const d = DEFAULT_PROFILES[name];
  return z
    .strictObject({
      intervalMs: positive("an epoch length in ms")
        .default(d.intervalMs)
        .describe("`replication_interval`: epoch length, ms; > 0"),
      curve: z
        .preprocess(mergeCurve(d.curve), throttleCurveSchema)
        .prefault({})
        .describe(
          "throttle curve I(b); a partial curve of the default's kind is merged over the default",
        ),
      pauseEnabled: z
        .boolean({ error: "expected a boolean" })
        .default(d.pauseEnabled)
        .describe("emergency pause at b >= 1 until b <= resumeLevel; off: drop queued payload"),
      convergenceTimeoutMs: positive("a duration in ms")
        .default(d.convergenceTimeoutMs)
        .describe("longest emergency pause before the guest is resumed anyway, ms; > 0"),
      migrationAbortMs: positive("a duration in ms")
        .default(d.migrationAbortMs)
        .describe("planned migration gives up after this long in catch-up, ms; > 0"),
    })
    .prefault({})
    .describe(`parameters of the ${name[0].toUpperCase()}${name.slice(1)} latency profile`);
};

const migrationSchema = z
  .strictObject({
    catchUpLevel: fraction("a buffer level", true, false)
      .default(0.05)
      .describe("migration catch-up ends at b <= this; [0, 1)"),
    downtimeBudgetMs: positive("a duration in ms")
      .default(300)
      .describe("... and when the estimated blackout fits this budget, ms; > 0"),
  })
  .prefault({})
  .describe("planned live migration");

const leaseSchema = z
  .strictObject({
    durationMs: positive("a duration in ms")
      .default(1500)
      .describe("majority lease fencing the primary, ms; backups wait this long to promote"),
    renewMs: positive("a duration in ms")
      .default(500)
      .describe("lease renewal period, ms; < durationMs / 2"),
  })
  .refine((l) => l.renewMs < l.durationMs / 2, {
    path: ["renewMs"],
    error: (iss) => {
      const l = iss.input as { durationMs: number };
      return `must be < durationMs / 2 (${l.durationMs / 2}) so a lease survives a lost renewal`;
    },
  })
  .prefault({})
  .describe("the per-VM majority lease (unplanned failover)");

const rttSchema = z
  .strictObject({
    ewmaAlpha: fraction("an EWMA weight", false, true)
      .default(0.2)
      .describe("weight of the newest RTT sample in the smoothed RTT; (0, 1]"),
    lowBelowMs: positive("an RTT in ms")
      .default(10)
      .describe("smoothed RTT below which the Low profile applies, ms"),
    mediumBelowMs: positive("an RTT in ms")
      .default(100)
      .describe("smoothed RTT below which Medium applies (else High), ms; > lowBelowMs"),
    hysteresis: fraction("a relative margin", true, false)
      .default(0.2)
      .describe(
        "relative margin around each boundary B: leaving upwards needs RTT >= B*(1+h), " +
          "downwards RTT < B*(1-h); [0, 1)",
      ),
  })
  .superRefine((r, ctx) => {
    if (!(r.mediumBelowMs > r.lowBelowMs)) {
      ctx.addIssue({
        code: "custom",
        path: ["mediumBelowMs"],
        message: `must be > lowBelowMs (${r.lowBelowMs})`,
      });
    } else if (r.lowBelowMs * (1 + r.hysteresis) > r.mediumBelowMs * (1 - r.hysteresis)) {
      // Overlapping bands would let one RTT both leave Low upwards and Medium downwards.
      ctx.addIssue({
        code: "custom",
        path: ["hysteresis"],
        message: `too large: lowBelowMs*(1+h) must be <= mediumBelowMs*(1-h) ` +
          `(${r.lowBelowMs * (1 + r.hysteresis)} > ${r.mediumBelowMs * (1 - r.hysteresis)})`,
      });
    }
  })
  .prefault({})
  .describe("latency profile selection from the EWMA-smoothed RTT");

const pathsSchema = z
  .strictObject({
    degradedLatencyMs: positive("a latency in ms")
      .default(100)
      .describe("a relay path with latency above this is Degraded (its share halves), ms"),
    degradedLoss: fraction("a loss rate", true, true)
      .default(0.01)
      .describe("a relay path with loss rate above this is Degraded; [0, 1]"),
    probeIntervalMs: positive("a period in ms")
      .default(100)
      .describe("period of path liveness probes, ms"),
    failedProbes: int(1, "a probe count")
      .default(3)
      .describe("consecutive failed probes after which a path is Failed; >= 1"),
  })
  .prefault({})
  .describe("Rhizomorph multipath relaying");

export const ramConfigSchema = z
  .strictObject({
    backupNodeCount: int(0, "a backup count")
      .default(2)
      .describe("`backup_node_count`: backups each epoch is mirrored to; integer >= 0"),
    maxBufferBytes: int(PAGE_SIZE, "a byte count")
      .default(64 * MiB)
      .describe("`max_buffer_size`: b = unacknowledged bytes / this; integer >= 4096"),
    resumeLevel: fraction("a buffer level", false, false)
      .default(0.8)
      .describe("an emergency pause ends at b <= this; (0, 1)"),
    windowBytes: int(PAGE_SIZE, "a byte count")
      .default(16 * MiB)
      .describe("most epoch payload bytes in flight per backup; integer >= chunkBytes"),
    chunkBytes: int(PAGE_SIZE, "a byte count")
      .default(1 * MiB)
      .describe("largest single epoch message, bytes; integer >= 4096 (one page)"),
    migration: migrationSchema,
    lease: leaseSchema,
    profile: z
      .enum(["auto", "low", "medium", "high"], {
        error: 'expected "auto", "low", "medium" or "high"',
      })
      .default("auto")
      .describe('latency profile; "auto" chooses it from the measured, smoothed RTT'),
    profiles: z
      .strictObject({
        low: profileSchema("low"),
        medium: profileSchema("medium"),
        high: profileSchema("high"),
      })
      .prefault({})
      .describe("per latency profile parameters"),
    rtt: rttSchema,
    paths: pathsSchema,
  })
  .refine((c) => c.chunkBytes <= c.windowBytes, {
    path: ["chunkBytes"],
    error: (iss) =>
      `must be <= windowBytes (${
        (iss.input as { windowBytes: number }).windowBytes
      }) or no chunk fits the window`,
  })
  .describe("distributed RAM replication config of one VM");

export type RamConfig = z.infer<typeof ramConfigSchema>;

/**
 * Validates a RAM config (applying defaults). Throws `ConfigError` naming the full path of
 * every bad field below `path`, e.g. `ram.profiles.low.curve.threshold: must be < 1 (...)`.
 */
export function parseRamConfig(input: unknown, path = "ram"): RamConfig {
  const r = ramConfigSchema.safeParse(input);
  if (!r.success) throw new ConfigError(formatZodError(r.error, path), undefined, r.error);
  return r.data;
}

/** The parameters replication runs with under `profile` (fields mapped one to one). */
export function resolveParams(config: RamConfig, profile: LatencyProfileName): ReplicationParams {
  const p = config.profiles[profile];
  return {
    intervalMs: p.intervalMs,
    curve: p.curve,
    pauseEnabled: p.pauseEnabled,
    convergenceTimeoutMs: p.convergenceTimeoutMs,
    migrationAbortMs: p.migrationAbortMs,
    backupCount: config.backupNodeCount,
    maxBufferBytes: config.maxBufferBytes,
    resumeLevel: config.resumeLevel,
    windowBytes: config.windowBytes,
    chunkBytes: config.chunkBytes,
    migrationCatchUpLevel: config.migration.catchUpLevel,
    downtimeBudgetMs: config.migration.downtimeBudgetMs,
    leaseMs: config.lease.durationMs,
    leaseRenewMs: config.lease.renewMs,
  };
}
