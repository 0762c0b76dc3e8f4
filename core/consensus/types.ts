/**
 * Consensus records (DESIGN.md section 5, Consensus): client operations, blocks, votes,
 * proposals, commit certificates, and the messages voters exchange. Records are signed at
 * the envelope boundary: the core asks its host to sign a record's canonical payload
 * (`votePayload`, `proposalPayload`) and only ever sees records whose signatures the host
 * has already checked.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { NodeId } from "../ids.ts";

/** Operations on the replicated key-value store. `get` is a read ordered through the log. */
export type KvOp =
  | { kind: "put"; key: string; value: string }
  | { kind: "cas"; key: string; expect: string | null; value: string }
  | { kind: "get"; key: string };

/**
 * Operations on the network's own state. Security, trust and node lifecycle go through full
 * BFT; `service.*` and `resource.*` are checked against the authority hierarchy when applied.
 */
export type NetOp =
  | { kind: "node.join"; node: NodeId; tier: "sclerotia" | "rhizomorph" | "hypha" }
  | { kind: "node.leave"; node: NodeId }
  | { kind: "node.exclude"; node: NodeId; evidence: Evidence }
  | { kind: "config.set"; key: string; value: string }
  | { kind: "service.set"; service: string; owner: NodeId; value: string }
  | { kind: "resource.set"; resource: string; owner: NodeId; value: string }
  // Commit-reveal execution of a critical operation (see commit_reveal.ts).
  | { kind: "cr.open"; task: string; input: string; executors: NodeId[] }
  | { kind: "cr.commit"; task: string; node: NodeId; digest: string }
  | { kind: "cr.reveal"; task: string; node: NodeId; result: string; salt: string };

export type Operation = KvOp | NetOp;

/** Proof that a node signed two conflicting records. */
export type Evidence =
  | { kind: "double-vote"; a: Vote; b: Vote }
  | { kind: "double-proposal"; a: SignedProposalHeader; b: SignedProposalHeader }
  | { kind: "commit-reveal"; task: string; node: NodeId; detail: string };

/** A client's operation: `id` is unique per client (`client/seq`), so replays are no-ops. */
export interface ClientOp {
  readonly id: string;
  readonly client: string;
  readonly op: Operation;
}

export interface Block {
  readonly height: number;
  /** Hash of the block at height - 1 ("" at height 1). */
  readonly parent: string;
  readonly proposer: NodeId;
  /** The proposer's clock when it built the block (informational; never used for safety). */
  readonly time: number;
  readonly ops: readonly ClientOp[];
}

export type VoteType = "prevote" | "precommit";

export interface Vote {
  readonly t: VoteType;
  readonly h: number;
  readonly r: number;
  /** Block hash, or null for nil. */
  readonly block: string | null;
  readonly voter: NodeId;
  readonly sig: string;
}

/** What a proposer signs: the block's hash, not its body. */
export interface SignedProposalHeader {
  readonly h: number;
  readonly r: number;
  readonly block: string;
  readonly validRound: number;
  readonly proposer: NodeId;
  readonly sig: string;
}

export interface Proposal extends SignedProposalHeader {
  readonly body: Block;
}

/** 2f+1 precommits for one block at one height (and round). */
export interface Certificate {
  readonly h: number;
  readonly r: number;
  readonly block: string;
  readonly votes: readonly Vote[];
}

export interface CommittedBlock {
  readonly block: Block;
  readonly hash: string;
  readonly cert: Certificate;
}

export type ConsensusMessage =
  | ({ t: "proposal" } & Proposal)
  | Vote
  /** A client operation for the mempool (clients send to voters; voters relay once). */
  | { t: "submit"; op: ClientOp }
  /** Catch-up: "send me committed blocks from this height on". */
  | { t: "sync-req"; from: number }
  | { t: "sync-resp"; blocks: readonly CommittedBlock[] };

/** Hashes already computed, by block object (blocks are immutable once built or decoded). */
const hashes = new WeakMap<Block, string>();

/** sha256 of the block's canonical bytes: JSON with a fixed key order. */
export function blockHash(b: Block): string {
  let h = hashes.get(b);
  if (h === undefined) {
    const canon = JSON.stringify([b.height, b.parent, b.proposer, b.time, b.ops]);
    h = bytesToHex(sha256(utf8ToBytes(canon)));
    hashes.set(b, h);
  }
  return h;
}

export function votePayload(v: Omit<Vote, "sig">): string {
  return `vote|${v.t}|${v.h}|${v.r}|${v.block ?? "nil"}|${v.voter}`;
}

export function proposalPayload(p: Omit<SignedProposalHeader, "sig">): string {
  return `proposal|${p.h}|${p.r}|${p.block}|${p.validRound}|${p.proposer}`;
}

/** f for n voters: the most Byzantine voters the protocol tolerates. */
export function faultBound(n: number): number {
  return Math.floor((n - 1) / 3);
}

/**
 * Votes needed for a quorum. n >= 4: strictly more than two thirds, floor(2n/3) + 1, which is
 * 2f+1 when n = 3f+1 (DESIGN.md's "2f+1") and stays safe for other n (with n = 5, 2f+1 = 3
 * would let two quorums meet in a single, possibly Byzantine, voter). Below 4 voters the
 * documented crash-only mode: a simple majority, tolerating floor((n-1)/2) crashes and no
 * Byzantine voter.
 */
export function quorum(n: number): number {
  if (n >= 4) return Math.floor((2 * n) / 3) + 1;
  return Math.floor(n / 2) + 1;
}
