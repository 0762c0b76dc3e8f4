/**
 * `deno task sim <command>`: run a scenario, or replay a seed up to an event.
 * Exit codes: 0 all checks passed, 1 a check failed, 2 bad input.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { MyceliumError } from "../core/errors.ts";
import { duration, loadScenarioFile, type Scenario } from "./scenario.ts";
import { type Progress, Simulation } from "./simulation.ts";
import { buildSummary, formatSummary, replayCommand, writeOutputs } from "./summary.ts";
import { ConsensusSimulation } from "./consensus/simulation.ts";
import { twinsSweep } from "./consensus/twins.ts";
import { faultBound } from "../core/consensus/types.ts";
import YAML from "yaml";
import {
  buildConsensusSummary,
  formatConsensusSummary,
  writeConsensusOutputs,
} from "./consensus/summary.ts";
import { RamSimulation } from "./ram/simulation.ts";
import { sweepCommand } from "./sweep/cli.ts";
import { type LamportChoice, writeReport } from "./report/from_run.ts";
import { buildRamSummary, formatRamSummary, writeRamOutputs } from "./ram/summary.ts";
import { SporeSimulation } from "./spores/simulation.ts";
import { buildSporeSummary, formatSporeSummary, writeSporeOutputs } from "./spores/summary.ts";

const HELP = `Mycelium simulator

Usage:
  deno task sim run <scenario.yaml> [options]
  deno task sim replay <scenario.yaml> --seed N --event K [options]
  deno task sim twins [--n 4] [--twins 1] [--samples 1000] [--seed 1] [--out DIR]
  deno task sim sweep <scenario.yaml> --seeds A..B [--set PATH=V1,V2 ...] [--workers N]
  deno task sim sweep collect DIR...
  deno task sim report DIR [--lamport-nodes a,b] [--lamport-window 10s..10.5s]
  deno task sim --help

run: runs the scenario, prints a summary table, writes DIR/summary.json, metric
time series (timeseries.csv), detections.csv, joins.csv, nodes.csv and, with
--trace, a message trace (trace.jsonl). Exit 0 when every check passes, 1 when
one fails (the replay command is printed), 2 on bad input.

A scenario with a consensus section runs the consensus simulator instead: its
outputs are summary.json (metrics.consensus), trust.csv, heights.csv, ops.csv and
nodes.csv.

A scenario with a ram section runs the distributed RAM simulator (VM memory
replication, throttling, failover, migration; checks ram.*): its outputs are
summary.json (metrics.ram), ram.csv (per VM every sampleInterval: buffer level,
intensity, pause, replication lag), vms.csv and nodes.csv.

A scenario with a spores or storage section runs the spores simulator (Latent
gossip, Seed files, a Primary stand-in, bootstrap and join, split brain, and
trust-aware object storage; checks spores.* and storage.*): its outputs are
summary.json (metrics.spores, metrics.storage), spores.csv (active nodes, Latent
divergence, discards by reason over time), storage.csv (under-replicated chunks,
repair copies over time) and nodes.csv.

replay: re-runs the same scenario and seed up to event K and prints the events
around it (the run is deterministic, so this is exactly what happened).

twins: a Twins sweep (BFT testing by duplicated identities): --samples scenarios
of --n voters of which --twins have a twin, each under --phases random partitions
of --duration ms. Prints violations with a scenario file that replays each, and
writes DIR/twins.json. With twins <= f no safety violation may appear; with f+1
one must (the checkers' own test).

sweep: runs a grid of seeds x --set values in worker processes, resumable; see
deno task sim sweep --help (also --emit k8s for a Kubernetes Indexed Job).

report: writes DIR/report.html for a finished run: one offline page with the
metrics over time, the fault schedule, the checks and a message-sequence diagram
(from trace.jsonl, when the run kept one).

Options:
  --seed N           seed (default: the scenario's seed)
  --out DIR          output directory (default: out/<scenario name>)
  --set PATH=VALUE   override a scenario field, e.g. --set duration=30s
                     --set protocol.membership.probeIntervalMs=500
                     --set nodes[0].count=100 (repeatable; VALUE is YAML)
  --trace            also write trace.jsonl (every delivered message)
  --event K          (replay) the event index to stop around
  --window W         (replay) events to show before and after K (default 20)
  --quiet            no progress line and no table (summary.json only)
  --report           (run) also write DIR/report.html
  --lamport-nodes L  (run --report, report) nodes of the message-sequence diagram
  --lamport-window W (run --report, report) its time window, e.g. 10s..10.5s
  -h, --help         this help
`;

function fail(message: string, code: number): never {
  console.error(message);
  Deno.exit(code);
}

function parseSeed(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 2 ** 32 - 1) {
    fail(`--seed: expected an integer in [0, 4294967295], got "${v}"`, 2);
  }
  return n;
}

async function load(file: string | undefined, sets: string[]): Promise<Scenario> {
  if (!file) fail(`missing <scenario.yaml>\n\n${HELP}`, 2);
  try {
    return await loadScenarioFile(file, sets);
  } catch (e) {
    if (e instanceof MyceliumError) fail(`invalid scenario: ${e.message}`, 2);
    throw e;
  }
}

function build(scenario: Scenario, opts: ConstructorParameters<typeof Simulation>[1]): Simulation {
  return construct(() => new Simulation(scenario, opts));
}

/** Progress on a terminal: virtual time, events/s and ETA on one rewritten line. */
function progressReporter(quiet: boolean) {
  const tty = Deno.stderr.isTerminal();
  const start = performance.now();
  let last = 0;
  let peakRss = Deno.memoryUsage().rss;
  const enc = new TextEncoder();
  const report = (p: Progress) => {
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
    const now = performance.now();
    if (quiet || now - last < (tty ? 250 : 10_000)) return;
    last = now;
    const wall = (now - start) / 1000;
    const frac = p.virtualMs / p.durationMs;
    const eta = frac > 0 ? wall / frac - wall : NaN;
    const line = `t=${(p.virtualMs / 1000).toFixed(1)}/${(p.durationMs / 1000).toFixed(0)} s  ` +
      `${(p.events / 1e6).toFixed(2)}M events  ${(p.events / wall / 1e6).toFixed(2)}M ev/s  ` +
      `ETA ${Number.isFinite(eta) ? eta.toFixed(0) + " s" : "?"}`;
    Deno.stderr.writeSync(enc.encode(tty ? `\r\x1b[2K${line}` : `${line}\n`));
  };
  const done = () => {
    if (tty && !quiet) Deno.stderr.writeSync(enc.encode("\r\x1b[2K"));
  };
  return { report, done, peak: () => peakRss, start };
}

