/**
 * Guest dirty-page workload models for the RAM replication simulator and the migration model.
 * A workload is deterministic given the random source it is handed (the simulator passes a
 * seeded stream) and the sequence of calls: it keeps a fractional carry of the expected page
 * count, so over a long run the number of pages is exact in aggregate, and some models keep a
 * cursor (the web server's log). Pages dirtied twice are reported twice.
 */
import { z } from "zod";
import { ConfigError } from "../errors.ts";
import { formatZodError } from "../config_errors.ts";

export interface Workload {
  readonly name: string;
  /** r0: the unthrottled dirty rate, pages per second. */
  readonly baseRatePagesPerSec: number;
  /**
   * Appends to `out` the page indices dirtied during `dtMs` at intensity `intensity` (rate
   * r0 * (1 - intensity); intensity clamped to [0, 1], NaN counts as 1). `random` returns
   * values in [0, 1). Allocates nothing beyond what pushing into `out` needs.
   */
  pages(dtMs: number, intensity: number, random: () => number, out: number[]): void;
}

function requirePageCount(pageCount: number): void {
  if (!Number.isSafeInteger(pageCount) || pageCount < 1) {
    throw new RangeError(`pageCount must be an integer >= 1, got ${pageCount}`);
  }
}

/** The number of pages per interval, from the expected count with a fractional carry. */
function pageCounter(ratePagesPerSec: number): (dtMs: number, intensity: number) => number {
  if (!(ratePagesPerSec >= 0) || ratePagesPerSec === Infinity) {
    throw new RangeError(`ratePagesPerSec must be a finite number >= 0, got ${ratePagesPerSec}`);
  }
  let carry = 0;
  return (dtMs, intensity) => {
    if (!(dtMs > 0)) return 0;
    const i = Number.isNaN(intensity) ? 1 : intensity < 0 ? 0 : intensity > 1 ? 1 : intensity;
    const expected = ratePagesPerSec * (1 - i) * dtMs / 1000 + carry;
    const n = Math.floor(expected);
    carry = expected - n;
    return n;
  };
}

