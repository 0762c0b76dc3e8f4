/**
 * `deno task sim sweep <scenario> --seeds A..B [--set path=v1,v2,...] [--workers N]` and
 * `deno task sim sweep collect DIR...`: see HELP.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { MyceliumError } from "../../core/errors.ts";
import { loadScenarioFile } from "../scenario.ts";
import { cells, parseAxes, parseSeeds, shard, tasks } from "./grid.ts";
import { type RunRow, simulatorFor } from "./run_one.ts";
import { readRows, runSweep, type SweepSpec, writeSweepOutputs } from "./sweep.ts";

const DEFAULT_IMAGE = "mycelium-sim:0.1.0";

export const SWEEP_HELP = `Mycelium parameter sweeps

Usage:
  deno task sim sweep <scenario.yaml> --seeds A..B [--set PATH=V1,V2,...] [--workers N]
                      [--out DIR] [--shard I/N] [--quiet]
  deno task sim sweep collect DIR [DIR...] [--out DIR]
  deno task sim sweep <scenario.yaml> --seeds A..B [--set ...] --emit k8s [--shards N]
                      [--parallelism P] [--image IMAGE] [--results-pvc NAME] [--out DIR]

Runs the scenario once per seed and per cell of the --set grid (the cartesian product of
every --set's values) in N worker processes, and writes DIR/runs.csv (one row per run) and
DIR/sweep.json (per cell: mean, p50 and p99 of each headline metric, and the failing seeds
with their replay commands). Every finished run is kept in DIR/runs.jsonl as it arrives:
run the same command again after an interruption and only the missing runs are done.

Options:
  --seeds SPEC     seeds: ranges and lists, e.g. 1..1000, 7, 1..10,20
  --set PATH=V,... an axis of the grid (repeatable); VALUES are YAML, split at top-level
                   commas (--set duration=30s,60s --set nodes[0].count=100,1000)
  --workers N      worker processes (default: the number of CPUs)
  --out DIR        output directory (default: out/sweep/<scenario name>)
  --shard I/N      run only shard I of N (task index mod N = I); a Kubernetes Indexed
                   Job gives each pod I = JOB_COMPLETION_INDEX
  --quiet          no progress line
  --no-fail        exit 0 even when runs failed (they are in runs.csv and sweep.json)
  -h, --help       this help

--emit k8s: instead of running, writes DIR/sweep-job.yaml: a Kubernetes Indexed Job of
--shards pods (default 10; --parallelism at a time, default all), each running shard
$(JOB_COMPLETION_INDEX) of the grid with --pod-workers workers (default 2) in --image
(default ${DEFAULT_IMAGE}), writing to /results/shard-<i> on the ReadWriteMany claim
--results-pvc (default mycelium-sweep-results, --results-size 10Gi, created by the same
file); then \`deno task sim sweep collect /results/shard-*\` merges them.

collect: merges the runs.jsonl of several shard directories into one runs.csv and
sweep.json (default --out: the first DIR).

Exit codes: 0 every run passed, 1 some run failed, 2 bad input.`;

function parseShard(v: string | undefined): { index: number; count: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(v);
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) {
    throw new MyceliumError("config", `--shard: expected I/N with 0 <= I < N, got "${v}"`);
  }
  return { index: Number(m[1]), count: Number(m[2]) };
}

async function collect(dirs: string[], out: string | undefined): Promise<number> {
  if (dirs.length === 0) {
    console.error(`sweep collect: no directory given\n\n${SWEEP_HELP}`);
    return 2;
  }
  const rows: RunRow[] = [];
  const seen = new Set<string>();
  let scenario = "";
  for (const d of dirs) {
    let spec: SweepSpec;
    try {
      spec = JSON.parse(await Deno.readTextFile(join(d, "sweep-spec.json")));
    } catch {
      console.error(`sweep collect: ${d} holds no sweep (no readable sweep-spec.json)`);
      return 2;
    }
    if (scenario && spec.scenario !== scenario) {
      console.error(`sweep collect: ${d} is a sweep of ${spec.scenario}, not ${scenario}`);
      return 2;
    }
    scenario = spec.scenario;
    for (const r of await readRows(d)) {
      const k = `${r.cell}/${r.seed}`;
      if (!seen.has(k)) {
        seen.add(k);
        rows.push(r);
      }
    }
  }
  const dir = out ?? dirs[0];
  await Deno.mkdir(dir, { recursive: true });
  await writeSweepOutputs(dir, scenario, rows);
  const failed = rows.filter((r) => !r.ok);
  console.log(`${rows.length} runs from ${dirs.length} directories, ${failed.length} failed`);
  for (const r of failed) console.log(`  FAILED ${r.cell} seed ${r.seed}: ${r.replay || r.error}`);
  console.log(`wrote ${join(dir, "runs.csv")} and ${join(dir, "sweep.json")}`);
  return failed.length > 0 ? 1 : 0;
}

const positiveInt = (v: string | undefined, name: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    throw new MyceliumError("config", `--${name}: expected a positive integer, got "${v}"`);
  }
  return n;
};

async function emitK8s(
  spec: SweepSpec,
  v: Record<string, string | boolean | string[] | undefined>,
  out: string,
): Promise<number> {
  // Loaded here only: the Kubernetes models (and their validator) are large.
  const { dnsLabel, sweepManifests } = await import("./k8s.ts");
  let text: string;
  try {
    const shards = positiveInt(v.shards as string, "shards");
    const parallelism = v.parallelism === undefined
      ? shards
      : positiveInt(v.parallelism as string, "parallelism");
    text = sweepManifests({
      name: dnsLabel(`sweep-${spec.scenario}`),
      scenarioFile: spec.file,
      seeds: v.seeds as string,
      axes: spec.axes,
      shards,
      parallelism,
      image: v.image as string,
      resultsClaim: v["results-pvc"] as string,
      resultsSize: v["results-size"] as string,
      workersPerPod: positiveInt(v["pod-workers"] as string, "pod-workers"),
      cpu: v["pod-workers"] as string,
      memory: "4Gi",
    });
  } catch (e) {
    console.error(`--emit k8s: ${(e as Error).message}`);
    return 2;
  }
  await Deno.mkdir(out, { recursive: true });
  const file = join(out, "sweep-job.yaml");
  await Deno.writeTextFile(file, text);
  console.log(
    `wrote ${file}
  kubectl apply -f ${file}
  ` +
      `(then, with the results volume mounted: deno task sim sweep collect /results/shard-*)`,
  );
  return 0;
}

export async function sweepCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      seeds: { type: "string" },
      set: { type: "string", multiple: true, default: [] },
      workers: { type: "string" },
      out: { type: "string" },
      shard: { type: "string" },
      quiet: { type: "boolean", default: false },
      "no-fail": { type: "boolean", default: false },
      emit: { type: "string" },
      shards: { type: "string", default: "10" },
      parallelism: { type: "string" },
      image: { type: "string", default: DEFAULT_IMAGE },
      "results-pvc": { type: "string", default: "mycelium-sweep-results" },
      "results-size": { type: "string", default: "10Gi" },
      "pod-workers": { type: "string", default: "2" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(SWEEP_HELP);
    return 0;
  }
  if (values.emit !== undefined && values.emit !== "k8s") {
    console.error(`--emit: the only target is k8s, got "${values.emit}"`);
    return 2;
  }
  if (positionals[0] === "collect") return await collect(positionals.slice(1), values.out);
  const file = positionals[0];
  if (!file) {
    console.error(`missing <scenario.yaml>\n\n${SWEEP_HELP}`);
    return 2;
  }
  const workers = values.workers === undefined
    ? navigator.hardwareConcurrency
    : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
    console.error(`--workers: expected an integer in [1, 256], got "${values.workers}"`);
    return 2;
  }
  if (!values.seeds) {
    console.error("--seeds: required (e.g. --seeds 1..100)");
    return 2;
  }
  let spec: SweepSpec;
  let todo;
  try {
    const seeds = parseSeeds(values.seeds);
    const axes = parseAxes(values.set as string[]);
    const grid = cells(axes);
    // Every cell must load and build: a bad override fails here, before any worker starts.
    let name = "";
    for (const c of grid) {
      const sc = await loadScenarioFile(file, c.sets);
      simulatorFor(sc, seeds[0]);
      name = sc.name;
    }
    const sh = parseShard(values.shard);
    spec = { file, scenario: name, seeds, axes, ...(sh ? { shard: sh } : {}) };
    const all = tasks(grid, seeds);
    todo = sh ? shard(all, sh.index, sh.count) : all;
  } catch (e) {
    if (e instanceof MyceliumError) {
      console.error(`invalid sweep: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const out = values.out ?? join("out", "sweep", spec.scenario);
  if (values.emit === "k8s") return await emitK8s(spec, values, out);
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  let last = 0;
  const abort = new AbortController();
  const stop = () => {
    console.error("\ninterrupted: finished runs are kept; run the same command to resume");
    abort.abort();
  };
  Deno.addSignalListener("SIGINT", stop);
  let rows: RunRow[];
  try {
    rows = await runSweep({
      spec,
      tasks: todo,
      out,
      workers,
      signal: abort.signal,
      onProgress: (p) => {
        const now = performance.now();
        if (values.quiet || (now - last < (tty ? 250 : 10_000) && p.done < p.total)) return;
        last = now;
        const rate = p.done / Math.max(p.elapsedMs / 1000, 1e-9);
        const eta = rate > 0 ? (p.total - p.done) / rate : NaN;
        const line = `sweep ${spec.scenario}: ${p.done}/${p.total} runs` +
          (p.skipped ? ` (+${p.skipped} done before)` : "") +
          `, ${p.failed} failed, ${rate.toFixed(2)} runs/s, ETA ${
            Number.isFinite(eta) ? `${eta.toFixed(0)} s` : "?"
          }`;
        Deno.stderr.writeSync(enc.encode(tty ? `\r\x1b[2K${line}` : `${line}\n`));
      },
      onFailure: (r) => {
        const msg = `FAILED ${r.cell} seed ${r.seed} (${r.failed.join(", ")}): ${
          r.replay || r.error
        }`;
        Deno.stderr.writeSync(enc.encode(tty ? `\r\x1b[2K${msg}\n` : `${msg}\n`));
      },
    });
  } catch (e) {
    if (e instanceof MyceliumError) {
      console.error(`invalid sweep: ${e.message}`);
      return 2;
    }
    throw e;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
  }
  if (tty && !values.quiet) Deno.stderr.writeSync(enc.encode("\n"));
  if (abort.signal.aborted) return 130;
  // Only this sweep's tasks count (the directory may hold a superset from the same spec).
  await writeSweepOutputs(out, spec.scenario, rows);
  const failed = rows.filter((r) => !r.ok);
  console.log(
    `${rows.length} runs, ${failed.length} failed; wrote ${join(out, "runs.csv")} and ${
      join(out, "sweep.json")
    }`,
  );
  for (const r of failed.slice(0, 20)) {
    console.log(`  FAILED ${r.cell} seed ${r.seed}: ${r.replay || r.error}`);
  }
  if (failed.length > 20) console.log(`  ... and ${failed.length - 20} more (sweep.json)`);
  return failed.length > 0 && !values["no-fail"] ? 1 : 0;
}

if (import.meta.main) Deno.exit(await sweepCommand(Deno.args));