const LAMPORT_OPTIONS = {
  "lamport-nodes": { type: "string" },
  "lamport-window": { type: "string" },
} as const;

/** `--lamport-nodes a,b,c` and `--lamport-window 10s..10.5s` (durations as in scenarios). */
function lamportChoice(v: { "lamport-nodes"?: string; "lamport-window"?: string }): LamportChoice {
  const choice: LamportChoice = {};
  if (v["lamport-nodes"]) choice.nodes = v["lamport-nodes"].split(",").map((s) => s.trim());
  const w = v["lamport-window"];
  if (w) {
    const m = /^(.+)\.\.(.+)$/.exec(w);
    const ms = (x: string) => {
      const r = duration.safeParse(/^\d+(\.\d+)?$/.test(x.trim()) ? Number(x) : x.trim());
      return r.success ? r.data : NaN;
    };
    const from = m ? ms(m[1]) : NaN, to = m ? ms(m[2]) : NaN;
    if (!(from >= 0 && to > from)) {
      fail(`--lamport-window: expected FROM..TO (e.g. 10s..10.5s), got "${w}"`, 2);
    }
    choice.fromMs = from;
    choice.toMs = to;
  }
  return choice;
}

async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      seed: { type: "string" },
      out: { type: "string" },
      set: { type: "string", multiple: true, default: [] },
      trace: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      report: { type: "boolean", default: false },
      ...LAMPORT_OPTIONS,
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const lamport = lamportChoice(values);
  const code = await runKind(values, positionals);
  if (values.report && code !== 2 && lastRun) {
    const path = await writeReport(lastRun.out, { scenario: lastRun.scenario, lamport });
    if (!values.quiet) console.log(`  report: ${path}`);
  }
  return code;
}

/** The run the `--report` flag describes (set by runKind once outputs exist). */
let lastRun: { out: string; scenario: Scenario } | null = null;

