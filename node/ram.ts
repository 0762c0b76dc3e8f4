/**
 * Distributed RAM on a real node (DESIGN.md section 5): the core's `RamReplicator` over the
 * mutual-TLS streams (FRAME_RAM frames, binary codec in ram_codec.ts), one `BufferImage` per
 * VM, and a synthetic guest per VM that writes while the replicator lets the VM run here
 * (its primary, holding the lease, not paused), at r0 * (1 - intensity).
 *
 * Digests cost ~1 ms per MiB, so the primary takes one at a cut only while someone reads
 * the VM's epoch log (or at a configured cadence, or when a status request asks for one),
 * and a promoted backup takes one at promotion. Malformed frames are dropped and counted.
 */
import type { DurableStore, Logger, Metrics } from "../core/host.ts";
import { DecodeError } from "../core/errors.ts";
import type { IdInterner, NodeId } from "../core/ids.ts";
import { resolveParams } from "../core/ram/config.ts";
import type { RamEvent } from "../core/ram/events.ts";
import type { RamMessage } from "../core/ram/messages.ts";
import { type LatencyProfileName, PAGE_SIZE, type ReplicationParams } from "../core/ram/params.ts";
import { myceliumPolicy } from "../core/ram/policies.ts";
import { plainProfile } from "../core/ram/profiles.ts";
import { RamReplicator, type RamVmStatus } from "../core/ram/replicator.ts";
import { allocFrame } from "./framing.ts";
import { NodeHost } from "./host.ts";
import { decodeRam, encodeRam, maxChunkPages } from "./ram_codec.ts";
import { type RamSection, type RamVmSpec, vmWorkload } from "./ram_config.ts";
import { SyntheticGuest } from "./ram_guest.ts";
import { BufferImage } from "./ram_image.ts";
import { EpochLog, type EpochRecord, LagWindow } from "./ram_records.ts";

export const FRAME_RAM = 4;

/** Commit latencies kept per VM for the status' lag percentiles. */
const LAG_SAMPLES = 8192;
/** How long a status request waits for the next cut to digest it, ms. */
const DIGEST_WAIT_MS = 5000;
const MiB = 1024 * 1024;

export interface NodeRamParts {
  self: NodeId;
  ids: IdInterner;
  config: RamSection;
  store: DurableStore;
  metrics: Metrics;
  log: Logger;
  /** The streams' largest frame: epoch chunks are shrunk to fit it. */
  maxFrameBytes: number;
  /** Sends a frame made with `allocFrame` to a peer; false when not connected to it now. */
  sendFrame: (to: NodeId, frame: Uint8Array) => boolean;
  /** Stream round trip to a peer (ms), for the "auto" latency profile; rejects if unreachable. */
  rtt?: (peer: NodeId, timeoutMs: number) => Promise<number>;
}

/** The image's identity and digest: the state (term, epoch) it holds. */
export interface ImageDigest {
  term: number;
  epoch: number;
  sha256: string;
}

export interface Promotion {
  term: number;
  reason: string;
  /** The image at promotion is exactly epoch (baseTerm, epoch). */
  baseTerm: number;
  epoch: number;
  digest: string | null;
  /** Promotion time minus the last frame from the old primary (elections only), ms. */
  failoverMs: number | null;
  at: number;
}

interface VmRuntime {
  spec: RamVmSpec;
  params: ReplicationParams;
  image: BufferImage;
  guest: SyntheticGuest | null;
  profile: LatencyProfileName;
  epochs: EpochLog;
  lag: LagWindow;
  lagNowMs: number;
  /** The epoch the primary's image was last cut at (the image is it while `!dirtySinceCut`). */
  lastCut: { term: number; epoch: number } | null;
  dirtySinceCut: boolean;
  /** False for a replica created unsynced, until its first applied (resync) epoch. */
  imageValid: boolean;
  lastPrimaryContact: number | null;
  promotion: Promotion | null;
  lastDigestAt: number;
  /** Status requests waiting for the next cut's digest. */
  waiters: Array<(d: ImageDigest | null) => void>;
}

