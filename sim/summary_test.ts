import assert from "node:assert/strict";
import fc from "fast-check";
import { latencyStats, percentile, replayCommand } from "./summary.ts";

const valuesArb = fc.array(fc.integer({ min: -1000, max: 100_000 }), {
  minLength: 1,
  maxLength: 300,
});
const sortedArb = valuesArb.map((xs) => xs.sort((a, b) => a - b));
const pArb = fc.double({ min: 0, max: 100, noNaN: true });
/** Common percentiles (every integer p is covered by its own test). */
const COMMON_P = [0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 100];

// ---------------------------------------------------------------------------------------
// percentile

Deno.test("percentile: nearest-rank examples", () => {
  const xs = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
  assert.equal(percentile(xs, 50), 50);
  assert.equal(percentile(xs, 51), 60);
  assert.equal(percentile(xs, 90), 90);
  assert.equal(percentile(xs, 99), 100);
  assert.equal(percentile(xs, 100), 100);
  assert.equal(percentile(xs, 0), 10);
  assert.equal(percentile(xs, 1), 10);
  assert.equal(percentile([15, 20, 35, 40, 50], 30), 20); // the textbook example
  assert.equal(percentile([15, 20, 35, 40, 50], 40), 20);
  assert.equal(percentile([15, 20, 35, 40, 50], 50), 35);
  assert.equal(percentile([7], 50), 7);
  assert.equal(percentile([], 50), null);
});

Deno.test("percentile: an element of the array, monotone in p, min at 0 and max at 100", () => {
  fc.assert(
    fc.property(sortedArb, pArb, pArb, (xs, p, q) => {
      const v = percentile(xs, p)!;
      assert.ok(xs.includes(v), `${v} is not an element`);
      const [lo, hi] = p <= q ? [p, q] : [q, p];
      assert.ok(percentile(xs, lo)! <= percentile(xs, hi)!, `not monotone between ${lo} and ${hi}`);
      assert.equal(percentile(xs, 100), xs[xs.length - 1]);
      assert.equal(percentile(xs, 0), xs[0]);
    }),
  );
});

Deno.test("percentile: the smallest value with at least p% of the values at or below it", () => {
  fc.assert(
    fc.property(sortedArb, fc.constantFrom(...COMMON_P), (xs, p) => {
      const v = percentile(xs, p)!;
      const need = Math.max(1, Math.ceil((p * xs.length) / 100));
      const atOrBelow = xs.filter((x) => x <= v).length;
      const below = xs.filter((x) => x < v).length;
      assert.ok(atOrBelow >= need, `only ${atOrBelow} of ${xs.length} values <= p${p}`);
      assert.ok(below < need, `p${p} = ${v} is not the smallest such value`);
    }),
  );
});

Deno.test({
  name: "percentile: exact nearest rank for every integer p",
  // Regression: ceil((p / 100) * n) rounded up past exact integers ((7 / 100) * 100 is
  // 7.000000000000001), so percentile(1..100, 7) was 8.
  fn() {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    for (let p = 1; p <= 100; p++) assert.equal(percentile(xs, p), p, `p${p}`);
  },
});

// ---------------------------------------------------------------------------------------
// latencyStats

Deno.test("latencyStats: count, p50 <= p99 <= max, input left unsorted", () => {
  fc.assert(
    fc.property(valuesArb, (xs) => {
      const before = xs.slice();
      const s = latencyStats(xs);
      assert.deepEqual(xs, before, "latencyStats sorted its input in place");
      const sorted = xs.slice().sort((a, b) => a - b);
      assert.equal(s.count, xs.length);
      assert.equal(s.maxMs, Math.max(...xs));
      assert.equal(s.p50Ms, percentile(sorted, 50));
      assert.equal(s.p99Ms, percentile(sorted, 99));
      assert.ok(Math.min(...xs) <= s.p50Ms! && s.p50Ms! <= s.p99Ms! && s.p99Ms! <= s.maxMs!);
    }),
  );
  // Numeric, not lexicographic, order.
  assert.deepEqual(latencyStats([100, 9, 20]), { count: 3, p50Ms: 20, p99Ms: 100, maxMs: 100 });
});

Deno.test("latencyStats: empty input gives nulls", () => {
  assert.deepEqual(latencyStats([]), { count: 0, p50Ms: null, p99Ms: null, maxMs: null });
});

// ---------------------------------------------------------------------------------------
// replayCommand

Deno.test("replayCommand: names the file, the seed, every --set and the event", () => {
  assert.equal(
    replayCommand("scenarios/demo.yaml", 42, ["nodes[0].count=5", "duration=2s"], 1234),
    'deno task sim replay scenarios/demo.yaml --seed 42 --set "nodes[0].count=5" --set "duration=2s" --event 1234',
  );
  assert.equal(replayCommand("s.yaml", 0, []), "deno task sim replay s.yaml --seed 0");
  assert.ok(replayCommand("s.yaml", 1, [], 0).endsWith(" --event 0"), "event 0 dropped");
});

Deno.test("replayCommand: contains each part, in order (property)", () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 30 }),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      fc.array(fc.string({ maxLength: 20 }), { maxLength: 5 }),
      fc.option(fc.nat(), { nil: undefined }),
      (file, seed, sets, event) => {
        const cmd = replayCommand(file, seed, sets, event);
        const want = [
          `deno task sim replay ${file}`,
          `--seed ${seed}`,
          ...sets.map((s) => `--set ${JSON.stringify(s)}`),
          ...(event === undefined ? [] : [`--event ${event}`]),
        ];
        assert.equal(cmd, want.join(" "));
      },
    ),
  );
});
