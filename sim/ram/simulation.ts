/**
 * The distributed RAM simulator (issue 5): every node of a scenario with a `ram` section runs
 * one `RamReplicator<number>` (core/ram/replicator.ts) on the shared engine, network model
 * (message sizes from `ramMessageBytes`, so epochs pay serialisation delay on the uplink),
 * fault schedule and seeded streams. On top:
 *
 * - VM images are version counters (`SimImage`): a page's content is the number of the write
 *   that last touched it, unique per VM, so diverging histories have different digests;
 * - one guest per VM runs on the VM's current primary, driven by a per-node guest tick: each
 *   tick, while the replicator says the guest runs, it dirties `workload.pages(dt, intensity)`
 *   pages and reports them with `markDirty` (no engine event per page);
 * - the throttle policy is `ram.policy` (policy.ts); Remus checkpoints are charged here;
 * - outputs (when modelled): one per guest tick, released when its epoch is acknowledged;
 * - planned migrations at their time; the online checkers (checkers.ts); metrics.
 *
 * A crashed node loses its volatile state, RAM replicas included: when it restarts it comes
 * back empty (its replicator knows no VM, so messages about its old VMs are ignored). A VM
 * thus runs on with one replica fewer; nothing re-replicates it to another node.
 */
import { ConfigError } from "../../core/errors.ts";
import type { Host, Logger } from "../../core/host.ts";
import { IdInterner, type NodeId, nodeIdFromPublicKey } from "../../core/ids.ts";
import { resolveParams } from "../../core/ram/config.ts";
import type { RamEvent } from "../../core/ram/events.ts";
import { type RamMessage, ramMessageBytes } from "../../core/ram/messages.ts";
import type {
  LatencyProfileName,
  ReplicationParams,
  ThrottlePolicy,
} from "../../core/ram/params.ts";
import { RamReplicator } from "../../core/ram/replicator.ts";
import { MultipathRam, type RamWire, ramWireBytes } from "../../core/ram/multipath.ts";
import { resolveSelector } from "../selectors.ts";
import { makeWorkload, type Workload } from "../../core/ram/workloads.ts";
import {
  type CheckResult,
  declared,
  type FaultAccount,
  firedCheck,
  violationResult,
} from "../checks.ts";
import { closeUptime, Engine, runSliced } from "../engine.ts";
import { lifeTimers, newNodeRuntime, nodeClock, type NodeRuntime } from "../node_runtime.ts";
import { scheduleFaults } from "../fault_schedule.ts";
import type { Violation } from "../membership_observer.ts";
import { dropReasonName, NetworkModel } from "../network.ts";
import { Rng } from "../rng.ts";
import type { RamScenario, Scenario } from "../scenario.ts";
import type { NodeInfo } from "../selectors.ts";
import { RAM_ONLINE_CHECKS, RamCheckers } from "./checkers.ts";
import { Histogram } from "./histogram.ts";
import { RamMetrics, type VmCounters } from "./metrics.ts";
import { placeVms } from "./placement.ts";
import { checkInfo, makePolicy, type PolicyKind } from "./policy.ts";
import { chooseProfile, meanRttMs } from "./profile.ts";
import { SimImage } from "./image.ts";
import { faultWindows, WindowCursor } from "./windows.ts";

export interface RamNode extends NodeInfo, NodeRuntime {
  readonly id: NodeId;
  readonly startAt: number;
  rep: RamReplicator<number> | null;
  /** The relay router around `rep`, when some VM of the scenario uses relays. */
  mp: MultipathRam<number> | null;
  readonly rng: Rng;
  /** VMs (indices) this node is primary of, from the replicator's events. */
  readonly primaryOf: Set<number>;
}

export interface SimVm extends VmCounters {
  readonly index: number;
  readonly name: string;
  readonly pageCount: number;
  readonly profile: LatencyProfileName;
  readonly params: ReplicationParams;
  readonly workload: Workload;
  readonly random: () => number;
  /** This VM's replica image on each node (null: none there). */
  readonly images: Array<SimImage | null>;
  /** The last write number (page contents are write numbers). */
  version: number;
  /** Current primary (node index; -1 none), its term and last cut epoch. */
  primary: number;
  term: number;
  cutEpoch: number;
  /** The last tick's state (the primary's), and when it was. */
  lastTickAt: number;
  b: number;
  intensity: number;
  paused: boolean;
  pagesDirtied: number;
  /** Integral of intensity over running time (ms), and emergency-paused time (ms). */
  throttleMs: number;
  pausedMs: number;
  pauses: number;
  /** Remus checkpoints: count, total pause, and what the guest still owes. */
  checkpoints: number;
  checkpointMs: number;
  checkpointDebt: number;
  /** When and why the VM lost its primary (-1: it has one). */
  lostAt: number;
  lostCause: "crash" | "fence" | null;
  outputsEmitted: number;
  outputsReleased: number;
  pendingOutputs: Array<{ term: number; epoch: number; at: number }>;
  /** Relay nodes its replicas talk through (empty: direct). */
  relays: number[];
  /** Nodes that may hold its backups (ram.vms[].backupsFrom), and backups added after failovers. */
  candidates: Set<number>;
  reseeded: number;
  /** With relays: when each node applied an epoch of this VM (ram.replication-continues). */
  appliedAt: Map<number, number[]>;
}

export interface RamProgress {
  virtualMs: number;
  durationMs: number;
  events: number;
}

export interface RamSimOptions {
  seed?: number;
  /** Stop after this many events (replay). */
  stopAtEvent?: number;
  /** Keep the last N deliveries and timers for `recentEvents()` (replay). */
  recordLast?: number;
  /** Wraps each replica's policy (tests: a policy that breaks the intensity contract). */
  wrapPolicy?: (policy: ThrottlePolicy, vm: string, node: string) => ThrottlePolicy;
  /** Builds each replica's image (tests: a replica that applies epochs wrongly). */
  makeImage?: (pageCount: number, tracked: boolean, vm: string, node: string) => SimImage;
}

