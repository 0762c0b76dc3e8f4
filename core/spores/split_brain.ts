/**
 * Partitions and split brain (DESIGN.md section 5): the pure rules.
 *
 * - CP plane: a side may commit only with a quorum of the certified voter set; a minority
 *   side is read-only (`cpPlaneMode`).
 * - Singleton services that ran on both sides of a partition are resolved on heal by the
 *   lexicographically greatest (processing volume, last write, node id): the instance that
 *   did the most work keeps running (`compareSingletonClaims`, a total order).
 * - A manual override during a partition starts a fork epoch; on heal, diverged epoch chains
 *   are flagged (`healEpochs`), and the side without an override (the quorum line) is kept.
 * - Trust's absence penalty is not applied for rounds a node spent in a minority partition
 *   known from the certified membership (`excuseAbsences`).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { quorum } from "../consensus/types.ts";
import type { NodeId } from "../ids.ts";
import { compareHlc, type Hlc } from "./hlc.ts";
import { compareStrings } from "./types.ts";

// ---- CP plane ----

/** Members of `side` that are voters, counted against the quorum of all certified voters. */
export function sideHasQuorum(side: Iterable<NodeId>, voters: readonly NodeId[]): boolean {
  if (voters.length === 0) return false;
  const all = new Set(voters);
  let n = 0;
  for (const v of new Set(side)) if (all.has(v)) n++;
  return n >= quorum(voters.length);
}

/** What the CP plane may do on one side: commit with a quorum, otherwise serve reads only. */
export function cpPlaneMode(
  side: Iterable<NodeId>,
  voters: readonly NodeId[],
): "read-write" | "read-only" {
  return sideHasQuorum(side, voters) ? "read-write" : "read-only";
}

// ---- singleton services ----

export interface SingletonClaim {
  readonly service: string;
  readonly node: NodeId;
  /** Operations the instance processed (non-negative, finite). */
  readonly processingVolume: number;
  /** Hybrid logical timestamp of the instance's last write. */
  readonly lastWrite: Hlc;
}

/**
 * Total order of claims: (processing volume, last write, node id), then service so that
 * distinct claims never compare equal. Positive: `a` ranks above `b` (wins).
 */
export function compareSingletonClaims(a: SingletonClaim, b: SingletonClaim): number {
  if (a.processingVolume !== b.processingVolume) {
    return a.processingVolume > b.processingVolume ? 1 : -1;
  }
  return compareHlc(a.lastWrite, b.lastWrite) || compareStrings(a.node, b.node) ||
    compareStrings(a.service, b.service);
}

export interface SingletonResolution {
  readonly service: string;
  readonly winner: SingletonClaim;
  /** Instances to stop, best first. */
  readonly losers: readonly SingletonClaim[];
}

/** One winner per service, services in name order. Claims must have finite volumes. */
export function resolveSingletons(claims: readonly SingletonClaim[]): SingletonResolution[] {
  const by = new Map<string, SingletonClaim[]>();
  for (const c of claims) {
    if (!Number.isFinite(c.processingVolume) || c.processingVolume < 0) {
      throw new RangeError(`processing volume of ${c.node} must be finite and >= 0`);
    }
    const list = by.get(c.service);
    if (list) list.push(c);
    else by.set(c.service, [c]);
  }
  return [...by.keys()].sort(compareStrings).map((service) => {
    const ranked = by.get(service)!.sort((a, b) => compareSingletonClaims(b, a));
    const losers: SingletonClaim[] = [];
    for (const c of ranked.slice(1)) {
      if (compareSingletonClaims(c, ranked[0]) !== 0) losers.push(c); // the same claim twice
    }
    return { service, winner: ranked[0], losers };
  });
}

// ---- fork epochs ----

export interface ManualOverride {
  /** Who forced it (operator or node). */
  readonly by: string;
  readonly reason: string;
  /** When (ms, the overriding node's clock). */
  readonly at: number;
}

/** A configuration epoch; epochs chain by parent id from genesis. */
export interface Epoch {
  readonly number: number;
  readonly id: string;
  readonly parent: string | null;
  /** Set when the epoch was forced by a manual override (a fork epoch). */
  readonly override: ManualOverride | null;
}

function epochId(parent: string | null, number: number, o: ManualOverride | null): string {
  const canon = JSON.stringify([parent, number, o ? [o.by, o.reason, o.at] : null]);
  return bytesToHex(sha256(utf8ToBytes(canon)));
}

