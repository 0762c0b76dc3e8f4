/**
 * Distributed RAM replication (DESIGN.md section 5) for the VMs one node hosts, as primary or
 * backup. Sans-IO: driven by a `Host`; the runtime (simulator or node) runs the guests, calls
 * `markDirty` on guest writes and obeys `intensity` / `paused` / `running`.
 *
 * Primary: every `intervalMs` a tick cuts an epoch (the dirty pages' contents), queues it for
 * each backup (queued epochs merge by page), sends chunks within a per-backup window, then
 * feeds the buffer level b to the throttle policy and applies its decision. Backups stage
 * chunks and apply complete epochs in order, so a backup's image is always a cut epoch.
 *
 * Failover: the primary renews a majority lease and fences itself when it lapses (pausing
 * the guest and cutting a last epoch, so its image is an epoch again). A backup, or a fenced
 * primary, that hears nothing for a lease (plus a stagger) runs a pre-vote then a vote for
 * the next term; replicas vote only for a state (term, epoch) at least as new as their own,
 * and a majority makes the candidate primary of that term from its last complete epoch.
 * Votes are lease grants too, so a new primary holds the lease from the start; nobody votes
 * while it promised a lease, so an old and a new primary never both hold one.
 *
 * Planned migration: catch up (the policy runs at I = M) until the target is close enough,
 * pause, send the final epoch, and hand the next term over to the target.
 */
import { RttProfileSelector } from "./profiles.ts";
import type { Host, Protocol } from "../host.ts";
import type { NodeId } from "../ids.ts";
import { DirtyPages, type Epoch, EpochStager, pagesPerChunk } from "./epochs.ts";
import type {
  FenceReason,
  MigrationAbortReason,
  PromotionReason,
  RamEvent,
  RamObserver,
} from "./events.ts";
import { fnv1aString } from "./hash.ts";
import { majority, PrimaryLease } from "./lease.ts";
import { BackupLink, type LinkLimits } from "./link.ts";
import type {
  EpochChunk,
  Handover,
  LeaseGrant,
  LeaseRequest,
  RamAck,
  RamMessage,
  VoteRequest,
  VoteResponse,
} from "./messages.ts";
import { PAGE_SIZE, type ThrottleDecision } from "./params.ts";
import {
  type AddVmOptions,
  type Migration,
  type Primary,
  type RamReplicatorOptions,
  type RamVmStatus,
  type Vm,
  type VoterState,
  wouldVote,
} from "./vm.ts";

export type {
  AddVmOptions,
  MigrationOutcome,
  MigrationPhase,
  RamReplicatorOptions,
  RamRole,
  RamVmStatus,
} from "./vm.ts";

/** An event as the replicator builds it; `emit` adds vmId, node and now. */
type EventBody = RamEvent extends infer E ? E extends RamEvent ? Omit<E, "vmId" | "node" | "now">
  : never
  : never;

const K_TICK = "tick";
const K_RENEW = "renew";
const K_LEASE = "lease";
const K_ELECT = "elect";
const timerKey = (kind: string, vmId: string) => `ram/${kind}/${vmId}`;

export class RamReplicator<C> implements Protocol<RamMessage<C>> {
  private host: Host<RamMessage<C>> | null = null;
  private stopped = false;
  private readonly vms = new Map<string, Vm<C>>();
  private readonly early: AddVmOptions<C>[] = [];
  private readonly observer: RamObserver<C> | undefined;

  constructor(opts: RamReplicatorOptions<C> = {}) {
    this.observer = opts.observer;
  }

  // ---- lifecycle ----

  start(host: Host<RamMessage<C>>): void {
    this.host = host;
    for (const o of this.early.splice(0)) this.addVm(o);
  }

  stop(): void {
    if (this.stopped) return;
    const h = this.host;
    if (h) {
      for (const vm of this.vms.values()) {
        this.endPolicyPause(vm, h.now());
        for (const k of [K_TICK, K_RENEW, K_LEASE, K_ELECT]) h.cancelTimer(timerKey(k, vm.id));
        this.emit(vm, { kind: "stopped", term: vm.term });
      }
    }
    this.stopped = true;
  }

  /** Starts replicating a VM on this node. Before `start`, the VM is added at start. */
  addVm(o: AddVmOptions<C>): void {
    if (this.vms.has(o.vmId)) throw new Error(`VM ${o.vmId} is already replicated here`);
    const h = this.host;
    if (!h) {
      this.early.push(o);
      return;
    }
    if (o.role === "primary" && o.primary !== h.self) {
      throw new Error(`VM ${o.vmId}: primary role here but the primary is ${o.primary}`);
    }
    const now = h.now();
    const epoch = o.epoch ?? 0;
    const synced = o.synced ?? true;
    const replicas = [o.primary, ...o.backups.filter((b) => b !== o.primary)];
    if (!replicas.includes(h.self)) replicas.push(h.self);
    const vm: Vm<C> = {
      id: o.vmId,
      image: o.image,
      params: o.params,
      policy: o.policy,
      labels: { vm: o.vmId },
      // Deterministic per (node, VM): backups of one VM do not all run for election at once.
      stagger: ((fnv1aString(`${h.self}/${o.vmId}`) % 1024) / 1024) * (o.params.leaseMs / 2),
      perChunk: pagesPerChunk(o.params.chunkBytes),
      profiles: o.profiles
        ? { ...o.profiles, selector: new RttProfileSelector(o.profiles.rtt, o.profiles.current) }
        : null,
      role: o.role === "primary" ? "backup" : o.role,
      term: o.term,
      primary: o.role === "fenced" ? null : o.primary,
      replicas,
      appliedTerm: o.term,
      applied: epoch,
      valid: o.role === "primary" || (o.role === "backup" && synced),
      appliedAt: now,
      votedTerm: o.term,
      promisedUntil: -Infinity,
      lastHeard: now,
      stager: new EpochStager<C>(),
      election: null,
      p: null,
      b: 0,
      intensity: 0,
      policyPaused: false,
      pausedSince: 0,
      pauseCount: 0,
      pausedMs: 0,
      handoff: null,
      lastMigration: null,
    };
    this.vms.set(o.vmId, vm);
    if (o.role === "primary") {
      const known = new Map<NodeId, VoterState>();
      if (synced) { for (const b of o.backups) known.set(b, { term: o.term, epoch, valid: true }); }
      this.becomePrimary(vm, o.term, "initial", known, new Map());
    } else if (o.role === "backup") {
      this.armElection(vm, o.params.leaseMs + vm.stagger);
    }
  }

