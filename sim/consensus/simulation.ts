/**
 * The consensus simulator: every node of a scenario with a `consensus` section runs the
 * Tendermint core (`core/consensus/tendermint.ts`) over the replicated state
 * (`core/consensus/state.ts`) on the same engine, network model, fault schedule and seeded
 * streams as the membership simulator. On top:
 * - closed-loop KV clients attached to a voter, retrying at the next voter after `retryMs`;
 * - commit-reveal tasks executed by the voters;
 * - Byzantine behaviours per node (adversary modules wrapping the node's outgoing messages
 *   or its executor), and Twins (a second instance sharing a voter's identity and key);
 * - the online checkers (observer.ts) and, at the end, liveness, linearizability and trust.
 */
import { ConfigError } from "../../core/errors.ts";
import type { Logger, Metrics } from "../../core/host.ts";
import { IdInterner, type NodeId, nodeIdFromPublicKey } from "../../core/ids.ts";
import { commitDigest } from "../../core/consensus/commit_reveal.ts";
import { type Applied, ReplicatedState } from "../../core/consensus/state.ts";
import { type ConsensusHost, Tendermint } from "../../core/consensus/tendermint.ts";
import { roundsToDropBelow, roundsToReach, TRUST } from "../../core/consensus/trust.ts";
import {
  blockHash,
  type ClientOp,
  type CommittedBlock,
  type ConsensusMessage,
  type KvOp,
  proposalPayload,
  type Vote,
  votePayload,
} from "../../core/consensus/types.ts";
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
import { NetworkModel } from "../network.ts";
import { Rng } from "../rng.ts";
import type { ByzantineBehaviour, Scenario, Tier } from "../scenario.ts";
import { type NodeInfo, resolveSelector, validateSelector } from "../selectors.ts";
import type { Violation } from "../membership_observer.ts";
import { ConsensusObserver } from "./observer.ts";
import { SignatureModel } from "./signatures.ts";
import { checkLinearizable, type HistoryEntry } from "./linearizability.ts";
import { percentile } from "../summary.ts";

const DATAGRAM_OVERHEAD = 28;

interface Instance extends NodeInfo, NodeRuntime {
  readonly startAt: number;
  readonly id: NodeId;
  readonly twinOf: number | null;
  readonly behaviours: Set<ByzantineBehaviour>;
  correct: boolean;
  proto: Tendermint | null;
  state: ReplicatedState | null;
  readonly rng: Rng;
  /** Recently received consensus messages (the replay adversary's ammunition). */
  seen: ConsensusMessage[];
  /** Commit-reveal work of this executor: task -> what it committed. */
  exec: Map<string, { result: string; salt: string; commitDeadline: number; revealed: boolean }>;
}

type Entry = { -readonly [K in keyof HistoryEntry]: HistoryEntry[K] };

interface Client {
  readonly name: string;
  readonly index: number;
  target: number;
  seq: number;
  op: ClientOp | null;
  invoke: number;
  entry: Entry | null;
  /** The value this client last read or wrote per key (for cas expectations). */
  readonly known: Map<string, string | null>;
  readonly rng: Rng;
  gen: number;
}

export interface ConsensusProgress {
  virtualMs: number;
  durationMs: number;
  events: number;
}

export interface ConsensusSimOptions {
  seed?: number;
  /** Stop after this many events (replay). */
  stopAtEvent?: number;
  /** Keep the last N deliveries and timers for `recentEvents()` (replay). */
  recordLast?: number;
  /** Stop once correct nodes agreed on this many heights (benchmarks). */
  stopAtHeight?: number;
}

export interface ConsensusTraceEvent {
  index: number;
  t: number;
  kind: string;
  node: string;
  detail: string;
}

/** A one-line description of a consensus message (replay output). */
function describeMessage(m: ConsensusMessage, name: (id: NodeId) => string): string {
  switch (m.t) {
    case "prevote":
    case "precommit":
      return `${m.t} h${m.h} r${m.r} ${m.block?.slice(0, 8) ?? "nil"} by ${name(m.voter)}`;
    case "proposal":
      return `proposal h${m.h} r${m.r} ${
        m.block.slice(0, 8)
      } (${m.body.ops.length} ops, vr ${m.validRound})`;
    case "submit":
      return `submit ${m.op.id}`;
    case "sync-req":
      return `sync-req from h${m.from}`;
    case "sync-resp":
      return `sync-resp ${m.blocks.length} blocks`;
  }
}

class CounterMetrics implements Metrics {
  readonly counters = new Map<string, number>();
  inc(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }
  set(): void {}
  observe(): void {}
}