export interface RamTraceEvent {
  index: number;
  t: number;
  kind: string;
  node: string;
  detail: string;
}

export interface FailoverRecord {
  vm: string;
  node: string;
  term: number;
  at: number;
  /** What took the previous primary away, and how long ago (null: unknown). */
  cause: "crash" | "fence" | "none";
  ms: number | null;
}

export interface MigrationRecord {
  name: string;
  vm: string;
  from: string;
  target: string;
  startedAt: number;
  outcome: "completed" | "aborted" | null;
  reason: string | null;
  totalMs: number | null;
  blackoutMs: number | null;
}

export interface RamSample {
  t: number;
  vm: number;
  b: number;
  intensity: number;
  paused: boolean;
  lagMs: number;
}

/** A small code per message type for the trace hash ("ram-" + kind: length and 5th letter). */
const msgCode = (t: RamWire["t"]) => t.length * 31 + t.charCodeAt(4);

function describe(m: RamWire<number>): string {
  switch (m.t) {
    case "ram-relay":
      return `relay via ${m.via.slice(0, 8)}: ${describe(m.inner)}`;
    case "ram-probe":
      return `${m.t}${m.ack ? " ack" : ""} ${m.vmId} via ${m.via.slice(0, 8)} #${m.seq}`;
    case "ram-epoch":
      return `${m.t} ${m.vmId} t${m.term} e${m.epoch}${m.resync ? " resync" : ""} chunk ${
        m.chunk + 1
      }/${m.chunks} (${m.pages.length} pages)`;
    case "ram-ack":
      return `${m.t} ${m.vmId} t${m.term} applied t${m.appliedTerm} e${m.epoch}`;
    case "ram-vote-req":
    case "ram-vote":
      return `${m.t} ${m.vmId} t${m.term}${m.pre ? " pre" : ""}`;
    default:
      return `${m.t} ${m.vmId} t${m.term}`;
  }
}

export class RamSimulation {
  readonly scenario: Scenario;
  readonly ram: RamScenario;
  /** Some VM routes through relays: every node runs the relay router. */
  private usesRelays = false;
  private readonly downs = new Map<number, Array<[number, number]>>();
  /** Run-time latency profile switches (config.profile auto). */
  readonly profileSwitches: Array<{ vm: string; at: number; from: string; to: string }> = [];
  readonly seed: number;
  readonly engine = new Engine();
  readonly rootRng: Rng;
  readonly ids = new IdInterner();
  readonly nodes: RamNode[] = [];
  readonly vms: SimVm[] = [];
  readonly network: NetworkModel;
  readonly metrics: RamMetrics;
  readonly checkers: RamCheckers;
  readonly faults: FaultAccount[] = [];
  readonly workload: FaultAccount[] = [];
  readonly durationMs: number;
  readonly lastFaultEnd: number;
  readonly policy: PolicyKind;
  readonly failovers: FailoverRecord[] = [];
  readonly migrations: MigrationRecord[] = [];
  /** Every time a VM lost its running primary: a crash, or a lease lapse that fenced it. */
  readonly primaryLosses: Array<
    { vm: string; node: string; at: number; cause: "crash" | "fence" }
  > = [];
  readonly samples: RamSample[] = [];
  /** Per-tick buffer levels and intensities of every VM. */
  readonly bufferLevels = new Histogram();
  readonly intensities = new Histogram();
  readonly outputDelayMs = new Histogram();
  readonly modelOutputs: boolean;
  readonly logCounts = new Map<string, number>();
  violation: (Violation & { event: number; t: number }) | null = null;
  totalBytes = 0;
  totalMsgs = 0;
  private readonly byId = new Map<NodeId, RamNode>();
  private readonly vmByName = new Map<string, SimVm>();
  private readonly recorder: RamTraceEvent[] | null;
  private readonly kDeliver: number;
  private readonly kTimer: number;
  private readonly kAction: number;
  private readonly kGuest: number;
  private readonly actions: Array<(() => void) | undefined> = [];
  private readonly guestTickMs: number;
  private readonly checkpointPauseMs: number;
  private readonly onlineChecks: boolean;
  private readonly scratch: number[] = [];
  private readonly log: Logger;
  /** Replicas to create when each node first starts. */
  private readonly initial: Array<{
    vm: SimVm;
    node: RamNode;
    role: "primary" | "backup";
    placement: { primary: number; backups: readonly number[] };
  }> = [];

