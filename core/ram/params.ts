/**
 * Distributed RAM (DESIGN.md section 5): the resolved parameters one VM's replication runs
 * with, and the contracts shared by the replicator, the throttle policies and the runtimes.
 * `config.ts` validates user input (zod) and resolves it, per latency profile, to these.
 */
import type { ThrottleCurve } from "../throttle.ts";

/** Pages are 4 KiB everywhere. */
export const PAGE_SIZE = 4096;

export type LatencyProfileName = "low" | "medium" | "high";

/** One latency profile's parameters (DESIGN.md: Low / Medium / High). */
export interface ProfileParams {
  /** Epoch length (`replication_interval`), ms. */
  intervalMs: number;
  /** I(b) for this profile. */
  curve: ThrottleCurve;
  /** Emergency pause at b >= 1 (until b <= resumeLevel); off: drop queued payload instead. */
  pauseEnabled: boolean;
  /** The longest an emergency pause may last before the guest is resumed anyway, ms. */
  convergenceTimeoutMs: number;
  /** Planned migration gives up after this long in catch-up, ms (5 s LAN, 30 s WAN). */
  migrationAbortMs: number;
}

/** Everything one VM's replication needs, after defaults and the profile are applied. */
export interface ReplicationParams extends ProfileParams {
  /** Backups each epoch is mirrored to (`backup_node_count`). */
  backupCount: number;
  /** `max_buffer_size`: b = unacknowledged bytes / this. */
  maxBufferBytes: number;
  /** b at or below which an emergency pause ends (0.8). */
  resumeLevel: number;
  /** Most bytes of epoch payload in flight (sent, unacknowledged) per backup. */
  windowBytes: number;
  /** Largest single epoch message; bigger epochs are split into chunks of at most this. */
  chunkBytes: number;
  /** Migration: catch-up ends at b <= this (0.05) ... */
  migrationCatchUpLevel: number;
  /** ... and when the estimated blackout fits this budget, ms (300). */
  downtimeBudgetMs: number;
  /** Majority lease that fences the primary, ms; backups wait this long before promoting. */
  leaseMs: number;
  /** Lease renewal period, ms (less than leaseMs / 2). */
  leaseRenewMs: number;
  /**
   * Bound on how much faster or slower one replica's clock may run than another's, as a
   * fraction (e.g. 0.001). The primary shortens its lease by it, so the lease never outlives
   * a backup's promise. Default 0 (clocks run at the same rate).
   */
  maxClockDrift?: number;
}

/**
 * What a throttle policy sees each tick (one `intervalMs` apart) and what it decides. The
 * Mycelium policy is I(b) from the profile's curve; the baselines (QEMU auto-converge,
 * Remus-style fixed epochs) implement the same interface so the simulator can swap them.
 */
export interface TickStats {
  /** The controller's clock, ms. */
  now: number;
  /** Buffer level b = unacknowledged bytes / maxBufferBytes (may exceed 1 before clamping). */
  bufferLevel: number;
  /** Bytes the guest dirtied since the previous tick (counting re-dirtied pages again). */
  dirtiedBytes: number;
  /** Bytes acknowledged by every backup since the previous tick. */
  transferredBytes: number;
  /** Whether a migration is in catch-up (Mycelium: run at I = M). */
  migrating: boolean;
}

export interface ThrottleDecision {
  /** Intensity in [0, 1]: the guest's dirty rate becomes r0 * (1 - intensity). */
  intensity: number;
  /** Whether the guest must be paused (emergency pause, Remus checkpoint, migration blackout). */
  pause: boolean;
}

export interface ThrottlePolicy {
  readonly name: string;
  tick(stats: TickStats): ThrottleDecision;
  /** Forget history (after failover, migration or resync). */
  reset(): void;
}

/**
 * A VM's memory as the replicator sees it. The node backs it with a real `ArrayBuffer` (page
 * contents are bytes); the simulator with one version counter per page (contents are
 * numbers), which keeps 1,000 VMs cheap while still letting checkers compare images.
 */
export interface MemoryImage<C> {
  readonly pageCount: number;
  /** A copy of page `page`'s current content, taken when an epoch is cut. */
  capture(page: number): C;
  /** Overwrites page `page` (a backup applying a complete epoch). */
  apply(page: number, content: C): void;
  /** A digest of the whole image (checkers compare primary-at-epoch with backup). */
  digest(): string;
}
