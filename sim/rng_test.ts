import assert from "node:assert/strict";
import fc from "fast-check";
import { Rng } from "./rng.ts";

function draws(r: Rng, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(r.u32());
  return out;
}

Deno.test("rng: same seed and name path give the same sequence", () => {
  assert.deepEqual(
    draws(Rng.fromSeed(7).derive("node").derive("3"), 1000),
    draws(Rng.fromSeed(7).derive("node").derive("3"), 1000),
  );
  assert.deepEqual(draws(Rng.fromSeed(7), 100), draws(Rng.fromSeed(7), 100));
  assert.deepEqual(draws(Rng.fromSeed(7n), 100), draws(Rng.fromSeed(7), 100));
});

Deno.test("rng: golden values (changing these changes every trace hash)", () => {
  const r = Rng.fromSeed(1);
  assert.equal(r.key(), "b64a32d78aa56925");
  assert.deepEqual(draws(r, 3), [1439806328, 949764437, 1237515888]);
  const c = Rng.fromSeed(1).derive("node").derive("17");
  assert.equal(c.path, "/node/17");
  assert.equal(c.key(), "c89f7c088b9e59a8");
  assert.deepEqual(draws(c, 3), [1806954549, 2022015540, 3484551498]);
});

Deno.test("rng: a derived stream does not depend on draws from parent or siblings", () => {
  const expected = draws(Rng.fromSeed(99).derive("a").derive("b"), 200);

  const root = Rng.fromSeed(99);
  draws(root, 1234);
  root.normal(); // leaves a cached spare in the parent
  const sib = root.derive("sibling");
  draws(sib, 500);
  const a = root.derive("a");
  draws(a, 77);
  a.derive("other");
  assert.deepEqual(draws(a.derive("b"), 200), expected);

  // Deriving the same name twice yields identical, independent-of-each-other streams.
  const x = root.derive("a").derive("b");
  const y = root.derive("a").derive("b");
  draws(x, 10);
  assert.deepEqual(draws(y, 200), expected);
});

Deno.test("rng: different seeds, names and paths give different streams", () => {
  const seqs = [
    draws(Rng.fromSeed(1), 8),
    draws(Rng.fromSeed(2), 8),
    draws(Rng.fromSeed(1).derive("a"), 8),
    draws(Rng.fromSeed(1).derive("b"), 8),
    draws(Rng.fromSeed(1).derive(""), 8),
    draws(Rng.fromSeed(1).derive("a").derive("bc"), 8),
    draws(Rng.fromSeed(1).derive("ab").derive("c"), 8),
    draws(Rng.fromSeed(1).derive("abc"), 8),
    draws(Rng.fromSeed(1).derive("a").derive("a"), 8),
    draws(Rng.fromSeed(2 ** 32).derive("a"), 8),
    draws(Rng.fromSeed(-1), 8),
  ];
  const keys = new Set(seqs.map((s) => s.join(",")));
  assert.equal(keys.size, seqs.length);
});

Deno.test("rng: seeds are validated; bigints are taken modulo 2^64", () => {
  assert.throws(() => Rng.fromSeed(1.5), RangeError);
  assert.throws(() => Rng.fromSeed(NaN), RangeError);
  assert.throws(() => Rng.fromSeed(2 ** 60), RangeError);
  assert.equal(Rng.fromSeed(2n ** 64n + 5n).key(), Rng.fromSeed(5).key());
  assert.equal(Rng.fromSeed(-1).key(), Rng.fromSeed(2n ** 64n - 1n).key());
});

Deno.test("rng: int(n) is an integer in [0, n) for any safe n", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.oneof(
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 2 ** 21 + 10 }),
        fc.integer({ min: 1, max: 2 ** 32 + 10 }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      ),
      (seed, n) => {
        const r = Rng.fromSeed(seed);
        for (let i = 0; i < 50; i++) {
          const v = r.int(n);
          if (!Number.isInteger(v) || v < 0 || v >= n) return false;
        }
        return true;
      },
    ),
  );
  const r = Rng.fromSeed(3);
  for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
    assert.throws(() => r.int(bad), RangeError, `int(${bad})`);
  }
});

Deno.test("rng: int(n) is roughly uniform (chi-square, fixed seed)", () => {
  for (const n of [10, 3_000_000, 2 ** 32 + 7]) {
    const r = Rng.fromSeed(11).derive(`int-${n}`);
    const bins = 10;
    const counts = new Array(bins).fill(0);
    const N = 100_000;
    for (let i = 0; i < N; i++) counts[Math.floor((r.int(n) / n) * bins)]++;
    const e = N / bins;
    const chi2 = counts.reduce((s, c) => s + (c - e) ** 2 / e, 0);
    assert.ok(chi2 < 30, `n=${n} chi2=${chi2}`); // 9 dof, p ~ 0.0004
  }
});

