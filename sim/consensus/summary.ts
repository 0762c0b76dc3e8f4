/**
 * summary.json, CSVs and the terminal table of a consensus run: the same top-level shape as
 * a membership run (scenario, seed, trace hash, times, events, checks, faults, workload,
 * replay), with `metrics.consensus` in place of `metrics.membership`.
 */
import {
  csv,
  type Summary,
  summaryOf,
  type SummaryOptions,
  writeFilesAtomically,
} from "../summary.ts";
import type { ConsensusSimulation } from "./simulation.ts";
import type { HistoryEntry } from "./linearizability.ts";

export type ConsensusMetrics = ReturnType<ConsensusSimulation["metricsSummary"]>;

export type ConsensusSummary = Summary<{ consensus: ConsensusMetrics }>;

export function buildConsensusSummary(
  sim: ConsensusSimulation,
  opts: SummaryOptions,
): ConsensusSummary {
  return summaryOf(sim, opts, { consensus: sim.metricsSummary() });
}

/** ops.csv: one row per client operation (simulator and real cluster). */
export function opsCsv(history: readonly HistoryEntry[], round = false): string {
  const r = (v: number) => (round ? Math.round(v) : v);
  return csv(
    ["client", "op", "key", "invoke_ms", "complete_ms", "latency_ms", "ok"],
    history.map((e) => [
      e.client,
      e.op,
      e.key,
      r(e.invoke),
      e.complete === null ? null : r(e.complete),
      e.complete === null ? null : r(e.complete - e.invoke),
      e.result ? String(e.result.ok) : "",
    ]),
  );
}

/** heights.csv: the agreed height and completed operations over time. */
export function heightsCsv(
  rows: ReadonlyArray<{ t: number; height: number; ops: number }>,
  round = false,
): string {
  return csv(
    ["t_ms", "height", "ops_committed"],
    rows.map((x) => [round ? Math.round(x.t) : x.t, x.height, x.ops]),
  );
}

/** summary.json (written last), trust.csv, heights.csv, ops.csv, nodes.csv. */
export async function writeConsensusOutputs(
  dir: string,
  sim: ConsensusSimulation,
  summary: ConsensusSummary,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const files: Record<string, string> = {
    "trust.csv": csv(
      ["t_ms", "node", "trust"],
      sim.trustSamples.map((r) => [r.t, r.node, r.trust]),
    ),
    "heights.csv": heightsCsv(sim.heightSamples),
    "ops.csv": opsCsv(sim.history),
    "nodes.csv": csv(
      ["node", "correct", "bytes_sent", "bytes_received", "msgs_sent", "up_ms"],
      sim.nodes.map((
        n,
      ) => [n.name, String(n.correct), n.bytesSent, n.bytesReceived, n.msgsSent, n.upMs]),
    ),
    "summary.json": JSON.stringify(summary, null, 2) + "\n",
  };
  await writeFilesAtomically(dir, files);
}

const ms = (v: number | null) =>
  v === null ? "-" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`;

export function formatConsensusSummary(s: ConsensusSummary): string {
  const m = s.metrics.consensus;
  const rows: Array<[string, string]> = [
    ["scenario", `${s.scenario} (${s.scenarioFile})`],
    ["seed", String(s.seed)],
    ["trace hash", s.traceHash],
    ["virtual time", ms(s.virtualMs)],
    ["wall time", ms(s.wallMs)],
    ["events", `${s.events.toLocaleString("en-US")} (${s.eventsPerSec.toLocaleString("en-US")}/s)`],
    ["peak RSS", `${(s.peakRssBytes / 1024 ** 2).toFixed(0)} MiB`],
    ["voters", `${m.voters} (${m.instances} instances)`],
    ["heights", String(m.heights)],
    ["client ops", `${m.committedOps} (${m.opsPerSec.toFixed(1)}/s)`],
    [
      "commit latency",
      `p50 ${ms(m.commitLatency.p50Ms)} p99 ${ms(m.commitLatency.p99Ms)} max ${
        ms(m.commitLatency.maxMs)
      }`,
    ],
    ["msgs/height", m.messagesPerHeight === null ? "-" : m.messagesPerHeight.toFixed(0)],
    ["round changes", String(m.roundChanges)],
    [
      "byzantine seen",
      `${m.equivocationsSeen} equivocations, ${m.badSignaturesDropped} bad signatures dropped`,
    ],
    ["exclusions", m.exclusions.map((e) => `${e.node}@h${e.height}`).join(", ") || "-"],
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