  /** Stops replicating a VM here (its timers are cancelled, its state forgotten). */
  removeVm(vmId: string): void {
    const vm = this.vms.get(vmId);
    if (!vm) return;
    if (vm.p?.migration) this.abortMigration(vm, "removed");
    for (const k of [K_TICK, K_RENEW, K_LEASE, K_ELECT]) this.h.cancelTimer(timerKey(k, vmId));
    this.vms.delete(vmId);
  }

  // ---- runtime API ----

  vmIds(): string[] {
    return [...this.vms.keys()];
  }

  /** Guest writes on the primary (re-dirtied pages merge). Ignored where the VM is not primary. */
  markDirty(vmId: string, pages: readonly number[]): void {
    const p = this.vms.get(vmId)?.p;
    if (!p) return;
    for (const pg of pages) p.dirty.mark(pg);
    p.dirtiedBytes += pages.length * PAGE_SIZE;
  }

  /** Throttle intensity in [0, 1] for the guest (dirty rate r0 * (1 - intensity)). */
  intensity(vmId: string): number {
    return this.vms.get(vmId)?.intensity ?? 0;
  }

  /** Whether the guest may execute here now: primary, holding the lease and not paused. */
  running(vmId: string): boolean {
    const vm = this.vms.get(vmId);
    const p = vm?.p;
    if (!vm || !p || this.stopped) return false;
    return this.h.now() < p.leaseExpiry && !vm.policyPaused && p.migration?.phase !== "blackout";
  }

  /** Whether the guest must not execute here now (the complement of `running`). */
  paused(vmId: string): boolean {
    return !this.running(vmId);
  }

  /**
   * False while a backup lags by dropped payload (pause disabled, b >= 1) or is being
   * resynced: it holds an older complete epoch and skips the dropped ones, so its lag is no
   * longer bounded by the buffer. True again once every re-marked page is acknowledged.
   */
  backupConsistent(vmId: string, backup: NodeId): boolean {
    const l = this.vms.get(vmId)?.p?.links.get(backup);
    return l ? l.consistent && l.verified && !l.needsResync : false;
  }

  status(vmId: string): RamVmStatus {
    const vm = this.vms.get(vmId);
    if (!vm) throw new Error(`VM ${vmId} is not replicated here`);
    const now = this.h.now();
    const p = vm.p;
    const links = p ? [...p.links.values()] : [];
    const m = p?.migration ?? null;
    const target = m ? p!.links.get(m.target) : undefined;
    return {
      vmId,
      role: vm.role,
      term: vm.term,
      primary: vm.primary,
      epoch: p ? p.epoch : vm.applied,
      lastAppliedEpoch: p ? p.commit.epoch : vm.applied,
      appliedTerm: p ? p.commit.term : vm.appliedTerm,
      bufferLevel: vm.b,
      intensity: vm.intensity,
      paused: this.paused(vmId),
      running: this.running(vmId),
      holdsLease: p ? now < p.leaseExpiry : false,
      pauseCount: vm.pauseCount,
      pausedMs: vm.pausedMs + (vm.policyPaused ? now - vm.pausedSince : 0),
      backups: links.map((l) => l.node),
      inconsistentBackups: links.filter((l) => !l.consistent || l.needsResync).map((l) => l.node),
      migration: m
        ? {
          target: m.target,
          phase: m.phase,
          startedAt: m.startedAt,
          estimatedBlackoutMs: target ? this.estimateBlackout(vm, target) : Infinity,
        }
        : null,
      lastMigration: vm.lastMigration,
    };
  }

  /**
   * Adds a backup to a VM this node is primary of; it is seeded with a full resync. (Only
   * additions: one member at a time keeps old and new majorities overlapping.)
   */
  addBackup(vmId: string, node: NodeId): void {
    const vm = this.vms.get(vmId);
    const p = vm?.p;
    if (!vm || !p) throw new Error(`VM ${vmId}: not primary here`);
    if (node === this.h.self || p.links.has(node)) return;
    p.links.set(node, new BackupLink<C>(node, this.h.now(), null));
    vm.replicas.push(node);
    p.leaseExpiry = p.lease.expiry([...p.links.keys()]);
    this.h.setTimer(timerKey(K_LEASE, vm.id), 0);
  }

  /**
   * Sends again every chunk in flight to `backup` that it has not acknowledged: the transport
   * knows they were lost (a relay path failed), so waiting for the retransmission timeout
   * would only stall the backup. No-op unless this node is the VM's primary.
   */
  resendUnacked(vmId: string, backup: NodeId): number {
    const vm = this.vms.get(vmId);
    const l = vm?.p?.links.get(backup);
    if (!vm || !l || this.stopped || !this.host) return 0;
    const now = this.h.now();
    const n = l.retransmit(vm.id, now, now, vm.perChunk, (c) => this.h.send(l.node, c));
    if (n > 0) this.h.metrics.inc("mycelium_ram_retransmits_total", n, vm.labels);
    return n;
  }

