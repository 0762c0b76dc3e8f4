/**
 * Trust scoring (DESIGN.md section 5, Trust). Every replica applies the same deltas from the
 * same ordered outcomes, so the table is a deterministic function of the committed log.
 *
 * Scores are kept internally as integer basis points (1.0 = 10,000 bp, 0.01 = 100 bp), so
 * repeated deltas never drift: 40 correct outcomes from 0.5 land exactly on 0.9. Scores handed
 * out are `bp / 10_000`; scores taken in are rounded to the nearest basis point.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { NodeId } from "../ids.ts";

/** The trust numbers of DESIGN.md section 5. Deeply frozen. */
export const TRUST = Object.freeze(
  {
    START: 0.5,
    GENESIS: 0.9,
    DELTA: Object.freeze({ correct: 0.01, wrong: -0.05, absent: -0.02 }),
    THRESHOLD: Object.freeze({ VOTE: 0.7, CRITICAL: 0.5 }),
    /** Minimum score for each access level, highest first. Below Restricted: "None". */
    ACCESS: Object.freeze({
      Full: 0.9,
      Standard: 0.7,
      Limited: 0.5,
      ReadOnly: 0.3,
      Restricted: 0.1,
    }),
  } as const,
);

/** Outcome of one decided operation for one executor. */
export type TrustOutcome = "correct" | "wrong" | "absent";
/** A verdict as produced by commit-reveal: "neutral" changes nothing. */
export type TrustVerdict = TrustOutcome | "neutral";
export type AccessLevel = keyof typeof TRUST.ACCESS | "None";

const BP = 10_000;
const START_BP = toBp(TRUST.START);
const GENESIS_BP = toBp(TRUST.GENESIS);
const DELTA_BP: Readonly<Record<TrustVerdict, number>> = Object.freeze({
  correct: Math.round(TRUST.DELTA.correct * BP),
  wrong: Math.round(TRUST.DELTA.wrong * BP),
  absent: Math.round(TRUST.DELTA.absent * BP),
  neutral: 0,
});
const ACCESS_ORDER: ReadonlyArray<[AccessLevel, number]> = (
  Object.entries(TRUST.ACCESS) as Array<[AccessLevel, number]>
).map(([level, s]): [AccessLevel, number] => [level, toBp(s)]).sort((a, b) => b[1] - a[1]);

/** Score to integer basis points, rounded and clamped to [0, 10000]. */
export function toBp(score: number): number {
  if (!Number.isFinite(score)) throw new RangeError(`trust score must be finite: ${score}`);
  return clampBp(Math.round(score * BP));
}

export function fromBp(bp: number): number {
  return bp / BP;
}

function clampBp(bp: number): number {
  return bp < 0 ? 0 : bp > BP ? BP : bp;
}

/** One outcome applied to a score (in basis points), clamped to [0, 10000]. */
export function stepBp(bp: number, v: TrustVerdict): number {
  const d = DELTA_BP[v];
  if (d === undefined) throw new TypeError(`unknown trust outcome: ${String(v)}`);
  return clampBp(bp + d);
}

/** One outcome applied to a score: the same arithmetic the table uses. */
export function step(score: number, v: TrustVerdict): number {
  return fromBp(stepBp(toBp(score), v));
}

export function accessLevel(score: number): AccessLevel {
  const bp = toBp(score);
  for (const [level, min] of ACCESS_ORDER) if (bp >= min) return level;
  return "None";
}

export function canVote(score: number): boolean {
  return toBp(score) >= toBp(TRUST.THRESHOLD.VOTE);
}

export function canRunCritical(score: number): boolean {
  return toBp(score) >= toBp(TRUST.THRESHOLD.CRITICAL);
}

/**
 * Trust of every node, as applied by every replica. Only scores that differ from TRUST.START
 * are stored, so two tables that answer `get` identically have identical snapshots and
 * digests.
 */
export class TrustTable {
  private readonly bp = new Map<NodeId, number>();

  /** Builds a table from a snapshot (as returned by `snapshot()`). */
  static fromSnapshot(entries: ReadonlyArray<readonly [NodeId, number]>): TrustTable {
    const t = new TrustTable();
    for (const [node, score] of entries) t.setBp(node, toBp(score));
    return t;
  }

  get(node: NodeId): number {
    return fromBp(this.getBp(node));
  }

  getBp(node: NodeId): number {
    return this.bp.get(node) ?? START_BP;
  }

  /** Genesis nodes start at TRUST.GENESIS. */
  setGenesis(nodes: Iterable<NodeId>): void {
    for (const n of nodes) this.setBp(n, GENESIS_BP);
  }

  /** Applies one outcome; returns the new score. "neutral" leaves the score unchanged. */
  applyDelta(node: NodeId, outcome: TrustVerdict): number {
    this.setBp(node, stepBp(this.getBp(node), outcome));
    return this.get(node);
  }

  /** Applies a list of verdicts in order (e.g. a commit-reveal decision's verdicts). */
  applyVerdicts(verdicts: Iterable<readonly [NodeId, TrustVerdict]>): void {
    for (const [node, v] of verdicts) this.applyDelta(node, v);
  }

  /** Proven equivocation: trust goes to 0. */
  slash(node: NodeId): number {
    this.setBp(node, 0);
    return 0;
  }

  accessLevel(node: NodeId): AccessLevel {
    return accessLevel(this.get(node));
  }

  canVote(node: NodeId): boolean {
    return canVote(this.get(node));
  }

  canRunCritical(node: NodeId): boolean {
    return canRunCritical(this.get(node));
  }

  /** Entries whose score differs from TRUST.START, sorted by node id. */
  snapshot(): Array<[NodeId, number]> {
    return [...this.bp.keys()].sort(cmp).map((n) => [n, fromBp(this.bp.get(n)!)]);
  }

  /** Hex sha256 of the canonical snapshot (integer basis points, sorted by node). */
  digest(): string {
    const entries = [...this.bp.keys()].sort(cmp).map((n) => [n, this.bp.get(n)!]);
    return bytesToHex(sha256(utf8ToBytes(JSON.stringify(["mycelium/trust/v1", entries]))));
  }

  get size(): number {
    return this.bp.size;
  }

  private setBp(node: NodeId, bp: number): void {
    const v = clampBp(bp);
    if (v === START_BP) this.bp.delete(node);
    else this.bp.set(node, v);
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Rounds of the same outcome needed to move a score from `from` until it reaches `to`
 * (score >= to when rising, score <= to when falling), by simulating the table's arithmetic.
 * 0 if already there; null if it never gets there (wrong direction, or "neutral").
 */
export function roundsToReach(from: number, to: number, outcome: TrustVerdict): number | null {
  const target = toBp(to);
  const bp = toBp(from);
  const rising = target >= bp;
  return simulate(bp, outcome, (x) => (rising ? x >= target : x <= target));
}

/**
 * Rounds of the same outcome after which the score is strictly below `threshold` (e.g. an
 * always-wrong node drops below 0.3 from 0.5 after 5). null if it never does.
 */
export function roundsToDropBelow(
  from: number,
  threshold: number,
  outcome: TrustVerdict,
): number | null {
  const t = toBp(threshold);
  return simulate(toBp(from), outcome, (x) => x < t);
}

function simulate(
  start: number,
  outcome: TrustVerdict,
  done: (bp: number) => boolean,
): number | null {
  let bp = start;
  for (let rounds = 0;; rounds++) {
    if (done(bp)) return rounds;
    const next = stepBp(bp, outcome);
    if (next === bp) return null; // stuck (clamped or neutral): never gets there
    bp = next;
  }
}
