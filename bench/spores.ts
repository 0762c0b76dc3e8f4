/**
 * `deno task bench:spores`: the spores simulator's targets (issue 6) across seeds:
 *
 * - formation time of 1,000 nodes (scenarios/formation-1000.yaml): every node active and the
 *   Latent maps converged; the spec asks for < 30 s;
 * - time to restore the replication factor after failures (scenarios/storage-churn.yaml):
 *   every under-replication episode, from the failure to the chunk's full replica set.
 *
 * Runs each scenario for seeds 1..N (default 20) in this process, one after the other, and
 * prints per-seed lines and the p50/p99 across seeds:
 *   formation_ms p50=... p99=... max=... (n=20, checks ok 20/20)
 *   restore_ms   p50=... p99=... max=... over E episodes (per-seed p99: p50=... p99=...)
 * Options: --seeds N (20), --only formation|storage, --json FILE (all rows).
 */
import { parseArgs } from "node:util";
import { loadScenarioFile } from "../sim/scenario.ts";
import { SporeSimulation } from "../sim/spores/simulation.ts";
import { percentile } from "../sim/summary.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seeds: { type: "string", default: "20" },
    only: { type: "string" },
    json: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log("deno task bench:spores [--seeds 20] [--only formation|storage] [--json FILE]");
  Deno.exit(0);
}
const seeds = Number(values.seeds);
if (!Number.isInteger(seeds) || seeds < 1) {
  console.error(`--seeds: expected a positive integer, got ${values.seeds}`);
  Deno.exit(2);
}
if (values.only !== undefined && !["formation", "storage"].includes(values.only)) {
  console.error(`--only: expected formation or storage, got ${values.only}`);
  Deno.exit(2);
}

const sorted = (xs: number[]) => xs.slice().sort((a, b) => a - b);
const fmt = (v: number | null) => (v === null ? "-" : (v / 1000).toFixed(2) + "s");
const rows: Array<Record<string, unknown>> = [];

async function runSeeds(
  file: string,
  each: (sim: SporeSimulation, seed: number, wall: number) => void,
) {
  const scenario = await loadScenarioFile(file);
  for (let seed = 1; seed <= seeds; seed++) {
    const t0 = performance.now();
    const sim = new SporeSimulation(scenario, { seed });
    sim.run();
    each(sim, seed, performance.now() - t0);
  }
}

if (values.only !== "storage") {
  const times: number[] = [];
  let ok = 0;
  let wallTotal = 0;
  await runSeeds("scenarios/formation-1000.yaml", (sim, seed, wall) => {
    const checks = sim.evaluateChecks();
    const pass = checks.every((c) => c.ok);
    if (pass) ok++;
    wallTotal += wall;
    if (sim.formationAt !== null) times.push(sim.formationAt);
    const m = sim.metricsSummary();
    console.log(
      `formation seed=${seed} formation=${fmt(sim.formationAt)} join_p99=${fmt(m.join.p99Ms)} ` +
        `bytes_per_node_s=${m.bytesPerNodePerSec} wall=${(wall / 1000).toFixed(1)}s ` +
        `${pass ? "ok" : "FAIL " + checks.filter((c) => !c.ok).map((c) => c.name).join(",")}`,
    );
    rows.push({
      scenario: "formation-1000",
      seed,
      formationMs: sim.formationAt,
      ok: pass,
      wallMs: wall,
    });
  });
  const s = sorted(times);
  console.log(
    `formation_ms p50=${percentile(s, 50)?.toFixed(0)} p99=${percentile(s, 99)?.toFixed(0)} ` +
      `max=${s.at(-1)?.toFixed(0)} (n=${s.length} of ${seeds} formed, checks ok ${ok}/${seeds}, ` +
      `wall ${(wallTotal / 1000).toFixed(0)} s)`,
  );
}

if (values.only !== "formation") {
  const all: number[] = [];
  const perSeedP99: number[] = [];
  const perSeedP50: number[] = [];
  let ok = 0;
  let wallTotal = 0;
  await runSeeds("scenarios/storage-churn.yaml", (sim, seed, wall) => {
    const checks = sim.evaluateChecks();
    const pass = checks.every((c) => c.ok);
    if (pass) ok++;
    wallTotal += wall;
    const st = sim.storage!;
    const m = st.metrics();
    all.push(...st.restoreMs);
    const s = sorted(st.restoreMs);
    const p50 = percentile(s, 50);
    const p99 = percentile(s, 99);
    if (p50 !== null) perSeedP50.push(p50);
    if (p99 !== null) perSeedP99.push(p99);
    console.log(
      `storage seed=${seed} episodes=${s.length} restore_p50=${fmt(p50)} restore_p99=${fmt(p99)} ` +
        `max=${
          fmt(s.at(-1) ?? null)
        } acked=${m.objects.acknowledged} lost_strong=${m.lostStrongObjects} ` +
        `wall=${(wall / 1000).toFixed(1)}s ` +
        `${pass ? "ok" : "FAIL " + checks.filter((c) => !c.ok).map((c) => c.name).join(",")}`,
    );
    rows.push({
      scenario: "storage-churn",
      seed,
      episodes: s.length,
      restoreP50Ms: p50,
      restoreP99Ms: p99,
      restoreMaxMs: s.at(-1) ?? null,
      ok: pass,
      wallMs: wall,
    });
  });
  const a = sorted(all);
  const q = sorted(perSeedP99);
  const h = sorted(perSeedP50);
  console.log(
    `restore_ms p50=${percentile(a, 50)?.toFixed(0)} p99=${percentile(a, 99)?.toFixed(0)} ` +
      `max=${a.at(-1)?.toFixed(0)} over ${a.length} episodes of ${seeds} seeds ` +
      `(per-seed p50: p50=${percentile(h, 50)?.toFixed(0)} p99=${percentile(h, 99)?.toFixed(0)}; ` +
      `per-seed p99: p50=${percentile(q, 50)?.toFixed(0)} p99=${percentile(q, 99)?.toFixed(0)}; ` +
      `checks ok ${ok}/${seeds}, wall ${(wallTotal / 1000).toFixed(0)} s)`,
  );
}

if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(rows, null, 2) + "\n");
