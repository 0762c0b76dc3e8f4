/**
 * Seeded, splittable PRNG for the simulator (DESIGN.md section 3).
 *
 * Every stream is an sfc32 generator (Chris Doty-Humphrey's Small Fast Counting RNG, 128-bit
 * state, 32-bit output, passes PractRand/BigCrush) keyed by a 64-bit key. The root key is a hash
 * of the seed; `derive(name)` hashes (parent key, UTF-8 bytes of name, byte length) into the
 * child key. A stream is therefore a pure function of (root seed, full name path): draws on the
 * parent or on siblings never perturb it, and `derive("a")` called twice yields two identical
 * streams.
 */

const TEXT = new TextEncoder();
const TWO_32 = 4294967296;
const TWO_53 = 9007199254740992;
/** Largest n for which Lemire's multiply-shift runs exactly in float64 (2^32 * n <= 2^53). */
const LEMIRE_MAX = 2097152;

/** murmur3 32-bit finalizer: a bijective avalanche mixer on int32. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** Hashes (k0, k1, bytes[0..len)) to a 64-bit key, returned as two int32 lanes in `out`. */
function hashKey(k0: number, k1: number, bytes: Uint8Array, len: number, out: Int32Array): void {
  let h1 = fmix32(k0 ^ 0x6a09e667);
  let h2 = fmix32(k1 ^ 0x3c6ef372);
  for (let i = 0; i < len; i++) {
    const c = bytes[i];
    h1 = Math.imul(h1 ^ c, 0x9e3779b1);
    h1 ^= h1 >>> 15;
    h2 = Math.imul((h2 + c) | 0, 0x85ebca77);
    h2 ^= h2 >>> 13;
  }
  h1 = fmix32(h1 ^ len);
  h2 = fmix32(h2 ^ Math.imul(len, 0x27d4eb2f));
  // Cross-lane finalisation so every input bit reaches both output lanes.
  out[0] = fmix32(h1 ^ Math.imul(h2, 0x165667b1));
  out[1] = fmix32(h2 ^ Math.imul(out[0], 0x2545f491) ^ 0x1b873593);
}

const ASCII = new Uint8Array(256);

/** Hashes a name's UTF-8 bytes; short ASCII names are encoded without allocating. */
function hashName(k0: number, k1: number, name: string, out: Int32Array): void {
  if (name.length <= ASCII.length) {
    let i = 0;
    for (; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c >= 0x80) break;
      ASCII[i] = c;
    }
    if (i === name.length) return hashKey(k0, k1, ASCII, i, out);
  }
  const bytes = TEXT.encode(name);
  hashKey(k0, k1, bytes, bytes.length, out);
}

function toUint64(seed: number | bigint): bigint {
  if (typeof seed === "bigint") return BigInt.asUintN(64, seed);
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(`Rng seed must be a safe integer or a bigint, got ${seed}`);
  }
  return BigInt.asUintN(64, BigInt(seed));
}

const SCRATCH = new Int32Array(2);
const EMPTY = new Uint8Array(0);

export class Rng {
  /** sfc32 state a, b, c and counter d, as int32 values. */
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;
  /** This stream's 64-bit key (two int32 lanes); children derive from it, never from the state. */
  private readonly k0: number;
  private readonly k1: number;
  /** Box-Muller spare (per stream only; never consulted by derive). */
  private spare = 0;
  private hasSpare = false;
  /** The name path from the root, e.g. "/node/17/net"; for diagnostics. */
  readonly path: string;

  private constructor(k0: number, k1: number, path: string) {
    this.k0 = k0;
    this.k1 = k1;
    this.path = path;
    this.a = k0;
    this.b = k1;
    this.c = fmix32(k0 ^ k1 ^ 0x5bd1e995);
    this.d = 1;
    for (let i = 0; i < 16; i++) this.u32();
  }

  /** Root stream for a seed (a safe integer, or a bigint taken modulo 2^64). */
  static fromSeed(seed: number | bigint): Rng {
    const v = toUint64(seed);
    const lo = Number(v & 0xffffffffn) | 0;
    const hi = Number(v >> 32n) | 0;
    hashKey(lo, hi, EMPTY, 0, SCRATCH);
    return new Rng(SCRATCH[0], SCRATCH[1], "");
  }

  /** Independent child stream keyed by (this stream's key, name); independent of draws. */
  derive(name: string): Rng {
    hashName(this.k0, this.k1, name, SCRATCH);
    return new Rng(SCRATCH[0], SCRATCH[1], `${this.path}/${name}`);
  }

  /** 64-bit key of this stream as 16 hex chars (diagnostics, golden tests). */
  key(): string {
    return (this.k1 >>> 0).toString(16).padStart(8, "0") +
      (this.k0 >>> 0).toString(16).padStart(8, "0");
  }

