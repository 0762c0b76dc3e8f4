/**
 * What the RAM replicator reports to checkers and the simulator's recorder, one event per
 * epoch cut or applied, per tick, per role change and per migration step. `now` is the
 * reporting node's clock; a recorder that needs a global time stamps events itself.
 *
 * Digests are costly (a hash of the whole image), so they are computed only for an observer
 * whose `wantsDigests` is true; otherwise `digest` is undefined.
 */
import type { NodeId } from "../ids.ts";
import type { MemoryImage, ThrottleDecision } from "./params.ts";

interface Base {
  vmId: string;
  node: NodeId;
  now: number;
}

export type PromotionReason = "initial" | "election" | "handover";
export type FenceReason = "lease-lost" | "newer-term";
/** timeout: catch-up too slow; fenced: lost the lease; handover-lost: the target never took over. */
export type MigrationAbortReason = "timeout" | "fenced" | "removed" | "handover-lost";

export type RamEvent =
  | Base & {
    kind: "epochCut";
    term: number;
    epoch: number;
    pages: number;
    /** The primary's image at the cut (the state a backup reaches by applying the epoch). */
    digest?: string;
  }
  | Base & {
    kind: "epochApplied";
    term: number;
    epoch: number;
    resync: boolean;
    digest?: string;
  }
  | Base & {
    kind: "tick";
    term: number;
    /** Buffer level b (unclamped). */
    b: number;
    /** Intensity and pause in force after this tick (the decision, bounded by the replicator). */
    intensity: number;
    pause: boolean;
    /** What the policy decided. */
    decision: ThrottleDecision;
  }
  | Base & {
    kind: "promoted";
    term: number;
    /** The new primary's image is exactly epoch (baseTerm, epoch). */
    baseTerm: number;
    epoch: number;
    reason: PromotionReason;
    digest?: string;
  }
  | Base & { kind: "fenced"; term: number; reason: FenceReason }
  /** A primary that handed its VM over (planned migration) and became a backup. */
  | Base & { kind: "demoted"; term: number }
  /** The primary switched latency profile (params and policy replaced). */
  | Base & { kind: "profileSwitched"; term: number; from: string; to: string }
  /** The replicator stopped (node shutdown or crash seen by the runtime). */
  | Base & { kind: "stopped"; term: number }
  /** Pause disabled and b >= 1: queued payload dropped, its pages re-marked dirty. */
  | Base & { kind: "dropped"; term: number; pages: number; backups: NodeId[] }
  | Base & { kind: "migrationStarted"; term: number; target: NodeId }
  | Base & { kind: "migrationBlackout"; term: number; target: NodeId; epoch: number }
  | Base & { kind: "migrationHandover"; term: number; target: NodeId; epoch: number }
  | Base & {
    kind: "migrationCompleted";
    term: number;
    target: NodeId;
    blackoutMs: number;
    totalMs: number;
  }
  | Base & {
    kind: "migrationAborted";
    term: number;
    target: NodeId;
    reason: MigrationAbortReason;
    totalMs: number;
  };

export type RamEventKind = RamEvent["kind"];

export interface RamObserver<C = unknown> {
  /** Compute image digests for epochCut / epochApplied / promoted (costly). */
  readonly wantsDigests?: boolean;
  /** Called synchronously; `image` is this node's image of the VM (read it, never write it). */
  event(e: RamEvent, image: MemoryImage<C>): void;
}