const quietLog: Logger = { log() {} };

/** Size of a consensus message on the wire, estimated without serialising it. */
function messageSize(m: ConsensusMessage): number {
  switch (m.t) {
    case "prevote":
    case "precommit":
      return 160;
    case "proposal":
      return 240 + m.body.ops.reduce((s, o) => s + opSize(o), 0);
    case "submit":
      return 60 + opSize(m.op);
    case "sync-req":
      return 40;
    case "sync-resp":
      return 40 + m.blocks.reduce(
        (s, b) =>
          s + 240 + 140 * b.cert.votes.length + b.block.ops.reduce((x, o) => x + opSize(o), 0),
        0,
      );
  }
}

function opSize(o: ClientOp): number {
  const op = o.op as { key?: string; value?: string };
  return 48 + o.id.length + (op.key?.length ?? 0) + (op.value?.length ?? 16);
}

/**
 * The trust-dynamics check: DESIGN.md's derived dynamics (honest 0.5 -> 0.9 in 40 rounds,
 * always-wrong below 0.3 after 5) computed from the trust module itself, and in this run
 * every always-wrong executor below its genesis trust, no correct always-up one below it.
 */
export function trustDynamicsProblems(
  voters: ReadonlyArray<{ name: string; alwaysWrong: boolean; correctAndAlwaysUp: boolean }>,
  final: Record<string, number>,
  tasks: number,
): string[] {
  const problems: string[] = [];
  const up = roundsToReach(TRUST.START, 0.9, "correct");
  if (up !== 40) problems.push(`an honest node needs ${up} rounds from 0.5 to 0.9, not 40`);
  const down = roundsToDropBelow(TRUST.START, 0.3, "wrong");
  if (down !== 5) problems.push(`an always-wrong node drops below 0.3 after ${down} rounds, not 5`);
  if (tasks === 0) return problems;
  for (const v of voters) {
    const t = final[v.name];
    if (t === undefined) continue;
    if (v.alwaysWrong && !(t < TRUST.GENESIS)) {
      problems.push(`${v.name} always answered wrong but kept trust ${t}`);
    }
    if (v.correctAndAlwaysUp && t < TRUST.GENESIS) {
      problems.push(`${v.name} was correct and always up but lost trust (${t})`);
    }
  }
  return problems;
}

/** The trust-bounds check on one replica: every score in [0, 1], every excluded node at 0. */
export function trustBoundsProblems(
  st: Pick<ReplicatedState, "trust" | "excluded">,
  name: (id: NodeId) => string,
): string[] {
  const problems: string[] = [];
  for (const [id, score] of st.trust.snapshot()) {
    if (!(score >= 0 && score <= 1)) problems.push(`${name(id)} has trust ${score}`);
  }
  for (const [id] of st.excluded) {
    const t = st.trust.get(id);
    if (t !== 0) problems.push(`${name(id)} excluded with trust ${t}`);
  }
  return problems;
}

/** The honest result of a commit-reveal task: a deterministic function of its input. */
export function taskResult(input: string): string {
  let h = 2166136261;
  for (let i = 0; i < input.length; i++) h = Math.imul(h ^ input.charCodeAt(i), 16777619);
  return `r${(h >>> 0).toString(16)}`;
}

export class ConsensusSimulation {
  readonly scenario: Scenario;
  readonly seed: number;
  readonly engine = new Engine();
  readonly rootRng: Rng;
  readonly ids = new IdInterner();
  readonly metrics = new CounterMetrics();
  readonly instances: Instance[] = [];
  readonly network: NetworkModel;
  readonly sigs = new SignatureModel();
  readonly observer: ConsensusObserver;
  readonly faults: FaultAccount[] = [];
  readonly workload: FaultAccount[] = [];
  readonly durationMs: number;
  readonly lastFaultEnd: number;
  readonly genesisVoters: NodeId[];
  readonly clients: Client[] = [];
  readonly history: Entry[] = [];
  /** Commit latency (ms) of every completed client operation. */
  readonly latencies: number[] = [];
  /** Trust of every identity over time (from a correct replica), one row per sample. */
  readonly trustSamples: Array<{ t: number; node: string; trust: number }> = [];
  /** When each node was excluded (virtual ms, height). */
  readonly exclusions: Array<{ node: string; t: number; height: number; reason: string }> = [];
  readonly heightSamples: Array<{ t: number; height: number; ops: number }> = [];
  violation: (Violation & { event: number; t: number }) | null = null;
  private readonly recorder: ConsensusTraceEvent[] | null;
  private readonly kDeliver: number;
  private readonly kTimer: number;
  private readonly kAction: number;
  private readonly actions: Array<() => void> = [];
  private readonly byId = new Map<NodeId, Instance[]>();
  private readonly nameOf = new Map<NodeId, string>();
  private readonly peers: NodeId[];
  private readonly loadUntil: number;
  private tasksOpened = 0;
  totalBytes = 0;
  totalMsgs = 0;
  private completedOps = 0;

