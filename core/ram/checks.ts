/**
 * Checkers over a recorded RAM trace (the replicators' observer events, each stamped with a
 * global time by the recorder). Pure functions: the simulator and the tests share them.
 */
import type { RamEvent } from "./events.ts";

export interface TimedRamEvent {
  /** Global (virtual) time the event was recorded at. */
  at: number;
  event: RamEvent;
}

interface Interval {
  node: string;
  term: number;
  start: number;
  end: number;
}

/**
 * Failover safety: at most one node becomes primary of a VM per term, and no two nodes are
 * primary of a VM at the same time. A node is primary from `promoted` until it is `fenced`,
 * `demoted` (handover) or `stopped`; intervals are half-open, so one ending at the instant
 * the next begins is fine. Returns a description of the first problem, or null.
 */
export function twoPrimariesProblem(trace: readonly TimedRamEvent[]): string | null {
  const byTerm = new Map<string, string>();
  const intervals = new Map<string, Interval[]>();
  const open = new Map<string, Interval>();
  for (const { at, event: e } of trace) {
    const key = `${e.vmId}\u0000${e.node}`;
    if (e.kind === "promoted") {
      const t = `${e.vmId}\u0000${e.term}`;
      const other = byTerm.get(t);
      if (other !== undefined && other !== e.node) {
        return `VM ${e.vmId}: two primaries in term ${e.term} (${other} and ${e.node})`;
      }
      byTerm.set(t, e.node);
      const iv: Interval = { node: e.node, term: e.term, start: at, end: Infinity };
      open.set(key, iv);
      const list = intervals.get(e.vmId) ?? [];
      list.push(iv);
      intervals.set(e.vmId, list);
    } else if (e.kind === "fenced" || e.kind === "demoted" || e.kind === "stopped") {
      const iv = open.get(key);
      if (iv) {
        iv.end = at;
        open.delete(key);
      }
    }
  }
  for (const [vm, list] of intervals) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i];
        const b = list[j];
        if (a.node === b.node) continue;
        if (Math.max(a.start, b.start) < Math.min(a.end, b.end)) {
          return `VM ${vm}: ${a.node} (term ${a.term}, from ${a.start} to ${a.end}) and ` +
            `${b.node} (term ${b.term}, from ${b.start} to ${b.end}) were primary at the same time`;
        }
      }
    }
  }
  return null;
}

/**
 * Backups hold only cut epochs: every applied state (term, epoch) has the digest the primary
 * of that term recorded at the cut (or at promotion, for the state a term starts from), and
 * every promoted primary starts from such a state. Needs digests (`wantsDigests`); events
 * without one are skipped. Returns a description of the first problem, or null.
 */
export function appliedStateProblem(trace: readonly TimedRamEvent[]): string | null {
  const cuts = new Map<string, string>();
  const key = (vm: string, term: number, epoch: number) => `${vm}\u0000${term}\u0000${epoch}`;
  for (const { event: e } of trace) {
    if ((e.kind === "epochCut" || e.kind === "promoted") && e.digest !== undefined) {
      cuts.set(key(e.vmId, e.term, e.epoch), e.digest);
    }
  }
  for (const { at, event: e } of trace) {
    if (e.kind === "epochApplied" && e.digest !== undefined) {
      const want = cuts.get(key(e.vmId, e.term, e.epoch));
      if (want === undefined) {
        return `VM ${e.vmId}: ${e.node} applied epoch ${e.epoch} of term ${e.term} at ${at}, which was never cut`;
      }
      if (want !== e.digest) {
        return `VM ${e.vmId}: ${e.node} applied epoch ${e.epoch} of term ${e.term} at ${at} ` +
          `with digest ${e.digest}, but the cut had ${want}`;
      }
    } else if (e.kind === "promoted" && e.reason !== "initial" && e.digest !== undefined) {
      const want = cuts.get(key(e.vmId, e.baseTerm, e.epoch));
      if (want !== undefined && want !== e.digest) {
        return `VM ${e.vmId}: ${e.node} became primary of term ${e.term} at ${at} from epoch ` +
          `${e.epoch} of term ${e.baseTerm} with digest ${e.digest}, but that epoch had ${want}`;
      }
    }
  }
  return null;
}
