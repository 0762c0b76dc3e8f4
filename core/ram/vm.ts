/**
 * Per-VM state of the RAM replicator, and the voting rule. Split out of replicator.ts so the
 * protocol file reads as behaviour; nothing here talks to the host.
 */
import type { NodeId } from "../ids.ts";
import type { DirtyPages, EpochStager } from "./epochs.ts";
import type { MigrationAbortReason, RamObserver } from "./events.ts";
import type { PrimaryLease } from "./lease.ts";
import type { BackupLink } from "./link.ts";
import type { VoteRequest } from "./messages.ts";
import type {
  LatencyProfileName,
  MemoryImage,
  ReplicationParams,
  ThrottlePolicy,
} from "./params.ts";
import { type RttConfig, RttProfileSelector } from "./profiles.ts";

export type RamRole = "primary" | "backup" | "fenced";

export interface AddVmOptions<C> {
  vmId: string;
  role: RamRole;
  image: MemoryImage<C>;
  params: ReplicationParams;
  policy: ThrottlePolicy;
  primary: NodeId;
  backups: readonly NodeId[];
  term: number;
  /** The epoch the image holds; replicas of a fresh VM all start identical at 0. */
  epoch?: number;
  /**
   * Whether the image is known to be exactly epoch (term, epoch) (default true). A backup
   * that is not waits for a resync; a primary that is not resyncs every backup first.
   */
  synced?: boolean;
  /**
   * Latency profiles switched at run time (DESIGN.md: from EWMA-smoothed RTT with
   * hysteresis): every lease round trip feeds the selector with the slowest backup's
   * propagation round trip; on a switch the VM takes that profile's parameters and a fresh
   * policy. Without it, `params` stay as given.
   */
  profiles?: {
    rtt: RttConfig;
    current: LatencyProfileName;
    params: Record<LatencyProfileName, ReplicationParams>;
    policyFor(params: ReplicationParams): ThrottlePolicy;
  };
}

export interface RamReplicatorOptions<C> {
  observer?: RamObserver<C>;
}

export type MigrationPhase = "catch-up" | "blackout";

export interface RamVmStatus {
  vmId: string;
  role: RamRole;
  term: number;
  primary: NodeId | null;
  /** Primary: the last epoch cut; otherwise the last epoch applied. */
  epoch: number;
  /**
   * Backup: the last complete epoch applied to this image, and the term of the primary that
   * cut it. Primary: the newest epoch every live backup has applied (the commit point).
   */
  lastAppliedEpoch: number;
  appliedTerm: number;
  bufferLevel: number;
  intensity: number;
  paused: boolean;
  running: boolean;
  holdsLease: boolean;
  pauseCount: number;
  pausedMs: number;
  backups: NodeId[];
  inconsistentBackups: NodeId[];
  migration: {
    target: NodeId;
    phase: MigrationPhase;
    startedAt: number;
    estimatedBlackoutMs: number;
  } | null;
  lastMigration: MigrationOutcome | null;
}

export type MigrationOutcome =
  | { target: NodeId; outcome: "completed"; blackoutMs: number; totalMs: number }
  | { target: NodeId; outcome: "aborted"; reason: MigrationAbortReason; totalMs: number };

export interface Migration {
  target: NodeId;
  startedAt: number;
  phase: MigrationPhase;
  pausedAt: number;
  finalEpoch: number;
}

export interface Primary<C> {
  dirty: DirtyPages;
  /** The last epoch cut (epoch numbers continue across terms). */
  epoch: number;
  links: Map<NodeId, BackupLink<C>>;
  /** Cut epochs not yet acknowledged by every live backup, oldest first. */
  cuts: Array<{ epoch: number; at: number; pages: number }>;
  /** The newest state every live backup holds (the commit point). */
  commit: { term: number; epoch: number };
  lease: PrimaryLease;
  leaseExpiry: number;
  /** A new primary without a lease yet gets this long to acquire one before it fences. */
  acquireBy: number;
  dirtiedBytes: number;
  /** Smoothed round trip of lease requests, ms (0: not measured yet). */
  srtt: number;
  migration: Migration | null;
}

export interface VoterState {
  term: number;
  epoch: number;
  valid: boolean;
}

export interface Election {
  term: number;
  pre: boolean;
  sentAt: number;
  granted: Map<NodeId, VoterState>;
}

export interface Vm<C> {
  readonly id: string;
  readonly image: MemoryImage<C>;
  /** The current profile's parameters and policy (replaced on a profile switch). */
  params: ReplicationParams;
  policy: ThrottlePolicy;
  readonly labels: Record<string, string>;
  readonly stagger: number;
  perChunk: number;
  /** Run-time profile switching (AddVmOptions.profiles), with its selector. */
  profiles: (NonNullable<AddVmOptions<C>["profiles"]> & { selector: RttProfileSelector }) | null;
  role: RamRole;
  term: number;
  primary: NodeId | null;
  /** The replica group: primary and backups, this node included. */
  replicas: NodeId[];
  /** The image is exactly epoch (appliedTerm, applied) when `valid`. */
  appliedTerm: number;
  applied: number;
  valid: boolean;
  /** When the newest applied epoch was applied (and acknowledged). */
  appliedAt: number;
  votedTerm: number;
  promisedUntil: number;
  lastHeard: number;
  stager: EpochStager<C>;
  election: Election | null;
  p: Primary<C> | null;
  b: number;
  intensity: number;
  policyPaused: boolean;
  pausedSince: number;
  pauseCount: number;
  pausedMs: number;
  /** After a handover, until the target is seen running: for the blackout measurement. */
  handoff: { target: NodeId; term: number; pausedAt: number; startedAt: number } | null;
  lastMigration: MigrationOutcome | null;
}

/** Lexicographic comparison of states (term, epoch). */
export const cmpState = (t1: number, e1: number, t2: number, e2: number): number =>
  t1 !== t2 ? t1 - t2 : e1 - e2;

/**
 * Whether `vm` grants a (pre-)vote: a term newer than any it knows (for a real vote, than any
 * it voted in), not primary itself, no lease promised to anyone, a backup that has not heard
 * from its primary for a lease, and a candidate whose last complete epoch is at least as new.
 */
export function wouldVote<C>(vm: Vm<C>, m: VoteRequest, now: number): boolean {
  if (m.term <= vm.term || (!m.pre && m.term <= vm.votedTerm)) return false;
  if (vm.role === "primary") return false; // holds (or is acquiring) the lease
  if (now < vm.promisedUntil) return false; // promised a lease to someone
  if (vm.role === "backup" && now - vm.lastHeard < vm.params.leaseMs) return false;
  return cmpState(m.lastTerm, m.lastEpoch, vm.appliedTerm, vm.applied) >= 0;
}