  constructor(scenario: Scenario, private readonly opts: ConsensusSimOptions = {}) {
    const cs = scenario.consensus;
    if (!cs) throw new ConfigError("the scenario has no consensus section", "consensus");
    scenario.checks.forEach((c, i) => {
      if (!c.type.startsWith("consensus.")) {
        throw new ConfigError(
          `${c.type} needs the membership protocol, which a consensus run does not run`,
          `checks[${i}]`,
        );
      }
    });
    this.scenario = scenario;
    this.seed = opts.seed ?? scenario.seed;
    this.rootRng = Rng.fromSeed(this.seed);
    this.durationMs = scenario.duration;
    this.loadUntil = cs.load.until ?? 0.8 * scenario.duration;
    this.recorder = opts.recordLast ? [] : null;

    // Nodes, then twins (same identity, own network position).
    const keyRng = this.rootRng.derive("keys");
    for (const g of scenario.nodes) {
      for (let k = 0; k < g.count; k++) {
        const name = `${g.group}-${k}`;
        const id = nodeIdFromPublicKey(
          new TextEncoder().encode(`mycelium-sim-key/${this.seed}/${name}`),
        );
        this.addInstance(name, g.group, k, g.tier, g.region, id, null);
        this.sigs.register(id, Math.floor(keyRng.next() * 2 ** 32));
      }
    }
    const info = [...this.instances];
    cs.twins.forEach((name, k) => {
      const orig = info.find((n) => n.name === name);
      if (!orig) throw new ConfigError(`no node named "${name}"`, `consensus.twins[${k}]`);
      const t = this.addInstance(
        `twin-${name}`,
        "twin",
        k,
        orig.tier,
        orig.region,
        orig.id,
        orig.index,
      );
      orig.correct = false;
      t.correct = false;
    });
    validateSelector(cs.voters, info, "consensus.voters");
    const voterIdx = resolveSelector(cs.voters, info, this.rootRng.derive("voters"));
    if (voterIdx.length === 0) throw new ConfigError("selects no node", "consensus.voters");
    this.genesisVoters = voterIdx.map((i) => info[i].id).sort();
    this.peers = info.map((n) => n.id);
    cs.byzantine.forEach((b, bi) => {
      validateSelector(b.nodes, info, `consensus.byzantine[${bi}].nodes`);
      for (const i of resolveSelector(b.nodes, info, this.rootRng.derive(`byz/${bi}`))) {
        this.instances[i].behaviours.add(b.behaviour);
        this.instances[i].correct = false;
      }
    });

    this.network = new NetworkModel(scenario.network, this.instances.map((n) => n.region));
    const enabled = new Set(scenario.checks.map((c) => c.type as string));
    this.observer = new ConsensusObserver(this.sigs, enabled);

    this.kDeliver = this.engine.register((to, from, msg) =>
      this.deliver(to, from, msg as ConsensusMessage)
    );
    this.kTimer = this.engine.register((node, gen, key) =>
      this.fireTimer(node, gen, key as string)
    );
    this.kAction = this.engine.register((i) => this.actions[i]());

    for (const n of this.instances) this.at(n.startAt, () => this.start(n));
    this.lastFaultEnd = scheduleFaults(scenario.faults, {
      durationMs: this.durationMs,
      rootRng: this.rootRng,
      network: this.network,
      nodesInfo: () => this.instances,
      at: (t, fn) => this.at(t, fn),
      now: () => this.engine.now,
      isUp: (i) => this.instances[i].up,
      crash: (i, lose) => this.crash(this.instances[i], lose),
      restart: (i) => this.start(this.instances[i]),
      clock: (i) => ({
        offset: this.instances[i].clockOffset,
        drift: this.instances[i].clockDrift,
      }),
      setClock: (i, offset, drift) => {
        this.instances[i].clockOffset = offset;
        this.instances[i].clockDrift = drift;
      },
    }, this.faults);

    // Clients: closed loops, attached round-robin to the genesis voters.
    const voterInstances = this.instances.filter((n) =>
      n.twinOf === null && voterIdx.includes(n.index)
    );
    for (let c = 0; c < cs.load.clients; c++) {
      const client: Client = {
        name: `client-${c}`,
        index: c,
        target: voterInstances[c % voterInstances.length].index,
        seq: 0,
        op: null,
        invoke: 0,
        entry: null,
        known: new Map(),
        rng: this.rootRng.derive(`client/${c}`),
        gen: 0,
      };
      this.clients.push(client);
      this.at(1 + client.rng.next() * Math.max(1, cs.load.thinkMs), () => this.nextOp(client));
    }
    if (cs.tasks.every > 0) {
      const account = declared("task", cs.tasks.every, "commit-reveal tasks");
      this.workload.push(account);
      for (let t = cs.tasks.every; t < this.loadUntil; t += cs.tasks.every) {
        this.at(t, () => this.openTask(account));
      }
    }
    const every = scenario.outputs.sampleInterval;
    for (let t = every; t <= this.durationMs; t += every) this.at(t, () => this.sample());
  }

