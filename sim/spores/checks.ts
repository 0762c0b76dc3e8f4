/**
 * The end-of-run evaluation of a spores run's checks (`spores.*`, `storage.*`) and its
 * headline metrics. Safety checks run online in the simulation (a violation stops the run
 * and is reported first); here they report what they saw, and the liveness checks decide.
 */
import type { NodeId } from "../../core/ids.ts";
import { keptPenalties } from "../../core/spores/absence.ts";
import { inMinority } from "../../core/spores/split_brain.ts";
import { totalDiscarded } from "../../core/spores/types.ts";
import { fromBp, stepBp, toBp } from "../../core/consensus/trust.ts";
import { type CheckResult, firedCheck, violationResult } from "../checks.ts";
import { latencyStats } from "../summary.ts";
import { votersOf } from "./ledger.ts";
import type { SporeSimulation } from "./simulation.ts";

const s1 = (ms: number | null) => (ms === null ? "-" : `${(ms / 1000).toFixed(2)} s`);

/** What `spores.absence-excused` found on the chain of the newest certified view. */
export interface AbsenceAudit {
  /** Rounds (blocks on the chain committed with a quorum) with at least one absent voter. */
  readonly rounds: number;
  /** Absences on the chain, recomputed from each block's base voters and live side voters. */
  readonly absences: number;
  /** Of those, on a minority side of a certified partition record (to be excused). */
  readonly inMinority: number;
  readonly partitionRecords: number;
  /** Penalties applied, excused (refunded) and still kept, from the newest view's book. */
  readonly applied: number;
  readonly excused: number;
  readonly kept: number;
  /** Penalties kept for a round in which the node was on a minority side. */
  readonly unexcused: ReadonlyArray<{ node: NodeId; round: number }>;
  /** Absences outside any minority side without the penalty (or with a wrong one). */
  readonly unpenalized: ReadonlyArray<{ node: NodeId; round: number; why: string }>;
}

/**
 * Audits absence penalties independently of how the ledger applied them: walks the chain of
 * the newest certified view, recomputes every round's absent voters (base view's voters not
 * among the side's live voters), and compares with the view's book and partition records.
 */
export function auditAbsences(sim: SporeSimulation): AbsenceAudit {
  const ledger = sim.ledger;
  const newest = ledger.newest;
  const book = ledger.absenceOf(newest);
  const records = book.partitions;
  const votersAt = new Map<number, readonly NodeId[]>();
  const bases = new Map<number, ReturnType<typeof ledger.viewOfBlockId>>();
  for (const b of ledger.chainOf(newest)) {
    const base = ledger.viewOfBlockId(b.parent);
    votersAt.set(b.height, base ? votersOf(base) : []);
    bases.set(b.height, base);
  }
  const membersAt = (r: number) => votersAt.get(r) ?? [];
  let rounds = 0;
  let absences = 0;
  let minority = 0;
  const unpenalized: Array<{ node: NodeId; round: number; why: string }> = [];
  for (const b of ledger.chainOf(newest)) {
    if (!b.quorum) continue; // trust changes need a quorum: an override block penalises nobody
    const present = new Set(b.sideVoters);
    const absent = membersAt(b.height).filter((v) => !present.has(v));
    if (absent.length > 0) rounds++;
    for (const node of absent) {
      absences++;
      if (inMinority(node, b.height, records, membersAt)) {
        minority++;
        continue;
      }
      const bp = book.taken.get(node)?.get(b.height);
      const before = toBp(bases.get(b.height)?.trust.get(node) ?? 0);
      const want = before - stepBp(before, "absent");
      if (bp === undefined) unpenalized.push({ node, round: b.height, why: "no penalty" });
      else if (bp !== want) {
        unpenalized.push({ node, round: b.height, why: `${bp} bp taken, ${want} due` });
      }
    }
  }
  const kept = keptPenalties(book);
  const unexcused = kept
    .filter((k) => inMinority(k.node, k.round, records, membersAt))
    .map(({ node, round }) => ({ node, round }));
  return {
    rounds,
    absences,
    inMinority: minority,
    partitionRecords: records.length,
    applied: book.applied,
    excused: book.excused,
    kept: kept.length,
    unexcused,
    unpenalized,
  };
}

