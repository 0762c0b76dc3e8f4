/**
 * SWIM membership with Lifeguard refinements (the Latent Spore's failure detector and
 * dissemination layer), following hashicorp/memberlist's state machine:
 *
 * - probes: one member per probe interval, direct ping, then `indirectChecks` ping-reqs
 *   through relays after the probe timeout; a probe with no ack by the next tick fails;
 * - suspicion: a failed probe makes the target suspect; the suspect refutes by raising its
 *   incarnation; otherwise it is declared dead when the suspicion timer fires;
 * - Lifeguard: local health (awareness) stretches probe interval and timeout after missed
 *   acks and missing nacks; suspicion timeouts start at max and shrink towards min with
 *   independent confirmations;
 * - dissemination: items piggyback on pings/acks and on gossip rounds, each sent at most
 *   retransmitMult x log10(N+1) times per node;
 * - push-pull anti-entropy of the full state; joins are push-pulls with a seed;
 * - graceful leave; reconnect attempts to dead members heal partitions (serf's reconnect).
 *
 * Pure and deterministic: all time, randomness, I/O and timers come from the Host.
 */
import type { Host, Protocol } from "../host.ts";
import type { IdInterner, NodeId } from "../ids.ts";
import { BroadcastQueue } from "./broadcasts.ts";
import { gossipItemSize } from "./codec.ts";
import {
  retransmitLimit,
  scaledPushPullInterval,
  suspicionBounds,
  suspicionTimeout,
  type SwimConfig,
} from "./config.ts";
import { MemberTable, UNKNOWN } from "./members.ts";
import {
  type AliveItem,
  type DeadItem,
  type GossipItem,
  MemberState,
  type PushPull,
  type SuspectItem,
  type SwimMessage,
} from "./messages.ts";

/** Called on every change of a member's state or incarnation in this node's view. */
export type MemberListener = (
  member: number,
  oldState: number,
  newState: number,
  oldInc: number,
  newInc: number,
  /** Interned index of the node whose judgement this is (the original suspecter/declarer). */
  origin: number,
) => void;

export interface SwimOptions {
  config: SwimConfig;
  /** Join through these nodes (push-pull with each until one answers). */
  seeds?: readonly NodeId[];
  /** Join through these transport addresses ("host:port"), via Host.sendToAddress. */
  seedAddrs?: readonly string[];
  /**
   * Start from a membership snapshot (a Seed spore): members known alive, with their
   * incarnations (parallel arrays).
   */
  initialMembers?: { readonly nodes: readonly NodeId[]; readonly incs: readonly number[] };
  /** Our address, announced in alive items ("" in the simulator). */
  addr?: string;
  listener?: MemberListener;
  /**
   * Receives the members loaded from `initialMembers` at once (all alive) instead of one
   * listener call each: 10,000 nodes x 10,000 members is 10^8 calls otherwise.
   */
  onSnapshot?: (members: readonly number[]) => void;
}

interface Suspicion {
  readonly inc: number;
  readonly start: number;
  readonly min: number;
  readonly max: number;
  readonly k: number;
  /** Independent confirmations so far (the original suspecter excluded). */
  n: number;
  readonly confirmers: number[];
}

interface Relay {
  readonly requester: NodeId;
  readonly seq: number;
  readonly wantNack: boolean;
}

const INC_KEY = "swim/incarnation";
// Worst-case header sizes leave room for piggyback within the packet budget.
const PING_OVERHEAD = 48;
const ACK_OVERHEAD = 16;
const GOSSIP_OVERHEAD = 8;

const T_PROBE = "probe";
const T_PROBE_TIMEOUT = "probe-timeout";
const T_GOSSIP = "gossip";
const T_PUSHPULL = "pushpull";
const T_RECONNECT = "reconnect";
const T_JOIN = "join";
const T_LEAVE = "leave";
const P_SUSPECT = "s:";
const P_RELAY = "r:";

export class Swim implements Protocol<SwimMessage> {
  readonly config: SwimConfig;
  private host!: Host<SwimMessage>;
  private ids!: IdInterner;
  private selfIdx = -1;
  private table!: MemberTable;
  private readonly queue = new BroadcastQueue();
  private readonly suspicions = new Map<number, Suspicion>();
  private readonly relays = new Map<number, Relay>();
  private readonly opts: SwimOptions;

