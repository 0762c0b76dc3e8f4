/**
 * Multipath splitting of a replication stream over Rhizomorph relay paths (DESIGN.md
 * section 5): each live path carries a share proportional to its measured bandwidth; a
 * Degraded path (latency above `degradedLatencyMs` or loss above `degradedLoss`) has its
 * weight halved; a path is Failed after `failedProbes` consecutive failed probes and carries
 * nothing until a probe succeeds again. The caller runs the probes every `probeIntervalMs`.
 *
 * Measurements are the latest reported values, not smoothed here: the reporting side
 * (relay statistics) already averages over its own window, and a second EWMA would only
 * delay reacting to a degraded path.
 */
import { MyceliumError } from "../errors.ts";
import type { RamConfig } from "./config.ts";

export type PathsConfig = RamConfig["paths"];
export type PathState = "healthy" | "degraded" | "failed";

export interface PathMeasurement {
  /** Throughput, bytes per ms; ignored unless finite and > 0 (0 means "no data yet"). */
  bandwidthBytesPerMs?: number;
  /** One-way or round-trip latency as the relay reports it, ms; ignored unless finite >= 0. */
  latencyMs?: number;
  /** Loss rate in [0, 1]; ignored outside it. */
  lossRate?: number;
}

interface Path {
  bandwidth: number | undefined;
  latencyMs: number | undefined;
  lossRate: number | undefined;
  failedProbes: number;
}

export class PathSet {
  readonly #config: PathsConfig;
  /** Insertion order = the caller's `ids` order, which breaks every tie deterministically. */
  readonly #paths = new Map<string, Path>();

  constructor(config: PathsConfig, ids: readonly string[]) {
    this.#config = config;
    for (const id of ids) {
      if (this.#paths.has(id)) throw new MyceliumError("internal", `duplicate path id "${id}"`);
      this.#paths.set(id, {
        bandwidth: undefined,
        latencyMs: undefined,
        lossRate: undefined,
        failedProbes: 0,
      });
    }
  }

  #get(id: string): Path {
    const p = this.#paths.get(id);
    if (p === undefined) throw new MyceliumError("internal", `unknown path id "${id}"`);
    return p;
  }

  /** Records the latest measurements of path `id`; absent or invalid fields are kept. */
  observe(id: string, m: PathMeasurement): void {
    const p = this.#get(id);
    const bw = m.bandwidthBytesPerMs;
    if (bw !== undefined && Number.isFinite(bw) && bw > 0) p.bandwidth = bw;
    const lat = m.latencyMs;
    if (lat !== undefined && Number.isFinite(lat) && lat >= 0) p.latencyMs = lat;
    const loss = m.lossRate;
    if (loss !== undefined && loss >= 0 && loss <= 1) p.lossRate = loss;
  }

  /** One liveness probe's outcome; a success clears the failure count (un-failing it). */
  probeResult(id: string, ok: boolean): void {
    const p = this.#get(id);
    p.failedProbes = ok ? 0 : p.failedProbes + 1;
  }

  state(id: string): PathState {
    return this.#stateOf(this.#get(id));
  }

  #stateOf(p: Path): PathState {
    if (p.failedProbes >= this.#config.failedProbes) return "failed";
    const slow = p.latencyMs !== undefined && p.latencyMs > this.#config.degradedLatencyMs;
    const lossy = p.lossRate !== undefined && p.lossRate > this.#config.degradedLoss;
    return slow || lossy ? "degraded" : "healthy";
  }

  /** Whether any path can carry the stream (replication stops when none can). */
  alive(): boolean {
    for (const p of this.#paths.values()) if (this.#stateOf(p) !== "failed") return true;
    return false;
  }

  /**
   * Fractions of the stream per non-failed path (failed paths are absent), summing to 1
   * up to rounding; empty when every path has failed. A path without a bandwidth
   * measurement counts with the mean of the measured live paths (all equal if none is).
   */
  shares(): Map<string, number> {
    const live: Array<[string, Path, PathState]> = [];
    let mean = 0; // running mean of the measured live bandwidths (a sum could overflow)
    let measured = 0;
    for (const [id, p] of this.#paths) {
      const st = this.#stateOf(p);
      if (st === "failed") continue;
      live.push([id, p, st]);
      if (p.bandwidth !== undefined) {
        measured++;
        mean += (p.bandwidth - mean) / measured;
      }
    }
    const fallback = measured > 0 ? mean : 1;
    const weights = live.map(([, p, st]) =>
      (p.bandwidth ?? fallback) * (st === "degraded" ? 0.5 : 1)
    );
    // Scaling by the largest weight keeps the sum finite for any finite bandwidths; scaling
    // and dividing every weight by the same numbers keeps a degraded path at exactly half
    // of a healthy path of equal bandwidth (halving commutes with rounding).
    let max = 0;
    for (const w of weights) if (w > max) max = w;
    let total = 0;
    for (const w of weights) total += w / max;
    const out = new Map<string, number>();
    live.forEach(([id], i) => out.set(id, weights[i] / max / total));
    return out;
  }

  /**
   * Splits `bytes` (a safe integer >= 0) over the live paths by largest remainder: each
   * gets floor(bytes * share), the leftover bytes go one each to the largest fractional
   * parts (ties by path order). The parts are integers >= 0 summing exactly to `bytes`.
   * Empty when no path is live: there is nowhere to send (check `alive()` first).
   */
  assign(bytes: number): Map<string, number> {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new MyceliumError("internal", `assign: expected a safe integer >= 0, got ${bytes}`);
    }
    const shares = [...this.shares()];
    const out = new Map<string, number>();
    if (shares.length === 0) return out;
    const parts = shares.map(([, s]) => {
      const q = bytes * s;
      const f = Math.floor(q);
      return { base: f < 0 ? 0 : f > bytes ? bytes : f, rem: q - f };
    });
    let left = bytes;
    for (const p of parts) left -= p.base;
    // Ranked by remainder (desc), then path order, so the split is deterministic.
    const rank = parts.map((_, i) => i).sort((a, b) => parts[b].rem - parts[a].rem || a - b);
    // Rounding can leave up to one byte per path over or under: hand out or take back
    // cyclically (taking from the smallest remainders first) until the total is exact.
    for (let k = 0; left > 0; k = (k + 1) % rank.length) {
      parts[rank[k]].base++;
      left--;
    }
    for (let k = rank.length - 1; left < 0; k = (k - 1 + rank.length) % rank.length) {
      if (parts[rank[k]].base > 0) {
        parts[rank[k]].base--;
        left++;
      }
    }
    shares.forEach(([id], i) => out.set(id, parts[i].base));
    return out;
  }
}
