/**
 * A simulation of one scenario: builds the nodes (each a real core/ protocol instance behind
 * a simulated Host), the network model and the fault schedule, runs the event loop and
 * evaluates the checks. Same scenario + seed gives the same trace hash.
 */
import { ConfigError } from "../core/errors.ts";
import type { DurableStore, Host, Logger, Metrics } from "../core/host.ts";
import { IdInterner, type NodeId, nodeIdFromPublicKey } from "../core/ids.ts";
import { swimEncodedSize } from "../core/membership/codec.ts";
import type { SwimMessage } from "../core/membership/messages.ts";
import { Swim } from "../core/membership/swim.ts";
import { suspicionBounds } from "../core/membership/config.ts";
import { closeUptime, Engine, runSliced } from "./engine.ts";
import { lifeTimers, newNodeRuntime, nodeClock, type NodeRuntime } from "./node_runtime.ts";
import { MembershipObserver, type Violation } from "./membership_observer.ts";
import { dropReasonName, NetworkModel } from "./network.ts";
import { scheduleFaults } from "./fault_schedule.ts";
import { Rng } from "./rng.ts";
import type { Scenario, Tier } from "./scenario.ts";
import { type NodeInfo, resolveSelector, validateSelector } from "./selectors.ts";
import { type CheckResult, declared, evaluateChecks, type FaultAccount } from "./checks.ts";

/** IP + UDP header bytes added to every datagram's payload for byte accounting. */
export const DATAGRAM_OVERHEAD = 28;

const MSG_CODE: Record<SwimMessage["t"], number> = {
  ping: 1,
  ack: 2,
  nack: 3,
  pingreq: 4,
  gossip: 5,
  pushpull: 6,
};

export interface SimNode extends NodeInfo, NodeRuntime {
  readonly id: NodeId;
  readonly startAt: number;
  readonly isJoiner: boolean;
  left: boolean;
  proto: Swim | null;
}

export type { CheckResult, FaultAccount } from "./checks.ts";

export interface SampleRow {
  t: number;
  up: number;
  suspectViews: number;
  deadViews: number;
  bytesPerSec: number;
  msgsPerSec: number;
}

export interface TraceEvent {
  index: number;
  t: number;
  kind: string;
  node: string;
  detail: string;
}

export interface SimOptions {
  /** Overrides the scenario's seed. */
  seed?: number;
  /** Keep the last `recordLast` events described (for replay). */
  recordLast?: number;
  /** Stop after this many events (replay). */
  stopAtEvent?: number;
  /** Receives one JSON line per delivered message and node event (scenario outputs.trace). */
  trace?: (line: string) => void;
}

export interface Progress {
  virtualMs: number;
  durationMs: number;
  events: number;
}

class CounterMetrics implements Metrics {
  readonly counters = new Map<string, number>();
  inc(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }
  set(): void {}
  observe(): void {}
}

class SimLogger implements Logger {
  readonly counts = new Map<string, number>();
  log(level: string, event: string): void {
    if (level === "warn" || level === "error") {
      this.counts.set(event, (this.counts.get(event) ?? 0) + 1);
    }
  }
}

/** The Host a protocol instance sees inside the simulator (one per node life). */
class SimHost implements Host<SwimMessage> {
  readonly self: NodeId;
  readonly ids: IdInterner;
  readonly storage: DurableStore;
  readonly log: Logger;
  readonly metrics: Metrics;
  private readonly rng: Rng;
  readonly setTimer: (key: string, delayMs: number) => void;
  readonly cancelTimer: (key: string) => void;

  constructor(
    private readonly sim: Simulation,
    private readonly node: SimNode,
    private readonly life: number,
  ) {
    this.self = node.id;
    this.ids = sim.ids;
    this.storage = node.store;
    this.log = sim.logger;
    this.metrics = sim.metrics;
    this.rng = sim.rootRng.derive(`node/${node.name}/life/${life}`);
    ({ setTimer: this.setTimer, cancelTimer: this.cancelTimer } = lifeTimers(
      sim.engine,
      sim.kTimer,
      node,
      life,
    ));
  }
  private get current(): boolean {
    return this.node.up && this.node.life === this.life;
  }
  now(): number {
    return nodeClock(this.node, this.sim.engine.now);
  }
  random(): number {
    return this.rng.next();
  }
  send(to: NodeId, msg: SwimMessage): void {
    if (this.current) this.sim.send(this.node, to, msg);
  }
}