  constructor(scenario: Scenario, private readonly opts: RamSimOptions = {}) {
    const ram = scenario.ram;
    if (!ram) throw new ConfigError("the scenario has no ram section", "ram");
    scenario.checks.forEach((c, i) => {
      if (!c.type.startsWith("ram.")) {
        throw new ConfigError(`${c.type} cannot run in a RAM run`, `checks[${i}]`);
      }
    });
    this.scenario = scenario;
    this.ram = ram;
    this.seed = opts.seed ?? scenario.seed;
    this.rootRng = Rng.fromSeed(this.seed);
    this.durationMs = scenario.duration;
    this.policy = ram.policy;
    this.guestTickMs = ram.guestTickMs;
    this.checkpointPauseMs = ram.policy === "remus" ? ram.remus.checkpointPauseMs : 0;
    this.recorder = opts.recordLast ? [] : null;
    const enabled = new Set<string>(scenario.checks.map((c) => c.type));
    this.modelOutputs = ram.policy === "remus" || enabled.has("ram.output-buffering");
    this.onlineChecks = RAM_ONLINE_CHECKS.some((c) => enabled.has(c));
    this.checkers = new RamCheckers(
      enabled,
      (fn) => this.at(this.engine.now, fn),
      (id) => this.byId.get(id as NodeId)?.name ?? id,
    );
    this.log = {
      log: (level, event) => {
        if (level === "warn" || level === "error") {
          this.logCounts.set(event, (this.logCounts.get(event) ?? 0) + 1);
        }
      },
    };

    for (const g of scenario.nodes) {
      for (let k = 0; k < g.count; k++) this.addNode(`${g.group}-${k}`, g, k);
    }
    this.network = new NetworkModel(scenario.network, this.nodes.map((n) => n.region));

    const lagCheck = scenario.checks.find((c) => c.type === "ram.replication-lag");
    const windows = new WindowCursor(
      faultWindows(
        scenario.faults,
        scenario.duration,
        lagCheck?.type === "ram.replication-lag" ? lagCheck.afterFaultMs : 5000,
      ),
    );
    this.metrics = new RamMetrics(
      (id) => this.vmByName.get(id),
      () => !windows.contains(this.engine.now),
      () => this.vms,
    );

    // VMs: placement, profile, parameters, workload.
    const tracked = this.checkers.wantsDigests;
    for (const p of placeVms(ram, this.nodes, this.rootRng.derive("placement"))) {
      const spec = ram.vms[p.spec];
      const rtts = p.backups.map((b) =>
        meanRttMs(scenario.network, this.nodes[p.primary].region, this.nodes[b].region)
      );
      const profile = chooseProfile(ram.config, rtts);
      const params = { ...resolveParams(ram.config, profile), backupCount: p.backups.length };
      const rng = this.rootRng.derive(`guest/${p.name}`);
      const vm: SimVm = {
        index: this.vms.length,
        name: p.name,
        pageCount: p.pageCount,
        profile,
        params,
        workload: makeWorkload(spec.workload, p.pageCount, `ram.vms[${p.spec}].workload`),
        random: () => rng.next(),
        images: new Array(this.nodes.length).fill(null),
        version: 0,
        primary: -1,
        term: 0,
        cutEpoch: 0,
        lastTickAt: -1,
        b: 0,
        intensity: 0,
        paused: false,
        pagesDirtied: 0,
        throttleMs: 0,
        pausedMs: 0,
        pauses: 0,
        checkpoints: 0,
        checkpointMs: 0,
        checkpointDebt: 0,
        lostAt: -1,
        lostCause: null,
        outputsEmitted: 0,
        outputsReleased: 0,
        pendingOutputs: [],
        relays: spec.relays === undefined ? [] : resolveSelector(
          spec.relays,
          this.nodes,
          this.rootRng.derive(`relays/${p.name}`),
        ).filter((r) => r !== p.primary && !p.backups.includes(r)),
        appliedAt: new Map(),
        candidates: new Set(
          resolveSelector(spec.backupsFrom, this.nodes, this.rootRng.derive(`from/${p.name}`)),
        ),
        reseeded: 0,
        pagesReplicated: 0,
        bytesReplicated: 0,
        epochs: 0,
        drops: 0,
        resyncs: 0,
        lagMs: 0,
      };
      this.vms.push(vm);
      this.vmByName.set(vm.name, vm);
      this.checkers.addVm(vm.name, checkInfo(ram.policy, params));
      const replicas = [p.primary, ...p.backups];
      for (const idx of replicas) {
        const n = this.nodes[idx];
        vm.images[idx] = this.makeImage(vm, n, tracked);
        const role = idx === p.primary ? "primary" : "backup";
        this.initial.push({ vm, node: n, role, placement: p });
      }
    }
    this.usesRelays = this.vms.some((v) => v.relays.length > 0);

    this.kDeliver = this.engine.register((to, from, msg) =>
      this.deliver(to, from, msg as RamMessage<number>)
    );
    this.kTimer = this.engine.register((node, gen, key) =>
      this.fireTimer(node, gen, key as string)
    );
    this.kAction = this.engine.register((i) => {
      const fn = this.actions[i]!;
      this.actions[i] = undefined;
      fn();
      this.afterHandler();
    });
    this.kGuest = this.engine.register((node, life) => this.guestTick(node, life));

    for (const n of this.nodes) this.at(n.startAt, () => this.start(n));
    this.lastFaultEnd = scheduleFaults(scenario.faults, {
      durationMs: this.durationMs,
      rootRng: this.rootRng,
      network: this.network,
      nodesInfo: () => this.nodes,
      at: (t, fn) => this.at(t, fn),
      now: () => this.engine.now,
      isUp: (i) => this.nodes[i].up,
      crash: (i, lose) => this.crash(this.nodes[i], lose),
      restart: (i) => this.start(this.nodes[i]),
      clock: (i) => ({ offset: this.nodes[i].clockOffset, drift: this.nodes[i].clockDrift }),
      setClock: (i, offset, drift) => {
        this.nodes[i].clockOffset = offset;
        this.nodes[i].clockDrift = drift;
      },
    }, this.faults);

    ram.migrations.forEach((m, i) => {
      const account = declared("migration", m.at, m.name ?? `migrate ${m.vm}@${m.at}ms`);
      this.workload.push(account);
      this.at(m.at, () => this.startMigration(m, i, account));
    });
    const every = scenario.outputs.sampleInterval;
    for (let t = every; t <= this.durationMs; t += every) this.at(t, () => this.sample());
  }

  private addNode(name: string, g: Scenario["nodes"][number], k: number): void {
    const id = nodeIdFromPublicKey(new TextEncoder().encode(`mycelium-sim-ram/${name}`));
    const n: RamNode = {
      index: this.nodes.length,
      name,
      group: g.group,
      indexInGroup: k,
      tier: g.tier,
      region: g.region,
      id,
      startAt: g.start.at,
      ...newNodeRuntime(this.rootRng, name),
      rep: null,
      mp: null,
      rng: this.rootRng.derive(`node/${name}`),
      primaryOf: new Set(),
    };
    this.nodes.push(n);
    this.byId.set(id, n);
    this.ids.intern(id);
  }

  private makeImage(vm: SimVm, n: RamNode, tracked: boolean): SimImage {
    return this.opts.makeImage
      ? this.opts.makeImage(vm.pageCount, tracked, vm.name, n.name)
      : new SimImage(vm.pageCount, tracked);
  }

