/**
 * A fixed-memory histogram of non-negative values (latencies in ms, buffer levels) with
 * percentiles accurate to 1 % relative (or 0.001 absolute near zero). A 1,000-VM run records
 * tens of millions of per-epoch samples; keeping them all to sort would cost gigabytes.
 *
 * Buckets grow geometrically by GROWTH from MIN: bucket i >= 1 holds [MIN*g^(i-1), MIN*g^i),
 * bucket 0 holds [0, MIN). A percentile is the geometric middle of its bucket, clamped to the
 * smallest and largest values seen; the first and last ranks are exact.
 */

const MIN = 1e-3;
const GROWTH = 1.01;
const LOG_G = Math.log(GROWTH);
/** Up to MIN * 1.01^3000, about 9e9: more than any virtual-time span we simulate. */
const BUCKETS = 3001;

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;

  /** Records `v` (negative and NaN values are ignored). */
  add(v: number): void {
    if (!(v >= 0)) return;
    this.counts[bucketOf(v)]++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  get mean(): number | null {
    return this.count > 0 ? this.sum / this.count : null;
  }

  /** Nearest-rank percentile p in [0, 100] (as `percentile` in sim/summary.ts); null if empty. */
  percentile(p: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.min(this.count, Math.max(1, Math.ceil((p * this.count) / 100)));
    if (rank === 1) return this.min;
    if (rank === this.count) return this.max;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) {
        const mid = i === 0 ? 0 : MIN * Math.pow(GROWTH, i - 0.5);
        return Math.min(this.max, Math.max(this.min, mid));
      }
    }
    return this.max;
  }
}

function bucketOf(v: number): number {
  if (v < MIN) return 0;
  const i = Math.floor(Math.log(v / MIN) / LOG_G) + 1;
  return i < BUCKETS ? i : BUCKETS - 1;
}