  /** Uniform integer in [0, 2^32). */
  u32(): number {
    const a = this.a, b = this.b, c = this.c, d = this.d;
    const t = (((a + b) | 0) + d) | 0;
    this.d = (d + 1) | 0;
    this.a = b ^ (b >>> 9);
    this.b = (c + (c << 3)) | 0;
    this.c = (((c << 21) | (c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 53-bit resolution (two u32 draws). */
  next(): number {
    const hi = this.u32() >>> 5;
    const lo = this.u32() >>> 6;
    return (hi * 67108864 + lo) / TWO_53;
  }

  /** Uniform integer in [0, n); n a safe integer >= 1. Unbiased. */
  int(n: number): number {
    if (n <= LEMIRE_MAX && n >= 1 && (n | 0) === n) {
      // Lemire's nearly-divisionless method; r * n < 2^53 so the product is exact.
      let m = this.u32() * n;
      let lo = m >>> 0; // m mod 2^32 (ToUint32 is exact for integers below 2^53)
      if (lo < n) {
        const threshold = (TWO_32 - n) % n;
        while (lo < threshold) {
          m = this.u32() * n;
          lo = m >>> 0;
        }
      }
      return Math.floor(m / TWO_32);
    }
    return this.intSlow(n);
  }

  private intSlow(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new RangeError(`Rng.int(n) needs a safe integer n >= 1, got ${n}`);
    }
    // Bit-mask rejection: expected < 2 attempts.
    if (n <= TWO_32) {
      const bits = 32 - Math.clz32(n - 1);
      const mask = bits === 32 ? 0xffffffff : (1 << bits) - 1;
      for (;;) {
        const r = (this.u32() & mask) >>> 0;
        if (r < n) return r;
      }
    }
    const hiBound = Math.ceil(n / TWO_32); // <= 2^21
    const hiBits = 32 - Math.clz32(hiBound - 1);
    const hiMask = (1 << hiBits) - 1;
    for (;;) {
      const hi = this.u32() & hiMask;
      const r = hi * TWO_32 + this.u32();
      if (r < n) return r;
    }
  }

  /** Uniform float in [a, b). */
  range(a: number, b: number): number {
    return a + (b - a) * this.next();
  }

  /** True with probability p (p <= 0 never, p >= 1 always). */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Exponential with the given mean (rate 1/mean). */
  exp(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }

  /** Normal via Box-Muller; the spare variate is cached in this stream only. */
  normal(mean = 0, sd = 1): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return mean + sd * this.spare;
    }
    const u = 1 - this.next(); // (0, 1]
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * v;
    this.spare = r * Math.sin(th);
    this.hasSpare = true;
    return mean + sd * r * Math.cos(th);
  }

  /** exp(N(mu, sigma)): median e^mu. */
  lognormal(mu: number, sigma: number): number {
    return Math.exp(this.normal(mu, sigma));
  }

  /** Pareto type I: support [scale, inf), P(X > x) = (scale / x)^shape. */
  pareto(scale: number, shape: number): number {
    return scale * Math.pow(1 - this.next(), -1 / shape);
  }

  /** Fisher-Yates shuffle in place; returns arr. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  }

  /** One uniformly chosen element; throws on an empty array. */
  pick<T>(arr: readonly T[]): T {
    if (arr.length === 0) throw new RangeError("Rng.pick from an empty array");
    return arr[this.int(arr.length)];
  }

  /**
   * k distinct elements (distinct positions) in random order, via a partial Fisher-Yates
   * shuffle of the indices. The dense and sparse paths produce identical results, so the
   * output depends only on (stream state, arr, k). Does not modify arr.
   */
  sample<T>(arr: readonly T[], k: number): T[] {
    const n = arr.length;
    if (!Number.isSafeInteger(k) || k < 0 || k > n) {
      throw new RangeError(`Rng.sample needs an integer 0 <= k <= ${n}, got ${k}`);
    }
    const out: T[] = new Array(k);
    if (k * 4 >= n) {
      const idx = new Int32Array(n);
      for (let i = 0; i < n; i++) idx[i] = i;
      for (let i = 0; i < k; i++) {
        const j = i + this.int(n - i);
        const vj = idx[j];
        idx[j] = idx[i];
        out[i] = arr[vj];
      }
      return out;
    }
    const moved = new Map<number, number>();
    for (let i = 0; i < k; i++) {
      const j = i + this.int(n - i);
      const vi = moved.get(i) ?? i;
      const vj = moved.get(j) ?? j;
      moved.set(j, vi);
      out[i] = arr[vj];
    }
    return out;
  }
}