/** A uniform index in [0, n), safe against a source that returns 1. */
function below(n: number, random: () => number): number {
  const k = Math.floor(random() * n);
  return k < n ? k : n - 1;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * The first `count` values of a fixed permutation of [0, pageCount): k -> (k * stride) mod
 * pageCount with a stride coprime to pageCount near pageCount / golden ratio, so ranks that
 * are neighbours land far apart and a "hot set" is not one contiguous region.
 */
export function spreadPages(pageCount: number, count: number): Int32Array {
  let stride = Math.floor(pageCount * 0.6180339887498949) | 1;
  while (gcd(stride, pageCount) !== 1) stride++;
  const out = new Int32Array(count);
  let p = 0;
  for (let k = 0; k < count; k++) {
    out[k] = p;
    p += stride;
    if (p >= pageCount) p -= pageCount;
  }
  return out;
}

/** Every write to a uniformly random page. */
export function uniformWorkload(
  params: { pageCount: number; ratePagesPerSec: number },
): Workload {
  const { pageCount, ratePagesPerSec } = params;
  requirePageCount(pageCount);
  const count = pageCounter(ratePagesPerSec);
  return {
    name: "uniform",
    baseRatePagesPerSec: ratePagesPerSec,
    pages(dtMs, intensity, random, out) {
      for (let n = count(dtMs, intensity); n > 0; n--) out.push(below(pageCount, random));
    },
  };
}

/** Zipf(s) over `ranks` ranks as a cumulative table; the last entry is exactly 1. */
function zipfCdf(ranks: number, s: number): Float64Array {
  const cdf = new Float64Array(ranks);
  let sum = 0;
  for (let k = 0; k < ranks; k++) cdf[k] = sum += Math.pow(k + 1, -s);
  for (let k = 0; k < ranks; k++) cdf[k] /= sum;
  cdf[ranks - 1] = 1;
  return cdf;
}

/** The smallest rank k with u < cdf[k] (u in [0, 1)). */
function sampleRank(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (u < cdf[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * Every write to one of `hotPages` pages, rank k chosen with probability proportional to
 * 1 / (k + 1)^zipfS; ranks map to pages through `spreadPages`.
 */
export function hotSetWorkload(
  params: { pageCount: number; ratePagesPerSec: number; hotPages: number; zipfS?: number },
): Workload {
  const { pageCount, ratePagesPerSec, hotPages, zipfS = 1.0 } = params;
  requirePageCount(pageCount);
  if (!Number.isSafeInteger(hotPages) || hotPages < 1 || hotPages > pageCount) {
    throw new RangeError(`hotPages must be an integer in [1, ${pageCount}], got ${hotPages}`);
  }
  if (!(zipfS >= 0) || zipfS === Infinity) {
    throw new RangeError(`zipfS must be a finite number >= 0, got ${zipfS}`);
  }
  const count = pageCounter(ratePagesPerSec);
  const cdf = zipfCdf(hotPages, zipfS);
  const page = spreadPages(pageCount, hotPages);
  return {
    name: "hot-set",
    baseRatePagesPerSec: ratePagesPerSec,
    pages(dtMs, intensity, random, out) {
      for (let n = count(dtMs, intensity); n > 0; n--) out.push(page[sampleRank(cdf, random())]);
    },
  };
}

/** Web server mix: shares of writes and of memory (see `webServerWorkload`). */
export const WEB_SERVER = {
  hotWriteShare: 0.8,
  hotPageShare: 0.02,
  logWriteShare: 0.1,
  logPageShare: 0.01,
  /** Log records are 512 B, so one 4 KiB page takes 8 appends before the cursor moves on. */
  logAppendsPerPage: 8,
} as const;

/**
 * A web server dirtying about 12,000 pages/s:
 * - 80 % of writes go uniformly to a very hot 2 % of pages (request buffers, connection
 *   state, allocator heads), spread through memory by `spreadPages`;
 * - 10 % append to a log: a contiguous ring of 1 % of pages at the top of memory, written
 *   sequentially in 512 B records (8 appends per page), wrapping around (log rotation);
 * - 10 % go to uniformly random pages (everything else: caches, GC, page cache).
 */
export function webServerWorkload(
  params: { pageCount: number; ratePagesPerSec?: number },
): Workload {
  const { pageCount, ratePagesPerSec = 12000 } = params;
  requirePageCount(pageCount);
  const count = pageCounter(ratePagesPerSec);
  const hot = spreadPages(pageCount, Math.max(1, Math.round(pageCount * WEB_SERVER.hotPageShare)));
  const logPages = Math.max(1, Math.round(pageCount * WEB_SERVER.logPageShare));
  const logStart = pageCount - logPages;
  const logSlots = logPages * WEB_SERVER.logAppendsPerPage;
  const hotEnd = WEB_SERVER.hotWriteShare;
  const logEnd = hotEnd + WEB_SERVER.logWriteShare;
  let cursor = 0; // next log record slot in [0, logSlots)
  return {
    name: "web-server",
    baseRatePagesPerSec: ratePagesPerSec,
    pages(dtMs, intensity, random, out) {
      for (let n = count(dtMs, intensity); n > 0; n--) {
        const u = random();
        if (u < hotEnd) out.push(hot[below(hot.length, random)]);
        else if (u < logEnd) {
          out.push(logStart + Math.floor(cursor / WEB_SERVER.logAppendsPerPage));
          if (++cursor === logSlots) cursor = 0;
        } else out.push(below(pageCount, random));
      }
    },
  };
}

// ---------------------------------------------------------------------------------------
// Configuration

const rate = z
  .number({ error: "expected a number of pages per second >= 0" })
  .min(0, { error: "must be >= 0 (expected pages dirtied per second)" })
  .refine(Number.isFinite, { error: "must be finite (expected pages dirtied per second)" })
  .default(12000)
  .describe("r0: pages the guest dirties per second when unthrottled");

export const workloadSchema = z
  .discriminatedUnion("kind", [
    z.strictObject({ kind: z.literal("uniform"), ratePagesPerSec: rate })
      .describe("writes to uniformly random pages"),
    z.strictObject({
      kind: z.literal("hot-set"),
      ratePagesPerSec: rate,
      hotPages: z
        .int({ error: "expected an integer number of pages >= 1" })
        .min(1, { error: "must be >= 1 (expected a number of pages)" })
        .optional()
        .describe("size of the hot set, pages (<= pageCount); default 10 % of pageCount"),
      zipfS: z
        .number({ error: "expected a number >= 0" })
        .min(0, { error: "must be >= 0 (expected a Zipf exponent, e.g. 1)" })
        .default(1)
        .describe("Zipf exponent s over the hot set's ranks (0: uniform over the hot set)"),
    }).describe("writes Zipf-distributed over a hot set spread through memory"),
    z.strictObject({ kind: z.literal("web-server"), ratePagesPerSec: rate })
      .describe("80 % to a 2 % hot set, 10 % log appends, 10 % uniform"),
  ], {
    error: () => 'expected kind to be "uniform", "hot-set" or "web-server"',
  })
  .describe("guest dirty-page workload");

export type WorkloadSpec = z.infer<typeof workloadSchema>;

/** Validates a workload spec (applying defaults); throws `ConfigError` naming the bad field. */
export function parseWorkload(input: unknown, path = "workload"): WorkloadSpec {
  const r = workloadSchema.safeParse(input);
  if (!r.success) throw new ConfigError(formatZodError(r.error, path), undefined, r.error);
  return r.data;
}

/** The workload a (parsed) spec describes, for a VM of `pageCount` pages. */
export function makeWorkload(spec: WorkloadSpec, pageCount: number, path = "workload"): Workload {
  requirePageCount(pageCount);
  switch (spec.kind) {
    case "uniform":
      return uniformWorkload({ pageCount, ratePagesPerSec: spec.ratePagesPerSec });
    case "hot-set": {
      const hotPages = spec.hotPages ?? Math.max(1, Math.round(pageCount / 10));
      if (hotPages > pageCount) {
        throw new ConfigError(
          `${path}.hotPages: must be <= the VM's page count ${pageCount}, got ${hotPages}`,
        );
      }
      return hotSetWorkload({
        pageCount,
        ratePagesPerSec: spec.ratePagesPerSec,
        hotPages,
        zipfS: spec.zipfS,
      });
    }
    case "web-server":
      return webServerWorkload({ pageCount, ratePagesPerSec: spec.ratePagesPerSec });
  }
}
