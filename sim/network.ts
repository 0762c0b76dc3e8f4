/**
 * The network model: per-message latency (distribution + jitter + region matrix), loss,
 * duplication, reordering, uplink bandwidth with serialisation delay and a FIFO queue, and
 * the link faults (partitions, one-way cuts, slowed and jammed links, degraded nodes) that
 * are active at the time of sending.
 */
import type { Rng } from "./rng.ts";
import type { Latency, Scenario } from "./scenario.ts";

export type NetworkConfig = Scenario["network"];

/** A link fault in force; `affected` counts the messages it dropped or delayed. */
export interface LinkRule {
  readonly kind: "partition" | "oneway" | "slow" | "jam" | "degrade";
  /** partition: group id per node (-1 = not listed: the implicit rest group). */
  readonly groupOf?: Int32Array;
  /** oneway from/to, slow and jam sides, degrade nodes. */
  readonly a?: Uint8Array;
  readonly b?: Uint8Array;
  readonly loss: number;
  readonly addLatency: number;
  readonly direction?: "in" | "out" | "both";
  affected: number;
}

export const DropReason = {
  None: 0,
  Loss: 1,
  Partition: 2,
  OneWay: 3,
  Jam: 4,
  Degrade: 5,
  Queue: 6,
} as const;
export const dropReasonName = ["none", "loss", "partition", "oneway", "jam", "degrade", "queue"];

/** No single delay exceeds an hour, however heavy the tail (keeps virtual time finite). */
export const MAX_LATENCY_MS = 3_600_000;

export function latencySampler(l: Latency): (rng: Rng) => number {
  const draw = rawSampler(l);
  return (rng) => Math.min(MAX_LATENCY_MS, draw(rng));
}

function rawSampler(l: Latency): (rng: Rng) => number {
  switch (l.dist) {
    case "constant":
      return () => l.value;
    case "uniform":
      return (r) => l.min + (l.max - l.min) * r.next();
    case "normal":
      return (r) => Math.max(0, r.normal(l.mean, l.sd));
    case "lognormal": {
      const mu = Math.log(l.median);
      return (r) => r.lognormal(mu, l.sigma);
    }
    case "pareto":
      return (r) => r.pareto(l.scale, l.shape);
  }
}

export class NetworkModel {
  private readonly sample: (rng: Rng) => number;
  private readonly regionOf: Int32Array;
  private readonly regionLatency: Float64Array;
  private readonly regionCount: number;
  private readonly egressFree: Float64Array;
  private readonly bytesPerMs: number;
  private readonly maxQueueMs: number;
  readonly rules: LinkRule[] = [];
  /** Partitions that have healed, with the time they healed. */
  private readonly healed: Array<{ groupOf: Int32Array; at: number }> = [];
  readonly drops = new Float64Array(dropReasonName.length);

  constructor(readonly cfg: NetworkConfig, nodeRegions: readonly string[]) {
    this.sample = latencySampler(cfg.latency);
    const names = [...new Set([...nodeRegions, ...Object.keys(cfg.regions)])];
    const index = new Map(names.map((n, i) => [n, i]));
    this.regionCount = names.length;
    this.regionOf = Int32Array.from(nodeRegions, (r) => index.get(r)!);
    this.regionLatency = new Float64Array(names.length * names.length);
    for (const [from, row] of Object.entries(cfg.regions)) {
      for (const [to, ms] of Object.entries(row)) {
        const i = index.get(from)!, j = index.get(to);
        if (j === undefined) continue;
        this.regionLatency[i * names.length + j] = ms;
        // A matrix given one way only is taken as symmetric.
        if (cfg.regions[to]?.[from] === undefined) this.regionLatency[j * names.length + i] = ms;
      }
    }
    this.egressFree = new Float64Array(nodeRegions.length);
    this.bytesPerMs = cfg.bandwidth ? cfg.bandwidth / 8 / 1000 : Infinity;
    this.maxQueueMs = cfg.bandwidth ? cfg.queue / this.bytesPerMs : Infinity;
  }