async function runKind(
  values: { seed?: string; out?: string; set: string[]; trace: boolean; quiet: boolean },
  positionals: string[],
): Promise<number> {
  const file = positionals[0];
  const sets = values.set as string[];
  const scenario = await load(file, sets);
  const seed = parseSeed(values.seed) ?? scenario.seed;
  const out = values.out ?? join("out", scenario.name);
  await Deno.mkdir(out, { recursive: true });
  lastRun = { out, scenario };

  if (scenario.consensus) {
    return runConsensus(scenario, { file: file!, sets, seed, out, quiet: values.quiet });
  }
  if (scenario.ram) {
    return runRam(scenario, { file: file!, sets, seed, out, quiet: values.quiet });
  }
  if (scenario.spores || scenario.storage) {
    return runSpores(scenario, { file: file!, sets, seed, out, quiet: values.quiet });
  }
  const traceOn = values.trace || scenario.outputs.trace;
  const tracePath = join(out, "trace.jsonl");
  let traceBuf: string[] = [];
  const flushTrace = () => {
    if (traceBuf.length) {
      Deno.writeTextFileSync(tracePath, traceBuf.join("\n") + "\n", { append: true });
    }
    traceBuf = [];
  };
  if (traceOn) await Deno.writeTextFile(tracePath, "");
  const sim = build(scenario, {
    seed,
    trace: traceOn
      ? (line) => {
        traceBuf.push(line);
        if (traceBuf.length >= 10_000) flushTrace();
      }
      : undefined,
  });

  const prog = progressReporter(values.quiet);
  if (!values.quiet) {
    console.error(
      `running ${scenario.name}: ${sim.nodes.length} nodes, ${
        scenario.duration / 1000
      } s virtual, seed ${seed}`,
    );
  }
  sim.run(prog.report);
  prog.done();
  if (traceOn) flushTrace();
  const wallMs = performance.now() - prog.start;
  const summary = buildSummary(sim, {
    scenarioFile: file!,
    sets,
    wallMs,
    peakRssBytes: prog.peak(),
  });
  await writeOutputs(out, sim, summary);
  if (!values.quiet) {
    console.log(formatSummary(summary));
    console.log(`\n  outputs in ${out}/`);
  }
  if (!summary.ok) {
    console.error(`\nFAILED: seed ${seed}${sim.violation ? `, event ${sim.violation.event}` : ""}`);
    console.error(`replay: ${summary.replay}`);
    return 1;
  }
  return 0;
}

/** Builds a simulator; an invalid scenario (the field named) exits 2. */
function construct<S>(make: () => S): S {
  try {
    return make();
  } catch (e) {
    if (e instanceof MyceliumError) fail(`invalid scenario: ${e.message}`, 2);
    throw e;
  }
}

function buildRam(scenario: Scenario, opts: ConstructorParameters<typeof RamSimulation>[1]) {
  return construct(() => new RamSimulation(scenario, opts));
}

function buildSpores(scenario: Scenario, opts: ConstructorParameters<typeof SporeSimulation>[1]) {
  return construct(() => new SporeSimulation(scenario, opts));
}

type RunOpts = { file: string; sets: string[]; seed: number; out: string; quiet: boolean };
type SummaryOpts = { scenarioFile: string; sets: string[]; wallMs: number; peakRssBytes: number };

/**
 * One run of a section's simulator (consensus, RAM, spores): progress, summary, outputs, the
 * table, and on a failed check the replay command.
 */
async function runSection<
  S extends {
    run(onProgress: (p: Progress) => void): void;
    violation: { event: number } | null;
  },
  Sum extends { ok: boolean; replay: string },
>(
  o: RunOpts,
  sim: S,
  what: string,
  summarize: (sim: S, opts: SummaryOpts) => Sum,
  write: (dir: string, sim: S, summary: Sum) => Promise<void>,
  format: (summary: Sum) => string,
): Promise<number> {
  const prog = progressReporter(o.quiet);
  if (!o.quiet) console.error(`running ${what}, seed ${o.seed}`);
  sim.run(prog.report);
  prog.done();
  const summary = summarize(sim, {
    scenarioFile: o.file,
    sets: o.sets,
    wallMs: performance.now() - prog.start,
    peakRssBytes: prog.peak(),
  });
  await write(o.out, sim, summary);
  if (!o.quiet) {
    console.log(format(summary));
    console.log(`\n  outputs in ${o.out}/`);
  }
  if (!summary.ok) {
    console.error(
      `\nFAILED: seed ${o.seed}${sim.violation ? `, event ${sim.violation.event}` : ""}`,
    );
    console.error(`replay: ${summary.replay}`);
    return 1;
  }
  return 0;
}

/** A scenario with a `consensus` section runs in the consensus simulator. */
function runConsensus(scenario: Scenario, o: RunOpts): Promise<number> {
  const sim = construct(() => new ConsensusSimulation(scenario, { seed: o.seed }));
  return runSection(
    o,
    sim,
    `${scenario.name}: ${sim.genesisVoters.length} voters (${sim.nodes.length} instances), ${
      scenario.duration / 1000
    } s virtual`,
    buildConsensusSummary,
    writeConsensusOutputs,
    formatConsensusSummary,
  );
}