  /**
   * Starts a planned migration of `vmId` to `target` (a backup; any other node is added as
   * a backup first and seeded by resync). Progress is reported through the observer,
   * metrics and `status`.
   */
  migrate(vmId: string, target: NodeId): void {
    const vm = this.vms.get(vmId);
    const p = vm?.p;
    if (!vm || !p) throw new Error(`VM ${vmId}: not primary here`);
    if (p.migration) throw new Error(`VM ${vmId}: already migrating to ${p.migration.target}`);
    if (target === this.h.self) throw new Error(`VM ${vmId}: cannot migrate to itself`);
    if (!p.links.has(target)) this.addBackup(vmId, target);
    const now = this.h.now();
    p.migration = { target, startedAt: now, phase: "catch-up", pausedAt: 0, finalEpoch: -1 };
    this.h.metrics.inc("mycelium_ram_migrations_started_total", 1, vm.labels);
    this.emit(vm, { kind: "migrationStarted", term: vm.term, target });
  }

  // ---- dispatch ----

  onMessage(from: NodeId, msg: RamMessage<C>): void {
    if (this.stopped || !this.host) return;
    const vm = this.vms.get(msg.vmId);
    if (!vm) {
      this.h.metrics.inc("mycelium_ram_unknown_vm_messages_total");
      return;
    }
    switch (msg.t) {
      case "ram-epoch":
        return this.onEpoch(vm, from, msg);
      case "ram-ack":
        return this.onAck(vm, from, msg);
      case "ram-lease-req":
        return this.onLeaseRequest(vm, from, msg);
      case "ram-lease-grant":
        return this.onLeaseGrant(vm, from, msg);
      case "ram-vote-req":
        return this.onVoteRequest(vm, from, msg);
      case "ram-vote":
        return this.onVote(vm, from, msg);
      case "ram-handover":
        return this.onHandover(vm, from, msg);
    }
  }

  onTimer(key: string): void {
    if (this.stopped || !this.host) return;
    const i = key.indexOf("/", 4);
    if (!key.startsWith("ram/") || i < 0) return;
    const vm = this.vms.get(key.slice(i + 1));
    if (!vm) return;
    switch (key.slice(4, i)) {
      case K_TICK:
        return this.onTick(vm);
      case K_RENEW:
        return this.onRenew(vm);
      case K_LEASE:
        return this.checkLease(vm);
      case K_ELECT:
        return this.onElectionTimer(vm);
    }
  }

  private get h(): Host<RamMessage<C>> {
    if (!this.host) throw new Error("RamReplicator used before start()");
    return this.host;
  }

  private emit(vm: Vm<C>, e: EventBody): void {
    const o = this.observer;
    if (!o) return;
    o.event({ ...e, vmId: vm.id, node: this.h.self, now: this.h.now() } as RamEvent, vm.image);
  }

  private digest(vm: Vm<C>): string | undefined {
    return this.observer?.wantsDigests ? vm.image.digest() : undefined;
  }

  // ---- primary: ticks, epochs, sending ----

  private becomePrimary(
    vm: Vm<C>,
    term: number,
    reason: PromotionReason,
    known: ReadonlyMap<NodeId, VoterState>,
    grants: ReadonlyMap<NodeId, number>,
  ): void {
    const h = this.h;
    const now = h.now();
    const prm = vm.params;
    vm.role = "primary";
    vm.term = term;
    vm.primary = h.self;
    vm.votedTerm = Math.max(vm.votedTerm, term);
    vm.election = null;
    vm.stager.clear();
    if (vm.handoff) this.handoverLost(vm);
    h.cancelTimer(timerKey(K_ELECT, vm.id));
    const p: Primary<C> = {
      dirty: new DirtyPages(vm.image.pageCount),
      epoch: vm.applied,
      links: new Map(),
      cuts: [],
      commit: { term: vm.appliedTerm, epoch: vm.applied },
      lease: new PrimaryLease(prm.leaseMs, prm.maxClockDrift ?? 0),
      leaseExpiry: -Infinity,
      acquireBy: now + prm.leaseMs,
      dirtiedBytes: 0,
      srtt: 0,
      migration: null,
    };
    const start = { term: vm.appliedTerm, epoch: vm.applied };
    for (const n of vm.replicas) {
      if (n === h.self) continue;
      const k = known.get(n);
      const synced = k !== undefined && k.valid && k.term === start.term && k.epoch === start.epoch;
      // Known to hold our state: go. Unknown: presume it does until its first lease grant says
      // (after a handover the other backups usually do). Initial primary, not synced: resync.
      const link = synced
        ? new BackupLink<C>(n, now, start)
        : reason === "initial"
        ? new BackupLink<C>(n, now, null)
        : new BackupLink<C>(n, now, start, false);
      p.links.set(n, link);
    }
    for (const [n, since] of grants) if (p.links.has(n)) p.lease.grant(n, since);
    p.leaseExpiry = p.lease.expiry([...p.links.keys()]);
    vm.p = p;
    vm.policy.reset();
    vm.intensity = 0;
    vm.b = 0;
    h.metrics.inc("mycelium_ram_promotions_total", 1, { ...vm.labels, reason });
    this.emit(vm, {
      kind: "promoted",
      term,
      baseTerm: vm.appliedTerm,
      epoch: vm.applied,
      reason,
      digest: this.digest(vm),
    });
    // Lease requests first: they tell the backups who leads, and must not queue behind a resync.
    this.onRenew(vm);
    this.startResyncs(vm);
    for (const l of p.links.values()) this.pump(vm, l);
    h.setTimer(timerKey(K_TICK, vm.id), prm.intervalMs);
    this.checkLease(vm);
  }