  private addInstance(
    name: string,
    group: string,
    k: number,
    tier: Tier,
    region: string,
    id: NodeId,
    twinOf: number | null,
  ): Instance {
    const g = this.scenario.nodes.find((x) => x.group === group);
    const inst: Instance = {
      index: this.instances.length,
      name,
      group,
      indexInGroup: k,
      tier,
      region,
      id,
      twinOf,
      behaviours: new Set(),
      correct: true,
      ...newNodeRuntime(this.rootRng, name),
      proto: null,
      state: null,
      rng: this.rootRng.derive(`node/${name}`),
      seen: [],
      exec: new Map(),
      startAt: g?.start.at ?? 0,
    };
    this.instances.push(inst);
    this.ids.intern(id);
    const list = this.byId.get(id) ?? [];
    list.push(inst);
    this.byId.set(id, list);
    if (twinOf === null) this.nameOf.set(id, name);
    return inst;
  }

  // ---- scheduling ----

  private at(t: number, fn: () => void): void {
    const id = this.actions.length;
    this.actions.push(fn);
    this.engine.schedule(Math.max(t, this.engine.now), this.kAction, id, 0, undefined);
  }

  name(id: NodeId): string {
    return this.nameOf.get(id) ?? id.slice(0, 8);
  }

  // ---- node lifecycle ----

  private host(n: Instance): ConsensusHost {
    const life = n.life;
    const current = () => n.up && n.life === life;
    return {
      self: n.id,
      ids: this.ids,
      storage: n.store,
      log: quietLog,
      metrics: this.metrics,
      now: () => nodeClock(n, this.engine.now),
      random: () => n.rng.next(),
      send: (to: NodeId, msg: ConsensusMessage) => {
        if (current()) this.send(n, to, msg);
      },
      ...lifeTimers(this.engine, this.kTimer, n, life),
      sign: (payload: string) => this.sigs.sign(n.id, payload),
    };
  }

  private start(n: Instance): void {
    if (n.up) return;
    n.up = true;
    n.life++;
    n.timers = new Map();
    n.upSince = this.engine.now;
    const cs = this.scenario.consensus!;
    let replaying = true;
    const state = new ReplicatedState({
      genesisVoters: this.genesisVoters,
      peers: this.peers,
      commitWindow: cs.tasks.commitWindow,
      revealWindow: cs.tasks.revealWindow,
    }, {
      applied: (a) => this.applied(n, a, replaying),
      excluded: (node, height, e) => {
        if (n.correct && !replaying && !this.exclusions.some((x) => x.node === this.name(node))) {
          this.exclusions.push({
            node: this.name(node),
            t: this.engine.now,
            height,
            reason: e.kind,
          });
        }
      },
    });
    const proto = new Tendermint(cs.config, {
      peers: () => state.peers(),
      voters: (h) => state.voters(h),
      admissible: (op) => state.admissible(op),
      commit: (cb) => {
        const voters = state.voters(cb.block.height);
        this.observer.onCommit(
          { instance: n.index, name: n.name, correct: n.correct, voters },
          cb,
          replaying,
        );
        state.commit(cb);
        if (!replaying) this.afterCommit(n, cb);
        if (this.observer.violation && !this.violation) this.fail(this.observer.violation);
      },
    });
    n.state = state;
    n.proto = proto;
    this.observer.restarted(n.index);
    proto.start(this.host(n));
    replaying = false;
    if (n.behaviours.has("replay")) this.scheduleReplay(n, n.life);
  }

  private crash(n: Instance, loseUnsynced: boolean): void {
    if (!n.up) return;
    n.store.crash(loseUnsynced);
    n.proto!.stop();
    n.proto = null;
    n.state = null;
    n.up = false;
    n.life++;
    n.timers.clear();
    n.upMs += this.engine.now - n.upSince;
  }

