/**
 * summary.json, CSVs and the terminal table of a spores run: the same top-level shape as the
 * other runs (scenario, seed, trace hash, times, events, checks, faults, workload, replay),
 * with `metrics.spores` and, when the scenario stores objects, `metrics.storage`.
 */
import { DISCARD_REASONS } from "../../core/spores/types.ts";
import {
  csv,
  type Summary,
  summaryOf,
  type SummaryOptions,
  writeFilesAtomically,
} from "../summary.ts";
import type { SporeSimulation } from "./simulation.ts";
import type { StorageModel } from "./storage.ts";

export type SporeMetrics = ReturnType<SporeSimulation["metricsSummary"]>;
export type StorageMetrics = ReturnType<StorageModel["metrics"]>;

export type SporeSummary = Summary<{ spores: SporeMetrics; storage?: StorageMetrics }>;

export function buildSporeSummary(sim: SporeSimulation, opts: SummaryOptions): SporeSummary {
  const metrics: SporeSummary["metrics"] = { spores: sim.metricsSummary() };
  if (sim.storage) metrics.storage = sim.storage.metrics();
  return summaryOf(sim, opts, metrics);
}

const reasonColumn = (r: string) => `discarded_${r.replaceAll("-", "_")}`;

/** The files of a spores run: spores.csv, storage.csv (with storage), nodes.csv, summary.json. */
export function sporeOutputFiles(
  sim: SporeSimulation,
  summary: SporeSummary,
): Record<string, string> {
  const files: Record<string, string> = {
    "spores.csv": csv(
      [
        "t_ms",
        "up",
        "active",
        "joining",
        "read_only",
        "primary_height",
        "latent_divergence",
        ...DISCARD_REASONS.map(reasonColumn),
        "bytes_per_sec",
        "msgs_per_sec",
      ],
      sim.samples.map((s) => [
        s.t,
        s.up,
        s.active,
        s.joining,
        s.readOnly,
        s.primaryHeight,
        s.divergence,
        ...DISCARD_REASONS.map((r) => s.discards[r]),
        s.bytesPerSec,
        s.msgsPerSec,
      ]),
    ),
  };
  if (sim.storage) {
    files["storage.csv"] = csv(
      [
        "t_ms",
        "objects_acked",
        "chunks",
        "under_replicated",
        "unavailable",
        "copies_in_flight",
        "copies_total",
        "bytes_copied",
        "writes_failed",
        "reads_ok",
        "reads_failed",
      ],
      sim.storage.samples.map((s) => [
        s.t,
        s.objects,
        s.chunks,
        s.underReplicated,
        s.unavailable,
        s.repairInFlight,
        s.copies,
        s.bytesCopied,
        s.writesFailed,
        s.readsOk,
        s.readsFailed,
      ]),
    );
  }
  const storage = sim.storage;
  files["nodes.csv"] = csv(
    [
      "node",
      "tier",
      "region",
      "state",
      "genesis",
      "byzantine",
      "first_active_ms",
      "bytes_sent",
      "bytes_received",
      "msgs_sent",
      "up_ms",
      "chunks_held",
    ],
    sim.nodes.map((n) => [
      n.name,
      n.tier,
      n.region,
      n.state,
      n.genesis ? 1 : 0,
      n.byz.map((b) => b.behaviour).join(" "),
      n.firstActiveAt,
      n.bytesSent,
      n.bytesReceived,
      n.msgsSent,
      n.upMs,
      storage ? storage.chunksHeld(n.index) : 0,
    ]),
  );
  // Last: its presence means the run directory is complete.
  files["summary.json"] = JSON.stringify(summary, null, 2) + "\n";
  return files;
}

export async function writeSporeOutputs(
  dir: string,
  sim: SporeSimulation,
  summary: SporeSummary,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeFilesAtomically(dir, sporeOutputFiles(sim, summary));
}