  private makePolicyFor(vm: SimVm, n: RamNode, params = vm.params): ThrottlePolicy {
    const p = makePolicy(this.policy, params, this.checkpointPauseMs);
    return this.opts.wrapPolicy ? this.opts.wrapPolicy(p, vm.name, n.name) : p;
  }

  /** Every profile's parameters for this VM (run-time profile switching). */
  private profileParams(vm: SimVm): Record<LatencyProfileName, ReplicationParams> {
    const of = (p: LatencyProfileName) => ({
      ...resolveParams(this.ram.config, p),
      backupCount: vm.params.backupCount,
    });
    return { low: of("low"), medium: of("medium"), high: of("high") };
  }

  // ---- scheduling ----

  private at(t: number, fn: () => void): void {
    const id = this.actions.length;
    this.actions.push(fn);
    this.engine.schedule(Math.max(t, this.engine.now), this.kAction, id, 0, undefined);
  }

  private afterHandler(): void {
    const v = this.checkers.violation;
    if (v && !this.violation) {
      this.violation = { ...v, event: this.engine.events, t: this.engine.now };
      this.engine.halt();
    }
  }

  // ---- node lifecycle ----

  private host(n: RamNode): Host<RamWire<number>> {
    const life = n.life;
    const current = () => n.up && n.life === life;
    return {
      self: n.id,
      ids: this.ids,
      storage: n.store,
      log: this.log,
      metrics: this.metrics,
      now: () => nodeClock(n, this.engine.now),
      random: () => n.rng.next(),
      send: (to, msg) => {
        if (current()) this.send(n, to, msg);
      },
      ...lifeTimers(this.engine, this.kTimer, n, life),
    };
  }

  private start(n: RamNode): void {
    if (n.up) return;
    const last = this.downs.get(n.index)?.at(-1);
    if (last && last[1] === Infinity) last[1] = this.engine.now;
    const first = n.life === 0;
    n.up = true;
    n.life++;
    n.timers = new Map();
    n.upSince = this.engine.now;
    const rep = new RamReplicator<number>({
      observer: {
        wantsDigests: this.checkers.wantsDigests,
        event: (e) => this.onRamEvent(n, e),
      },
    });
    n.rep = rep;
    if (this.usesRelays) {
      n.mp = new MultipathRam(rep, this.ram.config.paths);
      n.mp.start(this.host(n));
    } else rep.start(this.host(n));
    if (first) {
      for (const r of this.initial) {
        if (r.node !== n) continue;
        const vm = r.vm;
        rep.addVm({
          vmId: vm.name,
          role: r.role,
          image: vm.images[n.index]!,
          params: vm.params,
          policy: this.makePolicyFor(vm, n),
          primary: this.nodes[r.placement.primary].id,
          backups: r.placement.backups.map((b) => this.nodes[b].id),
          term: 1,
          profiles: this.ram.config.profile === "auto"
            ? {
              rtt: this.ram.config.rtt,
              current: vm.profile,
              params: this.profileParams(vm),
              policyFor: (prm) => this.makePolicyFor(vm, n, prm),
            }
            : undefined,
        });
        // Both ends of every replica pair route through the VM's relays.
        if (vm.relays.length > 0) {
          const relayIds = vm.relays.map((i) => this.nodes[i].id);
          for (const other of [r.placement.primary, ...r.placement.backups]) {
            if (other !== n.index) n.mp!.setRoute(vm.name, this.nodes[other].id, relayIds);
          }
        }
      }
    }
    this.engine.schedule(this.engine.now + this.guestTickMs, this.kGuest, n.index, n.life);
  }

  private crash(n: RamNode, loseUnsynced: boolean): void {
    if (!n.up) return;
    const now = this.engine.now;
    for (const vi of n.primaryOf) {
      const vm = this.vms[vi];
      vm.lostAt = now;
      vm.lostCause = "crash";
      this.primaryLosses.push({ vm: vm.name, node: n.name, at: now, cause: "crash" });
    }
    n.store.crash(loseUnsynced);
    const d = this.downs.get(n.index) ?? [];
    d.push([now, Infinity]);
    this.downs.set(n.index, d);
    (n.mp ?? n.rep)!.stop(); // emits "stopped" for every VM (closes its primary intervals)
    n.rep = null;
    n.mp = null;
    n.up = false;
    n.life++;
    n.timers.clear();
    n.upMs += now - n.upSince;
    n.primaryOf.clear();
    // Volatile state: the replicas on this node are gone.
    for (const vm of this.vms) vm.images[n.index] = null;
    this.afterHandler();
  }

  // ---- replicator events ----

