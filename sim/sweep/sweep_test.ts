/** Sweeps: the grid, the aggregate, workers, resume after interruption, shards and collect. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { join } from "node:path";
import { aggregate, runsCsv } from "./aggregate.ts";
import { cells, parseAxes, parseSeeds, shard, splitValues, tasks } from "./grid.ts";
import type { RunRow } from "./run_one.ts";
import { readRows, runSweep, type SweepSpec } from "./sweep.ts";
import { sweepCommand } from "./cli.ts";

const SCENARIO = "scenarios/cluster-5.yaml";
const QUICK = ["duration=60s"]; // cluster-5's leave is at 50 s

Deno.test("seeds: ranges, lists, duplicates once, and named errors", () => {
  assert.deepEqual(parseSeeds("1..3,7,2..4"), [1, 2, 3, 7, 4]);
  assert.throws(() => parseSeeds("5..1"), /runs backwards/);
  assert.throws(() => parseSeeds("a..b"), /--seeds: "a..b" is not a seed/);
  fc.assert(fc.property(fc.nat(1e6), fc.nat(500), (a, n) => {
    const s = parseSeeds(`${a}..${a + n}`);
    return s.length === n + 1 && s[0] === a && s[n] === a + n;
  }));
});

Deno.test("--set values split at top-level commas only; axes multiply into cells", () => {
  assert.deepEqual(splitValues("30s,60s"), ["30s", "60s"]);
  assert.deepEqual(splitValues("[a,b],{x: 1, y: 2},'c,d'"), ["[a,b]", "{x: 1, y: 2}", "'c,d'"]);
  assert.throws(() => parseAxes(["duration=30s,"]), /empty value/);
  assert.throws(() => parseAxes(["a=1", "a=2"]), /set twice/);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 4 }), (sizes) => {
      const axes = sizes.map((n, i) => ({
        path: `p${i}`,
        values: Array.from({ length: n }, (_, j) => String(j)),
      }));
      const grid = cells(axes);
      const product = sizes.reduce((a, b) => a * b, 1);
      const labels = new Set(grid.map((c) => c.sets.join(" ")));
      return grid.length === product && labels.size === product &&
        grid.every((c) => c.sets.length === sizes.length);
    }),
  );
});

Deno.test("shards partition the tasks: every task in exactly one shard", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 40 }), (n, seeds) => {
      const all = tasks(cells(parseAxes(["a=1,2,3"])), parseSeeds(`1..${seeds}`));
      const seen = new Map<number, number>();
      for (let i = 0; i < n; i++) {
        for (const t of shard(all, i, n)) seen.set(t.index, (seen.get(t.index) ?? 0) + 1);
      }
      return seen.size === all.length && [...seen.values()].every((c) => c === 1);
    }),
  );
  assert.throws(() => shard([], 3, 3), /shard index/);
});

function row(cell: string, seed: number, ok: boolean, m: Record<string, number>): RunRow {
  return {
    cell,
    sets: [`x=${cell}`],
    seed,
    ok,
    failed: ok ? [] : ["membership.detection"],
    wallMs: 1,
    virtualMs: 1,
    events: 1,
    metrics: m,
    replay: ok ? "" : `deno task sim replay s.yaml --seed ${seed}`,
  };
}

Deno.test("aggregate: mean, p50, p99 per metric and cell; failing seeds with replays", () => {
  const rows = [1, 2, 3, 4].map((s) => row("c0", s, s !== 3, { a: s * 10 }));
  rows.push(row("c1", 1, true, { a: 5, b: 1 }));
  const agg = aggregate("s", rows);
  const c0 = agg.cells.find((c) => c.cell === "c0")!;
  assert.deepEqual(c0.metrics.a, { mean: 25, p50: 20, p99: 40, n: 4 });
  assert.deepEqual(c0.failingSeeds, [3]);
  assert.match(c0.replays[0], /--seed 3/);
  assert.equal(agg.runs, 5);
  assert.equal(agg.passed, 4);
  const csvText = runsCsv(rows);
  const [header, ...lines] = csvText.trim().split("\n");
  assert.equal(header, "cell,seed,ok,failed_checks,wall_ms,virtual_ms,events,a,b,sets");
  assert.equal(lines.length, 5);
  assert.match(lines[0], /^c0,1,true,/);
});

function spec(seeds: number[]): SweepSpec {
  return { file: SCENARIO, scenario: "cluster-5", seeds, axes: [] };
}

Deno.test({
  name: "sweep: two workers, every run once; resume skips finished runs and reruns a torn one",
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir();
    try {
      const seeds = [1, 2, 3, 4];
      const all = tasks([{ id: "c0", sets: QUICK }], seeds);
      const rows = await runSweep({ spec: spec(seeds), tasks: all, out, workers: 2 });
      assert.equal(rows.length, 4);
      assert.deepEqual(rows.map((r) => r.seed).sort(), seeds);
      assert.ok(rows.every((r) => r.ok && r.events > 0), JSON.stringify(rows.map((r) => r.failed)));
      // Deterministic: the same seed gives the same events again.
      const first = new Map(rows.map((r) => [r.seed, r.events]));
      // Tear the last line (a crash mid-write) and resume: only that run is done again.
      const path = join(out, "runs.jsonl");
      const text = await Deno.readTextFile(path);
      await Deno.writeTextFile(path, text.slice(0, text.length - 20));
      let progress = { done: -1, skipped: -1, total: -1 };
      const again = await runSweep({
        spec: spec(seeds),
        tasks: all,
        out,
        workers: 2,
        onProgress: (p) => (progress = p),
      });
      assert.deepEqual({ done: progress.done, skipped: progress.skipped }, { done: 1, skipped: 3 });
      assert.equal(again.length, 4);
      for (const r of again) assert.equal(r.events, first.get(r.seed));
      // Another sweep in the same directory is refused.
      await assert.rejects(
        () => runSweep({ spec: spec([9]), tasks: [], out, workers: 1 }),
        /holds a different sweep/,
      );
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "sweep: an interrupted sweep keeps what finished and resumes to the same rows",
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir();
    try {
      const seeds = [1, 2, 3, 4, 5, 6];
      const all = tasks([{ id: "c0", sets: QUICK }], seeds);
      const abort = new AbortController();
      await runSweep({
        spec: spec(seeds),
        tasks: all,
        out,
        workers: 1,
        signal: abort.signal,
        onProgress: (p) => {
          if (p.done >= 2) abort.abort();
        },
      });
      const partial = await readRows(out);
      assert.ok(partial.length >= 2 && partial.length < 6, `${partial.length} rows kept`);
      const rows = await runSweep({ spec: spec(seeds), tasks: all, out, workers: 2 });
      assert.deepEqual(rows.map((r) => r.seed).sort((a, b) => a - b), seeds, "no run twice");
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "sweep CLI: shards collected equal the whole; bad input exits 2",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const base = [SCENARIO, "--seeds", "1..4", "--set", "duration=60s,70s", "--quiet"];
      for (const i of [0, 1]) {
        const code = await sweepCommand([
          ...base,
          "--shard",
          `${i}/2`,
          "--out",
          join(dir, `s${i}`),
        ]);
        assert.equal(code, 0);
      }
      assert.equal(
        await sweepCommand([
          "collect",
          join(dir, "s0"),
          join(dir, "s1"),
          "--out",
          join(dir, "all"),
        ]),
        0,
      );
      const agg = JSON.parse(await Deno.readTextFile(join(dir, "all", "sweep.json")));
      assert.equal(agg.runs, 8);
      assert.deepEqual(agg.cells.map((c: { runs: number }) => c.runs), [4, 4]);
      const csvLines = (await Deno.readTextFile(join(dir, "all", "runs.csv"))).trim().split("\n");
      assert.equal(csvLines.length, 9);
      assert.equal(await sweepCommand([SCENARIO, "--seeds", "x"]), 2);
      assert.equal(await sweepCommand([SCENARIO, "--seeds", "1", "--set", "duration=nope"]), 2);
      assert.equal(await sweepCommand([SCENARIO, "--seeds", "1", "--workers", "0"]), 2);
      assert.equal(await sweepCommand(["collect", join(dir, "nothing")]), 2);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
