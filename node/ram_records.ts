/**
 * Bounded per-VM records kept by the node's RAM runtime: the primary's recent cut epochs
 * (with the image digest when one was taken), and recent epoch commit latencies (the
 * replication lag) for percentiles over a time window.
 */

export interface EpochRecord {
  term: number;
  epoch: number;
  /** Pages in the epoch. */
  pages: number;
  /** When it was cut (the node's RAM clock, ms). */
  at: number;
  /** sha256 of the image at the cut (hex), or null when none was taken. */
  digest: string | null;
}

/** A ring of the last `capacity` cut epochs. */
export class EpochLog {
  private readonly ring: EpochRecord[] = [];
  private next = 0;

  constructor(readonly capacity: number) {}

  push(r: EpochRecord): void {
    if (this.ring.length < this.capacity) this.ring.push(r);
    else this.ring[this.next] = r;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Oldest first. */
  list(): EpochRecord[] {
    return this.ring.length < this.capacity
      ? [...this.ring]
      : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }
}

/** Commit latencies with their times, the last `capacity` of them. */
export class LagWindow {
  private readonly at: Float64Array;
  private readonly ms: Float64Array;
  private n = 0;
  private next = 0;

  constructor(readonly capacity: number) {
    this.at = new Float64Array(capacity);
    this.ms = new Float64Array(capacity);
  }

  add(at: number, ms: number): void {
    this.at[this.next] = at;
    this.ms[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
    if (this.n < this.capacity) this.n++;
  }

  /** Percentiles of the samples taken at or after `since` (null without samples). */
  summary(since: number): { samples: number; p50Ms: number; p99Ms: number; maxMs: number } | null {
    const xs: number[] = [];
    for (let i = 0; i < this.n; i++) if (this.at[i] >= since) xs.push(this.ms[i]);
    if (xs.length === 0) return null;
    xs.sort((a, b) => a - b);
    const q = (p: number) => xs[Math.min(xs.length - 1, Math.ceil(p * xs.length) - 1)];
    return { samples: xs.length, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: xs[xs.length - 1] };
  }
}