  private inc = 0;
  private seq = 0;
  private awarenessScore = 0;
  private joined = true;
  private joinAddrs: readonly string[] = [];
  private leaving = false;
  private stopped = false;
  private left = false;
  private gossipIdle = false;
  private gossipPhase = 0;
  /** Set while handling a message that accused us at an incarnation we already passed. */
  private staleAccusation = false;

  // The probe in flight.
  private probeActive = false;
  private probeSeq = -1;
  private probeTarget = -1;
  private expectedNacks = 0;
  private nacks = 0;

  constructor(opts: SwimOptions) {
    this.opts = opts;
    this.config = opts.config;
  }

  // ---- lifecycle ----

  start(host: Host<SwimMessage>): void {
    this.host = host;
    this.ids = host.ids;
    this.selfIdx = this.ids.intern(host.self);
    this.table = new MemberTable(this.ids.size);
    const stored = host.storage.get(INC_KEY);
    const last = stored && stored.length === 4
      ? new DataView(stored.buffer, stored.byteOffset).getUint32(0)
      : 0;
    this.setIncarnation(last + 1);

    const snap = this.opts.initialMembers;
    if (snap) {
      const members = this.ids.internAll(snap.nodes);
      const loaded = this.table.loadAlive(members, snap.incs, this.selfIdx, () => host.random());
      if (this.opts.onSnapshot) this.opts.onSnapshot(loaded);
      else {
        for (const idx of loaded) {
          this.opts.listener?.(
            idx,
            UNKNOWN,
            MemberState.Alive,
            0,
            this.table.inc[idx],
            this.selfIdx,
          );
        }
      }
    }
    this.enqueueSelfAlive();

    const seeds = (this.opts.seeds ?? []).filter((s) => s !== host.self);
    this.joinAddrs = this.opts.seedAddrs ?? [];
    const seedAddrs = host.sendToAddress ? this.joinAddrs : [];
    if (seeds.length > 0 || seedAddrs.length > 0) {
      this.joined = false;
      this.sendJoin();
    }
    const c = this.config;
    // Stagger the periodic work so nodes started together do not tick in lockstep.
    if (c.probing) host.setTimer(T_PROBE, host.random() * c.probeIntervalMs);
    if (c.gossiping) {
      const first = host.random() * c.gossipIntervalMs;
      this.gossipPhase = host.now() + first - c.gossipIntervalMs;
      host.setTimer(T_GOSSIP, first);
    }
    if (c.pushPullIntervalMs > 0) {
      host.setTimer(T_PUSHPULL, host.random() * this.pushPullInterval());
    }
    if (c.reconnectIntervalMs > 0) {
      host.setTimer(T_RECONNECT, (0.5 + host.random()) * c.reconnectIntervalMs);
    }
  }

  stop(): void {
    this.stopped = true;
  }

  /** Graceful leave: gossip our own departure for `leavePropagateMs`, then go quiet. */
  leave(): void {
    if (this.stopped || this.leaving) return;
    this.leaving = true;
    const item: DeadItem = { k: "dead", node: this.host.self, inc: this.inc, from: this.host.self };
    this.enqueue(this.selfIdx, item);
    this.gossipRound();
    this.host.setTimer(T_LEAVE, this.config.leavePropagateMs);
  }

  // ---- views (for the environment, checkers and admin API) ----

  get self(): NodeId {
    return this.host.self;
  }
  get incarnation(): number {
    return this.inc;
  }
  /** Lifeguard local-health score: 0 is healthy. */
  get awareness(): number {
    return this.awarenessScore;
  }
  get hasLeft(): boolean {
    return this.left;
  }
  get isJoined(): boolean {
    return this.joined;
  }

  /**
   * Joins (again) through these transport addresses, replacing the configured ones: the
   * node's discovery (node/bootstrap.ts) hands over one source's addresses at a time.
   * `isJoined` is false until one of them answers.
   */
  joinThrough(addrs: readonly string[]): void {
    if (this.stopped || !this.host.sendToAddress) return;
    this.joinAddrs = addrs;
    this.joined = false;
    this.sendJoin();
  }
  get queuedBroadcasts(): number {
    return this.queue.size;
  }
  /** Members alive or suspect in this view, self excluded. */
  get liveMembers(): number {
    return this.table.live;
  }