export class Simulation {
  readonly scenario: Scenario;
  readonly seed: number;
  readonly engine = new Engine();
  readonly rootRng: Rng;
  readonly ids = new IdInterner();
  readonly metrics = new CounterMetrics();
  readonly logger = new SimLogger();
  readonly nodes: SimNode[] = [];
  readonly network: NetworkModel;
  readonly observer: MembershipObserver;
  readonly faults: FaultAccount[] = [];
  /** Workload operations (leaves), accounted like faults. */
  readonly workload: FaultAccount[] = [];
  readonly samples: SampleRow[] = [];
  readonly durationMs: number;
  /** When the last fault ends (heal, restart): "eventually" is measured from here. */
  readonly lastFaultEnd: number;
  private readonly partitionGraceMs: number;

  readonly kDeliver: number;
  readonly kTimer: number;
  readonly kAction: number;

  private readonly byId = new Map<NodeId, SimNode>();
  private readonly seedIds: NodeId[];
  private readonly actions: Array<() => void> = [];
  private readonly opts: SimOptions;
  private readonly sidesServing: boolean;
  private readonly recorder: TraceEvent[] | null;
  violation: (Violation & { event: number; t: number }) | null = null;
  convergedAt: number | null = null;
  private lastUnconvergedSample = 0;
  totalBytes = 0;
  totalMsgs = 0;
  deliveredMsgs = 0;
  private intervalBytes = 0;
  private intervalMsgs = 0;

  constructor(scenario: Scenario, opts: SimOptions = {}) {
    this.scenario = scenario;
    this.opts = opts;
    this.seed = opts.seed ?? scenario.seed;
    this.rootRng = Rng.fromSeed(this.seed);
    this.durationMs = scenario.duration;
    this.recorder = opts.recordLast ? [] : null;
    // Declarations this long after a heal still count as partition fallout, not false
    // positives: the longest suspicion timeout plus the dead-gossip window.
    const m = scenario.protocol.membership;
    const n = scenario.nodes.reduce((s, g) => s + g.count, 0);
    this.partitionGraceMs = suspicionBounds(m, n).max + m.gossipToTheDeadMs;

    // Nodes: ids from modelled public keys, interned in index order (index == interned id).
    let initialCount = 0;
    for (const g of scenario.nodes) {
      const startRng = this.rootRng.derive(`start/${g.group}`);
      for (let k = 0; k < g.count; k++) {
        const index = this.nodes.length;
        const name = `${g.group}-${k}`;
        const pub = new TextEncoder().encode(`mycelium-sim-key/${this.seed}/${name}`);
        const id = nodeIdFromPublicKey(pub);
        if (this.byId.has(id)) throw new ConfigError(`duplicate node id for ${name}`, "nodes");
        const startAt = g.start.at + (g.start.spread > 0 ? startRng.next() * g.start.spread : 0);
        const isJoiner = g.start.at > 0;
        if (!isJoiner) initialCount++;
        const node: SimNode = {
          index,
          id,
          name,
          group: g.group,
          indexInGroup: k,
          tier: g.tier as Tier,
          region: g.region,
          startAt,
          isJoiner,
          ...newNodeRuntime(this.rootRng, name),
          left: false,
          proto: null,
        };
        this.nodes.push(node);
        this.byId.set(id, node);
        this.ids.intern(id);
      }
    }
    const initial = this.nodes.filter((n) => !n.isJoiner);
    this.seedIds = initial.slice(0, scenario.bootstrap.seedNodes).map((n) => n.id);
    this.network = new NetworkModel(scenario.network, this.nodes.map((n) => n.region));
    this.observer = new MembershipObserver(
      this.nodes.length,
      initialCount,
      () => this.engine.now,
      (a, b) => this.network.partitioned(a, b, this.engine.now, this.partitionGraceMs),
      (i) => this.nodes[i].name,
    );
    this.observer.checkIncarnations = scenario.checks.some((c) =>
      c.type === "membership.incarnation-monotonic"
    );
    this.sidesServing = scenario.checks.some((c) => c.type === "membership.sides-serving");

    this.kDeliver = this.engine.register((to, from, msg) =>
      this.deliver(to, from, msg as SwimMessage)
    );
    this.kTimer = this.engine.register((node, gen, key) =>
      this.fireTimer(node, gen, key as string)
    );
    this.kAction = this.engine.register((i) => this.actions[i]());

    for (const n of this.nodes) this.at(n.startAt, () => this.startNode(n));
    this.lastFaultEnd = Math.max(this.scheduleFaults(), this.scheduleWorkload());
    const every = scenario.outputs.sampleInterval;
    for (let t = every; t <= this.durationMs; t += every) this.at(t, () => this.sample());
  }