/** A request error that names the field or says what is wrong; `status` is the HTTP code. */
export class RamApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "RamApiError";
  }
}

export class NodeRam {
  readonly replicator: RamReplicator<Uint8Array>;
  private readonly host: NodeHost<RamMessage<Uint8Array>>;
  private readonly vms = new Map<string, VmRuntime>();
  private readonly adding = new Set<string>();
  private guestTimer: ReturnType<typeof setInterval> | undefined;
  private lastPolled = -Infinity;
  private readonly dropLogs = new Map<string, { at: number; suppressed: number }>();
  private stopped = false;

  constructor(private readonly p: NodeRamParts) {
    this.replicator = new RamReplicator<Uint8Array>({
      observer: { wantsDigests: false, event: (e) => this.onEvent(e) },
    });
    this.host = new NodeHost<RamMessage<Uint8Array>>({
      self: p.self,
      ids: p.ids,
      storage: p.store,
      log: p.log,
      metrics: this.tapMetrics(p.metrics),
      send: (to, msg) => this.send(to, msg),
      sendToAddress: () => {},
      onTimer: (key) => this.replicator.onTimer(key),
    });
  }

  /** Starts the replicator and adds the configured VMs (in the background: see `addVm`). */
  start(): void {
    this.host.guard("ram start", () => this.replicator.start(this.host));
    this.guestTimer = setInterval(() => this.stepGuests(), this.p.config.guestTickMs);
    this.p.config.vms.forEach((vm, i) => {
      this.addVm(vm).catch((e) =>
        this.p.log.log("error", "ram_vm_refused", { vm: vm.id, field: `ram.vms[${i}]`, error: e })
      );
    });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.guestTimer);
    this.host.guard("ram stop", () => this.replicator.stop());
    this.host.close();
    for (const vm of this.vms.values()) for (const w of vm.waiters.splice(0)) w(null);
  }

  // ---- VMs ----

  /**
   * Adds a VM replica (validated spec). Throws `RamApiError` naming the field when the spec
   * does not fit this node. With the "auto" latency profile, the stream RTT to the other
   * replicas picks the profile first (the replicator runs one profile per VM).
   */
  async addVm(spec: RamVmSpec): Promise<RamVmStatus> {
    const self = this.p.self;
    if (this.vms.has(spec.id) || this.adding.has(spec.id)) {
      throw new RamApiError(409, `id: VM ${spec.id} is already replicated here`);
    }
    if (spec.role === "primary" && spec.primary !== self) {
      throw new RamApiError(400, `primary: must be this node (${self}) for role primary`);
    }
    if (spec.role === "backup" && !spec.backups.includes(self)) {
      throw new RamApiError(400, `backups: must include this node (${self}) for role backup`);
    }
    const fit = maxChunkPages(this.p.maxFrameBytes);
    if (fit < 1) {
      throw new RamApiError(409, `streams.maxFrameBytes (${this.p.maxFrameBytes}) is too small`);
    }
    this.adding.add(spec.id);
    try {
      const profile = await this.chooseProfile(spec);
      if (this.stopped) throw new RamApiError(503, "the node is stopping");
      const resolved = resolveParams(this.p.config.replication, profile);
      // One chunk is one stream frame.
      const chunkBytes = Math.min(resolved.chunkBytes, fit * PAGE_SIZE);
      const params: ReplicationParams = { ...resolved, chunkBytes };
      let image: BufferImage;
      try {
        image = new BufferImage(spec.memoryMiB * MiB);
      } catch (e) {
        throw new RamApiError(507, `memoryMiB: cannot allocate the image: ${(e as Error).message}`);
      }
      const vm: VmRuntime = {
        spec,
        params,
        image,
        guest: spec.dirtyPagesPerSec > 0 ? new SyntheticGuest(image, vmWorkload(spec)) : null,
        profile,
        epochs: new EpochLog(this.p.config.epochLog.size),
        lag: new LagWindow(LAG_SAMPLES),
        lagNowMs: 0,
        lastCut: null,
        dirtySinceCut: false,
        imageValid: spec.synced,
        lastPrimaryContact: null,
        promotion: null,
        lastDigestAt: -Infinity,
        waiters: [],
      };
      this.vms.set(spec.id, vm);
      const labels = { vm: spec.id };
      // Series that exist from the start (0 until something happens).
      for (const n of ["mycelium_ram_pauses_total", "mycelium_ram_paused_ms_total"]) {
        this.p.metrics.inc(n, 0, labels);
      }
      const cfg = this.p.config.replication;
      const paramsOf = (p: LatencyProfileName): ReplicationParams => {
        const r = resolveParams(cfg, p);
        return { ...r, chunkBytes: Math.min(r.chunkBytes, fit * PAGE_SIZE) };
      };
      const policyOf = (prm: ReplicationParams) =>
        myceliumPolicy({
          curve: prm.curve,
          pauseEnabled: prm.pauseEnabled,
          resumeLevel: prm.resumeLevel,
          convergenceTimeoutMs: prm.convergenceTimeoutMs,
        });
      try {
        this.replicator.addVm({
          vmId: spec.id,
          role: spec.role,
          image,
          params,
          policy: policyOf(params),
          primary: spec.primary as NodeId,
          backups: spec.backups as NodeId[],
          term: spec.term,
          synced: spec.synced,
          // "auto": the measured start profile, then switched at run time by lease RTTs.
          profiles: cfg.profile === "auto"
            ? {
              rtt: cfg.rtt,
              current: profile,
              params: { low: paramsOf("low"), medium: paramsOf("medium"), high: paramsOf("high") },
              policyFor: policyOf,
            }
            : undefined,
        });
      } catch (e) {
        this.vms.delete(spec.id);
        throw new RamApiError(400, (e as Error).message);
      }
      this.p.log.log("info", "ram_vm_added", {
        vm: spec.id,
        role: spec.role,
        memoryMiB: spec.memoryMiB,
        profile,
        intervalMs: params.intervalMs,
        chunkBytes,
      });
      return this.replicator.status(spec.id);
    } finally {
      this.adding.delete(spec.id);
    }
  }

  private async chooseProfile(spec: RamVmSpec): Promise<LatencyProfileName> {
    const cfg = this.p.config.replication;
    if (cfg.profile !== "auto") return cfg.profile;
    const peers = [spec.primary, ...spec.backups].filter((n) => n !== this.p.self) as NodeId[];
    const rtt = this.p.rtt;
    if (!rtt || peers.length === 0) return "low";
    const samples = await Promise.all(peers.map((n) => rtt(n, 2000).catch(() => NaN)));
    const ok = samples.filter(Number.isFinite);
    if (ok.length === 0) {
      this.p.log.log("warn", "ram_profile_unmeasured", { vm: spec.id, profile: "medium" });
      return "medium";
    }
    return plainProfile(Math.max(...ok), cfg.rtt);
  }

  list() {
    return [...this.vms.values()].map((vm) => {
      const s = this.replicator.status(vm.spec.id);
      return {
        vmId: vm.spec.id,
        role: s.role,
        term: s.term,
        primary: s.primary,
        epoch: s.epoch,
        memoryMiB: vm.spec.memoryMiB,
      };
    });
  }

  /** The VM's status for the API; `lagWindowMs` bounds the lag percentiles. */
  status(vmId: string, lagWindowMs = 10_000) {
    const vm = this.vm(vmId);
    const s = this.replicator.status(vmId);
    const now = this.host.now();
    return {
      ...s,
      memoryMiB: vm.spec.memoryMiB,
      pageCount: vm.image.pageCount,
      profile: vm.profile,
      intervalMs: vm.params.intervalMs,
      chunkBytes: vm.params.chunkBytes,
      imageValid: vm.imageValid,
      pauses: { count: s.pauseCount, pausedMs: s.pausedMs },
      lag: {
        currentMs: s.role === "primary" ? vm.lagNowMs : null,
        ...vm.lag.summary(now - lagWindowMs),
      },
      pagesApplied: vm.image.pagesApplied,
      guest: vm.guest
        ? {
          workload: vm.guest.workload.name,
          dirtyPagesPerSec: vm.spec.dirtyPagesPerSec,
          writes: vm.guest.writes,
        }
        : null,
      promotion: vm.promotion,
      now,
    };
  }

  /**
   * The digest of the image at the state it holds: a backup's last applied epoch, or the
   * primary's last cut (waiting for the next cut if the guest wrote since). Null when the
   * image is not a complete epoch (awaiting a resync) or no cut came in time.
   */
  digest(vmId: string): Promise<ImageDigest | null> {
    const vm = this.vm(vmId);
    const s = this.replicator.status(vmId);
    if (s.role !== "primary") {
      if (!vm.imageValid) return Promise.resolve(null);
      return Promise.resolve({
        term: s.appliedTerm,
        epoch: s.lastAppliedEpoch,
        sha256: vm.image.digest(),
      });
    }
    if (!vm.dirtySinceCut && vm.lastCut) {
      return Promise.resolve({ ...vm.lastCut, sha256: vm.image.digest() });
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), DIGEST_WAIT_MS);
      const done = (d: ImageDigest | null) => {
        clearTimeout(timer);
        const i = vm.waiters.indexOf(done);
        if (i >= 0) vm.waiters.splice(i, 1);
        resolve(d);
      };
      vm.waiters.push(done);
    });
  }

  /** The primary's recent cut epochs; reading them turns digests on for a while. */
  epochs(vmId: string): { vmId: string; now: number; digesting: boolean; epochs: EpochRecord[] } {
    const vm = this.vm(vmId);
    const now = this.host.now();
    this.lastPolled = now;
    return {
      vmId,
      now,
      digesting: this.p.config.epochLog.digestWhilePolledMs > 0,
      epochs: vm.epochs.list(),
    };
  }

  migrate(vmId: string, to: NodeId): RamVmStatus {
    this.vm(vmId);
    try {
      this.replicator.migrate(vmId, to);
    } catch (e) {
      throw new RamApiError(409, (e as Error).message);
    }
    return this.replicator.status(vmId);
  }

  private vm(vmId: string): VmRuntime {
    const vm = this.vms.get(vmId);
    if (!vm) throw new RamApiError(404, `no VM ${vmId} here`);
    return vm;
  }

  // ---- wire ----

  private send(to: NodeId, msg: RamMessage<Uint8Array>): void {
    // Encoded in place into the frame: the page bytes are copied once on this side.
    let frame: Uint8Array = new Uint8Array(0);
    encodeRam(msg, (n) => {
      const f = allocFrame(FRAME_RAM, n);
      frame = f.frame;
      return f.body;
    });
    if (!this.p.sendFrame(to, frame)) this.p.metrics.inc("mycelium_ram_unsent_total");
  }

  /** A FRAME_RAM frame from a peer (its identity from its TLS certificate). */
  onFrame(from: NodeId, body: Uint8Array): void {
    let msg: RamMessage<Uint8Array>;
    try {
      msg = decodeRam(body);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      return this.drop(from, "decode", e.message);
    }
    const vm = this.vms.get(msg.vmId);
    if (vm && msg.t === "ram-epoch") {
      const last = msg.pages[msg.pages.length - 1];
      if (last >= vm.image.pageCount) {
        return this.drop(from, "page-range", `page ${last} of a ${vm.image.pageCount}-page image`);
      }
    }
    // Only a primary sends these: the last contact with it, for the failover time.
    if (vm && (msg.t === "ram-epoch" || msg.t === "ram-lease-req")) {
      vm.lastPrimaryContact = this.host.now();
    }
    this.host.guard(`ram ${msg.t}`, () => this.replicator.onMessage(from, msg));
  }

  /** Counts every dropped frame; logs at most one line per reason and second. */
  private drop(from: NodeId, reason: string, error: string): void {
    this.p.metrics.inc("mycelium_ram_dropped_frames_total", 1, { reason });
    const now = this.host.now();
    const last = this.dropLogs.get(reason);
    if (last && now - last.at < 1000) {
      last.suppressed++;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.dropLogs.set(reason, { at: now, suppressed: 0 });
    this.p.log.log("warn", "ram_frame_dropped", { from, reason, error, suppressed });
  }

  // ---- guests ----

  private stepGuests(): void {
    const now = this.host.now();
    for (const [id, vm] of this.vms) {
      const g = vm.guest;
      if (!g) continue;
      if (!this.replicator.running(id)) {
        g.halt();
        continue;
      }
      const pages = g.step(now, this.replicator.intensity(id));
      if (pages.length === 0) continue;
      vm.dirtySinceCut = true;
      this.host.guard("ram guest", () => this.replicator.markDirty(id, pages));
    }
  }

  // ---- observer and metrics ----

  private onEvent(e: RamEvent): void {
    const vm = this.vms.get(e.vmId);
    if (!vm) return;
    switch (e.kind) {
      case "epochCut":
        return this.onCut(vm, e.term, e.epoch, e.pages);
      case "epochApplied":
        vm.imageValid = true;
        return;
      case "promoted":
        return this.onPromoted(vm, e);
      case "fenced":
      case "demoted":
      case "dropped":
      case "migrationStarted":
      case "migrationBlackout":
      case "migrationHandover":
      case "migrationCompleted":
      case "migrationAborted": {
        const { kind, vmId, node: _n, now: _t, ...fields } = e;
        this.p.log.log(kind === "fenced" ? "warn" : "info", `ram_${kind}`, { vm: vmId, ...fields });
      }
    }
  }

  private onCut(vm: VmRuntime, term: number, epoch: number, pages: number): void {
    const now = this.host.now();
    const cfg = this.p.config.epochLog;
    vm.lastCut = { term, epoch };
    vm.dirtySinceCut = false;
    const want = vm.waiters.length > 0 ||
      (cfg.digestWhilePolledMs > 0 && now - this.lastPolled < cfg.digestWhilePolledMs) ||
      (cfg.digestEveryMs > 0 && now - vm.lastDigestAt >= cfg.digestEveryMs);
    const digest = want ? vm.image.digest() : null;
    vm.epochs.push({ term, epoch, pages, at: now, digest });
    if (digest === null) return;
    vm.lastDigestAt = now;
    // Logged synchronously before the epoch is sent: a record that outlives a kill -9.
    this.p.log.log("info", "ram_epoch_digest", { vm: vm.spec.id, term, epoch, digest });
    for (const w of vm.waiters.slice()) w({ term, epoch, sha256: digest });
  }

  private onPromoted(vm: VmRuntime, e: Extract<RamEvent, { kind: "promoted" }>): void {
    const now = this.host.now();
    vm.lastCut = { term: e.baseTerm, epoch: e.epoch };
    vm.dirtySinceCut = false;
    if (e.reason === "initial") return;
    const failoverMs = e.reason === "election" && vm.lastPrimaryContact !== null
      ? now - vm.lastPrimaryContact
      : null;
    if (failoverMs !== null) {
      this.p.metrics.observe("mycelium_ram_failover_ms", failoverMs, { vm: vm.spec.id });
    }
    const digest = this.p.config.digestOnPromotion ? vm.image.digest() : null;
    vm.promotion = {
      term: e.term,
      reason: e.reason,
      baseTerm: e.baseTerm,
      epoch: e.epoch,
      digest,
      failoverMs,
      at: now,
    };
    this.p.log.log("warn", "ram_promoted", { vm: vm.spec.id, ...vm.promotion });
  }

  /** The core's metrics, with the replication lag also kept per VM for the status. */
  private tapMetrics(m: Metrics): Metrics {
    return {
      inc: (name, by, labels) => m.inc(name, by, labels),
      set: (name, value, labels) => {
        if (name === "mycelium_ram_replication_lag_ms" && labels?.vm) {
          const vm = this.vms.get(labels.vm);
          if (vm) vm.lagNowMs = value;
        }
        m.set(name, value, labels);
      },
      observe: (name, value, labels) => {
        if (name === "mycelium_ram_epoch_commit_ms" && labels?.vm) {
          this.vms.get(labels.vm)?.lag.add(this.host.now(), value);
        }
        m.observe(name, value, labels);
      },
    };
  }
}