export function genesisEpoch(network: string): Epoch {
  return { number: 0, id: epochId(`genesis:${network}`, 0, null), parent: null, override: null };
}

/** The epoch after `parent`: an ordinary one, or a fork epoch when `override` is given. */
export function nextEpoch(parent: Epoch, override: ManualOverride | null = null): Epoch {
  const number = parent.number + 1;
  return { number, id: epochId(parent.id, number, override), parent: parent.id, override };
}

/** Two epoch chains (genesis first) that diverged after `ancestor`. */
export interface ForkFlag {
  /** Id of the last common epoch (null: not even genesis is shared). */
  readonly ancestor: string | null;
  /** Epochs after the ancestor on each side. */
  readonly a: readonly Epoch[];
  readonly b: readonly Epoch[];
  /** Fork epochs among them; none means a divergence no override explains (a safety bug). */
  readonly overrides: readonly Epoch[];
  readonly kept: "a" | "b";
}

export interface HealResult {
  /** The chain both sides continue from. */
  readonly chain: readonly Epoch[];
  /** Set when the chains diverged: to be reconciled by an operator. */
  readonly fork: ForkFlag | null;
}

function rankSide(suffix: readonly Epoch[], head: Epoch | undefined): [number, number, string] {
  return [
    suffix.some((e) => e.override) ? 0 : 1, // the line without overrides is the quorum's
    suffix.length,
    head?.id ?? "",
  ];
}

/**
 * Heals two sides' epoch chains. If one is a prefix of the other the longer is kept, no
 * flag. Otherwise the fork is flagged with every epoch since the common ancestor, and the
 * side kept is the one without a manual override, then the longer, then the greater head
 * id: symmetric, so both sides pick the same chain.
 */
export function healEpochs(a: readonly Epoch[], b: readonly Epoch[]): HealResult {
  let i = 0;
  while (i < a.length && i < b.length && a[i].id === b[i].id) i++;
  if (i === a.length) return { chain: b, fork: null };
  if (i === b.length) return { chain: a, fork: null };
  const sa = a.slice(i);
  const sb = b.slice(i);
  const ra = rankSide(sa, a.at(-1));
  const rb = rankSide(sb, b.at(-1));
  const cmp = ra[0] - rb[0] || ra[1] - rb[1] || compareStrings(ra[2], rb[2]);
  const kept = cmp >= 0 ? "a" : "b";
  return {
    chain: kept === "a" ? a : b,
    fork: {
      ancestor: i > 0 ? a[i - 1].id : null,
      a: sa,
      b: sb,
      overrides: [...sa, ...sb].filter((e) => e.override),
      kept,
    },
  };
}

// ---- absence penalties ----

/** A partition as the certified membership recorded it: groups during [fromRound, toRound). */
export interface PartitionRecord {
  readonly fromRound: number;
  readonly toRound: number;
  readonly groups: readonly (readonly NodeId[])[];
}

/** A node missing from a decided operation of `round` (a trust "absent" outcome). */
export interface Absence {
  readonly round: number;
  readonly node: NodeId;
}

/**
 * Whether `node` was on a minority side in `round`: some partition record covers the round
 * and the node's group (or the node alone, if it is in no group) holds fewer than a quorum of
 * the certified members of that round.
 */
export function inMinority(
  node: NodeId,
  round: number,
  partitions: readonly PartitionRecord[],
  membersAt: (round: number) => readonly NodeId[],
): boolean {
  for (const p of partitions) {
    if (round < p.fromRound || round >= p.toRound) continue;
    const group = p.groups.find((g) => g.includes(node)) ?? [node];
    if (!sideHasQuorum(group, membersAt(round))) return true;
  }
  return false;
}

/** Splits absences into those penalised and those excused by a minority partition. */
export function excuseAbsences(
  absences: readonly Absence[],
  partitions: readonly PartitionRecord[],
  membersAt: (round: number) => readonly NodeId[],
): { penalized: Absence[]; excused: Absence[] } {
  const penalized: Absence[] = [];
  const excused: Absence[] = [];
  for (const a of absences) {
    (inMinority(a.node, a.round, partitions, membersAt) ? excused : penalized).push(a);
  }
  return { penalized, excused };
}