  // ---- scheduling helpers ----

  private at(t: number, fn: () => void): void {
    const id = this.actions.length;
    this.actions.push(fn);
    this.engine.schedule(t, this.kAction, id, 0, undefined);
  }

  private nodesInfo(): readonly NodeInfo[] {
    return this.nodes;
  }

  /** Validates every selector up front, schedules faults; returns when the last one ends. */
  private scheduleFaults(): number {
    return scheduleFaults(this.scenario.faults, {
      durationMs: this.durationMs,
      rootRng: this.rootRng,
      network: this.network,
      nodesInfo: () => this.nodesInfo(),
      at: (t, fn) => this.at(t, fn),
      now: () => this.engine.now,
      isUp: (i) => this.nodes[i].up,
      crash: (i, lose) => this.crashNode(this.nodes[i], lose),
      restart: (i) => this.startNode(this.nodes[i]),
      clock: (i) => ({ offset: this.nodes[i].clockOffset, drift: this.nodes[i].clockDrift }),
      setClock: (i, offset, drift) => {
        this.nodes[i].clockOffset = offset;
        this.nodes[i].clockDrift = drift;
      },
      onFaultStart: () => this.observer.closeFormation(),
      trace: (obj) => this.trace(obj),
    }, this.faults);
  }

  /** Schedules the workload (graceful leaves); returns when the last operation ends. */
  private scheduleWorkload(): number {
    let lastEnd = 0;
    const info = this.nodesInfo();
    const propagate = this.scenario.protocol.membership.leavePropagateMs;
    this.scenario.workload.leaves.forEach((w, wi) => {
      const path = `workload.leaves[${wi}]`;
      validateSelector(w.nodes, info, `${path}.nodes`);
      if (w.at > this.durationMs) {
        throw new ConfigError(
          `at (${w.at} ms) is after the end of the run (${this.durationMs} ms)`,
          `${path}.at`,
        );
      }
      const account = declared("leave", w.at, w.name);
      this.workload.push(account);
      const rng = this.rootRng.derive(`workload/leave/${wi}`);
      this.at(w.at, () => {
        this.observer.closeFormation();
        const isUp = (i: number) => this.nodes[i].up;
        for (const i of resolveSelector(w.nodes, info, rng, isUp).filter(isUp)) {
          const n = this.nodes[i];
          n.proto!.leave();
          account.fired++;
          this.trace({ ev: "leave", node: n.name });
          const life = n.life;
          // The node process exits once its leave has propagated.
          this.at(this.engine.now + propagate, () => {
            if (n.up && n.life === life) this.stopNode(n, false);
          });
        }
      });
      lastEnd = Math.max(lastEnd, w.at + propagate);
    });
    return lastEnd;
  }

  // ---- node lifecycle ----