Deno.test("rng: next, range and chance", () => {
  const r = Rng.fromSeed(5).derive("u");
  let sum = 0;
  let hits = 0;
  const N = 100_000;
  for (let i = 0; i < N; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    sum += u;
    const x = r.range(-3, 5);
    assert.ok(x >= -3 && x < 5);
    if (r.chance(0.3)) hits++;
  }
  assert.ok(Math.abs(sum / N - 0.5) < 0.01, `mean ${sum / N}`);
  assert.ok(Math.abs(hits / N - 0.3) < 0.01, `chance ${hits / N}`);
  assert.equal(r.chance(0), false);
  assert.equal(r.chance(1), true);
});

function stats(xs: number[]): { mean: number; sd: number; median: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
  const sorted = [...xs].sort((a, b) => a - b);
  return { mean, sd: Math.sqrt(v), median: sorted[sorted.length >> 1] };
}

function sampleN(n: number, f: () => number): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = f();
  return out;
}

Deno.test("rng: distributions have the expected moments (fixed seeds, 100k draws)", () => {
  const root = Rng.fromSeed(2024);
  const N = 100_000;

  const ex = root.derive("exp");
  const e = stats(sampleN(N, () => ex.exp(2.5)));
  assert.ok(Math.abs(e.mean - 2.5) < 0.05, `exp mean ${e.mean}`);
  assert.ok(Math.abs(e.median - 2.5 * Math.LN2) < 0.05, `exp median ${e.median}`);

  const nr = root.derive("normal");
  const n = stats(sampleN(N, () => nr.normal(10, 3)));
  assert.ok(Math.abs(n.mean - 10) < 0.05, `normal mean ${n.mean}`);
  assert.ok(Math.abs(n.sd - 3) < 0.05, `normal sd ${n.sd}`);
  const std = stats(sampleN(N, () => nr.normal()));
  assert.ok(Math.abs(std.mean) < 0.02 && Math.abs(std.sd - 1) < 0.02);

  const ln = root.derive("lognormal");
  const l = stats(sampleN(N, () => ln.lognormal(1, 0.5)));
  assert.ok(Math.abs(l.median - Math.E) < 0.05, `lognormal median ${l.median}`);
  assert.ok(Math.abs(l.mean - Math.exp(1 + 0.125)) < 0.05, `lognormal mean ${l.mean}`);

  const pa = root.derive("pareto");
  const pxs = sampleN(N, () => pa.pareto(2, 3));
  const p = stats(pxs);
  assert.ok(Math.min(...pxs) >= 2);
  assert.ok(Math.abs(p.mean - 3) < 0.05, `pareto mean ${p.mean}`); // shape*scale/(shape-1)
  assert.ok(Math.abs(p.median - 2 * 2 ** (1 / 3)) < 0.02, `pareto median ${p.median}`);
});

Deno.test("rng: shuffle is an in-place permutation; pick returns an element", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1e6 }), fc.array(fc.integer()), (seed, xs) => {
      const arr = [...xs];
      const r = Rng.fromSeed(seed);
      assert.equal(r.shuffle(arr), arr);
      assert.deepEqual([...arr].sort((a, b) => a - b), [...xs].sort((a, b) => a - b));
      if (xs.length > 0) assert.ok(xs.includes(r.pick(xs)));
    }),
  );
  assert.throws(() => Rng.fromSeed(1).pick([]), RangeError);
  const a = Rng.fromSeed(4).shuffle([...Array(50).keys()]);
  const b = Rng.fromSeed(4).shuffle([...Array(50).keys()]);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, [...Array(50).keys()]);
});

/** Reference: dense partial Fisher-Yates over an index array. */
function refSample<T>(r: Rng, arr: readonly T[], k: number): T[] {
  const idx = arr.map((_, i) => i);
  const out: T[] = [];
  for (let i = 0; i < k; i++) {
    const j = i + r.int(arr.length - i);
    [idx[i], idx[j]] = [idx[j], idx[i]];
    out.push(arr[idx[i]]);
  }
  return out;
}

Deno.test("rng: sample gives k distinct positions, deterministically, on both paths", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 1e6 }),
      fc.integer({ min: 0, max: 300 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (seed, n, frac) => {
        const arr = [...Array(n).keys()];
        const k = Math.floor(frac * n);
        const got = Rng.fromSeed(seed).sample(arr, k);
        assert.equal(got.length, k);
        assert.equal(new Set(got).size, k);
        assert.deepEqual(got, refSample(Rng.fromSeed(seed), arr, k));
        assert.deepEqual(arr, [...Array(n).keys()]); // input untouched
      },
    ),
  );
  const r = Rng.fromSeed(1);
  assert.throws(() => r.sample([1, 2], 3), RangeError);
  assert.throws(() => r.sample([1, 2], -1), RangeError);
  assert.deepEqual(r.sample([1, 2, 3], 0), []);
});
