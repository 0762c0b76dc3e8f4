/** The run summary (summary.json), per-run CSV outputs, and the summary table. */
import { join } from "node:path";
import type { CheckInput, CheckResult, FaultAccount } from "./checks.ts";
import type { SampleRow } from "./simulation.ts";

/** What a finished run (simulated or real cluster) offers for its summary and outputs. */
export interface RunView extends CheckInput {
  readonly seed: number;
  /** Hash of the event trace (the simulator's determinism contract; "" for real runs). */
  readonly traceHash: string;
  readonly virtualMs: number;
  readonly events: number;
  readonly nodes: readonly {
    readonly name: string;
    readonly upMs: number;
    readonly bytesSent: number;
    readonly bytesReceived: number;
    readonly msgsSent: number;
  }[];
  readonly totalBytes: number;
  readonly totalMsgs: number;
  readonly samples: readonly SampleRow[];
  dropCounts(): Record<string, number>;
  counters(): Record<string, number>;
  evaluateChecks(): CheckResult[];
}

export interface LatencyStats {
  count: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
}

export interface MembershipMetrics {
  nodes: number;
  formationMs: number | null;
  detection: LatencyStats & { undetected: number };
  joinDissemination: LatencyStats & { pending: number };
  falsePositives: number;
  falseSuspicions: number;
  partitionDeclarations: number;
  bytesPerNodePerSec: number;
  messagesPerNodePerSec: number;
  convergedAfterLastFaultMs: number | null;
  drops: Record<string, number>;
  counters: Record<string, number>;
}

/** summary.json: the same shape for every run; `M` is the protocol's headline metrics. */
export interface Summary<M = { membership: MembershipMetrics }> {
  scenario: string;
  scenarioFile: string;
  seed: number;
  traceHash: string;
  virtualMs: number;
  wallMs: number;
  events: number;
  eventsPerSec: number;
  peakRssBytes: number;
  ok: boolean;
  checks: CheckResult[];
  faults: Array<{ name: string; type: string; at: number; declared: number; fired: number }>;
  workload: Array<{ name: string; type: string; at: number; declared: number; fired: number }>;
  metrics: M;
  replay: string;
}

/** Nearest-rank percentile of a sorted array. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p * sorted.length) / 100); // (p/100)*n rounds up past integers
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function latencyStats(values: number[]): LatencyStats {
  const s = values.slice().sort((a, b) => a - b);
  return {
    count: s.length,
    p50Ms: percentile(s, 50),
    p99Ms: percentile(s, 99),
    maxMs: s.length ? s[s.length - 1] : null,
  };
}

export function membershipMetrics(sim: RunView): MembershipMetrics {
  const o = sim.observer;
  const crashes = o.detections.filter((d) => !d.restartedBefore);
  const detected = crashes.filter((d) => d.allDeclaredAt !== null).map((d) =>
    d.allDeclaredAt! - d.crashAt
  );
  const joined = o.joins.filter((j) => j.allAliveAt !== null).map((j) => j.allAliveAt! - j.joinAt);
  const nodeSeconds = sim.nodes.reduce((s, n) => s + n.upMs, 0) / 1000;
  return {
    nodes: sim.nodes.length,
    formationMs: o.formationAt,
    detection: { ...latencyStats(detected), undetected: crashes.length - detected.length },
    joinDissemination: { ...latencyStats(joined), pending: o.joins.length - joined.length },
    falsePositives: o.falsePositives,
    falseSuspicions: o.falseSuspicions,
    partitionDeclarations: o.partitionDeclarations,
    bytesPerNodePerSec: nodeSeconds > 0 ? sim.totalBytes / nodeSeconds : 0,
    messagesPerNodePerSec: nodeSeconds > 0 ? sim.totalMsgs / nodeSeconds : 0,
    convergedAfterLastFaultMs: sim.convergedAt === null ? null : sim.convergedAt - sim.lastFaultEnd,
    drops: sim.dropCounts(),
    counters: sim.counters(),
  };
}

export function replayCommand(
  scenarioFile: string,
  seed: number,
  sets: string[],
  event?: number,
): string {
  const setArgs = sets.map((s) => ` --set ${JSON.stringify(s)}`).join("");
  const ev = event !== undefined ? ` --event ${event}` : "";
  return `deno task sim replay ${scenarioFile} --seed ${seed}${setArgs}${ev}`;
}

export interface SummaryOptions {
  scenarioFile: string;
  sets: string[];
  wallMs: number;
  peakRssBytes: number;
}

/** What every simulator (and the real cluster) exposes for summary.json's common fields. */
export interface SummarySource {
  readonly scenario: { readonly name: string };
  readonly seed: number;
  readonly traceHash: string;
  readonly virtualMs: number;
  readonly events: number;
  readonly faults: readonly FaultAccount[];
  readonly workload: readonly FaultAccount[];
  readonly violation: { readonly event: number } | null;
  evaluateChecks(): CheckResult[];
}

/** summary.json of any run: the common fields, the checks, and the run kind's `metrics`. */
export function summaryOf<M>(sim: SummarySource, opts: SummaryOptions, metrics: M): Summary<M> {
  const checks = sim.evaluateChecks();
  const events = sim.events;
  return {
    scenario: sim.scenario.name,
    scenarioFile: opts.scenarioFile,
    seed: sim.seed,
    traceHash: sim.traceHash,
    virtualMs: sim.virtualMs,
    wallMs: Math.round(opts.wallMs),
    events,
    eventsPerSec: Math.round(events / Math.max(opts.wallMs / 1000, 1e-9)),
    peakRssBytes: opts.peakRssBytes,
    ok: checks.every((c) => c.ok),
    checks,
    faults: sim.faults.map((f) => ({ ...f })),
    workload: sim.workload.map((w) => ({ ...w })),
    metrics,
    replay: replayCommand(opts.scenarioFile, sim.seed, opts.sets, sim.violation?.event),
  };
}