  private onRamEvent(n: RamNode, e: RamEvent): void {
    const now = this.engine.now;
    if (this.onlineChecks) this.checkers.onEvent(now, e);
    const vm = this.vmByName.get(e.vmId);
    if (!vm) return;
    if (e.kind === "profileSwitched") {
      const params = this.profileParams(vm)[e.to as LatencyProfileName];
      this.checkers.updateInfo(vm.name, checkInfo(this.ram.policy, params));
      this.profileSwitches.push({ vm: vm.name, at: now, from: e.from, to: e.to });
    }
    if (e.kind === "epochApplied" && vm.relays.length > 0) {
      const list = vm.appliedAt.get(n.index) ?? [];
      list.push(now);
      vm.appliedAt.set(n.index, list);
    }
    switch (e.kind) {
      case "tick": {
        if (vm.primary !== n.index) return;
        if (vm.lastTickAt >= 0) {
          const dt = now - vm.lastTickAt;
          if (vm.paused) vm.pausedMs += dt;
          else vm.throttleMs += vm.intensity * dt;
        }
        vm.lastTickAt = now;
        if (e.pause && !vm.paused) vm.pauses++;
        vm.paused = e.pause;
        vm.intensity = e.intensity;
        vm.b = e.b;
        this.bufferLevels.add(e.b);
        this.intensities.add(e.intensity);
        if (this.checkpointPauseMs > 0) {
          vm.checkpoints++;
          vm.checkpointMs += this.checkpointPauseMs;
          vm.checkpointDebt += this.checkpointPauseMs;
        }
        return;
      }
      case "epochCut":
        if (vm.primary === n.index) vm.cutEpoch = e.epoch;
        return;
      case "promoted":
        vm.primary = n.index;
        vm.term = e.term;
        vm.cutEpoch = e.epoch;
        vm.lastTickAt = now;
        vm.paused = false;
        vm.intensity = 0;
        vm.b = 0;
        vm.checkpointDebt = 0;
        vm.pendingOutputs.length = 0;
        n.primaryOf.add(vm.index);
        if (e.reason === "election") {
          // Once the group settles, new backups replace the lost ones (seeded by resync).
          const term = e.term;
          this.at(now + 2 * vm.params.leaseMs, () => this.reseed(vm, term));
          this.failovers.push({
            vm: vm.name,
            node: n.name,
            term: e.term,
            at: now,
            cause: vm.lostCause ?? "none",
            ms: vm.lostAt >= 0 ? now - vm.lostAt : null,
          });
        }
        vm.lostAt = -1;
        vm.lostCause = null;
        return;
      case "fenced":
      case "demoted":
      case "stopped":
        if (vm.primary !== n.index) return;
        vm.primary = -1;
        n.primaryOf.delete(vm.index);
        vm.pendingOutputs.length = 0; // never released: no client saw them
        if (e.kind === "fenced" && e.reason === "lease-lost" && vm.lostAt < 0) {
          vm.lostAt = now;
          vm.lostCause = "fence";
          this.primaryLosses.push({ vm: vm.name, node: n.name, at: now, cause: "fence" });
        }
        return;
      case "migrationCompleted":
      case "migrationAborted": {
        const m = this.migrations.findLast((r) => r.vm === vm.name && r.outcome === null);
        if (!m) return;
        m.totalMs = e.totalMs;
        if (e.kind === "migrationCompleted") {
          m.outcome = "completed";
          m.blackoutMs = e.blackoutMs;
        } else {
          m.outcome = "aborted";
          m.reason = e.reason;
        }
        return;
      }
      default:
        return;
    }
  }

  // ---- guests ----

  private guestTick(idx: number, life: number): void {
    const n = this.nodes[idx];
    if (!n.up || n.life !== life) return;
    for (const vi of n.primaryOf) this.runGuest(this.vms[vi], n);
    this.engine.schedule(this.engine.now + this.guestTickMs, this.kGuest, idx, life);
    this.afterHandler();
  }

  private runGuest(vm: SimVm, n: RamNode): void {
    const rep = n.rep!;
    if (!rep.running(vm.name)) return;
    let dt = this.guestTickMs;
    if (vm.checkpointDebt > 0) {
      const c = Math.min(dt, vm.checkpointDebt);
      vm.checkpointDebt -= c;
      dt -= c;
    }
    const out = this.scratch;
    out.length = 0;
    vm.workload.pages(dt, rep.intensity(vm.name), vm.random, out);
    if (out.length > 0) {
      const img = vm.images[n.index]!;
      for (let i = 0; i < out.length; i++) img.write(out[i], ++vm.version);
      rep.markDirty(vm.name, out);
      vm.pagesDirtied += out.length;
    }
    if (this.modelOutputs) this.emitOutput(vm, rep);
  }

  /**
   * The guest emits one output now. It reflects the writes so far, which the next cut
   * (epoch cutEpoch + 1) or an earlier one holds; with output buffering it waits until the
   * primary's commit point (the epoch every live backup applied) reaches that epoch.
   */
  private emitOutput(vm: SimVm, rep: RamReplicator<number>): void {
    const now = this.engine.now;
    vm.outputsEmitted++;
    const epoch = vm.cutEpoch + 1;
    if (!this.ram.outputBuffering) {
      this.release(vm, vm.term, epoch, now);
      return;
    }
    vm.pendingOutputs.push({ term: vm.term, epoch, at: now });
    const s = rep.status(vm.name);
    const q = vm.pendingOutputs;
    let k = 0;
    while (k < q.length && q[k].term === s.appliedTerm && q[k].epoch <= s.lastAppliedEpoch) {
      this.release(vm, q[k].term, q[k].epoch, q[k].at);
      k++;
    }
    if (k > 0) q.splice(0, k);
  }

  private release(vm: SimVm, term: number, epoch: number, emittedAt: number): void {
    vm.outputsReleased++;
    this.outputDelayMs.add(this.engine.now - emittedAt);
    this.checkers.outputReleased(vm.name, term, epoch, this.engine.now);
  }

  // ---- replacing lost backups ----

  /**
   * After a failover: for every backup the VM lost (its node down, or empty after a
   * restart), the new primary adds a live node of the VM's candidates that holds no replica
   * (round-robin after the primary, deterministic) and seeds it with a full resync.
   * (Members are only added: the dead one stays in the group, so its majority grows by one.)
   */
  private reseed(vm: SimVm, term: number): void {
    const p = vm.primary >= 0 ? this.nodes[vm.primary] : null;
    if (!p?.up || !p.rep || vm.term !== term || !p.rep.vmIds().includes(vm.name)) return;
    const s = p.rep.status(vm.name);
    if (s.role !== "primary") return;
    const holds = (n: RamNode | undefined) => !!n?.up && !!n.rep?.vmIds().includes(vm.name);
    const addReplica = (t: RamNode, backups: NodeId[]) => {
      const image = this.makeImage(vm, t, this.checkers.wantsDigests);
      vm.images[t.index] = image;
      t.rep!.addVm({
        vmId: vm.name,
        role: "backup",
        image,
        params: vm.params,
        policy: this.makePolicyFor(vm, t),
        primary: p.id,
        backups,
        term: s.term,
        synced: false, // its first lease grant says so, and the primary resyncs it
      });
      vm.reseeded++;
    };
    // A member that came back empty (restarted) gets the VM again.
    for (const b of s.backups) {
      const t = this.byId.get(b);
      if (t?.up && t.rep && !t.rep.vmIds().includes(vm.name)) addReplica(t, s.backups);
    }
    const live = s.backups.filter((b) => holds(this.byId.get(b)));
    let missing = vm.params.backupCount - live.length;
    for (let k = 1; k < this.nodes.length && missing > 0; k++) {
      const t = this.nodes[(p.index + k) % this.nodes.length];
      if (!t.up || !t.rep || s.backups.includes(t.id) || t.rep.vmIds().includes(vm.name)) continue;
      if (!vm.candidates.has(t.index)) continue;
      addReplica(t, [...s.backups, t.id]);
      p.rep.addBackup(vm.name, t.id);
      missing--;
    }
  }