  private onTick(vm: Vm<C>): void {
    const p = vm.p;
    if (!p) return;
    const h = this.h;
    const now = h.now();
    const prm = vm.params;
    if (this.leaseLapsed(p, now)) return this.fence(vm, "lease-lost");
    const m = p.migration;
    if (m?.phase === "catch-up" && this.migrationReady(vm, m)) {
      m.phase = "blackout";
      m.pausedAt = now;
      this.cut(vm);
      m.finalEpoch = p.epoch;
      this.emit(vm, { kind: "migrationBlackout", term: vm.term, target: m.target, epoch: p.epoch });
    } else {
      this.cut(vm);
      // Writes during the blackout (a runtime that ignored `paused`) move the final epoch.
      if (m?.phase === "blackout") m.finalEpoch = p.epoch;
    }
    this.startResyncs(vm);
    this.advanceCommit(vm, now); // a backup that stopped answering no longer holds commits back
    for (const l of p.links.values()) {
      this.pump(vm, l);
      // A chunk unacknowledged for several round trips (plus the time a full window takes
      // to drain on this link) is taken as lost and sent again; duplicates are harmless.
      const drain = l.rate > 0 ? prm.windowBytes / l.rate : 0;
      const rto = Math.max(2 * prm.leaseRenewMs, 4 * p.srtt, prm.intervalMs) + drain;
      const n = l.retransmit(vm.id, now - rto, now, vm.perChunk, (c) => h.send(l.node, c));
      if (n > 0) h.metrics.inc("mycelium_ram_retransmits_total", n, vm.labels);
    }

    // Throttle: stats -> policy -> apply (also when the intensity falls back to 0).
    const b = this.bufferLevel(vm, now);
    let transferred = Infinity;
    for (const l of p.links.values()) {
      if (this.live(vm, l, now)) transferred = Math.min(transferred, l.appliedBytesSinceTick);
      l.appliedBytesSinceTick = 0;
    }
    const decision = vm.policy.tick({
      now,
      bufferLevel: b,
      dirtiedBytes: p.dirtiedBytes,
      transferredBytes: transferred === Infinity ? 0 : transferred,
      migrating: m?.phase === "catch-up",
    });
    p.dirtiedBytes = 0;
    vm.b = b;
    this.applyDecision(vm, decision, now);
    if (!prm.pauseEnabled && b >= 1) this.dropQueued(vm, now);
    h.metrics.set("mycelium_ram_buffer_level", b, vm.labels);
    h.metrics.set("mycelium_ram_intensity", vm.intensity, vm.labels);
    h.metrics.set(
      "mycelium_ram_replication_lag_ms",
      p.cuts.length ? now - p.cuts[0].at : 0,
      vm.labels,
    );
    this.emit(vm, {
      kind: "tick",
      term: vm.term,
      b,
      intensity: vm.intensity,
      pause: vm.policyPaused,
      decision,
    });

    if (m && p.migration === m) {
      if (now - m.startedAt >= prm.migrationAbortMs) this.abortMigration(vm, "timeout");
      else if (m.phase === "blackout") this.maybeHandover(vm);
    }
    if (vm.p === p) h.setTimer(timerKey(K_TICK, vm.id), prm.intervalMs);
  }

  /** Captures the dirty pages as the next epoch and queues it for every backup. */
  private cut(vm: Vm<C>): void {
    const p = vm.p!;
    if (p.dirty.count === 0) return;
    const now = this.h.now();
    const pages = p.dirty.take();
    const contents = pages.map((pg) => vm.image.capture(pg));
    const e: Epoch<C> = { term: vm.term, epoch: ++p.epoch, pages, contents, resync: false };
    p.cuts.push({ epoch: e.epoch, at: now, pages: pages.length });
    for (const l of p.links.values()) l.enqueue(e);
    this.h.metrics.inc("mycelium_ram_epochs_total", 1, vm.labels);
    this.emit(vm, {
      kind: "epochCut",
      term: vm.term,
      epoch: e.epoch,
      pages: pages.length,
      digest: this.digest(vm),
    });
    if (p.links.size === 0) this.advanceCommit(vm, now);
  }

  /** Seeds backups whose state is unknown with a full image (right after a cut, so it is one). */
  private startResyncs(vm: Vm<C>): void {
    const p = vm.p!;
    if (p.dirty.count > 0) return;
    let full: Epoch<C> | null = null;
    for (const l of p.links.values()) {
      if (!l.needsResync) continue;
      if (!full) {
        const n = vm.image.pageCount;
        const pages = Array.from({ length: n }, (_, i) => i);
        full = {
          term: vm.term,
          epoch: p.epoch,
          pages,
          contents: pages.map((pg) => vm.image.capture(pg)),
          resync: true,
        };
      }
      l.startResync(full, vm.perChunk);
      this.h.metrics.inc("mycelium_ram_resyncs_total", 1, vm.labels);
    }
  }

  private limits(vm: Vm<C>): LinkLimits {
    const { windowBytes, leaseMs, leaseRenewMs } = vm.params;
    return { windowBytes, perChunk: vm.perChunk, leaseMs, leaseRenewMs };
  }

  private pump(vm: Vm<C>, l: BackupLink<C>): void {
    const h = this.h;
    l.pump(vm.id, this.limits(vm), h.now(), (c) => h.send(l.node, c));
  }

