/**
 * Trust's absence penalty with the partition excuse (DESIGN.md section 5, Trust; Partitions
 * and split brain), as a deterministic part of the ordered outcome.
 *
 * Design (kept deliberately simple, and the same on every replica):
 * - A round is a committed block (its height). Every voter of the block's base view that is
 *   not among the committing side's live voters is absent: its trust drops by
 *   `TRUST.DELTA.absent` (clamped at 0, in integer basis points as `stepBp` does).
 * - The basis points actually taken are kept per (node, round) in an `AbsenceBook` that is
 *   part of the resulting state, with the voter set of that round (the quorum base).
 * - A certified partition record (groups as the membership saw them, rounds [from, to)) is
 *   appended to the book; every kept penalty of a node that was on a minority side in that
 *   round (`inMinority`) is refunded exactly (clamped at 1) and dropped from the book. A
 *   node absent for any other reason (a crash on the quorum side) keeps its penalty.
 * - Absolute trust writes in between are not undone: a refund adds back what was taken.
 *   Excluded nodes get no refund (exclusion pins trust to 0); their entries are dropped.
 */
import { fromBp, stepBp, toBp } from "../consensus/trust.ts";
import type { NodeId } from "../ids.ts";
import { inMinority, type PartitionRecord } from "./split_brain.ts";
import { compareStrings } from "./types.ts";

/** Absence penalties applied and not (yet) excused, plus the partitions recorded so far. */
export interface AbsenceBook {
  /** node -> (round -> basis points taken from its trust in that round; 0 if clamped). */
  readonly taken: ReadonlyMap<NodeId, ReadonlyMap<number, number>>;
  /** The voter set of every round with an entry in `taken` (sorted ids). */
  readonly voters: ReadonlyMap<number, readonly NodeId[]>;
  /** Certified partition records, in commit order. */
  readonly partitions: readonly PartitionRecord[];
  /** Penalties applied in all (count), and excused (refunded) in all. */
  readonly applied: number;
  readonly excused: number;
  /** Basis points refunded in all. */
  readonly refundedBp: number;
}

export const EMPTY_ABSENCE_BOOK: AbsenceBook = Object.freeze({
  taken: new Map(),
  voters: new Map(),
  partitions: Object.freeze([]) as readonly PartitionRecord[],
  applied: 0,
  excused: 0,
  refundedBp: 0,
});

export interface AbsenceState {
  readonly trust: ReadonlyMap<NodeId, number>;
  readonly book: AbsenceBook;
}

/** Voters of `round` that are not in `present` (sorted as `voters` is). */
export function absentVoters(voters: readonly NodeId[], present: Iterable<NodeId>): NodeId[] {
  const here = new Set(present);
  return voters.filter((v) => !here.has(v));
}

/**
 * Applies the absence penalty of `round` to every voter not `present`. Returns the input
 * state itself when nobody was absent. Throws if the round was already penalised.
 */
export function penalizeAbsences(
  state: AbsenceState,
  round: number,
  voters: readonly NodeId[],
  present: Iterable<NodeId>,
): AbsenceState {
  const absent = absentVoters(voters, present);
  if (absent.length === 0) return state;
  if (state.book.voters.has(round)) throw new RangeError(`round ${round} was already penalised`);
  const trust = new Map(state.trust);
  const taken = new Map(state.book.taken);
  for (const node of absent) {
    const before = toBp(trust.get(node) ?? 0);
    const after = stepBp(before, "absent");
    trust.set(node, fromBp(after));
    const rounds = new Map(taken.get(node) ?? []);
    rounds.set(round, before - after);
    taken.set(node, rounds);
  }
  const roundVoters = new Map(state.book.voters);
  roundVoters.set(round, [...voters]);
  return {
    trust,
    book: {
      ...state.book,
      taken,
      voters: roundVoters,
      applied: state.book.applied + absent.length,
    },
  };
}

/**
 * Records a certified partition and (unless `excuse` is false, a test knob) refunds every kept
 * penalty it excuses: rounds in [fromRound, toRound) in which the node's group held fewer than
 * a quorum of that round's voters. `excluded` nodes get no refund.
 */
export function excusePartition(
  state: AbsenceState,
  record: PartitionRecord,
  excluded: ReadonlySet<NodeId> = new Set(),
  excuse = true,
): AbsenceState {
  const partitions = [...state.book.partitions, record];
  if (!excuse) return { trust: state.trust, book: { ...state.book, partitions } };
  const membersAt = (r: number) => state.book.voters.get(r) ?? [];
  let trust: Map<NodeId, number> | null = null;
  const taken = new Map(state.book.taken);
  let excused = 0;
  let refundedBp = 0;
  for (const [node, rounds] of state.book.taken) {
    let kept: Map<number, number> | null = null;
    let refund = 0;
    for (const [round, bp] of rounds) {
      if (!inMinority(node, round, [record], membersAt)) continue;
      kept ??= new Map(rounds);
      kept.delete(round);
      refund += bp;
      excused++;
    }
    if (!kept) continue;
    if (kept.size > 0) taken.set(node, kept);
    else taken.delete(node);
    if (refund > 0 && !excluded.has(node)) {
      trust ??= new Map(state.trust);
      trust.set(node, fromBp(Math.min(toBp(1), toBp(trust.get(node) ?? 0) + refund)));
      refundedBp += refund;
    }
  }
  return {
    trust: trust ?? state.trust,
    book: {
      ...state.book,
      taken,
      partitions,
      excused: state.book.excused + excused,
      refundedBp: state.book.refundedBp + refundedBp,
    },
  };
}

/** Kept penalties, as (node, round, bp), in node then round order. */
export function keptPenalties(
  book: AbsenceBook,
): Array<{ node: NodeId; round: number; bp: number }> {
  const out: Array<{ node: NodeId; round: number; bp: number }> = [];
  for (const node of [...book.taken.keys()].sort(compareStrings)) {
    const rounds = book.taken.get(node)!;
    for (const round of [...rounds.keys()].sort((a, b) => a - b)) {
      out.push({ node, round, bp: rounds.get(round)! });
    }
  }
  return out;
}