  // ---- migrations ----

  private startMigration(
    m: RamScenario["migrations"][number],
    i: number,
    account: FaultAccount,
  ): void {
    const vm = this.vmByName.get(m.vm)!;
    const src = vm.primary >= 0 ? this.nodes[vm.primary] : null;
    if (!src?.up || !src.rep) return;
    let target: RamNode | undefined;
    if (m.to !== undefined) target = this.nodes.find((x) => x.name === m.to);
    else {
      const first = src.rep.status(vm.name).backups[0];
      target = first === undefined ? undefined : this.byId.get(first);
    }
    if (!target || target === src || !target.up || !target.rep) return;
    if (!target.rep.vmIds().includes(vm.name)) {
      // Not a replica yet: an empty backup that the primary seeds with a full resync.
      const image = this.makeImage(vm, target, this.checkers.wantsDigests);
      vm.images[target.index] = image;
      const s = src.rep.status(vm.name);
      target.rep.addVm({
        vmId: vm.name,
        role: "backup",
        image,
        params: vm.params,
        policy: this.makePolicyFor(vm, target),
        primary: src.id,
        backups: s.backups,
        term: s.term,
        synced: false,
      });
    }
    try {
      src.rep.migrate(vm.name, target.id);
    } catch {
      return; // already migrating
    }
    account.fired++;
    this.migrations.push({
      name: m.name ?? `migrations[${i}]`,
      vm: vm.name,
      from: src.name,
      target: target.name,
      startedAt: this.engine.now,
      outcome: null,
      reason: null,
      totalMs: null,
      blackoutMs: null,
    });
  }

  // ---- messages ----

  private send(from: RamNode, toId: NodeId, msg: RamWire<number>): void {
    const to = this.byId.get(toId);
    if (!to || to === from) return;
    const size = this.usesRelays ? ramWireBytes(msg) : ramMessageBytes(msg as RamMessage<number>);
    const now = this.engine.now;
    from.bytesSent += size;
    from.msgsSent++;
    this.totalBytes += size;
    this.totalMsgs++;
    const delay = this.network.route(from.index, to.index, size, now, from.netRng);
    if (delay < 0) return;
    // Counted when routed rather than on arrival (saves sizing every message twice).
    to.bytesReceived += size;
    this.engine.schedule(now + delay, this.kDeliver, to.index, from.index, msg);
    if (this.network.duplicate(from.netRng)) {
      this.engine.schedule(
        now + this.network.resample(from.netRng),
        this.kDeliver,
        to.index,
        from.index,
        msg,
      );
    }
  }

  private deliver(toIdx: number, fromIdx: number, msg: RamWire<number>): void {
    this.engine.mix(msgCode(msg.t));
    const to = this.nodes[toIdx];
    if (this.recorder) {
      this.record("deliver", to.name, `${describe(msg)} from ${this.nodes[fromIdx].name}`);
    }
    if (!to.up) return;
    if (to.mp) to.mp.onMessage(this.nodes[fromIdx].id, msg);
    else to.rep!.onMessage(this.nodes[fromIdx].id, msg as RamMessage<number>);
    this.afterHandler();
  }

  private fireTimer(idx: number, gen: number, key: string): void {
    const n = this.nodes[idx];
    // (A fired key stays in the map: generations are unique, so it can never match again.)
    if (n.timers.get(key) !== gen) return;
    if (this.recorder) this.record("timer", n.name, key);
    (n.mp ?? n.rep)!.onTimer(key);
    this.afterHandler();
  }

  private record(kind: string, node: string, detail: string): void {
    const r = this.recorder!;
    r.push({ index: this.engine.events, t: this.engine.now, kind, node, detail });
    const keep = this.opts.recordLast!;
    if (r.length > keep * 2) r.splice(0, r.length - keep);
  }

  recentEvents(): RamTraceEvent[] {
    return this.recorder ? this.recorder.slice(-this.opts.recordLast!) : [];
  }

  /** Each VM's primary, term and state (replay output). */
  positions(): string[] {
    return this.vms.map((vm) => {
      const p = vm.primary >= 0 ? this.nodes[vm.primary].name : "none";
      return `${vm.name}: primary ${p} term ${vm.term} epoch ${vm.cutEpoch} b ${
        vm.b.toFixed(3)
      } I ${vm.intensity.toFixed(3)}${vm.paused ? " paused" : ""}`;
    });
  }

  // ---- sampling ----

  private sample(): void {
    const t = this.engine.now;
    for (const vm of this.vms) {
      this.samples.push({
        t,
        vm: vm.index,
        b: vm.b,
        intensity: vm.intensity,
        paused: vm.paused,
        lagMs: vm.lagMs,
      });
    }
  }

  // ---- running ----

  run(onProgress?: (p: RamProgress) => void, sliceEvents = 200_000): void {
    runSliced(this.engine, {
      durationMs: this.durationMs,
      stopAt: this.opts.stopAtEvent ?? Infinity,
      sliceEvents,
      stop: () => this.violation !== null,
      onProgress,
    });
    const now = this.engine.now;
    closeUptime(this.nodes, now);
    // Close each VM's throttle integral at the end of the run.
    for (const vm of this.vms) {
      if (vm.primary >= 0 && vm.lastTickAt >= 0) {
        const dt = now - vm.lastTickAt;
        if (vm.paused) vm.pausedMs += dt;
        else vm.throttleMs += vm.intensity * dt;
        vm.lastTickAt = now;
      }
    }
  }

