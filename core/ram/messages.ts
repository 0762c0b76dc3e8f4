/**
 * Distributed RAM wire messages (DESIGN.md section 5). Generic over page content C: bytes
 * (`Uint8Array`) in the node, version numbers in the simulator. Every message names its VM
 * and the sender's view of the VM's term; a replica ignores messages of terms it has left.
 *
 * A replica's state is a pair (term, epoch): the last complete epoch it applied and the term
 * of the primary that cut it. Epoch numbers continue across terms, so the pair (not the
 * number alone) identifies an image.
 */
import type { NodeId } from "../ids.ts";
import { PAGE_SIZE } from "./params.ts";

/** One chunk of an epoch (or of a full-image resync), primary to backup. */
export interface EpochChunk<C> {
  t: "ram-epoch";
  vmId: string;
  /** The sending primary's term. */
  term: number;
  /** The epoch this chunk belongs to; merged epochs carry the newest number they include. */
  epoch: number;
  /** State the epoch applies on top of; ignored for a resync (it replaces the image). */
  baseTerm: number;
  baseEpoch: number;
  /** A full image: the backup replaces its image instead of applying on top. */
  resync: boolean;
  chunk: number;
  chunks: number;
  pages: number[];
  contents: C[];
}

/**
 * Backup to primary, once per received chunk: the chunk it got (flow control) and its
 * cumulative applied state (`appliedTerm`, `epoch`), so a lost ack is repaired by the next.
 */
export interface RamAck {
  t: "ram-ack";
  vmId: string;
  /** The term of the primary being acknowledged. */
  term: number;
  appliedTerm: number;
  epoch: number;
  /** The chunk received (chunk -1: none, a pure state report). */
  chunkEpoch: number;
  chunkResync: boolean;
  chunk: number;
}

/** Primary to backups every `leaseRenewMs`; also tells them the current replica group. */
export interface LeaseRequest {
  t: "ram-lease-req";
  vmId: string;
  term: number;
  seq: number;
  backups: NodeId[];
}

/** The backup promises not to vote for anyone else for `leaseMs` from when it received the request. */
export interface LeaseGrant {
  t: "ram-lease-grant";
  vmId: string;
  term: number;
  seq: number;
  appliedTerm: number;
  epoch: number;
  /** False when the backup's image is not a complete epoch (it needs a resync). */
  valid: boolean;
}

/** A candidate asks for a (pre-)vote for `term`; `pre` asks "would you?" without commitment. */
export interface VoteRequest {
  t: "ram-vote-req";
  vmId: string;
  term: number;
  pre: boolean;
  lastTerm: number;
  lastEpoch: number;
}

export interface VoteResponse {
  t: "ram-vote";
  vmId: string;
  term: number;
  pre: boolean;
  granted: boolean;
  /** The newest term the voter knows of: a refused candidate stands for a later one next. */
  voterTerm: number;
  lastTerm: number;
  lastEpoch: number;
  valid: boolean;
}

/** Planned migration: the old primary hands term `term` to the target, which holds epoch (lastTerm, epoch). */
export interface Handover {
  t: "ram-handover";
  vmId: string;
  term: number;
  lastTerm: number;
  epoch: number;
  /** The new primary's backups (the old primary included). */
  backups: NodeId[];
  /** Backups known to hold exactly (lastTerm, epoch): they need no resync. */
  synced: NodeId[];
}

export type RamMessage<C = unknown> =
  | EpochChunk<C>
  | RamAck
  | LeaseRequest
  | LeaseGrant
  | VoteRequest
  | VoteResponse
  | Handover;

/** Fixed per-message overhead the network model charges (framing, ids, numbers). */
export const RAM_HEADER_BYTES = 64;
/** Bytes charged per page index and per node id carried in a message. */
export const PAGE_INDEX_BYTES = 4;
export const NODE_ID_WIRE_BYTES = 16;

/** The size a message takes on the wire: pages * PAGE_SIZE plus a small header. */
export function ramMessageBytes(msg: RamMessage<unknown>): number {
  switch (msg.t) {
    case "ram-epoch":
      return RAM_HEADER_BYTES + msg.pages.length * (PAGE_SIZE + PAGE_INDEX_BYTES);
    case "ram-lease-req":
      return RAM_HEADER_BYTES + msg.backups.length * NODE_ID_WIRE_BYTES;
    case "ram-handover":
      return RAM_HEADER_BYTES + (msg.backups.length + msg.synced.length) * NODE_ID_WIRE_BYTES;
    default:
      return RAM_HEADER_BYTES;
  }
}