  /** The transport address a member announced ("" or undefined when none). */
  addrOf(node: NodeId): string | undefined {
    const idx = this.ids.lookup(node);
    return idx === undefined ? undefined : this.table.addr.get(idx);
  }

  stateOf(node: NodeId): MemberState | undefined {
    if (node === this.host.self) return this.left ? MemberState.Left : MemberState.Alive;
    const idx = this.ids.lookup(node);
    if (idx === undefined) return undefined;
    const s = this.table.get(idx);
    return s === UNKNOWN ? undefined : (s as MemberState);
  }

  /** State of a member by interned index (UNKNOWN = 255 when not known). */
  stateAt(idx: number): number {
    return idx === this.selfIdx ? MemberState.Alive : this.table.get(idx);
  }

  members(): Array<{ node: NodeId; state: MemberState; inc: number; addr: string }> {
    const out = [];
    for (const idx of this.table.members()) {
      out.push({
        node: this.ids.id(idx),
        state: this.table.state[idx] as MemberState,
        inc: this.table.inc[idx],
        addr: this.table.addr.get(idx) ?? "",
      });
    }
    return out;
  }

  // ---- inputs ----

  onMessage(from: NodeId, msg: SwimMessage): void {
    if (this.stopped) return;
    const incBefore = this.inc;
    this.staleAccusation = false;
    this.handle(from, msg);
    // The peer told us something about ourselves that we refuted now, or that is older than
    // our incarnation: answer it directly with our current alive. After a long partition the
    // peer may hold us dead and would never gossip with us (ours, not memberlist's; it
    // closes the convergence tail after a heal).
    if ((this.inc !== incBefore || this.staleAccusation) && !this.stopped) {
      this.host.send(from, { t: "gossip", gossip: [this.selfAlive()] });
    }
  }

  private handle(from: NodeId, msg: SwimMessage): void {
    switch (msg.t) {
      case "ping": {
        this.applyGossip(msg.gossip);
        if (msg.target !== this.host.self) {
          this.host.metrics.inc("mycelium_swim_misdirected_total");
          return;
        }
        this.host.send(from, { t: "ack", seq: msg.seq, gossip: this.piggyback(ACK_OVERHEAD) });
        // A member we hold dead is probing us: it does not know. Tell it, so it refutes.
        const idx = this.ids.lookup(from);
        if (idx !== undefined && this.table.get(idx) === MemberState.Dead) {
          const dead: DeadItem = {
            k: "dead",
            node: from,
            inc: this.table.inc[idx],
            from: this.host.self,
          };
          this.host.send(from, { t: "gossip", gossip: [dead] });
        }
        return;
      }
      case "ack":
        this.applyGossip(msg.gossip);
        this.onAck(msg.seq);
        return;
      case "nack":
        if (this.probeActive && msg.seq === this.probeSeq) this.nacks++;
        return;
      case "pingreq": {
        const seq = this.nextSeq();
        this.relays.set(seq, { requester: from, seq: msg.seq, wantNack: msg.wantNack });
        this.host.send(msg.target, {
          t: "ping",
          seq,
          target: msg.target,
          gossip: this.piggyback(PING_OVERHEAD),
        });
        this.host.setTimer(P_RELAY + seq, this.scale(this.config.probeTimeoutMs) * 0.8);
        return;
      }
      case "gossip":
        this.applyGossip(msg.gossip);
        return;
      case "pushpull":
        // Like memberlist, answer with our state as it was before merging theirs.
        if (!msg.reply) this.host.send(from, this.localState(false, true));
        else if (!this.joined) {
          this.joined = true;
          this.host.cancelTimer(T_JOIN);
        }
        this.mergeState(msg);
        return;
    }
  }

