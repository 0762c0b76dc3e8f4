import fc from "fast-check";
import assert from "node:assert/strict";
import { ConfigError } from "../errors.ts";
import {
  hotSetWorkload,
  makeWorkload,
  parseWorkload,
  spreadPages,
  uniformWorkload,
  WEB_SERVER,
  webServerWorkload,
  type Workload,
} from "./workloads.ts";

/** mulberry32: a small seeded source in [0, 1) for tests. */
function source(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = "uniform" | "hot-set" | "web-server";
function build(kind: Kind, pageCount: number, rate: number, zipfS = 1): Workload {
  switch (kind) {
    case "uniform":
      return uniformWorkload({ pageCount, ratePagesPerSec: rate });
    case "hot-set":
      return hotSetWorkload({
        pageCount,
        ratePagesPerSec: rate,
        hotPages: Math.max(1, Math.floor(pageCount / 3)),
        zipfS,
      });
    case "web-server":
      return webServerWorkload({ pageCount, ratePagesPerSec: rate });
  }
}
const kindArb = fc.constantFrom<Kind>("uniform", "hot-set", "web-server");

/** Runs `ticks` intervals of `dtMs` at `intensity`; all pages dirtied. */
function collect(w: Workload, ticks: number, dtMs: number, intensity: number, seed = 1): number[] {
  const random = source(seed);
  const out: number[] = [];
  for (let k = 0; k < ticks; k++) w.pages(dtMs, intensity, random, out);
  return out;
}

// ---------------------------------------------------------------------------------------

Deno.test("every page index is an integer in [0, pageCount)", () => {
  fc.assert(
    fc.property(
      kindArb,
      fc.integer({ min: 1, max: 5000 }),
      fc.integer({ min: 0, max: 50000 }),
      fc.array(fc.record({ dt: fc.double({ min: -5, max: 200, noNaN: true }), i: fc.double() })),
      fc.integer(),
      fc.double({ min: 0, max: 3, noNaN: true }),
      (kind, pageCount, rate, calls, seed, s) => {
        const w = build(kind, pageCount, rate, s);
        const random = source(seed);
        const out: number[] = [];
        for (const c of calls) w.pages(c.dt, c.i, random, out);
        for (const p of out) assert.ok(Number.isInteger(p) && p >= 0 && p < pageCount, `${p}`);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("a source that returns 1 (out of contract) still yields valid indices", () => {
  for (const kind of ["uniform", "hot-set", "web-server"] as const) {
    const out: number[] = [];
    build(kind, 100, 1000).pages(100, 0, () => 1 - Number.EPSILON / 4, out);
    build(kind, 100, 1000).pages(100, 0, () => 1, out);
    assert.ok(out.length === 200 && out.every((p) => p >= 0 && p < 100));
  }
});

/** Whether a long run's page count is within 1 % (or one page) of r0 * (1 - I) * t. */
function countProblem(w: Workload, ticks: number, dtMs: number, intensity: number) {
  const got = collect(w, ticks, dtMs, intensity).length;
  const want = w.baseRatePagesPerSec * (1 - intensity) * ticks * dtMs / 1000;
  // One page of slack (plus float drift of the carry) for short runs.
  return Math.abs(got - want) <= Math.max(1 + 1e-6, want * 0.01)
    ? undefined
    : `${got} pages, expected ${want}`;
}

Deno.test("page count over a long run is r0 * (1 - I) * t within 1 %", () => {
  fc.assert(
    fc.property(
      kindArb,
      fc.integer({ min: 0, max: 40000 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0.1, max: 20, noNaN: true }),
      (kind, rate, intensity, dtMs) => {
        const w = build(kind, 1000, rate);
        assert.equal(countProblem(w, 2000, dtMs, intensity), undefined);
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("countProblem catches a counter without the fractional carry", () => {
  const inner = uniformWorkload({ pageCount: 100, ratePagesPerSec: 150 });
  const noCarry: Workload = {
    name: "no-carry",
    baseRatePagesPerSec: 150,
    pages(dtMs, intensity, random, out) {
      const n = Math.floor(150 * (1 - intensity) * dtMs / 1000); // 0.75 per 5 ms tick -> 0
      for (let k = 0; k < n; k++) out.push(Math.floor(random() * 100));
    },
  };
  assert.equal(countProblem(inner, 1000, 5, 0), undefined);
  assert.match(countProblem(noCarry, 1000, 5, 0) ?? "", /0 pages, expected 750/);
});

Deno.test("no pages at intensity 1 (or NaN), nor for an empty interval", () => {
  fc.assert(
    fc.property(kindArb, fc.integer({ min: 1, max: 100000 }), (kind, rate) => {
      const w = build(kind, 500, rate);
      assert.deepEqual(collect(w, 100, 10, 1), []);
      assert.deepEqual(collect(w, 100, 10, NaN), []);
      assert.deepEqual(collect(w, 100, 0, 0), []);
      assert.deepEqual(collect(w, 100, -10, 0), []);
    }),
    { numRuns: 50 },
  );
});

Deno.test("deterministic given the same random stream and calls", () => {
  fc.assert(
    fc.property(kindArb, fc.integer(), fc.integer({ min: 1, max: 3000 }), (kind, seed, n) => {
      const a = collect(build(kind, n, 5000), 50, 7, 0.3, seed);
      const b = collect(build(kind, n, 5000), 50, 7, 0.3, seed);
      assert.deepEqual(a, b);
    }),
    { numRuns: 50 },
  );
  // ... and the stream matters.
  const a = collect(build("uniform", 1000, 5000), 50, 7, 0, 1);
  const b = collect(build("uniform", 1000, 5000), 50, 7, 0, 2);
  assert.notDeepEqual(a, b);
});

/** Share of writes that land on the busiest `fraction` of pages. */
function topShare(pages: readonly number[], pageCount: number, fraction: number): number {
  const counts = new Array<number>(pageCount).fill(0);
  for (const p of pages) counts[p]++;
  counts.sort((x, y) => y - x);
  let top = 0;
  for (let k = 0; k < Math.round(pageCount * fraction); k++) top += counts[k];
  return top / pages.length;
}

Deno.test("hot set with s = 1 concentrates: the top 10 % of pages take > 70 % of writes", () => {
  const n = 10000;
  const hot = hotSetWorkload({ pageCount: n, ratePagesPerSec: 100000, hotPages: n, zipfS: 1 });
  const pages = collect(hot, 100, 10, 0); // 100,000 writes
  // Zipf(1) over 10,000 ranks puts H(1000) / H(10000) ~ 76 % on the top 1,000.
  const share = topShare(pages, n, 0.1);
  assert.ok(share > 0.7, `hot set top share ${share}`);
  // The same predicate rejects a uniform workload (~ 10 % plus sampling noise).
  const flat = topShare(
    collect(uniformWorkload({ pageCount: n, ratePagesPerSec: 100000 }), 100, 10, 0),
    n,
    0.1,
  );
  assert.ok(!(flat > 0.7), `uniform top share ${flat}`);
  // s = 0 is uniform over the hot set: a small hot set gets every write.
  const flatHot = hotSetWorkload({
    pageCount: n,
    ratePagesPerSec: 100000,
    hotPages: 100,
    zipfS: 0,
  });
  assert.equal(new Set(collect(flatHot, 100, 10, 0)).size, 100);
});

Deno.test("spreadPages is a permutation prefix that scatters neighbouring ranks", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 20000 }), (n) => {
      const all = spreadPages(n, n);
      assert.equal(new Set(all).size, n);
      assert.ok(all.every((p) => p >= 0 && p < n));
      if (n >= 10) {
        for (let k = 1; k < Math.min(n, 100); k++) {
          assert.ok(Math.abs(all[k] - all[k - 1]) > 1, `ranks ${k - 1}, ${k} adjacent in ${n}`);
        }
      }
    }),
    { numRuns: 200 },
  );
});

Deno.test("web server: ~80 % of writes to 2 % of pages, 10 % sequential log appends", () => {
  const n = 50000;
  const w = webServerWorkload({ pageCount: n });
  assert.equal(w.baseRatePagesPerSec, 12000);
  const pages = collect(w, 2000, 5, 0); // 10 s: 120,000 writes
  assert.equal(pages.length, 120000);
  const hot = new Set(spreadPages(n, Math.round(n * WEB_SERVER.hotPageShare)));
  const logStart = n - Math.round(n * WEB_SERVER.logPageShare);
  const hotShare = pages.filter((p) => hot.has(p)).length / pages.length;
  const log = pages.filter((p) => p >= logStart && !hot.has(p));
  assert.ok(hotShare > 0.79 && hotShare < 0.82, `hot share ${hotShare}`);
  assert.ok(log.length / pages.length > 0.095 && log.length / pages.length < 0.11);
  // Appends walk the ring in order, 8 per page (ignoring uniform writes that land there).
  let seq = 0;
  for (let k = 1; k < log.length; k++) {
    if (log[k] === log[k - 1] || log[k] === log[k - 1] + 1 || log[k] === logStart) seq++;
  }
  assert.ok(seq / log.length > 0.95, `sequential share ${seq / log.length}`);
});

// ---------------------------------------------------------------------------------------
// Configuration

Deno.test("workloadSchema applies defaults and makeWorkload builds each kind", () => {
  assert.deepEqual(parseWorkload({ kind: "uniform" }), { kind: "uniform", ratePagesPerSec: 12000 });
  assert.deepEqual(parseWorkload({ kind: "hot-set", hotPages: 5 }), {
    kind: "hot-set",
    ratePagesPerSec: 12000,
    hotPages: 5,
    zipfS: 1,
  });
  for (const kind of ["uniform", "hot-set", "web-server"] as const) {
    const w = makeWorkload(parseWorkload({ kind, ratePagesPerSec: 2000 }), 100);
    assert.equal(w.name, kind);
    assert.equal(w.baseRatePagesPerSec, 2000);
    assert.equal(collect(w, 100, 10, 0.5).length, 1000);
  }
  // hot-set defaults to 10 % of the pages.
  const hot = makeWorkload(parseWorkload({ kind: "hot-set", zipfS: 0 }), 1000);
  assert.equal(new Set(collect(hot, 100, 100, 0)).size, 100);
});

Deno.test("workload config errors name the field", () => {
  const msg = (input: unknown) => {
    try {
      parseWorkload(input, "ram.workload");
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.message;
    }
    assert.fail(`accepted ${JSON.stringify(input)}`);
  };
  assert.match(
    msg({ kind: "bursty" }),
    /ram\.workload\.kind: .*"uniform", "hot-set" or "web-server"/,
  );
  assert.match(
    msg({ kind: "uniform", ratePagesPerSec: -1 }),
    /ram\.workload\.ratePagesPerSec: must be >= 0/,
  );
  assert.match(msg({ kind: "hot-set", hotPages: 1.5 }), /ram\.workload\.hotPages/);
  assert.match(msg({ kind: "web-server", extra: 1 }), /extra/);
  assert.throws(
    () => makeWorkload(parseWorkload({ kind: "hot-set", hotPages: 11 }), 10),
    (e) => e instanceof ConfigError && /workload\.hotPages: must be <= .* 10/.test(e.message),
  );
  assert.throws(() => uniformWorkload({ pageCount: 0, ratePagesPerSec: 1 }), RangeError);
  assert.throws(() => uniformWorkload({ pageCount: 10, ratePagesPerSec: Infinity }), RangeError);
  assert.throws(
    () => hotSetWorkload({ pageCount: 10, ratePagesPerSec: 1, hotPages: 1, zipfS: -1 }),
    RangeError,
  );
});