const ms = (v: number | null) =>
  v === null ? "-" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`;
const n = (v: number) => v.toLocaleString("en-US");
const gib = (b: number) => `${(b / 1024 ** 3).toFixed(2)} GiB`;

export function formatSporeSummary(s: SporeSummary): string {
  const m = s.metrics.spores;
  const rows: Array<[string, string]> = [
    ["scenario", `${s.scenario} (${s.scenarioFile})`],
    ["seed", String(s.seed)],
    ["trace hash", s.traceHash],
    ["virtual time", ms(s.virtualMs)],
    ["wall time", ms(s.wallMs)],
    ["events", `${n(s.events)} (${n(s.eventsPerSec)}/s)`],
    ["peak RSS", `${(s.peakRssBytes / 1024 ** 2).toFixed(0)} MiB`],
    ["nodes", `${m.nodes} (${m.genesis} genesis), ${m.activeAtEnd} active at the end`],
    ["formation", ms(m.formationMs)],
    [
      "Latent converged",
      m.convergedAtMs === null
        ? `no (${m.divergenceAtEnd} pairs differ at the end)`
        : `${ms(m.convergedAfterQuietMs)} after the last update` +
          (m.convergedAfterLastFaultMs !== null
            ? `, ${ms(m.convergedAfterLastFaultMs)} after the last fault`
            : ""),
    ],
    [
      "joins",
      `n=${m.join.count} p50 ${ms(m.join.p50Ms)} p99 ${ms(m.join.p99Ms)} max ${
        ms(m.join.maxMs)
      }, via ${
        Object.entries(m.discovery.bySource).filter(([, c]) => c > 0).map(([k, c]) => `${k} ${c}`)
          .join(", ") || "-"
      }`,
    ],
    [
      "seed reads",
      Object.entries(m.discovery.seedReads).map(([k, c]) => `${k} ${c}`).join(", ") || "-",
    ],
    [
      "Primary",
      `height ${m.primary.height}, ${m.primary.blocks} blocks, ${m.primary.members} members, ` +
      `${m.primary.voters} voters${m.primary.forks ? `, ${m.primary.forks} FORKS` : ""}`,
    ],
    [
      "discards",
      `${n(m.discards.total)}: ` +
      Object.entries(m.discards).filter(([k, v]) => k !== "total" && v > 0).map(([k, v]) =>
        `${k} ${n(v)}`
      ).join(", "),
    ],
    ["bytes/node/s", String(m.bytesPerNodePerSec)],
  ];
  if (m.cp.submitted + m.cp.refused + m.cp.timedOut > 0) {
    rows.push([
      "CP writes",
      `${m.cp.committed} committed (p50 ${ms(m.cp.commitP50Ms)}), ${m.cp.refused} refused ` +
      `(read-only side), ${m.cp.timedOut} timed out` +
      (m.cp.failovers ? `, ${m.cp.failovers} failovers` : ""),
    ]);
  }
  if (m.reads.served + m.reads.failed > 0) {
    rows.push([
      "reads",
      `${m.reads.served} served (${m.reads.servedReadOnly} on read-only sides), ${m.reads.failed} failed`,
    ]);
  }
  if (m.apWrites > 0) rows.push(["AP writes", String(m.apWrites)]);
  if (Object.keys(m.byzantine.produced).length > 0) {
    rows.push([
      "Byzantine",
      Object.entries(m.byzantine.produced).map(([b, p]) =>
        `${b} ${m.byzantine.discarded[b as keyof typeof m.byzantine.discarded] ?? 0}/${p}`
      ).join(", ") + " discarded/produced",
    ]);
  }
  const pm = m.promotion;
  if (pm.proposed + pm.demotionsProposed > 0) {
    rows.push([
      "promotion",
      `${pm.promoted} promoted (${pm.proposed} proposed, ${pm.rejected} rejected), ` +
      `${pm.demoted} demoted; ${pm.dynamicSclerotiaAtEnd} Dynamic Sclerotia at the end`,
    ]);
  }
  if (m.clients.ops > 0) {
    const cl = m.clients;
    rows.push([
      "Hyphae clients",
      `${cl.ops} ops, ${cl.retries} retried, ${cl.failures} failed, ${cl.refreshes} refreshes`,
    ]);
  }
  const ab = m.absence;
  if (ab.applied + ab.partitionRecords > 0) {
    rows.push([
      "absences",
      `${ab.applied} penalties applied, ${ab.excused} excused by ${ab.partitionRecords} ` +
      `partition record(s) (${ab.refunded} trust refunded), ${ab.kept} kept`,
    ]);
  }
  if (m.splitBrain.overrides > 0) {
    const sb = m.splitBrain;
    rows.push([
      "overrides",
      `${sb.overrides} fork epochs, ${sb.overrideWrites} override writes, ` +
      `${sb.forksFlagged} forks flagged on heal`,
    ]);
  }
  if (m.singletons.started > 0) {
    rows.push(["singletons", `${m.singletons.started} started, ${m.singletons.resolved} resolved`]);
  }
  const st = s.metrics.storage;
  if (st) {
    rows.push(
      [
        "objects",
        `${n(st.objects.acknowledged)} acknowledged of ${n(st.objects.written)} (${
          n(st.objects.acknowledgedStrong)
        } Strong), ${st.objects.failed} failed; ack p50 ${ms(st.writeAck.p50Ms)} p99 ${
          ms(st.writeAck.p99Ms)
        }`,
      ],
      ["chunks", `${n(st.chunks)} chunks, ${n(st.replicas)} replicas (rf ${st.replicationFactor})`],
      [
        "repair",
        `${n(st.repair.copies)} copies (${gib(st.repair.bytesCopied)}), ${
          n(st.repair.releases)
        } releases, ${st.repair.declaredDead} nodes declared dead`,
      ],
      [
        "time to restore RF",
        `n=${n(st.restore.restored)} p50 ${ms(st.restore.p50Ms)} p99 ${ms(st.restore.p99Ms)} max ${
          ms(st.restore.maxMs)
        }${st.restore.open ? `, ${st.restore.open} open` : ""}${
          st.restore.outages
            ? ` (${st.restore.outages} after an outage of every replica, longest ${
              ms(st.restore.outageMaxMs)
            })`
            : ""
        }`,
      ],
      [
        "object reads",
        `${n(st.reads.ok)} ok, ${st.reads.failed} failed, ${st.reads.checksumFailures} checksum ` +
        `failures; p50 ${ms(st.reads.p50Ms)} p99 ${ms(st.reads.p99Ms)}`,
      ],
      [
        "losses",
        `${st.lostStrongObjects} Strong objects lost, ${st.underReplicatedEnd} chunks ` +
        `under-replicated at the end`,
      ],
    );
  }
  const w = Math.max(...rows.map((r) => r[0].length));
  const lines = rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`);
  lines.push("", "  faults:");
  for (const f of s.faults) {
    lines.push(`    ${f.fired > 0 ? "fired" : "NEVER"}  ${f.name} (x${f.fired})`);
  }
  if (s.workload.length > 0) {
    lines.push("", "  events:");
    for (const f of s.workload) {
      lines.push(`    ${f.fired > 0 ? "fired" : "NEVER"}  ${f.name} (x${f.fired})`);
    }
  }
  lines.push("", "  checks:");
  for (const c of s.checks) lines.push(`    ${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}`);
  return lines.join("\n");
}