  onTimer(key: string): void {
    if (this.stopped) return;
    switch (key) {
      case T_PROBE:
        return this.probeTick();
      case T_PROBE_TIMEOUT:
        return this.probeTimeout();
      case T_GOSSIP:
        this.gossipPhase = this.host.now();
        if (this.queue.size === 0) {
          this.gossipIdle = true;
          return;
        }
        this.host.setTimer(T_GOSSIP, this.config.gossipIntervalMs);
        return this.gossipRound();
      case T_PUSHPULL:
        this.host.setTimer(T_PUSHPULL, this.pushPullInterval());
        return this.pushPullRound();
      case T_RECONNECT:
        this.host.setTimer(T_RECONNECT, this.config.reconnectIntervalMs);
        return this.reconnectRound();
      case T_JOIN:
        if (!this.joined) this.sendJoin();
        return;
      case T_LEAVE:
        this.left = true;
        this.stopped = true;
        return;
    }
    if (key.startsWith(P_SUSPECT)) return this.suspicionExpired(Number(key.slice(2)));
    if (key.startsWith(P_RELAY)) return this.relayExpired(Number(key.slice(2)));
  }

  // ---- probing ----

  private probeTick(): void {
    const c = this.config;
    this.host.setTimer(T_PROBE, this.scale(c.probeIntervalMs));
    if (this.probeActive) this.probeFailed();
    if (this.leaving) return;
    const target = this.table.nextProbeTarget(() => this.host.random());
    if (target < 0) return;
    this.probeActive = true;
    this.probeTarget = target;
    this.probeSeq = this.nextSeq();
    this.expectedNacks = 0;
    this.nacks = 0;
    this.host.metrics.inc("mycelium_swim_probes_total");
    const targetId = this.ids.id(target);
    this.host.send(targetId, {
      t: "ping",
      seq: this.probeSeq,
      target: targetId,
      gossip: this.piggyback(PING_OVERHEAD),
    });
    this.host.setTimer(T_PROBE_TIMEOUT, this.scale(c.probeTimeoutMs));
  }

  private probeTimeout(): void {
    if (!this.probeActive) return;
    const target = this.probeTarget;
    const relays = this.table.randomMembers(
      this.config.indirectChecks,
      () => this.host.random(),
      (i) => i !== target && this.table.state[i] === MemberState.Alive,
    );
    const targetId = this.ids.id(target);
    for (const r of relays) {
      this.host.send(this.ids.id(r), {
        t: "pingreq",
        seq: this.probeSeq,
        target: targetId,
        wantNack: true,
      });
    }
    this.expectedNacks = relays.length;
  }

  private onAck(seq: number): void {
    if (this.probeActive && seq === this.probeSeq) {
      this.probeActive = false;
      this.host.cancelTimer(T_PROBE_TIMEOUT);
      this.adjustAwareness(-1);
      return;
    }
    const relay = this.relays.get(seq);
    if (relay) {
      this.relays.delete(seq);
      this.host.cancelTimer(P_RELAY + seq);
      this.host.send(relay.requester, {
        t: "ack",
        seq: relay.seq,
        gossip: this.piggyback(ACK_OVERHEAD),
      });
    }
  }

  private probeFailed(): void {
    this.probeActive = false;
    this.host.metrics.inc("mycelium_swim_probe_failures_total");
    // Lifeguard: a missed ack counts against our own health, and so does every relay that
    // did not even send a nack (our own links are the likelier culprit).
    this.adjustAwareness(1 + Math.max(0, this.expectedNacks - this.nacks));
    const idx = this.probeTarget;
    const s = this.table.get(idx);
    if (s !== MemberState.Alive && s !== MemberState.Suspect) return;
    this.suspectNode({
      k: "suspect",
      node: this.ids.id(idx),
      inc: this.table.inc[idx],
      from: this.host.self,
    });
  }

  private relayExpired(seq: number): void {
    const relay = this.relays.get(seq);
    if (!relay) return;
    this.relays.delete(seq);
    if (relay.wantNack) this.host.send(relay.requester, { t: "nack", seq: relay.seq });
  }

  private adjustAwareness(delta: number): void {
    const max = this.config.awarenessMaxMultiplier - 1;
    this.awarenessScore = Math.min(max, Math.max(0, this.awarenessScore + delta));
  }

  private scale(ms: number): number {
    return ms * (this.awarenessScore + 1);
  }

  // ---- dissemination ----

