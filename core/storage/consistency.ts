/**
 * Per-object consistency (DESIGN.md section 5, Storage), as pure functions over replica
 * responses:
 * - Strong: a write is acknowledged once floor(rf/2)+1 distinct replicas stored it, and a
 *   read waits for floor(rf/2)+1 distinct replicas and returns the newest version among them.
 *   Any read quorum meets any write quorum (r + w > rf), so an acknowledged write is never
 *   missed by a later read.
 * - Eventual: one ack acknowledges a write and one response answers a read (it may be stale;
 *   anti-entropy repairs replicas later).
 * Versions are ordered by (hybrid logical clock, writer), so concurrent writers resolve the
 * same way on every replica.
 */
import { z } from "zod";
import type { NodeId } from "../ids.ts";
import { compareHlc, type Hlc } from "../spores/hlc.ts";
import { compareStrings } from "../spores/types.ts";

export const CONSISTENCY_LEVELS = ["strong", "eventual"] as const;
export type Consistency = typeof CONSISTENCY_LEVELS[number];
export const consistencySchema = z.enum(CONSISTENCY_LEVELS);

export interface Version {
  readonly hlc: Hlc;
  readonly writer: string;
}

export function compareVersions(a: Version, b: Version): number {
  return compareHlc(a.hlc, b.hlc) || compareStrings(a.writer, b.writer);
}

function checkRf(rf: number): void {
  if (!Number.isInteger(rf) || rf < 1) {
    throw new RangeError(`replication factor must be >= 1: ${rf}`);
  }
}

/** Distinct replicas that must store a write before it is acknowledged. */
export function writeQuorum(level: Consistency, rf: number): number {
  checkRf(rf);
  return level === "strong" ? Math.floor(rf / 2) + 1 : 1;
}

/** Distinct replicas a read must hear from. */
export function readQuorum(level: Consistency, rf: number): number {
  checkRf(rf);
  return level === "strong" ? Math.floor(rf / 2) + 1 : 1;
}

/** Every read quorum of size r meets every write quorum of size w among rf replicas. */
export function quorumsIntersect(rf: number, r: number, w: number): boolean {
  return r + w > rf;
}

export interface WriteAck {
  readonly replica: NodeId;
  /** The replica stored (and synced) the chunk. */
  readonly stored: boolean;
}

export interface WriteOutcome {
  readonly acknowledged: boolean;
  /** Distinct replicas that stored it. */
  readonly stored: number;
  readonly needed: number;
}

/** Whether `needed` distinct replicas stored the write (duplicate acks count once). */
export function writeWithQuorum(acks: readonly WriteAck[], needed: number): WriteOutcome {
  const stored = new Set(acks.filter((a) => a.stored).map((a) => a.replica)).size;
  return { acknowledged: stored >= needed, stored, needed };
}

export function writeOutcome(
  level: Consistency,
  rf: number,
  acks: readonly WriteAck[],
): WriteOutcome {
  return writeWithQuorum(acks, writeQuorum(level, rf));
}

export interface ReadResponse {
  readonly replica: NodeId;
  /** The version held (null: the replica has no version of the object). */
  readonly version: Version | null;
  /** The replica's data passed checksum verification (a failed one does not count). */
  readonly verified: boolean;
}

export type ReadOutcome =
  | {
    readonly ok: true;
    /** The newest response (null version: no responding replica has the object). */
    readonly newest: ReadResponse;
    readonly responded: number;
  }
  | {
    readonly ok: false;
    readonly reason: "no-quorum";
    readonly responded: number;
    readonly needed: number;
  };

/** Versions with "none" (null) below every version. */
function compareMaybe(a: Version | null, b: Version | null): number {
  if (a === null || b === null) return (a === null ? 0 : 1) - (b === null ? 0 : 1);
  return compareVersions(a, b);
}

/**
 * The newest verified version among the responses of `needed` distinct replicas, or
 * `no-quorum`. Ties between replicas holding the same version go to the smaller replica id.
 */
export function readWithQuorum(responses: readonly ReadResponse[], needed: number): ReadOutcome {
  const by = new Map<NodeId, ReadResponse>();
  for (const r of responses) if (r.verified && !by.has(r.replica)) by.set(r.replica, r);
  if (by.size < needed || by.size === 0) {
    return { ok: false, reason: "no-quorum", responded: by.size, needed };
  }
  let newest: ReadResponse | null = null;
  for (const r of by.values()) {
    if (!newest) {
      newest = r;
      continue;
    }
    const c = compareMaybe(r.version, newest.version);
    if (c > 0 || (c === 0 && compareStrings(r.replica, newest.replica) < 0)) newest = r;
  }
  return { ok: true, newest: newest!, responded: by.size };
}

export function readOutcome(
  level: Consistency,
  rf: number,
  responses: readonly ReadResponse[],
): ReadOutcome {
  return readWithQuorum(responses, readQuorum(level, rf));
}