  private live(vm: Vm<C>, l: BackupLink<C>, now: number): boolean {
    return now - l.lastHeard < vm.params.leaseMs;
  }

  /**
   * b = unacknowledged captured bytes / maxBufferBytes, for the live backup furthest behind
   * (each backup's queue merges on its own). Resync payload is left out: it is bounded by the
   * image, not by the dirty rate, so throttling the guest cannot shrink it.
   */
  private bufferLevel(vm: Vm<C>, now: number): number {
    let worst = 0;
    for (const l of vm.p!.links.values()) {
      if (this.live(vm, l, now)) worst = Math.max(worst, l.outstandingBytes);
    }
    return worst / vm.params.maxBufferBytes;
  }

  private applyDecision(vm: Vm<C>, d: ThrottleDecision, now: number): void {
    const i = d.intensity;
    vm.intensity = Number.isNaN(i) ? 1 : i < 0 ? 0 : i > 1 ? 1 : i;
    let pause = d.pause;
    // Backstop: no single emergency pause outlasts the profile's convergence timeout.
    if (pause && vm.policyPaused && now - vm.pausedSince >= vm.params.convergenceTimeoutMs) {
      pause = false;
      vm.policy.reset();
      this.h.metrics.inc("mycelium_ram_pause_timeouts_total", 1, vm.labels);
    }
    if (pause && !vm.policyPaused) {
      vm.policyPaused = true;
      vm.pausedSince = now;
      vm.pauseCount++;
      this.h.metrics.inc("mycelium_ram_pauses_total", 1, vm.labels);
    } else if (!pause) this.endPolicyPause(vm, now);
  }

  private endPolicyPause(vm: Vm<C>, now: number): void {
    if (!vm.policyPaused) return;
    vm.policyPaused = false;
    vm.pausedMs += now - vm.pausedSince;
    this.h.metrics.inc("mycelium_ram_paused_ms_total", now - vm.pausedSince, vm.labels);
  }

  /**
   * Pause disabled and b >= 1: drop the queued (unsent) payload and re-mark its pages dirty,
   * so the next cut captures them again; the backups concerned stay inconsistent until that
   * epoch is acknowledged.
   */
  private dropQueued(vm: Vm<C>, now: number): void {
    const p = vm.p!;
    const hit: NodeId[] = [];
    let pages = 0;
    for (const l of p.links.values()) {
      if (!this.live(vm, l, now) || !l.pending) continue;
      for (const pg of l.dropPending()) if (p.dirty.mark(pg)) pages++;
      l.consistent = false;
      l.clearAt = p.epoch + 1;
      hit.push(l.node);
    }
    if (hit.length === 0) return;
    this.h.metrics.inc("mycelium_ram_drops_total", 1, vm.labels);
    this.h.metrics.inc("mycelium_ram_dropped_pages_total", pages, vm.labels);
    this.emit(vm, { kind: "dropped", term: vm.term, pages, backups: hit });
  }

  private onAck(vm: Vm<C>, from: NodeId, m: RamAck): void {
    const p = vm.p;
    if (!p || m.term !== vm.term) return;
    const l = p.links.get(from);
    if (!l) return;
    const now = this.h.now();
    l.lastHeard = now;
    if (m.chunk >= 0) l.onChunkAck(m.chunkEpoch, m.chunkResync, m.chunk, now, vm.perChunk);
    if (m.appliedTerm === vm.term) {
      const bytes = l.onApplied(m.epoch);
      if (bytes > 0) this.h.metrics.inc("mycelium_ram_bytes_replicated_total", bytes, vm.labels);
      this.advanceCommit(vm, now);
    }
    this.pump(vm, l);
    if (p.migration?.phase === "blackout" && from === p.migration.target) this.maybeHandover(vm);
  }

  /** Pops the epochs every live backup has applied: commit latency, replicated pages. */
  private advanceCommit(vm: Vm<C>, now: number): void {
    const p = vm.p!;
    let committed = p.links.size === 0 ? p.epoch : Infinity;
    for (const l of p.links.values()) {
      if (this.live(vm, l, now)) committed = Math.min(committed, l.acked);
    }
    if (committed === Infinity) return;
    while (p.cuts.length > 0 && p.cuts[0].epoch <= committed) {
      const c = p.cuts.shift()!;
      this.h.metrics.observe("mycelium_ram_epoch_commit_ms", now - c.at, vm.labels);
      this.h.metrics.inc("mycelium_replications_total", c.pages, vm.labels);
      p.commit = { term: vm.term, epoch: c.epoch };
    }
  }

  // ---- backup: staging and applying ----

  private onEpoch(vm: Vm<C>, from: NodeId, m: EpochChunk<C>): void {
    if (!this.adopt(vm, from, m.term)) return;
    const res = vm.stager.add(m);
    if (res === "malformed") {
      this.h.metrics.inc("mycelium_ram_malformed_chunks_total", 1, vm.labels);
      return;
    }
    if (res === "new") this.applyReady(vm);
    this.h.send(from, {
      t: "ram-ack",
      vmId: vm.id,
      term: vm.term,
      appliedTerm: vm.appliedTerm,
      epoch: vm.applied,
      chunkEpoch: m.epoch,
      chunkResync: m.resync,
      chunk: m.chunk,
    });
  }