  // ---- messages ----

  private send(from: Instance, toId: NodeId, msg: ConsensusMessage): void {
    const b = from.behaviours;
    if (b.size > 0) {
      const out = this.adversary(from, toId, msg);
      for (const m of out) this.transmit(from, toId, m);
      return;
    }
    this.transmit(from, toId, msg);
  }

  private transmit(from: Instance, toId: NodeId, msg: ConsensusMessage): void {
    const targets = this.byId.get(toId);
    if (!targets) return;
    const size = messageSize(msg) + DATAGRAM_OVERHEAD;
    const now = this.engine.now;
    for (const to of targets) {
      if (to === from) continue;
      from.bytesSent += size;
      from.msgsSent++;
      this.totalBytes += size;
      this.totalMsgs++;
      const delay = this.network.route(from.index, to.index, size, now, from.netRng);
      if (delay < 0) continue;
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
  }

  private deliver(toIdx: number, fromIdx: number, msg: ConsensusMessage): void {
    this.engine.mix(msg.t.charCodeAt(0) + msg.t.length * 31);
    const to = this.instances[toIdx];
    if (this.recorder) {
      this.record(
        "deliver",
        to.name,
        `${describeMessage(msg, (id) => this.name(id))} from ${this.instances[fromIdx].name}`,
      );
    }
    if (!to.up) return;
    to.bytesReceived += messageSize(msg) + DATAGRAM_OVERHEAD;
    // The envelope: signatures are checked before the core sees anything.
    if (!this.sigs.verify(msg)) {
      this.metrics.inc("consensus.dropped.bad_signature");
      return;
    }
    if (to.behaviours.has("replay") && (msg.t === "prevote" || msg.t === "precommit")) {
      to.seen.push(msg);
      if (to.seen.length > 400) to.seen.splice(0, 200);
    }
    to.proto!.onMessage(this.instances[fromIdx].id, msg);
    if (this.observer.violation && !this.violation) this.fail(this.observer.violation);
  }

  private fireTimer(idx: number, gen: number, key: string): void {
    const n = this.instances[idx];
    if (n.timers.get(key) !== gen) return;
    n.timers.delete(key);
    if (this.recorder) this.record("timer", n.name, key);
    n.proto!.onTimer(key);
    if (this.observer.violation && !this.violation) this.fail(this.observer.violation);
  }

  private record(kind: string, node: string, detail: string): void {
    const r = this.recorder!;
    r.push({ index: this.engine.events, t: this.engine.now, kind, node, detail });
    const keep = this.opts.recordLast!;
    if (r.length > keep * 2) r.splice(0, r.length - keep);
  }

  recentEvents(): ConsensusTraceEvent[] {
    return this.recorder ? this.recorder.slice(-this.opts.recordLast!) : [];
  }

  /** Each instance's consensus position (replay output). */
  positions(): string[] {
    return this.instances.map((n) => {
      const p = n.proto;
      return p
        ? `${n.name}: height ${p.h} round ${p.round} step ${p.step}${n.correct ? "" : " (faulty)"}`
        : `${n.name}: down`;
    });
  }

  private fail(v: Violation): void {
    this.violation = { ...v, event: this.engine.events, t: this.engine.now };
    this.engine.halt();
  }

  // ---- Byzantine behaviours (adversary modules on the outgoing path) ----

  /** The messages a Byzantine node actually sends in place of `msg` to `to`. */
  private adversary(n: Instance, to: NodeId, msg: ConsensusMessage): ConsensusMessage[] {
    const b = n.behaviours;
    const isVote = msg.t === "prevote" || msg.t === "precommit";
    // Half of the peers (by a bit of their id) see the other version of an equivocation.
    const otherHalf = (parseInt(to.slice(-1), 16) & 1) === 1;
    if (isVote && b.has("withhold-votes")) return [];
    if (b.has("forge-signatures") && (isVote || msg.t === "proposal")) {
      const forged: ConsensusMessage[] = [{ ...msg, sig: "forged" } as ConsensusMessage];
      if (isVote) {
        // A vote in another voter's name, which it cannot sign.
        const victim = this.genesisVoters.find((v) => v !== n.id);
        if (victim) forged.push({ ...(msg as Vote), voter: victim, sig: "forged" });
      }
      return forged;
    }
    // Equivocation: the other half gets a conflicting record first, then the original (as
    // vote and proposal gossip would eventually bring it), so it can prove the equivocation.
    if (isVote && b.has("double-vote") && otherHalf) {
      const v = msg as Vote;
      const block = v.block === null ? "f".repeat(64) : null;
      const body = { t: v.t, h: v.h, r: v.r, block, voter: v.voter };
      return [{ ...body, sig: this.sigs.sign(n.id, votePayload(body)) }, msg];
    }
    if (msg.t === "proposal" && b.has("equivocate-proposal") && otherHalf) {
      const body = { ...msg.body, time: msg.body.time + 1, ops: [] };
      const hash = blockHash(body);
      const header = {
        h: msg.h,
        r: msg.r,
        block: hash,
        validRound: msg.validRound,
        proposer: n.id,
      };
      const alt: ConsensusMessage = {
        t: "proposal",
        ...header,
        sig: this.sigs.sign(n.id, proposalPayload(header)),
        body,
      };
      return [alt, msg];
    }
    return [msg];
  }

  /** The replay adversary re-sends old (validly signed) votes to random peers. */
  private scheduleReplay(n: Instance, life: number): void {
    const tick = () => {
      if (!n.up || n.life !== life) return;
      for (let k = 0; k < 4 && n.seen.length > 0; k++) {
        const m = n.seen[Math.floor(n.rng.next() * n.seen.length)];
        const to = this.peers[Math.floor(n.rng.next() * this.peers.length)];
        this.transmit(n, to, m);
      }
      this.at(this.engine.now + 250, tick);
    };
    this.at(this.engine.now + 250, tick);
  }

  // ---- clients ----

  private nextOp(c: Client): void {
    if (this.engine.now >= this.loadUntil) return;
    const cs = this.scenario.consensus!;
    const r = c.rng;
    const key = `k${Math.floor(r.next() * cs.load.keys)}`;
    const seq = ++c.seq;
    const value = `${c.name}:${seq}:`.padEnd(cs.load.valueBytes, "x");
    const u = r.next();
    let op: KvOp;
    if (u < cs.load.reads) op = { kind: "get", key };
    else if (u < cs.load.reads + cs.load.cas) {
      op = { kind: "cas", key, expect: c.known.get(key) ?? null, value };
    } else op = { kind: "put", key, value };
    const cop: ClientOp = { id: `${c.name}/${seq}`, client: c.name, op };
    this.observer.submitted.add(cop.id);
    c.op = cop;
    c.invoke = this.engine.now;
    c.entry = {
      client: c.name,
      op: op.kind,
      key,
      value: op.kind === "get" ? undefined : op.value,
      expect: op.kind === "cas" ? op.expect : undefined,
      invoke: this.engine.now,
      complete: null,
    };
    this.history.push(c.entry);
    this.submitTo(c);
  }

  private submitTo(c: Client): void {
    const n = this.instances[c.target];
    const gen = ++c.gen;
    if (n.up && n.proto && c.op) {
      // Already applied there (a retry after the first voter went away)?
      const done = n.state!.kv.sessionResult(c.name, c.seq);
      if (done) {
        this.complete(c, done);
        return;
      }
      n.proto.submit(c.op);
    }
    const retry = this.scenario.consensus!.load.retryMs;
    this.at(this.engine.now + retry, () => {
      if (c.gen !== gen || !c.op) return;
      // Next genesis voter instance (not a twin).
      const voters = this.instances.filter((x) =>
        x.twinOf === null && this.genesisVoters.includes(x.id)
      );
      const at = voters.findIndex((x) => x.index === c.target);
      c.target = voters[(at + 1) % voters.length].index;
      this.submitTo(c);
    });
  }

  private complete(c: Client, result: { ok: boolean; value?: string | null }): void {
    const e = c.entry!;
    e.complete = this.engine.now;
    e.result = { ok: result.ok, value: result.value };
    this.latencies.push(this.engine.now - c.invoke);
    this.completedOps++;
    const op = c.op!.op;
    if (op.kind === "get") c.known.set(op.key, result.value ?? null);
    else if (op.kind === "put" || (op.kind === "cas" && result.ok)) c.known.set(op.key, op.value);
    else if (op.kind === "cas") c.known.set(op.key, result.value ?? null);
    c.op = null;
    c.gen++;
    const think = this.scenario.consensus!.load.thinkMs;
    this.at(this.engine.now + think, () => this.nextOp(c));
  }

  private applied(n: Instance, a: Applied, replaying: boolean): void {
    if (replaying) return;
    const op = a.op.op;
    // A client's operation completes when the voter it is attached to applies it.
    if (op.kind === "put" || op.kind === "get" || op.kind === "cas") {
      const idx = Number(a.op.client.slice(7));
      const c = this.clients[idx];
      if (c && c.op?.id === a.op.id && c.target === n.index) this.complete(c, a.result);
      return;
    }
    if (op.kind === "cr.open" && op.executors.includes(n.id)) {
      this.execute(n, op.task, op.input, a.height);
    }
    if (op.kind === "cr.reveal" && n.behaviours.has("copy-reveal") && op.node !== n.id) {
      const mine = n.exec.get(op.task);
      if (mine && !mine.revealed) {
        mine.revealed = true;
        this.submitExec(n, `${op.task}/reveal`, {
          kind: "cr.reveal",
          task: op.task,
          node: n.id,
          result: op.result,
          salt: op.salt,
        });
      }
    }
  }

  // ---- commit-reveal executors ----

  private openTask(account: FaultAccount): void {
    const ref = this.instances.find((n) => n.up && n.correct && n.state);
    if (!ref) return;
    const voters = ref.state!.voters(ref.state!.height + 1);
    const k = this.scenario.consensus!.tasks.executors;
    const executors = k > 0 ? voters.slice(0, k) : [...voters];
    const task = `task-${++this.tasksOpened}`;
    const cop: ClientOp = {
      id: `tasks/${this.tasksOpened}`,
      client: "tasks",
      op: { kind: "cr.open", task, input: `input-${this.tasksOpened}-${this.seed}`, executors },
    };
    this.observer.submitted.add(cop.id);
    ref.proto!.submit(cop);
    account.fired++;
  }

  private execute(n: Instance, task: string, input: string, height: number): void {
    const b = n.behaviours;
    const cs = this.scenario.consensus!;
    const salt = Math.floor(n.rng.next() * 2 ** 48).toString(36);
    const result = b.has("wrong-result") || b.has("copy-reveal")
      ? `wrong-${n.name}`
      : taskResult(input);
    n.exec.set(task, {
      result,
      salt,
      commitDeadline: height + cs.tasks.commitWindow,
      revealed: false,
    });
    this.submitExec(n, `${task}/commit`, {
      kind: "cr.commit",
      task,
      node: n.id,
      digest: commitDigest(task, n.id, result, salt),
    });
  }

  private submitExec(n: Instance, what: string, op: ClientOp["op"]): void {
    const cop: ClientOp = { id: `exec/${n.name}/${what}`, client: `exec-${n.name}`, op };
    this.observer.submitted.add(cop.id);
    n.proto?.submit(cop);
  }

  private afterCommit(n: Instance, cb: CommittedBlock): void {
    if (n.behaviours.has("withhold-reveals") || n.behaviours.has("copy-reveal")) return;
    for (const [task, e] of n.exec) {
      if (!e.revealed && cb.block.height >= e.commitDeadline) {
        e.revealed = true;
        this.submitExec(n, `${task}/reveal`, {
          kind: "cr.reveal",
          task,
          node: n.id,
          result: e.result,
          salt: e.salt,
        });
      }
    }
  }

  // ---- sampling ----

  private sample(): void {
    const ref = this.instances.find((n) => n.up && n.correct && n.state);
    this.heightSamples.push({
      t: this.engine.now,
      height: this.observer.height,
      ops: this.completedOps,
    });
    if (!ref) return;
    for (const id of this.genesisVoters) {
      this.trustSamples.push({
        t: this.engine.now,
        node: this.name(id),
        trust: ref.state!.trust.get(id),
      });
    }
  }

  // ---- running ----

  run(onProgress?: (p: ConsensusProgress) => void, sliceEvents = 200_000): void {
    const stopHeight = this.opts.stopAtHeight ?? Infinity;
    if (stopHeight !== Infinity) sliceEvents = Math.min(sliceEvents, 5_000);
    runSliced(this.engine, {
      durationMs: this.durationMs,
      stopAt: this.opts.stopAtEvent ?? Infinity,
      sliceEvents,
      stop: () => this.violation !== null || this.observer.height >= stopHeight,
      onProgress,
    });
    closeUptime(this.instances, this.engine.now);
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
  get nodes(): readonly Instance[] {
    return this.instances;
  }

  // ---- end of run ----

  /** The correct replicas' final trust scores by node name. */
  finalTrust(): Record<string, number> {
    const ref = this.instances.find((n) => n.up && n.correct && n.state);
    const out: Record<string, number> = {};
    if (!ref) return out;
    for (const id of this.genesisVoters) out[this.name(id)] = ref.state!.trust.get(id);
    return out;
  }

  evaluateChecks(): CheckResult[] {
    const out: CheckResult[] = [];
    if (this.violation) out.push(violationResult(this.violation));
    out.push(firedCheck("faults.fired", this.faults, "declared faults"));
    for (const c of this.scenario.checks) {
      if (this.violation?.check === c.type) continue;
      switch (c.type) {
        case "consensus.agreement":
        case "consensus.validity":
        case "consensus.no-fork":
        case "consensus.monotonic":
        case "consensus.certificates":
          out.push({
            name: c.type,
            ok: true,
            detail:
              `held at all ${this.observer.commits} commits (${this.observer.height} heights)`,
          });
          break;
        case "consensus.liveness":
          out.push(this.livenessCheck(c.within));
          break;
        case "consensus.linearizable":
          out.push(this.linearizableCheck());
          break;
        case "consensus.trust-bounds":
          out.push(this.trustBoundsCheck());
          break;
        case "consensus.trust-dynamics":
          out.push(this.trustDynamicsCheck());
          break;
        default:
          break;
      }
    }
    return out;
  }

  private livenessCheck(within: number): CheckResult {
    const end = this.engine.now;
    const late: string[] = [];
    for (const e of this.history) {
      const deadline = Math.max(e.invoke, this.lastFaultEnd) + within;
      if (e.complete === null ? deadline < end : e.complete > deadline) {
        late.push(`${e.client} ${e.op} ${e.key} (invoked ${(e.invoke / 1000).toFixed(1)} s)`);
      }
    }
    return {
      name: "consensus.liveness",
      ok: late.length === 0 && this.history.length > 0,
      detail: this.history.length === 0
        ? "no operation was submitted"
        : late.length === 0
        ? `all ${this.history.length} operations committed within ${
          within / 1000
        } s of the faults' end`
        : `${late.length} operations missed the bound, e.g. ${late.slice(0, 3).join("; ")}`,
    };
  }

  private linearizableCheck(): CheckResult {
    const r = checkLinearizable(this.history);
    return {
      name: "consensus.linearizable",
      ok: r.ok === true,
      detail: r.ok === true
        ? `${this.history.length} client operations are linearizable`
        : `key ${r.key}: ${r.reason}`,
    };
  }

  private trustBoundsCheck(): CheckResult {
    const problems: string[] = [];
    for (const n of this.instances) {
      if (n.state && n.correct) {
        problems.push(...trustBoundsProblems(n.state, (id) => this.name(id)));
      }
    }
    return {
      name: "consensus.trust-bounds",
      ok: problems.length === 0,
      detail: problems.length === 0
        ? "every score in [0, 1] at every correct replica; every excluded node at 0"
        : problems.slice(0, 5).join("; "),
    };
  }

  private trustDynamicsCheck(): CheckResult {
    const final = this.finalTrust();
    const voters = this.instances
      .filter((i) => i.twinOf === null && this.genesisVoters.includes(i.id))
      .map((i) => ({
        name: i.name,
        alwaysWrong: i.behaviours.has("wrong-result") || i.behaviours.has("copy-reveal"),
        correctAndAlwaysUp: i.correct && i.upMs >= this.durationMs * 0.99,
      }));
    const problems = trustDynamicsProblems(voters, final, this.tasksOpened);
    return {
      name: "consensus.trust-dynamics",
      ok: problems.length === 0,
      detail: problems.length === 0
        ? `derived dynamics hold; wrong executors lost trust, correct ones did not (${this.tasksOpened} tasks)`
        : problems.join("; "),
    };
  }

  /** Headline consensus metrics for summary.json. */
  metricsSummary() {
    const s = this.latencies.slice().sort((a, b) => a - b);
    const heights = this.observer.height;
    const secs = this.engine.now / 1000;
    return {
      voters: this.genesisVoters.length,
      instances: this.instances.length,
      heights,
      committedOps: this.completedOps,
      opsPerSec: secs > 0 ? this.completedOps / secs : 0,
      commitLatency: {
        count: s.length,
        p50Ms: percentile(s, 50),
        p99Ms: percentile(s, 99),
        maxMs: s.length ? s[s.length - 1] : null,
      },
      messagesPerHeight: heights > 0 ? this.totalMsgs / heights : null,
      bytesPerHeight: heights > 0 ? this.totalBytes / heights : null,
      roundChanges: this.metrics.counters.get("mycelium_consensus_round_changes_total") ?? 0,
      equivocationsSeen: this.metrics.counters.get("mycelium_consensus_equivocations_total") ?? 0,
      badSignaturesDropped: this.metrics.counters.get("consensus.dropped.bad_signature") ?? 0,
      syncedBlocks: this.metrics.counters.get("mycelium_consensus_synced_blocks_total") ?? 0,
      tasks: this.tasksOpened,
      exclusions: this.exclusions,
      finalTrust: this.finalTrust(),
    };
  }
}