export function buildSummary(sim: RunView, opts: SummaryOptions): Summary {
  return summaryOf(sim, opts, { membership: membershipMetrics(sim) });
}

export const csvCell = (v: number | string | null) =>
  v === null ? "" : typeof v === "number" ? String(Math.round(v * 1000) / 1000) : v;
/** A CSV file's text: a header row, then plain fields (numbers rounded to 3 decimals). */
export const csv = (header: string[], rows: Array<Array<number | string | null>>) =>
  [header.join(","), ...rows.map((r) => r.map(csvCell).join(","))].join("\n") + "\n";

/** Writes summary.json and the CSVs the notebooks read (see notebooks/README.md). */
export async function writeOutputs(dir: string, sim: RunView, summary: Summary): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const name = (i: number) => sim.nodes[i].name;
  const o = sim.observer;
  const files: Record<string, string> = {
    "detections.csv": csv(
      ["target", "crash_ms", "all_declared_ms", "latency_ms"],
      o.detections.filter((d) => !d.restartedBefore).map((d) => [
        name(d.target),
        d.crashAt,
        d.allDeclaredAt,
        d.allDeclaredAt === null ? null : d.allDeclaredAt - d.crashAt,
      ]),
    ),
    "joins.csv": csv(
      ["node", "join_ms", "all_alive_ms", "latency_ms"],
      o.joins.map((
        j,
      ) => [
        name(j.node),
        j.joinAt,
        j.allAliveAt,
        j.allAliveAt === null ? null : j.allAliveAt - j.joinAt,
      ]),
    ),
    "nodes.csv": csv(
      ["node", "bytes_sent", "bytes_received", "msgs_sent", "up_ms", "bytes_per_sec"],
      sim.nodes.map((n) => [
        n.name,
        n.bytesSent,
        n.bytesReceived,
        n.msgsSent,
        n.upMs,
        n.upMs > 0 ? n.bytesSent / (n.upMs / 1000) : 0,
      ]),
    ),
    "timeseries.csv": csv(
      ["t_ms", "up", "suspect_views", "dead_views", "bytes_per_sec", "msgs_per_sec"],
      sim.samples.map((s) => [s.t, s.up, s.suspectViews, s.deadViews, s.bytesPerSec, s.msgsPerSec]),
    ),
    // Last: its presence means the run directory is complete.
    "summary.json": JSON.stringify(summary, null, 2) + "\n",
  };
  await writeFilesAtomically(dir, files);
}

/**
 * Writes each file completely to a temporary name, then renames it, in the given order (put
 * summary.json last): a crash never leaves a half-written file behind.
 */
export async function writeFilesAtomically(
  dir: string,
  files: Record<string, string>,
): Promise<void> {
  for (const [file, text] of Object.entries(files)) {
    const tmp = join(dir, `.${file}.tmp`);
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, join(dir, file));
  }
}

const fmtMs = (
  v: number | null,
) => (v === null ? "-" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`);
const fmtBytes = (b: number) =>
  b >= 1024 ** 3
    ? `${(b / 1024 ** 3).toFixed(2)} GiB`
    : b >= 1024 ** 2
    ? `${(b / 1024 ** 2).toFixed(0)} MiB`
    : `${(b / 1024).toFixed(0)} KiB`;

/** A readable table for the terminal. */
export function formatSummary(s: Summary): string {
  const m = s.metrics.membership;
  const rows: Array<[string, string]> = [
    ["scenario", `${s.scenario} (${s.scenarioFile})`],
    ["seed", String(s.seed)],
    ["trace hash", s.traceHash],
    ["virtual time", fmtMs(s.virtualMs)],
    ["wall time", fmtMs(s.wallMs)],
    [
      "events",
      `${s.events.toLocaleString("en-US")} (${
        Math.round(s.eventsPerSec).toLocaleString("en-US")
      }/s)`,
    ],
    ["peak RSS", fmtBytes(s.peakRssBytes)],
    ["nodes", String(m.nodes)],
    ["formation", fmtMs(m.formationMs)],
    [
      "detection (by all)",
      `n=${m.detection.count} p50 ${fmtMs(m.detection.p50Ms)} p99 ${fmtMs(m.detection.p99Ms)} max ${
        fmtMs(m.detection.maxMs)
      }` +
      (m.detection.undetected ? `, ${m.detection.undetected} undetected` : ""),
    ],
    [
      "join dissemination",
      `n=${m.joinDissemination.count} p50 ${fmtMs(m.joinDissemination.p50Ms)} p99 ${
        fmtMs(m.joinDissemination.p99Ms)
      } max ${fmtMs(m.joinDissemination.maxMs)}`,
    ],
    [
      "false positives",
      `${m.falsePositives} dead, ${m.falseSuspicions} suspected (partition: ${m.partitionDeclarations})`,
    ],
    ["bytes/node/s", m.bytesPerNodePerSec.toFixed(0)],
    ["msgs/node/s", m.messagesPerNodePerSec.toFixed(1)],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  const lines = rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`);
  lines.push("", "  faults:");
  for (const f of s.faults) {
    lines.push(`    ${f.fired > 0 ? "fired" : "NEVER"}  ${f.name} (x${f.fired})`);
  }
  lines.push("", "  checks:");
  for (const c of s.checks) lines.push(`    ${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}`);
  return lines.join("\n");
}