/** A scenario with a `ram` section runs in the RAM simulator. */
function runRam(scenario: Scenario, o: RunOpts): Promise<number> {
  const sim = buildRam(scenario, { seed: o.seed });
  return runSection(
    o,
    sim,
    `${scenario.name}: ${sim.vms.length} VMs on ${sim.nodes.length} nodes, ${
      scenario.duration / 1000
    } s virtual`,
    buildRamSummary,
    writeRamOutputs,
    formatRamSummary,
  );
}

/** A scenario with a `spores` or `storage` section runs in the spores simulator. */
function runSpores(scenario: Scenario, o: RunOpts): Promise<number> {
  const sim = buildSpores(scenario, { seed: o.seed });
  return runSection(
    o,
    sim,
    `${scenario.name}: ${sim.nodes.length} nodes${scenario.storage ? " with storage" : ""}, ${
      scenario.duration / 1000
    } s virtual`,
    buildSporeSummary,
    writeSporeOutputs,
    formatSporeSummary,
  );
}

/** The recorded events around event K of a replay (membership and consensus alike). */
function printReplayWindow(
  name: string,
  seed: number,
  event: number,
  window: number,
  events: ReadonlyArray<{ index: number; t: number; kind: string; node: string; detail: string }>,
): void {
  console.log(
    `replay of ${name}, seed ${seed}: events ${Math.max(1, event - window)}..${event + window}`,
  );
  for (const e of events) {
    if (e.index < event - window) continue;
    const mark = e.index === event ? ">>" : "  ";
    console.log(
      `${mark} #${e.index}  t=${e.t.toFixed(3)} ms  ${e.kind.padEnd(8)} ${
        e.node.padEnd(16)
      } ${e.detail}`,
    );
  }
}