  /** Applies every complete epoch that follows the current state, in order. */
  private applyReady(vm: Vm<C>): void {
    const now = this.h.now();
    for (;;) {
      const e = vm.stager.next(vm.appliedTerm, vm.applied, vm.valid);
      if (!e) return;
      for (let i = 0; i < e.pages.length; i++) vm.image.apply(e.pages[i], e.contents[i]);
      const wasValid = vm.valid;
      vm.appliedTerm = e.term;
      vm.applied = e.epoch;
      vm.valid = true;
      vm.appliedAt = now;
      vm.stager.prune(vm.term, vm.appliedTerm, vm.applied);
      this.emit(vm, {
        kind: "epochApplied",
        term: e.term,
        epoch: e.epoch,
        resync: e.resync,
        digest: this.digest(vm),
      });
      if (!wasValid) this.armElection(vm, vm.params.leaseMs + vm.stagger);
    }
  }

  /**
   * A message from the primary of `term`: ignores it if stale, otherwise follows that
   * primary (stepping down or leaving the fenced state if need be). Returns whether to go on.
   */
  private adopt(vm: Vm<C>, from: NodeId, term: number): boolean {
    if (term < Math.max(vm.term, vm.votedTerm)) return false;
    const now = this.h.now();
    vm.election = null; // a primary of this term or a newer one is alive
    if (vm.role === "primary") {
      if (term === vm.term) {
        this.h.log.log("error", "ram-two-primaries", { vm: vm.id, term, other: from });
        return false;
      }
      this.fence(vm, "newer-term");
    }
    if (term > vm.term || vm.primary !== from || vm.role !== "backup") {
      vm.term = term;
      vm.votedTerm = Math.max(vm.votedTerm, term);
      vm.primary = from;
      vm.role = "backup";
      vm.stager.prune(term, vm.appliedTerm, vm.applied);
      if (vm.valid) this.armElection(vm, vm.params.leaseMs + vm.stagger);
    }
    vm.lastHeard = now;
    const ho = vm.handoff;
    if (ho && from !== ho.target && term > ho.term) this.handoverLost(vm);
    else if (ho && from === ho.target && term >= ho.term) {
      // The target runs: the blackout ends (measured here, so it includes one transit).
      const blackoutMs = now - ho.pausedAt;
      const totalMs = now - ho.startedAt;
      vm.handoff = null;
      vm.lastMigration = { target: ho.target, outcome: "completed", blackoutMs, totalMs };
      this.h.metrics.inc("mycelium_ram_migrations_total", 1, {
        ...vm.labels,
        outcome: "completed",
      });
      this.h.metrics.observe("mycelium_ram_migration_blackout_ms", blackoutMs, vm.labels);
      this.h.metrics.observe("mycelium_ram_migration_ms", totalMs, vm.labels);
      this.emit(vm, {
        kind: "migrationCompleted",
        term: ho.term - 1,
        target: ho.target,
        blackoutMs,
        totalMs,
      });
    }
    return true;
  }

  // ---- lease ----

  private onRenew(vm: Vm<C>): void {
    const p = vm.p;
    if (!p) return;
    const now = this.h.now();
    if (this.leaseLapsed(p, now)) return this.fence(vm, "lease-lost");
    const seq = p.lease.request(now);
    const backups = [...p.links.keys()];
    for (const b of backups) {
      this.h.send(b, { t: "ram-lease-req", vmId: vm.id, term: vm.term, seq, backups });
    }
    this.h.setTimer(timerKey(K_RENEW, vm.id), vm.params.leaseRenewMs);
  }

  /** Lease lapsed: held once and expired, or never acquired in time. */
  private leaseLapsed(p: Primary<C>, now: number): boolean {
    return now >= p.leaseExpiry && now >= p.acquireBy;
  }

  /** The lease timer: fences once the lease lapsed, otherwise waits for the new deadline. */
  private checkLease(vm: Vm<C>): void {
    const p = vm.p;
    if (!p) return;
    const now = this.h.now();
    if (this.leaseLapsed(p, now)) return this.fence(vm, "lease-lost");
    const deadline = Math.max(p.leaseExpiry, p.acquireBy);
    if (deadline !== Infinity) this.h.setTimer(timerKey(K_LEASE, vm.id), deadline - now);
  }

  private onLeaseRequest(vm: Vm<C>, from: NodeId, m: LeaseRequest): void {
    if (!this.adopt(vm, from, m.term)) return;
    const self = this.h.self;
    vm.replicas = [from, ...m.backups.filter((b) => b !== from)];
    if (!vm.replicas.includes(self)) vm.replicas.push(self);
    vm.promisedUntil = this.h.now() + vm.params.leaseMs;
    this.h.send(from, {
      t: "ram-lease-grant",
      vmId: vm.id,
      term: m.term,
      seq: m.seq,
      appliedTerm: vm.appliedTerm,
      epoch: vm.applied,
      valid: vm.valid,
    });
  }

  /**
   * Feeds the profile selector (an EWMA with hysteresis) the slowest backup's propagation
   * round trip (its windowed-minimum lease round trip: queueing behind epoch data is not
   * latency) and switches profile when it says so.
   */
  private observeProfile(vm: Vm<C>): void {
    const pr = vm.profiles!;
    // A planned migration runs to its end under the profile it started with (its abort
    // time and catch-up parameters must not change under it).
    if (vm.p?.migration) return;
    let worst = 0;
    for (const l of vm.p!.links.values()) {
      if (Number.isFinite(l.recentMinRtt)) worst = Math.max(worst, l.recentMinRtt);
    }
    const before = pr.selector.profile;
    const next = pr.selector.observe(worst);
    if (next === before) return;
    vm.params = { ...pr.params[next], backupCount: vm.params.backupCount };
    vm.policy = pr.policyFor(vm.params);
    vm.perChunk = pagesPerChunk(vm.params.chunkBytes);
    this.h.metrics.inc("mycelium_ram_profile_switches_total", 1, vm.labels);
    this.h.log.log("info", "ram_profile_switched", {
      vm: vm.id,
      from: before,
      to: next,
      rttMs: Math.round(worst * 10) / 10,
    });
    this.emit(vm, { kind: "profileSwitched", term: vm.term, from: before, to: next });
  }