  get virtualMs(): number {
    return this.engine.now;
  }
  get events(): number {
    return this.engine.events;
  }
  get traceHash(): string {
    return this.engine.traceHash();
  }

  dropCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    dropReasonName.forEach((name, i) => {
      if (i > 0 && this.network.drops[i] > 0) out[name] = this.network.drops[i];
    });
    return out;
  }

  // ---- end of run ----

  evaluateChecks(): CheckResult[] {
    const out: CheckResult[] = [];
    if (this.violation) out.push(violationResult(this.violation));
    out.push(firedCheck("faults.fired", this.faults, "declared faults"));
    if (this.workload.length > 0) {
      out.push(firedCheck("workload.fired", this.workload, "planned migrations"));
    }
    const c = this.checkers;
    for (const spec of this.scenario.checks) {
      if (this.violation?.check === spec.type) continue;
      switch (spec.type) {
        case "ram.intensity":
          out.push({ name: spec.type, ok: true, detail: `held at all ${c.ticks} ticks` });
          break;
        case "ram.single-primary":
          out.push({
            name: spec.type,
            ok: true,
            detail: `held at all ${c.promotions} promotions (${this.failovers.length} failovers)`,
          });
          break;
        case "ram.failover-consistent":
          out.push({
            name: spec.type,
            ok: true,
            detail: `${c.applied} applied epochs and ${c.promotions} promotions matched their ` +
              `cut digests`,
          });
          break;
        case "ram.output-buffering":
          out.push({
            name: spec.type,
            ok: true,
            detail: `${c.releasedOutputs} released outputs, none lost at ` +
              `${this.failovers.length} failovers`,
          });
          break;
        case "ram.pause-bounded":
          out.push({
            name: spec.type,
            ok: true,
            detail: `${c.pauses} emergency pauses, each within its bound`,
          });
          break;
        case "ram.replication-lag":
          out.push(this.lagCheck(spec.maxMs));
          break;
        case "ram.migration":
          out.push(this.migrationCheck(spec.withinMs, spec.expect));
          break;
        case "ram.failover-time":
          out.push(this.failoverTimeCheck(spec.maxMs));
          break;
        case "ram.replication-continues":
          out.push(this.continuityCheck(spec.maxGapMs));
          break;
        default:
          break;
      }
    }
    return out;
  }

  /**
   * Gaps between epochs applied on a backup of a relayed VM, longer than `maxGapMs`, while
   * the backup was up, the VM's primary ran (no primary loss in the gap) and at least one
   * relay stayed up throughout: replication must continue over the surviving path.
   */
  private continuityCheck(maxGapMs: number): CheckResult {
    const name = "ram.replication-continues";
    const relayed = this.vms.filter((v) => v.relays.length > 0);
    if (relayed.length === 0) {
      return { name, ok: false, detail: "no VM uses relays (the check needs ram.vms[].relays)" };
    }
    const end = this.engine.now;
    const upThrough = (i: number, a: number, b: number) =>
      !this.downtimes(i).some(([d, u]) => d < b && u > a);
    const bad: string[] = [];
    let gaps = 0;
    for (const vm of relayed) {
      for (const [node, times] of vm.appliedAt) {
        const all = [...times, end];
        for (let k = 1; k < all.length; k++) {
          const [a, b] = [all[k - 1], all[k]];
          if (b - a <= maxGapMs) continue;
          const primaryLost = this.primaryLosses.some((l) => l.vm === vm.name && l.at < b) &&
            this.primaryLosses.some((l) => l.vm === vm.name && l.at >= a - maxGapMs);
          const anyRelay = vm.relays.some((r) => upThrough(r, a, b));
          if (!upThrough(node, a, b) || primaryLost || !anyRelay) continue;
          gaps++;
          if (bad.length < 3) {
            bad.push(
              `${vm.name} on ${this.nodes[node].name}: no epoch applied from ${
                (a / 1000).toFixed(2)
              } s to ${(b / 1000).toFixed(2)} s with a relay up`,
            );
          }
        }
      }
    }
    const applied = relayed.reduce(
      (s, v) => s + [...v.appliedAt.values()].reduce((x, l) => x + l.length, 0),
      0,
    );
    return {
      name,
      ok: gaps === 0 && applied > 0,
      detail: gaps > 0
        ? `${gaps} gaps over ${maxGapMs} ms: ${bad.join("; ")}`
        : `${applied} epochs applied over relays; no gap over ${maxGapMs} ms while a relay lived`,
    };
  }

  /** When node i was down: [from, to) intervals (to = Infinity if it never came back). */
  private downtimes(i: number): Array<[number, number]> {
    return this.downs.get(i) ?? [];
  }

  private lagCheck(maxMs: number): CheckResult {
    const h = this.metrics.steadyLagMs;
    const p99 = h.percentile(99);
    return {
      name: "ram.replication-lag",
      ok: p99 !== null && p99 <= maxMs,
      detail: p99 === null
        ? "no replication lag sample outside fault windows"
        : `p99 ${
          p99.toFixed(1)
        } ms over ${h.count} samples outside fault windows (bound ${maxMs} ms)`,
    };
  }

  private migrationCheck(withinMs: number, expect: "completed" | "aborted"): CheckResult {
    const name = "ram.migration";
    if (this.ram.migrations.length === 0) {
      return { name, ok: false, detail: "no planned migration (the check needs ram.migrations)" };
    }
    const bad: string[] = [];
    if (this.migrations.length < this.ram.migrations.length) {
      bad.push(`${this.ram.migrations.length - this.migrations.length} never started`);
    }
    for (const m of this.migrations) {
      const what = `${m.vm} to ${m.target}`;
      if (m.outcome === null) bad.push(`${what} never finished`);
      else if (m.outcome !== expect) {
        bad.push(`${what} ${m.outcome}${m.reason ? ` (${m.reason})` : ""}, expected ${expect}`);
      } else if (expect === "completed" && m.totalMs! > withinMs) {
        bad.push(`${what} took ${m.totalMs!.toFixed(0)} ms (bound ${withinMs} ms)`);
      }
    }
    const desc = this.migrations.map((m) =>
      `${m.vm} to ${m.target}: ${m.outcome ?? "unfinished"}${
        m.totalMs !== null ? ` in ${m.totalMs.toFixed(0)} ms` : ""
      }${m.blackoutMs !== null ? `, blackout ${m.blackoutMs.toFixed(1)} ms` : ""}${
        m.reason ? ` (${m.reason})` : ""
      }`
    ).join("; ");
    return { name, ok: bad.length === 0, detail: bad.length ? bad.join("; ") : desc };
  }

  private failoverTimeCheck(maxMs: number): CheckResult {
    const name = "ram.failover-time";
    if (this.primaryLosses.length === 0) {
      return {
        name,
        ok: false,
        detail: "no primary was lost (the check needs a crash or a partition of a primary)",
      };
    }
    const bad: string[] = [];
    const times: number[] = [];
    for (const c of this.primaryLosses) {
      const what = c.cause === "crash" ? "crashed" : "was fenced (lease lost)";
      const f = this.failovers.find((x) => x.vm === c.vm && x.at >= c.at);
      if (!f) {
        bad.push(`${c.vm}: no new primary after ${c.node} ${what} at ${c.at.toFixed(0)} ms`);
      } else {
        const ms = f.at - c.at;
        times.push(ms);
        if (ms > maxMs) {
          bad.push(
            `${c.vm}: ${ms.toFixed(0)} ms from ${c.node} ${what} to a new primary ` +
              `(bound ${maxMs} ms)`,
          );
        }
      }
    }
    const crashes = this.primaryLosses.filter((c) => c.cause === "crash").length;
    return {
      name,
      ok: bad.length === 0,
      detail: bad.length
        ? bad.join("; ")
        : `${crashes} primary crashes and ${this.primaryLosses.length - crashes} fenced ` +
          `primaries, slowest failover ${Math.max(...times).toFixed(0)} ms (bound ${maxMs} ms)`,
    };
  }

  /** Headline RAM metrics for summary.json (`metrics.ram`). */
  metricsSummary() {
    const m = this.metrics;
    const sum = (f: (vm: SimVm) => number) => this.vms.reduce((s, vm) => s + f(vm), 0);
    const profiles: Record<string, number> = {};
    for (const vm of this.vms) profiles[vm.profile] = (profiles[vm.profile] ?? 0) + 1;
    const round = (v: number | null, d = 3) =>
      v === null ? null : Math.round(v * 10 ** d) / 10 ** d;
    const completed = this.migrations.filter((x) => x.outcome === "completed");
    return {
      vms: this.vms.length,
      nodes: this.nodes.length,
      policy: this.policy,
      profiles,
      profileSwitches: this.profileSwitches.map((x) => ({ ...x })),
      backupsReseeded: this.vms.reduce((a, v) => a + v.reseeded, 0),
      bufferLevel: {
        mean: round(this.bufferLevels.mean),
        p99: round(this.bufferLevels.percentile(99)),
        max: round(this.bufferLevels.count ? this.bufferLevels.max : null),
      },
      intensity: {
        mean: round(this.intensities.mean),
        max: round(this.intensities.count ? this.intensities.max : null),
      },
      integratedThrottleS: round(
        sum((vm) => vm.throttleMs + vm.pausedMs + vm.checkpointMs) / 1000,
      ),
      pauses: { count: sum((vm) => vm.pauses), totalMs: round(sum((vm) => vm.pausedMs), 1) },
      checkpoints: {
        count: sum((vm) => vm.checkpoints),
        totalMs: round(sum((vm) => vm.checkpointMs), 1),
      },
      replicationLag: {
        count: m.lagMs.count,
        p50Ms: round(m.lagMs.percentile(50), 2),
        p99Ms: round(m.lagMs.percentile(99), 2),
        maxMs: round(m.lagMs.count ? m.lagMs.max : null, 2),
        steadyP99Ms: round(m.steadyLagMs.percentile(99), 2),
      },
      epochCommit: {
        count: m.commitMs.count,
        p50Ms: round(m.commitMs.percentile(50), 2),
        p99Ms: round(m.commitMs.percentile(99), 2),
      },
      epochs: m.counter("mycelium_ram_epochs_total"),
      pagesDirtied: sum((vm) => vm.pagesDirtied),
      pagesReplicated: m.counter("mycelium_replications_total"),
      bytesReplicated: m.counter("mycelium_ram_bytes_replicated_total"),
      drops: {
        count: m.counter("mycelium_ram_drops_total"),
        pages: m.counter("mycelium_ram_dropped_pages_total"),
      },
      retransmits: m.counter("mycelium_ram_retransmits_total"),
      resyncs: m.counter("mycelium_ram_resyncs_total"),
      elections: m.counter("mycelium_ram_elections_total"),
      failovers: {
        count: this.failovers.length,
        list: this.failovers.map((f) => ({ ...f, ms: round(f.ms, 1) })),
      },
      migrations: {
        count: this.migrations.length,
        completed: completed.length,
        aborted: this.migrations.filter((x) => x.outcome === "aborted").length,
        list: this.migrations.map((x) => ({
          ...x,
          totalMs: round(x.totalMs, 1),
          blackoutMs: round(x.blackoutMs, 1),
        })),
      },
      outputs: this.modelOutputs
        ? {
          buffering: this.ram.outputBuffering,
          emitted: sum((vm) => vm.outputsEmitted),
          released: sum((vm) => vm.outputsReleased),
          delayP50Ms: round(this.outputDelayMs.percentile(50), 2),
          delayP99Ms: round(this.outputDelayMs.percentile(99), 2),
        }
        : null,
      networkBytes: this.totalBytes,
      networkMessages: this.totalMsgs,
      networkDrops: this.dropCounts(),
      logs: Object.fromEntries(this.logCounts),
    };
  }
}