async function replayCommandRun(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      seed: { type: "string" },
      set: { type: "string", multiple: true, default: [] },
      event: { type: "string" },
      window: { type: "string", default: "20" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const event = Number(values.event);
  const window = Number(values.window);
  if (!Number.isInteger(event) || event < 1) {
    fail(`--event: expected a positive integer, got "${values.event}"`, 2);
  }
  if (!Number.isInteger(window) || window < 0) {
    fail(`--window: expected an integer >= 0, got "${values.window}"`, 2);
  }
  const sets = values.set as string[];
  const scenario = await load(positionals[0], sets);
  const seed = parseSeed(values.seed) ?? scenario.seed;
  const file = positionals[0]!;
  const opts = { seed, recordLast: 2 * window + 1, stopAtEvent: event + window };
  const section = scenario.consensus
    ? construct(() => new ConsensusSimulation(scenario, opts))
    : scenario.ram
    ? buildRam(scenario, opts)
    : scenario.spores || scenario.storage
    ? buildSpores(scenario, opts)
    : null;
  if (section) return replaySection(section, scenario.name, file, seed, sets, event, window);
  const sim = build(scenario, opts);
  sim.run();
  printReplayWindow(scenario.name, seed, event, window, sim.recentEvents());
  console.log(`\nreached event ${sim.engine.events}, trace hash so far ${sim.engine.traceHash()}`);
  printReplayEnd(sim.violation, file, seed, sets);
  return 0;
}

/** What a section simulator's replay prints from. */
interface ReplaySim {
  run(): void;
  readonly events: number;
  readonly violation: { check: string; detail: string; event: number } | null;
  recentEvents(): ReadonlyArray<
    { index: number; t: number; kind: string; node: string; detail: string }
  >;
  positions(): string[];
}

/** A section simulator (consensus, RAM, spores) replayed up to event K, then where it stands. */
function replaySection(
  sim: ReplaySim,
  name: string,
  file: string,
  seed: number,
  sets: string[],
  event: number,
  window: number,
): number {
  sim.run();
  printReplayWindow(name, seed, event, window, sim.recentEvents());
  console.log(`\nat event ${sim.events}:`);
  for (const line of sim.positions()) console.log(`  ${line}`);
  printReplayEnd(sim.violation, file, seed, sets);
  return 0;
}

/** The violation (if the replay reached it) and the command that re-runs the scenario. */
function printReplayEnd(
  v: { check: string; detail: string; event: number } | null,
  file: string,
  seed: number,
  sets: string[],
): void {
  if (v) console.log(`violation: ${v.check}: ${v.detail} (event ${v.event})`);
  console.log(
    `re-run the whole scenario: ${replayCommand(file, seed, sets)}`.replace(" replay ", " run "),
  );
}

/** `sim twins`: a Twins sweep (see sim/consensus/twins.ts). */
async function twinsCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      n: { type: "string", default: "4" },
      twins: { type: "string", default: "1" },
      samples: { type: "string", default: "1000" },
      seed: { type: "string", default: "1" },
      phases: { type: "string", default: "3" },
      duration: { type: "string", default: "4000" },
      out: { type: "string" },
      "stop-at-first": { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const int = (name: string, v: string, min: number) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < min) {
      fail(`--${name}: expected an integer >= ${min}, got "${v}"`, 2);
    }
    return x;
  };
  const n = int("n", values.n, 1);
  const twins = int("twins", values.twins, 0);
  if (twins > n) fail(`--twins: at most --n (${n}) voters can have a twin`, 2);
  const out = values.out ?? join("out", `twins-n${n}-t${twins}`);
  const samples = int("samples", values.samples, 1);
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  let last = 0;
  const report = twinsSweep({
    n,
    twins,
    samples,
    seed: int("seed", values.seed, 0),
    phases: int("phases", values.phases, 1),
    durationMs: int("duration", values.duration, 500),
    stopAtFirst: values["stop-at-first"],
    onProgress: (done, bad) => {
      const now = performance.now();
      if (values.quiet || now - last < (tty ? 250 : 10_000)) return;
      last = now;
      const line = `${done}/${samples} scenarios, ${bad} violations`;
      Deno.stderr.writeSync(enc.encode(tty ? `\r\x1b[2K${line}` : `${line}\n`));
    },
  });
  if (tty && !values.quiet) Deno.stderr.writeSync(enc.encode("\r\x1b[2K"));
  await Deno.mkdir(out, { recursive: true });
  const perHour = report.runs / (report.wallMs / 3_600_000);
  const files: string[] = [];
  for (const v of report.violations.slice(0, 20)) {
    const f = join(out, `violation-${v.sample}.yaml`);
    await Deno.writeTextFile(f, YAML.stringify({ ...v.scenario }));
    files.push(f);
  }
  const summary = {
    n,
    twins,
    f: faultBound(n),
    runs: report.runs,
    violations: report.violations.map(({ scenario: _s, ...v }) => v),
    heights: report.heights,
    wallMs: Math.round(report.wallMs),
    scenariosPerCpuHour: Math.round(perHour),
  };
  await Deno.writeTextFile(join(out, "twins.json"), JSON.stringify(summary, null, 2) + "\n");
  console.log(
    `twins n=${n} twins=${twins} (f=${summary.f}): ${report.runs} scenarios, ` +
      `${report.violations.length} violations, ${report.heights} heights, ` +
      `${(report.wallMs / 1000).toFixed(1)} s (${
        Math.round(perHour).toLocaleString("en-US")
      } scenarios/CPU-hour)`,
  );
  for (const [i, v] of report.violations.slice(0, 5).entries()) {
    console.log(`  sample ${v.sample}: ${v.check}: ${v.detail}`);
    console.log(`    replay: deno task sim run ${files[i]}`);
  }
  console.log(`  outputs in ${out}/`);
  return 0;
}

/** `report DIR`: (re)writes DIR/report.html for a finished run. */
async function reportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...LAMPORT_OPTIONS, help: { type: "boolean", short: "h", default: false } },
  });
  if (values.help || positionals.length !== 1) {
    console.log(
      "deno task sim report DIR [--lamport-nodes a,b,c] [--lamport-window 10s..10.5s]\n\n" +
        "Writes DIR/report.html for the run in DIR (summary.json, its CSVs, trace.jsonl).",
    );
    return values.help ? 0 : 2;
  }
  try {
    console.log(await writeReport(positionals[0], { lamport: lamportChoice(values) }));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      console.error(`report: ${positionals[0]} holds no run (no summary.json)`);
      return 2;
    }
    throw e;
  }
  return 0;
}

export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case "run":
      return await runCommand(rest);
    case "replay":
      return await replayCommandRun(rest);
    case "twins":
      return await twinsCommand(rest);
    case "sweep":
      return await sweepCommand(rest);
    case "report":
      return await reportCommand(rest);
    case undefined:
    case "-h":
    case "--help":
    case "help":
      console.log(HELP);
      return cmd === undefined ? 2 : 0;
    default:
      console.error(`unknown command "${cmd}"\n\n${HELP}`);
      return 2;
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    if (
      e instanceof TypeError &&
      /parseArgs|Unknown option|unexpected argument/i.test(String(e.message))
    ) {
      fail(`${e.message}\n\nsee: deno task sim --help`, 2);
    }
    throw e;
  }
}