  private startNode(n: SimNode): void {
    if (n.up) return;
    n.up = true;
    n.left = false;
    n.life++;
    n.timers = new Map();
    n.upSince = this.engine.now;
    const boot = this.scenario.bootstrap;
    const firstStart = n.life === 1;
    const fromSnapshot = boot.mode === "snapshot" && firstStart && !n.isJoiner;
    const proto = new Swim({
      config: this.scenario.protocol.membership,
      seeds: fromSnapshot ? [] : this.seedIds,
      initialMembers: fromSnapshot ? this.initialIds() : undefined,
      listener: (t, from, to, oldInc, newInc, origin) =>
        this.observer.onChange(n.index, t, from, to, oldInc, newInc, origin),
      onSnapshot: (members) => this.observer.snapshotAlive(n.index, members),
    });
    n.proto = proto;
    this.observer.nodeUp(n.index, n.isJoiner);
    this.trace({ ev: firstStart ? "start" : "restart", node: n.name });
    proto.start(new SimHost(this, n, n.life));
  }

  private snapshotCache: { nodes: NodeId[]; incs: number[] } | null = null;
  /** The snapshot: every initial node at incarnation 1, the one it boots with. */
  private initialIds(): { nodes: NodeId[]; incs: number[] } {
    if (!this.snapshotCache) {
      const nodes = this.nodes.filter((n) => !n.isJoiner).map((n) => n.id);
      this.snapshotCache = { nodes, incs: nodes.map(() => 1) };
    }
    return this.snapshotCache;
  }

  private crashNode(n: SimNode, loseUnsynced: boolean): void {
    if (!n.up) return;
    n.store.crash(loseUnsynced);
    this.trace({ ev: "crash", node: n.name });
    this.stopNode(n, true);
  }

  private stopNode(n: SimNode, crashed: boolean): void {
    const proto = n.proto!;
    this.observer.nodeDown(n.index, crashed, (_o, t) => proto.stateAt(t));
    proto.stop();
    n.proto = null;
    n.up = false;
    n.left = !crashed;
    n.life++;
    n.timers.clear();
    n.upMs += this.engine.now - n.upSince;
  }

  // ---- messages and timers ----

  send(from: SimNode, toId: NodeId, msg: SwimMessage): void {
    const to = this.byId.get(toId);
    if (!to) return;
    const size = swimEncodedSize(msg) + DATAGRAM_OVERHEAD;
    from.bytesSent += size;
    from.msgsSent++;
    this.totalBytes += size;
    this.totalMsgs++;
    this.intervalBytes += size;
    this.intervalMsgs++;
    const now = this.engine.now;
    const delay = this.network.route(from.index, to.index, size, now, from.netRng);
    const cost = this.scenario.signatures.verifyCostUs / 1000;
    if (this.opts.trace) {
      // Send side of the message-sequence diagram: when it leaves and when it will arrive.
      this.trace({
        ev: "send",
        from: from.name,
        to: to.name,
        type: msg.t,
        bytes: size,
        at: delay < 0 ? null : now + delay + cost,
      });
    }
    if (delay < 0) return;
    this.engine.schedule(now + delay + cost, this.kDeliver, to.index, from.index, msg);
    if (this.network.duplicate(from.netRng)) {
      this.engine.schedule(
        now + this.network.resample(from.netRng) + cost,
        this.kDeliver,
        to.index,
        from.index,
        msg,
      );
    }
  }

  private deliver(toIdx: number, fromIdx: number, msg: SwimMessage): void {
    this.engine.mix(MSG_CODE[msg.t]);
    const to = this.nodes[toIdx];
    if (this.recorder) this.record("deliver", to.name, `${msg.t} from ${this.nodes[fromIdx].name}`);
    if (!to.up) return;
    const size = swimEncodedSize(msg) + DATAGRAM_OVERHEAD;
    to.bytesReceived += size;
    this.deliveredMsgs++;
    if (this.opts.trace) {
      this.trace({
        ev: "msg",
        from: this.nodes[fromIdx].name,
        to: to.name,
        type: msg.t,
        bytes: size,
      });
    }
    to.proto!.onMessage(this.nodes[fromIdx].id, msg);
    this.afterHandler();
  }