  private onLeaseGrant(vm: Vm<C>, from: NodeId, m: LeaseGrant): void {
    const p = vm.p;
    if (!p || m.term !== vm.term) return;
    const l = p.links.get(from);
    if (!l) return;
    const now = this.h.now();
    l.lastHeard = now;
    const sent = p.lease.sentAt(m.seq);
    if (sent !== undefined) {
      p.lease.grant(from, sent);
      p.leaseExpiry = p.lease.expiry([...p.links.keys()]);
      const rtt = now - sent;
      p.srtt = p.srtt === 0 ? rtt : p.srtt + 0.125 * (rtt - p.srtt);
      l.onLeaseRtt(rtt, now);
      if (vm.profiles) this.observeProfile(vm);
    }
    // A backup whose state is off this primary's chain (lost, or a stale image) is reseeded.
    if (!l.needsResync && !l.resyncing) {
      const onChain = m.valid &&
        (m.appliedTerm === vm.term || (m.appliedTerm === l.startTerm && m.epoch === l.startEpoch));
      if (!l.verified) {
        l.verify(onChain);
        this.pump(vm, l);
      } else if (!onChain) l.reset();
    }
  }

  // ---- fencing, elections, handover ----

  private fence(vm: Vm<C>, reason: FenceReason): void {
    const p = vm.p;
    if (!p) return;
    const h = this.h;
    const now = h.now();
    if (p.migration) this.abortMigration(vm, "fenced");
    this.endPolicyPause(vm, now);
    // The guest is stopped for good here, so one last cut makes the image exactly an epoch
    // again: the newest state of the VM, with which this node may stand for a later term if
    // no one else took over (never sent, so every backup is behind it).
    this.cut(vm);
    vm.role = "fenced";
    vm.valid = true;
    vm.appliedTerm = vm.term;
    vm.applied = p.epoch;
    vm.appliedAt = now;
    vm.lastHeard = now;
    vm.primary = null;
    vm.intensity = 0;
    vm.p = null;
    for (const k of [K_TICK, K_RENEW, K_LEASE]) h.cancelTimer(timerKey(k, vm.id));
    h.metrics.inc("mycelium_ram_fenced_total", 1, { ...vm.labels, reason });
    h.log.log("warn", "ram-fenced", { vm: vm.id, term: vm.term, reason });
    this.emit(vm, { kind: "fenced", term: vm.term, reason });
    this.armElection(vm, vm.params.leaseMs + vm.stagger);
  }

  private armElection(vm: Vm<C>, delay: number): void {
    this.h.setTimer(timerKey(K_ELECT, vm.id), Math.max(0, delay));
  }

  private ownState(vm: Vm<C>): VoterState {
    return { term: vm.appliedTerm, epoch: vm.applied, valid: vm.valid };
  }

  private onElectionTimer(vm: Vm<C>): void {
    if (vm.role === "primary" || !vm.valid) return;
    const now = this.h.now();
    const prm = vm.params;
    const due = Math.max(vm.lastHeard + prm.leaseMs + vm.stagger, vm.promisedUntil);
    if (now < due) return this.armElection(vm, due - now);
    // Pre-vote first: a backup cut off on its own never bumps the term and disrupts the rest.
    this.h.metrics.inc("mycelium_ram_elections_total", 1, vm.labels);
    this.armElection(vm, prm.leaseMs + vm.stagger);
    this.solicit(vm, Math.max(vm.term, vm.votedTerm) + 1, true);
  }

  private solicit(vm: Vm<C>, term: number, pre: boolean): void {
    const self = this.h.self;
    vm.election = {
      term,
      pre,
      sentAt: this.h.now(),
      granted: new Map([[self, this.ownState(vm)]]),
    };
    if (!pre) vm.votedTerm = term;
    const req: VoteRequest = {
      t: "ram-vote-req",
      vmId: vm.id,
      term,
      pre,
      lastTerm: vm.appliedTerm,
      lastEpoch: vm.applied,
    };
    for (const r of vm.replicas) if (r !== self) this.h.send(r, req);
    this.tallyVotes(vm);
  }

  private onVoteRequest(vm: Vm<C>, from: NodeId, m: VoteRequest): void {
    const now = this.h.now();
    if (vm.p && this.leaseLapsed(vm.p, now)) this.fence(vm, "lease-lost");
    const granted = wouldVote(vm, m, now);
    if (granted && !m.pre) {
      // A vote is also a lease grant to the candidate: no other vote for a lease.
      vm.votedTerm = m.term;
      vm.promisedUntil = now + vm.params.leaseMs;
      vm.election = null;
    }
    this.h.send(from, {
      t: "ram-vote",
      vmId: vm.id,
      term: m.term,
      pre: m.pre,
      granted,
      voterTerm: Math.max(vm.term, vm.votedTerm),
      lastTerm: vm.appliedTerm,
      lastEpoch: vm.applied,
      valid: vm.valid,
    });
  }

  private onVote(vm: Vm<C>, from: NodeId, m: VoteResponse): void {
    const e = vm.election;
    if (!e || m.term !== e.term || m.pre !== e.pre || !vm.replicas.includes(from)) return;
    // A term we did not know of: stand for a later one next time (never vote in it either).
    if (m.voterTerm >= e.term) vm.votedTerm = Math.max(vm.votedTerm, m.voterTerm);
    if (!m.granted) return;
    e.granted.set(from, { term: m.lastTerm, epoch: m.lastEpoch, valid: m.valid });
    this.tallyVotes(vm);
  }