  addRule(rule: LinkRule): void {
    this.rules.push(rule);
  }
  removeRule(rule: LinkRule, now: number): void {
    const i = this.rules.indexOf(rule);
    if (i >= 0) this.rules.splice(i, 1);
    if (rule.kind === "partition") this.healed.push({ groupOf: rule.groupOf!, at: now });
  }

  /**
   * True when a partition separates the two nodes now, or did within `graceMs`: failure
   * declarations between them are then expected (suspicions started during the partition
   * still expire, and its dead items still spread, for a while after the heal).
   */
  partitioned(x: number, y: number, now = 0, graceMs = 0): boolean {
    for (const r of this.rules) {
      if (r.kind === "partition" && r.groupOf![x] !== r.groupOf![y]) return true;
    }
    for (const h of this.healed) {
      if (now - h.at <= graceMs && h.groupOf[x] !== h.groupOf[y]) return true;
    }
    return false;
  }

  /**
   * Delay in ms until the message arrives, or a negative DropReason. Draws only from the
   * sender's `rng`, so other nodes' streams are never perturbed.
   */
  route(from: number, to: number, size: number, now: number, rng: Rng): number {
    let extra = 0;
    for (let i = 0; i < this.rules.length; i++) {
      const r = this.rules[i];
      switch (r.kind) {
        case "partition":
          if (r.groupOf![from] !== r.groupOf![to]) {
            r.affected++;
            return this.drop(DropReason.Partition);
          }
          break;
        case "oneway":
          if (r.a![from] && r.b![to] && (r.loss >= 1 || rng.next() < r.loss)) {
            r.affected++;
            return this.drop(DropReason.OneWay);
          }
          break;
        case "jam":
          if (((r.a![from] && r.b![to]) || (r.b![from] && r.a![to])) && rng.next() < r.loss) {
            r.affected++;
            return this.drop(DropReason.Jam);
          }
          break;
        case "slow":
          if ((r.a![from] && r.b![to]) || (r.b![from] && r.a![to])) {
            r.affected++;
            extra += r.addLatency;
          }
          break;
        case "degrade": {
          const hit = (r.direction !== "in" && r.a![from]) || (r.direction !== "out" && r.a![to]);
          if (hit) {
            r.affected++;
            if (r.loss > 0 && rng.next() < r.loss) return this.drop(DropReason.Degrade);
            extra += r.addLatency;
          }
          break;
        }
      }
    }
    const cfg = this.cfg;
    if (cfg.loss > 0 && rng.next() < cfg.loss) return this.drop(DropReason.Loss);

    // Uplink: serialisation delay behind whatever is already queued.
    let depart = now;
    if (this.bytesPerMs !== Infinity) {
      const start = Math.max(now, this.egressFree[from]);
      if (start - now > this.maxQueueMs) return this.drop(DropReason.Queue);
      depart = start + size / this.bytesPerMs;
      this.egressFree[from] = depart;
    }
    let latency = this.sample(rng) + extra;
    if (this.regionCount > 1) {
      latency += this.regionLatency[this.regionOf[from] * this.regionCount + this.regionOf[to]];
    }
    if (cfg.jitter > 0) latency += rng.next() * cfg.jitter;
    if (cfg.reorder > 0 && rng.next() < cfg.reorder) latency += cfg.reorderDelay;
    return depart - now + latency;
  }

  /** Whether to deliver a second copy (drawn after `route` succeeded). */
  duplicate(rng: Rng): boolean {
    return this.cfg.duplicate > 0 && rng.next() < this.cfg.duplicate;
  }

  /** Latency of a duplicate copy (no extra bandwidth is charged). */
  resample(rng: Rng): number {
    return this.sample(rng) + (this.cfg.jitter > 0 ? rng.next() * this.cfg.jitter : 0);
  }

  private drop(reason: number): number {
    this.drops[reason]++;
    return -reason;
  }
}