  private clusterSize(): number {
    return this.table.live + 1;
  }

  private piggyback(overhead: number): readonly GossipItem[] {
    return this.queue.take(
      this.config.maxPacketBytes - overhead,
      retransmitLimit(this.config.retransmitMult, this.clusterSize()),
    );
  }

  private gossipRound(): void {
    if (this.queue.size === 0) return;
    const now = this.host.now();
    const deadWindow = this.config.gossipToTheDeadMs;
    const targets = this.table.randomMembers(
      this.config.gossipNodes,
      () => this.host.random(),
      (i) => {
        const s = this.table.state[i];
        if (s === MemberState.Alive || s === MemberState.Suspect) return true;
        return s === MemberState.Dead && now - (this.table.diedAt.get(i) ?? -Infinity) < deadWindow;
      },
    );
    for (const t of targets) {
      const items = this.piggyback(GOSSIP_OVERHEAD);
      if (items.length === 0) return;
      this.host.send(this.ids.id(t), { t: "gossip", gossip: items });
    }
  }

  private applyGossip(items: readonly GossipItem[]): void {
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (item.k === "alive") this.aliveNode(item);
      else if (item.k === "suspect") this.suspectNode(item);
      else this.deadNode(item);
    }
  }

  // ---- anti-entropy, join, reconnect ----

  private pushPullInterval(): number {
    return scaledPushPullInterval(this.config.pushPullIntervalMs, this.clusterSize());
  }

  private pushPullRound(): void {
    const [peer] = this.table.randomMembers(
      1,
      () => this.host.random(),
      (i) => this.table.state[i] === MemberState.Alive,
    );
    if (peer !== undefined) this.host.send(this.ids.id(peer), this.localState(false, false));
  }

  /**
   * serf-style reconnect, made cheap: every interval, send a random dead member a two-entry
   * push-pull (us alive, it dead). A member that is really gone costs one small datagram; a
   * live one (a healed partition) refutes and answers with its full state.
   */
  private reconnectRound(): void {
    if (this.table.dead === 0) return;
    const [peer] = this.table.randomMembers(
      1,
      () => this.host.random(),
      (i) => this.table.state[i] === MemberState.Dead,
    );
    if (peer === undefined) return;
    this.host.metrics.inc("mycelium_swim_reconnects_total");
    this.host.send(this.ids.id(peer), {
      t: "pushpull",
      join: false,
      reply: false,
      nodes: [this.host.self, this.ids.id(peer)],
      incs: [this.inc, this.table.inc[peer]],
      states: [MemberState.Alive, MemberState.Dead],
      addrs: [this.opts.addr ?? "", this.table.addr.get(peer) ?? ""],
    });
  }

  private sendJoin(): void {
    const seeds = (this.opts.seeds ?? []).filter((s) => s !== this.host.self);
    const picks = seeds.length <= 3 ? seeds : pickK(seeds, 3, () => this.host.random());
    const msg = this.localState(true, false);
    for (const s of picks) this.host.send(s, msg);
    const addrs = this.joinAddrs.filter((a) => a !== this.opts.addr);
    const send = this.host.sendToAddress?.bind(this.host);
    if (send) {
      for (const a of addrs.length <= 3 ? addrs : pickK(addrs, 3, () => this.host.random())) {
        send(a, msg);
      }
    }
    this.host.setTimer(T_JOIN, this.config.joinRetryMs);
  }

  private localState(join: boolean, reply: boolean): PushPull {
    const members = this.table.members();
    const n = members.length + 1;
    const nodes: NodeId[] = new Array(n);
    const incs: number[] = new Array(n);
    const states: MemberState[] = new Array(n);
    const addrs: string[] = new Array(n);
    nodes[0] = this.host.self;
    incs[0] = this.inc;
    states[0] = this.leaving ? MemberState.Left : MemberState.Alive;
    addrs[0] = this.opts.addr ?? "";
    for (let i = 0; i < members.length; i++) {
      const idx = members[i];
      nodes[i + 1] = this.ids.id(idx);
      incs[i + 1] = this.table.inc[idx];
      states[i + 1] = this.table.state[idx] as MemberState;
      addrs[i + 1] = this.table.addr.get(idx) ?? "";
    }
    return { t: "pushpull", join, reply, nodes, incs, states, addrs };
  }

  private mergeState(msg: PushPull): void {
    const self = this.host.self;
    for (let i = 0; i < msg.nodes.length; i++) {
      const node = msg.nodes[i];
      const inc = msg.incs[i];
      switch (msg.states[i]) {
        case MemberState.Alive:
          this.aliveNode({ k: "alive", node, inc, addr: msg.addrs[i] });
          break;
        case MemberState.Left:
          this.deadNode({ k: "dead", node, inc, from: node });
          break;
        default:
          // A remote "dead" becomes a local suspicion so the member can still refute it.
          this.suspectNode({ k: "suspect", node, inc, from: self });
      }
    }
  }

  // ---- the state machine of one member (memberlist's aliveNode/suspectNode/deadNode) ----

  private aliveNode(a: AliveItem): void {
    if (a.node === this.host.self) {
      // Someone announces us with an incarnation newer than ours (e.g. from before a crash
      // that lost our state): outbid it.
      if (a.inc > this.inc && !this.leaving) this.refute(a.inc);
      return;
    }
    const idx = this.ids.intern(a.node);
    const old = this.table.get(idx);
    const oldInc = old === UNKNOWN ? 0 : this.table.inc[idx];
    if (old === UNKNOWN) {
      this.table.add(idx, this.host.random());
    } else if (a.inc <= oldInc) {
      return;
    }
    this.clearSuspicion(idx);
    this.enqueue(idx, a);
    this.table.set(idx, MemberState.Alive, a.inc);
    if (a.addr !== "") this.table.addr.set(idx, a.addr);
    this.table.diedAt.delete(idx);
    this.opts.listener?.(idx, old, MemberState.Alive, oldInc, a.inc, idx);
  }

  private suspectNode(s: SuspectItem): void {
    if (s.node === this.host.self) {
      if (this.leaving) return;
      if (s.inc < this.inc) {
        this.staleAccusation = true;
        return;
      }
      this.host.metrics.inc("mycelium_swim_refutations_total");
      this.refute(s.inc);
      return;
    }
    const idx = this.ids.lookup(s.node);
    if (idx === undefined) return;
    const old = this.table.get(idx);
    if (old === UNKNOWN || s.inc < this.table.inc[idx]) return;
    const susp = this.suspicions.get(idx);
    if (susp) {
      if (s.inc === susp.inc) {
        if (this.confirm(idx, susp, s.from)) this.enqueue(idx, s);
        return;
      }
      // A suspicion at a newer incarnation replaces ours (memberlist would only count it as
      // a confirmation and later declare the member dead at the stale incarnation, which
      // the member's refutation can no longer override).
      this.clearSuspicion(idx);
    } else if (old === MemberState.Left) return;
    else if (old === MemberState.Dead && s.inc <= this.table.inc[idx]) return;
    // (A suspect at a newer incarnation than our dead record proves the member lived on
    // after we buried it: it becomes a fresh suspicion it can still refute.)
    const oldInc = this.table.inc[idx];
    this.enqueue(idx, s);
    this.table.set(idx, MemberState.Suspect, s.inc);
    this.host.metrics.inc("mycelium_swim_suspicions_total");
    const fromIdx = this.ids.intern(s.from);
    this.opts.listener?.(idx, old, MemberState.Suspect, oldInc, s.inc, fromIdx);

    const n = this.clusterSize();
    let k = this.config.suspicionMult - 2;
    if (n - 2 < k) k = 0;
    const { min, max } = suspicionBounds(this.config, n);
    this.suspicions.set(idx, {
      inc: s.inc,
      start: this.host.now(),
      min,
      max,
      k,
      n: 0,
      confirmers: [fromIdx],
    });
    this.host.setTimer(P_SUSPECT + idx, k > 0 ? max : min);
  }

  /** Lifeguard: an independent confirmation shortens the suspicion timeout. */
  private confirm(idx: number, susp: Suspicion, from: NodeId): boolean {
    if (susp.n >= susp.k) return false;
    const f = this.ids.intern(from);
    if (susp.confirmers.includes(f)) return false;
    susp.confirmers.push(f);
    susp.n++;
    const timeout = suspicionTimeout(susp.min, susp.max, susp.k, susp.n);
    const remaining = timeout - (this.host.now() - susp.start);
    this.host.setTimer(P_SUSPECT + idx, Math.max(0, remaining));
    return true;
  }

  private suspicionExpired(idx: number): void {
    const susp = this.suspicions.get(idx);
    if (!susp) return;
    this.suspicions.delete(idx);
    if (this.table.get(idx) !== MemberState.Suspect || this.table.inc[idx] !== susp.inc) return;
    // The declaration is ours, but the judgement started with the first suspecter.
    this.deadNode(
      { k: "dead", node: this.ids.id(idx), inc: susp.inc, from: this.host.self },
      susp.confirmers[0],
    );
  }

  private clearSuspicion(idx: number): void {
    if (this.suspicions.delete(idx)) this.host.cancelTimer(P_SUSPECT + idx);
  }

  private deadNode(d: DeadItem, origin?: number): void {
    if (d.node === this.host.self) {
      if (this.leaving) return;
      if (d.inc < this.inc) {
        this.staleAccusation = true;
        return;
      }
      this.host.metrics.inc("mycelium_swim_refutations_total");
      this.refute(d.inc);
      return;
    }
    const idx = this.ids.lookup(d.node);
    if (idx === undefined) return;
    const old = this.table.get(idx);
    if (old === UNKNOWN || d.inc < this.table.inc[idx]) return;
    this.clearSuspicion(idx);
    const oldInc = this.table.inc[idx];
    if (old === MemberState.Dead || old === MemberState.Left) {
      // Already buried; only carry a newer incarnation along.
      if (d.inc > oldInc) {
        this.table.set(idx, old, d.inc);
        this.enqueue(idx, d);
        this.opts.listener?.(idx, old, old, oldInc, d.inc, this.ids.intern(d.from));
      }
      return;
    }
    this.enqueue(idx, d);
    const state = d.from === d.node ? MemberState.Left : MemberState.Dead;
    this.table.set(idx, state, d.inc);
    this.table.diedAt.set(idx, this.host.now());
    if (state === MemberState.Dead) this.host.metrics.inc("mycelium_swim_deaths_total");
    this.opts.listener?.(idx, old, state, oldInc, d.inc, origin ?? this.ids.intern(d.from));
  }

  /** Raise our incarnation above an accusation and announce it. */
  private refute(accused: number): void {
    this.setIncarnation(Math.max(this.inc, accused) + 1);
    this.adjustAwareness(1);
    this.enqueueSelfAlive();
  }

  private enqueueSelfAlive(): void {
    this.enqueue(this.selfIdx, this.selfAlive());
  }

  private enqueue(member: number, item: GossipItem): void {
    this.queue.enqueue(member, item, gossipItemSize(item));
    if (this.gossipIdle) this.wakeGossip();
  }

  /**
   * The gossip timer sleeps while there is nothing to send (a round with an empty queue
   * does nothing) and wakes on the same tick grid, so a 10,000-node simulation does not
   * spend 50,000 timer events a second on no-ops.
   */
  private wakeGossip(): void {
    this.gossipIdle = false;
    const every = this.config.gossipIntervalMs;
    const now = this.host.now();
    const next = this.gossipPhase + Math.ceil((now - this.gossipPhase) / every) * every;
    this.host.setTimer(T_GOSSIP, Math.max(0, next - now));
  }

  private selfAlive(): AliveItem {
    return { k: "alive", node: this.host.self, inc: this.inc, addr: this.opts.addr ?? "" };
  }

  /** Incarnations are durable so a restarted node always comes back with a higher one. */
  private setIncarnation(inc: number): void {
    this.inc = inc;
    const buf = new Uint8Array(4);
    new DataView(buf.buffer).setUint32(0, inc);
    this.host.storage.put(INC_KEY, buf);
    this.host.storage.sync();
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }
}

function pickK<T>(arr: readonly T[], k: number, random: () => number): T[] {
  const copy = arr.slice();
  for (let i = 0; i < k && i < copy.length; i++) {
    const j = i + Math.floor(random() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy.slice(0, k);
}