function absenceCheck(sim: SporeSimulation, name: string): CheckResult {
  const a = auditAbsences(sim);
  const fail = (detail: string) =>
    violationResult({ check: name, detail, event: sim.events, t: sim.virtualMs });
  if (a.unexcused.length > 0) {
    const e = a.unexcused[0];
    return fail(
      `${a.unexcused.length} absence penalties kept for rounds spent in a minority partition ` +
        `recorded in the certified Primary, e.g. ${sim.nameOf(e.node)} in round ${e.round}`,
    );
  }
  if (a.unpenalized.length > 0) {
    const e = a.unpenalized[0];
    return fail(
      `${a.unpenalized.length} absences outside any minority partition not penalised, e.g. ` +
        `${sim.nameOf(e.node)} in round ${e.round} (${e.why})`,
    );
  }
  return {
    name,
    ok: true,
    detail: `${a.absences} absences in ${a.rounds} rounds: ${a.applied} penalties applied, ` +
      `${a.excused} excused by ${a.partitionRecords} certified partition record(s) ` +
      `(${a.inMinority} absences on minority sides), ${a.kept} kept; every other absence ` +
      `penalised`,
  };
}

export function evaluateSporeChecks(sim: SporeSimulation): CheckResult[] {
  const out: CheckResult[] = [];
  const v = sim.violation;
  if (v) out.push(violationResult(v));
  out.push(firedCheck("faults.fired", sim.faults, "declared faults"));
  if (sim.workload.length > 0) out.push(firedCheck("workload.fired", sim.workload, "events"));
  const c = sim.counters;
  const violated = (name: string) => v?.check === name;
  for (const spec of sim.scenario.checks) {
    if (violated(spec.type)) continue;
    switch (spec.type) {
      case "spores.bounded":
        out.push({
          name: spec.type,
          ok: true,
          detail:
            `largest Latent map ${c.maxMapSize} entries (bound ${sim.sp.latent.maxEntries}), ` +
            `largest honest message ${c.maxMessageBytes} bytes (bound ${spec.maxMessageBytes}), ` +
            `largest seed file ${sim.seeds.largest} bytes`,
        });
        break;
      case "spores.formation": {
        const f = sim.formationAt;
        out.push({
          name: spec.type,
          ok: f !== null && f <= spec.within,
          detail: f === null
            ? `never formed: ${sim.divergence()} (holder, member) pairs still differ at the end`
            : `all ${sim.nodes.length} nodes active and Latent converged at ${s1(f)} (bound ${
              s1(spec.within)
            })`,
        });
        break;
      }
      case "spores.converged": {
        const at = sim.convergedAt;
        out.push({
          name: spec.type,
          ok: at !== null && at - sim.quietAt <= spec.within,
          detail: at === null
            ? `not converged at the end: ${sim.divergence()} (holder, member) pairs differ`
            : `converged ${s1(at - sim.quietAt)} after the last update at ${s1(sim.quietAt)}` +
              (sim.healConvergedAt !== null
                ? `; first converged ${s1(sim.healConvergedAt - sim.lastFaultEnd)} after the ` +
                  `last fault ended`
                : "") +
              ` (bound ${s1(spec.within)})`,
        });
        break;
      }
      case "spores.no-contradiction":
        out.push({
          name: spec.type,
          ok: true,
          detail: `${c.acceptedChecked} accepted entries checked against the certified Primary; ` +
            `${sim.discardTotals()["contradicts-primary"]} contradicting entries discarded`,
        });
        break;
      case "spores.discovery": {
        const via = Object.entries(c.discoveredVia).map(([k, n]) => `${k} ${n}`).join(", ");
        out.push({
          name: spec.type,
          ok: true,
          detail: `discoveries by source: ${via}; ${c.discoveryFailures} exhausted plans, never ` +
            `while a path existed for ${s1(spec.within)}`,
        });
        break;
      }
      case "spores.single-writer":
        out.push({
          name: spec.type,
          ok: true,
          detail: `${sim.ledger.blocks.length} blocks, one per height, each by a side with a ` +
            `quorum (or under an explicit override: ${c.overrideWrites} writes); ${c.cpRefused} ` +
            `CP writes refused on read-only sides`,
        });
        break;
      case "spores.no-lockout":
        out.push({
          name: spec.type,
          ok: true,
          detail: `${sim.ledger.opsCommitted} operations committed; none waited ${
            s1(spec.within)
          } on a side holding a quorum`,
        });
        break;
      case "spores.byzantine-discarded": {
        const declared = [...new Set(sim.sp.byzantine.map((b) => b.behaviour))];
        const idle = declared.filter((b) => !(c.byzDiscarded[b] ?? 0));
        const desc = declared.map((b) => `${b} ${c.byzDiscarded[b] ?? 0}/${c.byzProduced[b] ?? 0}`)
          .join(", ");
        out.push({
          name: spec.type,
          ok: declared.length > 0 && idle.length === 0,
          detail: declared.length === 0
            ? "no Byzantine node (the check needs spores.byzantine)"
            : idle.length > 0
            ? `never discarded (declared but no effect): ${idle.join(", ")}`
            : `discarded/produced by honest receivers: ${desc}; none accepted` +
              (c.replaysAccepted
                ? ` (${c.replaysAccepted} replays reached nodes holding nothing newer)`
                : ""),
        });
        break;
      }
      case "spores.sides-serving":
        out.push({
          name: spec.type,
          ok: true,
          detail: c.partitionsSeen === 0
            ? "held (no partition in this scenario)"
            : `${c.partitionsSeen} partition(s): every side served reads (${c.readsServedReadOnly} on ` +
              `read-only sides) and AP writes (${c.apWrites} in all) within ${s1(spec.within)}`,
        });
        break;
      case "spores.singletons":
        out.push({
          name: spec.type,
          ok: true,
          detail: `${c.singletonStarts} instances started, ${sim.resolutions.length} duplicates ` +
            `resolved on heal`,
        });
        break;
      case "spores.fork-flagged":
        out.push({
          name: spec.type,
          ok: true,
          detail: c.overrides === 0
            ? "no manual override during a partition"
            : `${c.overrides} override(s), ${sim.forkFlags.length} fork(s) flagged on heal, ` +
              `${c.overrideWrites} override writes (${
                sim.forkFlags.reduce((n, f) => n + f.reported.length, 0)
              } blocks reported)`,
        });
        break;
      case "spores.promotion":
        out.push({
          name: spec.type,
          ok: true,
          detail: sim.sp.promotion
            ? `${c.promotions} promotions and ${c.demotions} demotions committed through the ` +
              `Primary (${c.promotionsProposed} and ${c.demotionsProposed} proposed, ` +
              `${c.promotionsRejected} rejected as ineligible); ${sim.dynamicSclerotia()} ` +
              `Dynamic Sclerotia at the end; no role without a committed promotion`
            : "held (no spores.promotion section)",
        });
        break;
      case "spores.client-failover":
        out.push({
          name: spec.type,
          ok: sim.sp.clients !== undefined && c.clientOps > 0,
          detail: !sim.sp.clients
            ? "no spores.clients section (the check needs Hyphae clients)"
            : `${c.clientOps} client ops, ${c.clientOk} answered, ${c.clientRetries} retried, ` +
              `${c.clientFailures} failed, never while a Sclerotium was reachable; ` +
              `${c.clientRefreshes} connection refreshes, none short longer than ${
                s1(spec.within)
              }`,
        });
        break;
      case "spores.absence-excused":
        out.push(absenceCheck(sim, spec.type));
        break;
      case "storage.class": {
        const bad = sim.storage?.ineligibleReplicas() ?? [];
        out.push({
          name: spec.type,
          ok: bad.length === 0,
          detail: bad.length > 0
            ? `${bad.length} live replicas on nodes not eligible for their class, e.g. ${bad[0]}`
            : `every replica stored and held satisfies its class`,
        });
        break;
      }
      case "storage.rf-restored": {
        const st = sim.storage!;
        const m = st.metrics();
        const open = st.openEpisodes(sim.virtualMs).filter((ms) => ms > spec.within);
        const slow = st.restoreMs.filter((ms) => ms > spec.within);
        const n = m.restore.episodes;
        out.push({
          name: spec.type,
          ok: n > 0 && open.length === 0 && slow.length === 0,
          detail: n === 0
            ? "no chunk lost a replica (the check needs a failure)"
            : `${m.restore.restored} of ${n} under-replication episodes restored, p50 ${
              s1(m.restore.p50Ms)
            } p99 ${s1(m.restore.p99Ms)} max ${s1(m.restore.maxMs)}` +
              (m.restore.outages
                ? `; ${m.restore.outages} had every replica down at once (timed from a ` +
                  `replica's return; longest outage ${s1(m.restore.outageMaxMs)})`
                : "") +
              (slow.length ? `; ${slow.length} slower than ${s1(spec.within)}` : "") +
              (open.length ? `; ${open.length} still open after ${s1(spec.within)}` : "") +
              ` (bound ${s1(spec.within)})`,
        });
        break;
      }
      case "storage.no-lost-writes": {
        const st = sim.storage!;
        const { lost, unreadable } = st.strongLosses();
        const acked = st.counts.acknowledgedStrong;
        out.push({
          name: spec.type,
          ok: acked > 0 && lost.length === 0,
          detail: acked === 0
            ? "no acknowledged Strong write (the check needs storage writes)"
            : lost.length > 0
            ? `${lost.length} of ${acked} acknowledged Strong objects lost, e.g. ${lost[0]}`
            : `all ${acked} acknowledged Strong objects readable` +
              (unreadable.length ? ` (${unreadable.length} below a read quorum at the end)` : ""),
        });
        break;
      }
      default:
        break;
    }
  }
  return out;
}

