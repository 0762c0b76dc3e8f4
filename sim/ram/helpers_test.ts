/**
 * Properties of the RAM simulator's pure helpers: the incremental image digest, percentile
 * histogram, VM placement, fault windows and the profile's RTT estimate.
 */
import fc from "fast-check";
import assert from "node:assert/strict";
import { parseRamConfig } from "../../core/ram/config.ts";
import { percentile } from "../summary.ts";
import { Histogram } from "./histogram.ts";
import { fullDigest, SimImage } from "./image.ts";
import { backupsAfter } from "./placement.ts";
import { chooseProfile, meanLatencyMs, meanRttMs } from "./profile.ts";
import { mergeIntervals, WindowCursor } from "./windows.ts";
import { Rng } from "../rng.ts";
import { latencySampler } from "../network.ts";
import { parseScenario } from "../scenario.ts";

Deno.test("SimImage: the running digest equals the digest from scratch, whatever the history", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 64 }),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 2 ** 32 - 1 }), fc.boolean()), { maxLength: 200 }),
      (pages, writes) => {
        const img = new SimImage(pages, true);
        const plain = new SimImage(pages, false);
        for (const [p, v, viaApply] of writes) {
          const page = p % pages;
          if (viaApply) img.apply(page, v);
          else img.write(page, v);
          plain.write(page, v);
        }
        assert.equal(img.digest(), fullDigest(img.versions));
        assert.equal(plain.digest(), img.digest());
      },
    ),
  );
});

Deno.test("SimImage: images that differ in one page have different digests", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 256 }),
      fc.nat(),
      fc.integer({ min: 1, max: 2 ** 32 - 1 }),
      (pages, p, v) => {
        const a = new SimImage(pages, true);
        const b = new SimImage(pages, true);
        b.write(p % pages, v);
        assert.notEqual(a.digest(), b.digest());
        a.write(p % pages, v);
        assert.equal(a.digest(), b.digest());
      },
    ),
  );
});

Deno.test("Histogram: percentiles within 1 % (or 0.001) of the exact nearest rank", () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 300 }),
      fc.double({ min: 0, max: 100, noNaN: true }),
      (values, p) => {
        const h = new Histogram();
        for (const v of values) h.add(v);
        const sorted = values.slice().sort((a, b) => a - b);
        const exact = percentile(sorted, p)!;
        const got = h.percentile(p)!;
        assert.ok(
          Math.abs(got - exact) <= Math.max(0.01 * exact, 1e-3),
          `p${p}: ${got} vs ${exact}`,
        );
        assert.equal(h.count, values.length);
        assert.equal(h.percentile(100), sorted[sorted.length - 1]);
        assert.equal(h.percentile(0), sorted[0]);
      },
    ),
  );
  const h = new Histogram();
  assert.equal(h.percentile(50), null);
  assert.equal(h.mean, null);
  h.add(-1);
  h.add(NaN);
  assert.equal(h.count, 0);
});

Deno.test("backupsAfter: distinct candidates other than the primary, nearest after it first", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }).chain((n) =>
        fc.tuple(
          fc.constant(n),
          fc.nat({ max: n - 1 }),
          fc.uniqueArray(fc.nat({ max: n - 1 }), { maxLength: n }),
          fc.nat({ max: 5 }),
        )
      ),
      ([n, primary, cands, count]) => {
        const sorted = cands.slice().sort((a, b) => a - b);
        const got = backupsAfter(primary, sorted, n, count);
        const others = sorted.filter((c) => c !== primary);
        assert.equal(got.length, Math.min(count, others.length));
        assert.equal(new Set(got).size, got.length);
        for (const b of got) assert.ok(others.includes(b));
        // Every chosen one is at least as near (cyclically after the primary) as any left out.
        const dist = (c: number) => (c - primary + n) % n;
        const worst = Math.max(-1, ...got.map(dist));
        for (const c of others) if (!got.includes(c)) assert.ok(dist(c) > worst);
      },
    ),
  );
});

Deno.test("mergeIntervals and WindowCursor agree with a naive membership test", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat({ max: 1000 }), fc.nat({ max: 300 })), { maxLength: 10 }),
      fc.array(fc.nat({ max: 1400 }), { maxLength: 50 }),
      (raw, probes) => {
        const list = raw.map(([a, len]) => [a, a + len] as const);
        const merged = mergeIntervals(list);
        for (let i = 1; i < merged.length; i++) assert.ok(merged[i][0] > merged[i - 1][1]);
        const cursor = new WindowCursor(merged);
        for (const t of probes.slice().sort((a, b) => a - b)) {
          const naive = list.some(([a, b]) => a <= t && t <= b);
          assert.equal(cursor.contains(t), naive, `t=${t}`);
        }
      },
    ),
  );
});

Deno.test("meanLatencyMs matches the sampled mean of each distribution", () => {
  const rng = Rng.fromSeed(1);
  for (
    const l of [
      { dist: "constant", value: 3 },
      { dist: "uniform", min: 60, max: 80 },
      { dist: "normal", mean: 10, sd: 1 },
      { dist: "lognormal", median: 5, sigma: 0.5 },
      { dist: "pareto", scale: 2, shape: 3 },
    ] as const
  ) {
    const draw = latencySampler(l);
    let sum = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) sum += draw(rng);
    const want = meanLatencyMs(l);
    assert.ok(Math.abs(sum / n - want) < 0.05 * want, `${l.dist}: ${sum / n} vs ${want}`);
  }
});

Deno.test("the profile follows the slowest backup's mean RTT, or the fixed config", () => {
  const s = parseScenario({
    name: "p",
    duration: "1s",
    nodes: [{ group: "a", count: 1, region: "eu" }, { group: "b", count: 1, region: "us" }],
    network: { latency: { dist: "constant", value: 1 }, regions: { eu: { us: 60 } } },
    checks: [],
  });
  assert.equal(meanRttMs(s.network, "eu", "eu"), 2);
  assert.equal(meanRttMs(s.network, "eu", "us"), 122);
  assert.equal(meanRttMs(s.network, "us", "eu"), 122);
  const auto = parseRamConfig({});
  assert.equal(chooseProfile(auto, []), "low");
  assert.equal(chooseProfile(auto, [2]), "low");
  assert.equal(chooseProfile(auto, [2, 50]), "medium");
  assert.equal(chooseProfile(auto, [2, 122]), "high");
  assert.equal(chooseProfile(parseRamConfig({ profile: "high" }), [2]), "high");
});
