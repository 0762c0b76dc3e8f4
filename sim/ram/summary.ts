/**
 * summary.json, CSVs and the terminal table of a RAM run: the same top-level shape as the
 * other runs (scenario, seed, trace hash, times, events, checks, faults, workload, replay),
 * with `metrics.ram`.
 */
import {
  csv,
  type Summary,
  summaryOf,
  type SummaryOptions,
  writeFilesAtomically,
} from "../summary.ts";
import type { RamSimulation } from "./simulation.ts";

export type RamMetricsSummary = ReturnType<RamSimulation["metricsSummary"]>;

export type RamSummary = Summary<{ ram: RamMetricsSummary }>;

export function buildRamSummary(sim: RamSimulation, opts: SummaryOptions): RamSummary {
  return summaryOf(sim, opts, { ram: sim.metricsSummary() });
}

/** The files of a RAM run: ram.csv, vms.csv, nodes.csv, then summary.json. */
export function ramOutputFiles(sim: RamSimulation, summary: RamSummary): Record<string, string> {
  const vmName = (i: number) => sim.vms[i].name;
  return {
    "ram.csv": csv(
      ["t_ms", "vm", "buffer_level", "intensity", "paused", "lag_ms"],
      sim.samples.map((s) => [s.t, vmName(s.vm), s.b, s.intensity, s.paused ? 1 : 0, s.lagMs]),
    ),
    "vms.csv": csv(
      [
        "vm",
        "profile",
        "pages",
        "primary",
        "term",
        "pages_dirtied",
        "epochs",
        "pages_replicated",
        "bytes_replicated",
        "throttle_s",
        "paused_ms",
        "pauses",
        "checkpoint_ms",
        "drops",
        "resyncs",
        "outputs_emitted",
        "outputs_released",
      ],
      sim.vms.map((vm) => [
        vm.name,
        vm.profile,
        vm.pageCount,
        vm.primary >= 0 ? sim.nodes[vm.primary].name : "",
        vm.term,
        vm.pagesDirtied,
        vm.epochs,
        vm.pagesReplicated,
        vm.bytesReplicated,
        vm.throttleMs / 1000,
        vm.pausedMs,
        vm.pauses,
        vm.checkpointMs,
        vm.drops,
        vm.resyncs,
        vm.outputsEmitted,
        vm.outputsReleased,
      ]),
    ),
    "nodes.csv": csv(
      ["node", "region", "bytes_sent", "bytes_received", "msgs_sent", "up_ms"],
      sim.nodes.map((n) => [n.name, n.region, n.bytesSent, n.bytesReceived, n.msgsSent, n.upMs]),
    ),
    // Last: its presence means the run directory is complete.
    "summary.json": JSON.stringify(summary, null, 2) + "\n",
  };
}

export async function writeRamOutputs(
  dir: string,
  sim: RamSimulation,
  summary: RamSummary,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeFilesAtomically(dir, ramOutputFiles(sim, summary));
}

const ms = (v: number | null) =>
  v === null ? "-" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`;
const num = (v: number | null, d = 3) => (v === null ? "-" : v.toFixed(d));
const mib = (b: number) => `${(b / 1024 ** 2).toFixed(1)} MiB`;

export function formatRamSummary(s: RamSummary): string {
  const m = s.metrics.ram;
  const profiles = Object.entries(m.profiles).map(([p, n]) => `${p} x${n}`).join(", ");
  const rows: Array<[string, string]> = [
    ["scenario", `${s.scenario} (${s.scenarioFile})`],
    ["seed", String(s.seed)],
    ["trace hash", s.traceHash],
    ["virtual time", ms(s.virtualMs)],
    ["wall time", ms(s.wallMs)],
    ["events", `${s.events.toLocaleString("en-US")} (${s.eventsPerSec.toLocaleString("en-US")}/s)`],
    ["peak RSS", `${(s.peakRssBytes / 1024 ** 2).toFixed(0)} MiB`],
    ["VMs", `${m.vms} on ${m.nodes} nodes, policy ${m.policy}, profile ${profiles}`],
    [
      "buffer level",
      `mean ${num(m.bufferLevel.mean)} p99 ${num(m.bufferLevel.p99)} max ${num(m.bufferLevel.max)}`,
    ],
    ["intensity", `mean ${num(m.intensity.mean)} max ${num(m.intensity.max)}`],
    ["integrated throttle", `${num(m.integratedThrottleS, 2)} s`],
    [
      "pauses",
      `${m.pauses.count} (${ms(m.pauses.totalMs)})` +
      (m.checkpoints.count
        ? `, ${m.checkpoints.count} checkpoints (${ms(m.checkpoints.totalMs)})`
        : ""),
    ],
    [
      "replication lag",
      `p50 ${ms(m.replicationLag.p50Ms)} p99 ${ms(m.replicationLag.p99Ms)} max ${
        ms(m.replicationLag.maxMs)
      } (steady p99 ${ms(m.replicationLag.steadyP99Ms)})`,
    ],
    [
      "epoch commit",
      `n=${m.epochCommit.count} p50 ${ms(m.epochCommit.p50Ms)} p99 ${ms(m.epochCommit.p99Ms)}`,
    ],
    [
      "pages",
      `${m.pagesDirtied.toLocaleString("en-US")} dirtied, ${
        m.pagesReplicated.toLocaleString("en-US")
      } replicated (${mib(m.bytesReplicated)} acknowledged)`,
    ],
    [
      "drops / resyncs",
      `${m.drops.count} drops (${m.drops.pages} pages), ${m.resyncs} resyncs, ${m.retransmits} retransmits`,
    ],
    [
      "failovers",
      m.failovers.count === 0 ? "0" : `${m.failovers.count}: ` +
        m.failovers.list.map((f) =>
          `${f.vm} -> ${f.node} (${f.cause}${f.ms !== null ? ` +${ms(f.ms)}` : ""})`
        ).join(", "),
    ],
    [
      "migrations",
      m.migrations.count === 0
        ? "0"
        : `${m.migrations.completed} completed, ${m.migrations.aborted} aborted: ` +
          m.migrations.list.map((x) =>
            `${x.vm} -> ${x.target} ${x.outcome ?? "unfinished"}` +
            (x.totalMs !== null ? ` in ${ms(x.totalMs)}` : "") +
            (x.blackoutMs !== null ? ` (blackout ${ms(x.blackoutMs)})` : "")
          ).join(", "),
    ],
  ];
  if (m.outputs) {
    rows.push([
      "outputs",
      `${m.outputs.released}/${m.outputs.emitted} released${
        m.outputs.buffering ? "" : " (unbuffered)"
      }, delay p50 ${ms(m.outputs.delayP50Ms)} p99 ${ms(m.outputs.delayP99Ms)}`,
    ]);
  }
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