export function sporeMetrics(sim: SporeSimulation) {
  const c = sim.counters;
  const round = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
  const join = latencyStats(sim.joinMs);
  const cp = latencyStats(sim.cpCommitMs);
  const discards = sim.discardTotals();
  const nodeSeconds = sim.nodes.reduce((s, n) => s + n.upMs, 0) / 1000;
  const active = sim.nodes.filter((n) => n.up && n.active).length;
  return {
    nodes: sim.nodes.length,
    genesis: sim.nodes.filter((n) => n.genesis).length,
    activeAtEnd: active,
    formationMs: sim.formationAt,
    convergedAtMs: sim.convergedAt,
    quietAtMs: sim.quietAt,
    convergedAfterQuietMs: sim.convergedAt === null ? null : sim.convergedAt - sim.quietAt,
    convergedAfterLastFaultMs: sim.healConvergedAt === null
      ? null
      : sim.healConvergedAt - sim.lastFaultEnd,
    divergenceAtEnd: sim.divergence(),
    join: {
      count: join.count,
      p50Ms: round(join.p50Ms),
      p99Ms: round(join.p99Ms),
      maxMs: round(join.maxMs),
      failovers: c.joinFailovers,
      retries: c.joinRetries,
      refused: c.joinsRefused,
    },
    discovery: {
      bySource: { ...c.discoveredVia },
      rounds: c.discoveryRounds,
      exhausted: c.discoveryFailures,
      seedReads: Object.fromEntries([...sim.seeds.reads].sort()),
      seedWrites: c.seedWrites,
    },
    primary: {
      height: sim.ledger.newest.height,
      blocks: sim.ledger.blocks.length,
      opsCommitted: sim.ledger.opsCommitted,
      pending: sim.ledger.pending.length,
      forks: sim.ledger.forks.length,
      members: sim.ledger.newest.members.size,
      voters: sim.ledger.voters(sim.ledger.newest).length,
    },
    cp: {
      submitted: c.cpSubmitted,
      committed: c.cpCommitted,
      refused: c.cpRefused,
      timedOut: c.cpTimedOut,
      failovers: c.cpFailovers,
      failed: c.cpFailed,
      reconnects: c.reconnects,
      commitP50Ms: round(cp.p50Ms),
      commitP99Ms: round(cp.p99Ms),
    },
    reads: { served: c.readsServed, servedReadOnly: c.readsServedReadOnly, failed: c.readsFailed },
    apWrites: c.apWrites,
    latent: {
      maxMapSize: c.maxMapSize,
      maxEntries: sim.sp.latent.maxEntries,
      maxMessageBytes: c.maxMessageBytes,
      largestSeedBytes: sim.seeds.largest,
    },
    discards: { total: totalDiscarded(discards), ...discards },
    byzantine: {
      produced: { ...c.byzProduced },
      discarded: { ...c.byzDiscarded },
      replaysAccepted: c.replaysAccepted,
    },
    promotion: {
      proposed: c.promotionsProposed,
      promoted: c.promotions,
      rejected: c.promotionsRejected,
      demotionsProposed: c.demotionsProposed,
      demoted: c.demotions,
      dynamicSclerotiaAtEnd: sim.dynamicSclerotia(),
    },
    clients: {
      ops: c.clientOps,
      ok: c.clientOk,
      retries: c.clientRetries,
      failures: c.clientFailures,
      refreshes: c.clientRefreshes,
    },
    absence: absenceMetrics(sim),
    splitBrain: {
      overrides: c.overrides,
      overridesIgnored: c.overridesIgnored,
      overrideWrites: c.overrideWrites,
      forksHealed: c.forksHealed,
      forksFlagged: sim.forkFlags.length,
      flags: sim.forkFlags.slice(0, 20),
    },
    singletons: {
      started: c.singletonStarts,
      resolved: sim.resolutions.length,
      resolutions: sim.resolutions.slice(0, 20),
    },
    gossip: sim.gossipStats(),
    bytesPerNodePerSec: nodeSeconds > 0 ? Math.round(sim.totalBytes / nodeSeconds) : 0,
    messagesPerNodePerSec: nodeSeconds > 0 ? round(sim.totalMsgs / nodeSeconds) : 0,
    drops: sim.dropCounts(),
    logs: Object.fromEntries(sim.logCounts),
  };
}

/** Absence penalties of the newest certified view's chain (summary.json `absence`). */
function absenceMetrics(sim: SporeSimulation) {
  const book = sim.ledger.absenceOf(sim.ledger.newest);
  return {
    applied: book.applied,
    excused: book.excused,
    kept: keptPenalties(book).length,
    refunded: fromBp(book.refundedBp),
    partitionRecords: book.partitions.length,
    partitionRecordsSubmitted: sim.partitionRecordsSubmitted,
  };
}