  private fireTimer(nodeIdx: number, gen: number, key: string): void {
    const n = this.nodes[nodeIdx];
    if (n.timers.get(key) !== gen) return; // replaced, cancelled or from an earlier life
    n.timers.delete(key);
    if (this.recorder) this.record("timer", n.name, key);
    n.proto!.onTimer(key);
    this.afterHandler();
  }

  private afterHandler(): void {
    if (this.observer.violation && !this.violation) this.fail(this.observer.violation);
  }

  private fail(v: Violation): void {
    this.violation = { ...v, event: this.engine.events, t: this.engine.now };
    this.engine.halt();
  }

  private record(kind: string, node: string, detail: string): void {
    const r = this.recorder!;
    r.push({ index: this.engine.events, t: this.engine.now, kind, node, detail });
    if (r.length > this.opts.recordLast! * 2) r.splice(0, r.length - this.opts.recordLast!);
  }

  recentEvents(): TraceEvent[] {
    return this.recorder ? this.recorder.slice(-this.opts.recordLast!) : [];
  }

  private trace(obj: Record<string, unknown>): void {
    if (this.opts.trace) this.opts.trace(JSON.stringify({ t: this.engine.now, ...obj }));
    if (this.recorder && obj.ev !== "msg") {
      this.record(String(obj.ev), String(obj.node ?? obj.fault ?? ""), JSON.stringify(obj));
    }
  }

  // ---- sampling and checks ----

  private sample(): void {
    const o = this.observer;
    const secs = this.scenario.outputs.sampleInterval / 1000;
    this.samples.push({
      t: this.engine.now,
      up: o.upCount,
      suspectViews: o.suspectViews,
      deadViews: o.deadViews,
      bytesPerSec: this.intervalBytes / secs,
      msgsPerSec: this.intervalMsgs / secs,
    });
    this.intervalBytes = 0;
    this.intervalMsgs = 0;
    if (o.converged()) {
      if (this.convergedAt === null && this.engine.now >= this.lastFaultEnd) {
        this.convergedAt = this.engine.now;
      }
    } else {
      this.convergedAt = null;
      this.lastUnconvergedSample = this.engine.now;
    }
    if (this.sidesServing) {
      const v = this.checkSidesServing();
      if (v) this.fail(v);
    }
  }

  /** During a partition, no live node declares a live node of its own side dead. */
  checkSidesServing(): Violation | null {
    for (const rule of this.network.rules) {
      if (rule.kind !== "partition") continue;
      const g = rule.groupOf!;
      for (const a of this.nodes) {
        if (!a.up || a.proto!.hasLeft) continue;
        for (const b of this.nodes) {
          if (a === b || !b.up || g[a.index] !== g[b.index]) continue;
          const s = a.proto!.stateAt(b.index);
          if (s === 2 || s === 3) {
            return {
              check: "membership.sides-serving",
              detail: `${a.name} declared ${b.name} (same side, up) ${
                s === 2 ? "dead" : "left"
              } during the partition`,
            };
          }
        }
      }
    }
    return null;
  }

  /** Runs to the end (or a violation / stopAtEvent). */
  run(onProgress?: (p: Progress) => void, sliceEvents = 200_000): void {
    runSliced(this.engine, {
      durationMs: this.durationMs,
      stopAt: this.opts.stopAtEvent ?? Infinity,
      sliceEvents,
      stop: () => this.violation !== null,
      onProgress,
    });
    closeUptime(this.nodes, this.engine.now);
  }

  get finished(): boolean {
    return this.violation === null && this.engine.now >= this.durationMs;
  }

  dropCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    dropReasonName.forEach((name, i) => {
      if (i > 0 && this.network.drops[i] > 0) out[name] = this.network.drops[i];
    });
    return out;
  }

  /** Evaluates every configured check at the end of the run. */
  evaluateChecks(): CheckResult[] {
    return evaluateChecks(this);
  }

  get traceHash(): string {
    return this.engine.traceHash();
  }
  get virtualMs(): number {
    return this.engine.now;
  }
  get events(): number {
    return this.engine.events;
  }
  counters(): Record<string, number> {
    return Object.fromEntries([...this.metrics.counters].sort());
  }
}
