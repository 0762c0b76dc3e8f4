/**
 * SWIM wire messages. Gossip items ("broadcasts") are piggybacked on pings and acks and on
 * dedicated gossip packets; push-pull carries a full state exchange as parallel arrays
 * (cheap to build for 10,000 members). Items are immutable once created: the simulator
 * shares one object across every transmission.
 */
import type { NodeId } from "../ids.ts";

export const MemberState = { Alive: 0, Suspect: 1, Dead: 2, Left: 3 } as const;
export type MemberState = (typeof MemberState)[keyof typeof MemberState];
export const memberStateName = ["alive", "suspect", "dead", "left"] as const;

/** A node announces itself (join, refutation); `addr` is opaque to the core ("" in sim). */
export interface AliveItem {
  readonly k: "alive";
  readonly node: NodeId;
  readonly inc: number;
  readonly addr: string;
}
/** `from` suspects `node` at incarnation `inc`. */
export interface SuspectItem {
  readonly k: "suspect";
  readonly node: NodeId;
  readonly inc: number;
  readonly from: NodeId;
}
/** `from` declares `node` dead; `from === node` means a graceful leave. */
export interface DeadItem {
  readonly k: "dead";
  readonly node: NodeId;
  readonly inc: number;
  readonly from: NodeId;
}
export type GossipItem = AliveItem | SuspectItem | DeadItem;

/** Direct probe. `target` lets a misrouted ping be detected; `gossip` is piggyback. */
export interface Ping {
  readonly t: "ping";
  readonly seq: number;
  readonly target: NodeId;
  readonly gossip: readonly GossipItem[];
}
export interface Ack {
  readonly t: "ack";
  readonly seq: number;
  readonly gossip: readonly GossipItem[];
}
/** Sent by an indirect-probe relay that got no ack in time (Lifeguard). */
export interface Nack {
  readonly t: "nack";
  readonly seq: number;
}
/** Ask the receiver to probe `target` on our behalf and ack us with `seq`. */
export interface PingReq {
  readonly t: "pingreq";
  readonly seq: number;
  readonly target: NodeId;
  readonly wantNack: boolean;
}
/** Piggyback-only packet of the periodic gossip round. */
export interface Gossip {
  readonly t: "gossip";
  readonly gossip: readonly GossipItem[];
}
/** Push-pull anti-entropy: full state as parallel arrays (same length). */
export interface PushPull {
  readonly t: "pushpull";
  readonly join: boolean;
  readonly reply: boolean;
  readonly nodes: readonly NodeId[];
  readonly incs: readonly number[];
  readonly states: readonly MemberState[];
  readonly addrs: readonly string[];
}

export type SwimMessage = Ping | Ack | Nack | PingReq | Gossip | PushPull;
export type SwimMessageType = SwimMessage["t"];