  private tallyVotes(vm: Vm<C>): void {
    const e = vm.election;
    if (!e || e.granted.size < majority(vm.replicas.length)) return;
    if (e.pre) {
      if (e.term <= vm.votedTerm) {
        vm.election = null;
        return;
      }
      return this.solicit(vm, e.term, false);
    }
    const grants = new Map<NodeId, number>();
    for (const n of e.granted.keys()) if (n !== this.h.self) grants.set(n, e.sentAt);
    this.becomePrimary(vm, e.term, "election", e.granted, grants);
  }

  private onHandover(vm: Vm<C>, from: NodeId, m: Handover): void {
    if (m.term <= Math.max(vm.term, vm.votedTerm)) return;
    if (
      vm.role !== "backup" || from !== vm.primary || !vm.valid ||
      vm.appliedTerm !== m.lastTerm || vm.applied !== m.epoch
    ) {
      this.h.log.log("warn", "ram-handover-refused", { vm: vm.id, term: m.term, from });
      return;
    }
    const self = this.h.self;
    vm.replicas = [self, ...m.backups.filter((b) => b !== self)];
    const at: VoterState = { term: m.lastTerm, epoch: m.epoch, valid: true };
    const known = new Map<NodeId, VoterState>([[from, at]]);
    for (const n of m.synced) known.set(n, at);
    // The old primary promised us a lease when it sent the handover, after it received our
    // ack of the final epoch: count its grant from when we sent that ack.
    this.becomePrimary(vm, m.term, "handover", known, new Map([[from, vm.appliedAt]]));
  }

  // ---- planned migration ----

  private estimateBlackout(vm: Vm<C>, l: BackupLink<C>): number {
    const p = vm.p!;
    const bytes = l.outstandingBytes + p.dirty.count * PAGE_SIZE;
    const transfer = bytes === 0 ? 0 : l.rate > 0 ? bytes / l.rate : Infinity;
    return transfer + p.srtt;
  }

  private migrationReady(vm: Vm<C>, m: Migration): boolean {
    const p = vm.p!;
    const now = this.h.now();
    const l = p.links.get(m.target);
    if (!l || l.needsResync || !l.consistent || !this.live(vm, l, now)) return false;
    if (this.bufferLevel(vm, now) > vm.params.migrationCatchUpLevel) return false;
    return this.estimateBlackout(vm, l) <= vm.params.downtimeBudgetMs;
  }

  /** In the blackout: once the target applied the final epoch, hand the next term over. */
  private maybeHandover(vm: Vm<C>): void {
    const p = vm.p!;
    const m = p.migration!;
    const target = p.links.get(m.target);
    if (!target || target.acked < m.finalEpoch || p.dirty.count > 0) return;
    const h = this.h;
    const now = h.now();
    const term = Math.max(vm.term, vm.votedTerm) + 1;
    const backups = [h.self, ...[...p.links.keys()].filter((n) => n !== m.target)];
    const synced = [...p.links.values()]
      .filter((l) => l.node !== m.target && l.acked >= m.finalEpoch && !l.needsResync)
      .map((l) => l.node);
    h.send(m.target, {
      t: "ram-handover",
      vmId: vm.id,
      term,
      lastTerm: vm.term,
      epoch: m.finalEpoch,
      backups,
      synced,
    });
    this.emit(vm, {
      kind: "migrationHandover",
      term: vm.term,
      target: m.target,
      epoch: m.finalEpoch,
    });
    // Become a backup of the target: the image is exactly the final epoch (paused since).
    this.endPolicyPause(vm, now);
    for (const k of [K_TICK, K_RENEW, K_LEASE]) h.cancelTimer(timerKey(k, vm.id));
    const oldTerm = vm.term;
    vm.p = null;
    vm.role = "backup";
    vm.appliedTerm = oldTerm;
    vm.applied = m.finalEpoch;
    vm.valid = true;
    vm.appliedAt = now;
    vm.term = term;
    vm.votedTerm = term;
    vm.primary = m.target;
    vm.promisedUntil = now + vm.params.leaseMs;
    vm.lastHeard = now;
    vm.intensity = 0;
    vm.replicas = [m.target, ...backups];
    vm.handoff = { target: m.target, term, pausedAt: m.pausedAt, startedAt: m.startedAt };
    this.emit(vm, { kind: "demoted", term: oldTerm });
    this.armElection(vm, vm.params.leaseMs + vm.stagger);
  }

  /** The target never took over (the handover was lost; someone else was elected). */
  private handoverLost(vm: Vm<C>): void {
    const ho = vm.handoff!;
    vm.handoff = null;
    const totalMs = this.h.now() - ho.startedAt;
    const reason = "handover-lost";
    vm.lastMigration = { target: ho.target, outcome: "aborted", reason, totalMs };
    this.h.metrics.inc("mycelium_ram_migrations_total", 1, { ...vm.labels, outcome: "aborted" });
    this.emit(vm, {
      kind: "migrationAborted",
      term: ho.term - 1,
      target: ho.target,
      reason,
      totalMs,
    });
  }

  private abortMigration(vm: Vm<C>, reason: MigrationAbortReason): void {
    const p = vm.p!;
    const m = p.migration!;
    p.migration = null;
    const totalMs = this.h.now() - m.startedAt;
    vm.lastMigration = { target: m.target, outcome: "aborted", reason, totalMs };
    this.h.metrics.inc("mycelium_ram_migrations_total", 1, { ...vm.labels, outcome: "aborted" });
    this.emit(vm, { kind: "migrationAborted", term: vm.term, target: m.target, reason, totalMs });
  }
}
