/**
 * The real cluster: a scenario's nodes as real node processes (ephemeral ports), its
 * crash/restart faults and leaves applied for real (`kill -9`, SIGTERM), the nodes' membership
 * views watched through their admin API, and the simulator's own checks and summary.json
 * shape at the end.
 *
 * Without `netns` the nodes share 127.0.0.1 and no link fault can be applied. With it (root,
 * ip/nft/tc), every node runs in its own network namespace (`NetnsLab`): partitions, one-way
 * cuts, jams, degraded nodes and network-wide loss become nftables drop rules between the
 * namespaces at their `at`/`until`, and `network.bandwidth` a `tc tbf` qdisc on every
 * node's uplink. Added latency (the latency distribution, jitter, the region matrix, slow
 * links, `degrade.addLatency`), reordering and duplication come from the delaying relay
 * (relay.ts; this kernel has no netem): node-to-node packets pass through it, and it holds
 * each for the delay the simulator's own `NetworkModel` draws for that link. Clock skew
 * stays impossible (no way to skew a process's monotonic clock): such scenarios are rejected
 * up front with the reason.
 */
import { join } from "node:path";
import { ConfigError } from "../core/errors.ts";
import { suspicionBounds } from "../core/membership/config.ts";
import { MemberState } from "../core/membership/messages.ts";
import { UNKNOWN } from "../core/membership/members.ts";
import { type CheckResult, declared, evaluateChecks, type FaultAccount } from "../sim/checks.ts";
import { MembershipObserver, type Violation } from "../sim/membership_observer.ts";
import { Rng } from "../sim/rng.ts";
import { type Scenario, scenarioSchema } from "../sim/scenario.ts";
import { type NodeInfo, resolveSelector, validateSelector } from "../sim/selectors.ts";
import type { SampleRow } from "../sim/simulation.ts";
import type { RunView } from "../sim/summary.ts";
import { createTestNetwork, type MemberView, nodeEnv, NodeProcess } from "../node/testing.ts";
import { type LinkRule, NetworkModel } from "../sim/network.ts";
import { NetnsLab, netnsUnavailable, RELAY_MAX_NODES, type RuleHandle } from "./netns.ts";
import { DelayRelay } from "./relay.ts";
import { ClusterConsensus, consensusUnsupported } from "./consensus_load.ts";

/** More processes than this would not be a fair test on a 2-core machine. */
export const MAX_CLUSTER_NODES = 32;
/** Ports of nodes in network namespaces (each has an address of its own). */
const GOSSIP_PORT = 7946, STREAMS_PORT = 7947, ADMIN_PORT = 8080;

const STATE: Record<string, number> = {
  alive: MemberState.Alive,
  suspect: MemberState.Suspect,
  dead: MemberState.Dead,
  left: MemberState.Left,
};

/**
 * Why the real cluster cannot run this scenario (empty: it can). `netns`: whether the nodes
 * run in network namespaces (which makes link faults, loss and bandwidth possible).
 */
export function unsupportedFeatures(s: Scenario, opts: { netns?: boolean } = {}): string[] {
  const netns = opts.netns ?? false;
  const out: string[] = [];
  const needNs = "needs per-node network namespaces (--netns: root with ip, nft and tc)";
  const needRelay =
    "needs the delaying relay, which runs only with --netns (root with ip, nft, tc)";
  const net = s.network;
  if (!netns) {
    for (const why of relayReasons(s)) out.push(`${why}: ${needRelay}`);
    if (net.loss > 0) out.push(`network.loss: random loss ${needNs}`);
    if (net.bandwidth !== undefined) out.push(`network.bandwidth: tc tbf ${needNs}`);
  }
  s.faults.forEach((f, i) => {
    if (f.type === "clock") {
      out.push(`faults[${i}]: a clock fault cannot skew a real process's monotonic clock`);
    } else if (f.type !== "crash" && f.type !== "slow" && !netns) {
      out.push(`faults[${i}]: a ${f.type} fault ${needNs}`);
    }
  });
  if (s.bootstrap.mode === "snapshot") {
    out.push("bootstrap.mode: real nodes join through seed nodes; use mode: seeds");
  }
  if (s.signatures.verifyCostUs > 0) {
    out.push("signatures.verifyCostUs: real nodes pay the real cost of their signatures");
  }
  if (s.outputs.trace) out.push("outputs.trace: real nodes keep no message trace");
  out.push(...consensusUnsupported(s));
  const n = s.nodes.reduce((a, g) => a + g.count, 0);
  if (n > MAX_CLUSTER_NODES) {
    out.push(`nodes: ${n} processes, at most ${MAX_CLUSTER_NODES} on one machine`);
  }
  return out;
}

/**
 * The scenario fields that add delay, reorder or duplicate packets (empty: no relay needed).
 * The default latency distribution is not among them: real links have their own.
 */
export function relayReasons(s: Scenario): string[] {
  const defaults = scenarioSchema.parse({
    name: "x",
    duration: 1,
    nodes: [{ group: "n", count: 1 }],
  });
  const net = s.network;
  const out: string[] = [];
  if (JSON.stringify(net.latency) !== JSON.stringify(defaults.network.latency)) {
    out.push("network.latency");
  }
  if (net.jitter > 0) out.push("network.jitter");
  if (net.duplicate > 0) out.push("network.duplicate");
  if (net.reorder > 0) out.push("network.reorder");
  if (Object.keys(net.regions).length > 0) out.push("network.regions");
  s.faults.forEach((f, i) => {
    if (f.type === "slow") out.push(`faults[${i}]`);
    else if (f.type === "degrade" && f.addLatency > 0) out.push(`faults[${i}].addLatency`);
  });
  return out;
}

/** A link fault in force: its rules, its account, and (a partition) its groups. */
interface ActiveFault {
  handle: RuleHandle;
  account: FaultAccount;
  partition: { groupOf: Int32Array; healedAt: number | null } | null;
}

interface ClusterNode extends NodeInfo {
  readonly index: number;
  readonly dataDir: string;
  readonly startAt: number;
  readonly isJoiner: boolean;
  proc: NodeProcess | null;
  id: string;
  up: boolean;
  upSince: number;
  upMs: number;
  bytesSent: number;
  bytesReceived: number;
  msgsSent: number;
  /** Counter baselines of the current process life (its counters restart at 0). */
  base: { bytesSent: number; bytesReceived: number; msgsSent: number };
  /** The last /metrics scrape of this node. */
  metricsBody: string;
  lives: NodeProcess[];
}

export interface ClusterOptions {
  /** Where node data, identities and logs live during the run. */
  workDir: string;
  /** A built `mycelium` binary; default: `deno run node/cli.ts`. */
  binary?: string;
  /** How often the nodes' views are read (ms). */
  pollMs?: number;
  /**
   * Each node in its own network namespace (link faults, loss, bandwidth); default: when
   * running as root with ip, nft and tc available.
   */
  netns?: boolean;
  /** Called once the namespaces exist (before any node starts). */
  onNetns?: (lab: NetnsLab) => void;
  onProgress?: (elapsedMs: number, durationMs: number) => void;
}

function envName(field: string): string {
  return field.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

export class RealCluster implements RunView {
  readonly scenario: Scenario;
  readonly seed: number;
  readonly traceHash = "";
  readonly observer: MembershipObserver;
  readonly nodes: ClusterNode[] = [];
  readonly faults: FaultAccount[] = [];
  readonly workload: FaultAccount[] = [];
  readonly samples: SampleRow[] = [];
  readonly lastFaultEnd: number;
  violation: (Violation & { event: number; t: number }) | null = null;
  convergedAt: number | null = null;
  virtualMs = 0;
  /** Observed view changes (the real cluster's "events"). */
  events = 0;
  private t0 = 0;
  private readonly views = new Map<number, Map<number, { state: number; inc: number }>>();
  private readonly byId = new Map<string, number>();
  private readonly timers: ReturnType<typeof setTimeout>[] = [];
  private readonly rng: Rng;
  private readonly pending: Promise<unknown>[] = [];
  /** Whether nodes run in network namespaces. */
  readonly netns: boolean;
  private lab: NetnsLab | null = null;
  /** The delaying relay and the network model it draws delays from (null: no relay). */
  private relay: DelayRelay | null = null;
  private relayModel: NetworkModel | null = null;
  private readonly active = new Set<ActiveFault>();
  private readonly partitions: Array<{ groupOf: Int32Array; healedAt: number | null }> = [];
  private readonly partitionGraceMs: number;
  /** Consensus scenarios: voters, HTTP clients and the consensus checkers (else null). */
  readonly consensus: ClusterConsensus | null;

  constructor(scenario: Scenario, private readonly opts: ClusterOptions) {
    this.netns = opts.netns ?? netnsUnavailable() === null;
    if (this.netns) {
      const why = netnsUnavailable();
      if (why) throw new ConfigError(`cannot run nodes in network namespaces: ${why}`, "--netns");
    }
    const problems = unsupportedFeatures(scenario, { netns: this.netns });
    if (problems.length > 0) {
      throw new ConfigError(
        `the real cluster cannot run this scenario:\n  - ${problems.join("\n  - ")}`,
        "scenario",
      );
    }
    this.scenario = scenario;
    this.seed = scenario.seed;
    this.rng = Rng.fromSeed(scenario.seed);
    const startRng = this.rng.derive("start");
    for (const g of scenario.nodes) {
      for (let k = 0; k < g.count; k++) {
        const name = `${g.group}-${k}`;
        this.nodes.push({
          index: this.nodes.length,
          name,
          group: g.group,
          indexInGroup: k,
          tier: g.tier,
          region: g.region,
          dataDir: join(opts.workDir, "nodes", name),
          startAt: g.start.at + (g.start.spread > 0 ? startRng.next() * g.start.spread : 0),
          isJoiner: g.start.at > 0,
          proc: null,
          id: "",
          up: false,
          upSince: 0,
          upMs: 0,
          bytesSent: 0,
          bytesReceived: 0,
          msgsSent: 0,
          base: { bytesSent: 0, bytesReceived: 0, msgsSent: 0 },
          metricsBody: "",
          lives: [],
        });
      }
    }
    let end = 0;
    scenario.faults.forEach((f, i) => {
      const path = `faults[${i}]`;
      switch (f.type) {
        case "crash":
          validateSelector(f.nodes, this.nodes, `${path}.nodes`);
          end = Math.max(end, f.at + (f.restartAfter ?? 0));
          return;
        case "partition":
          f.groups.forEach((g, gi) => validateSelector(g, this.nodes, `${path}.groups[${gi}]`));
          break;
        case "oneway":
          validateSelector(f.from, this.nodes, `${path}.from`);
          validateSelector(f.to, this.nodes, `${path}.to`);
          break;
        case "jam":
          validateSelector(f.between[0], this.nodes, `${path}.between[0]`);
          validateSelector(f.between[1], this.nodes, `${path}.between[1]`);
          break;
        case "degrade":
          validateSelector(f.nodes, this.nodes, `${path}.nodes`);
          break;
        default:
          return;
      }
      end = Math.max(end, Math.min(f.until ?? scenario.duration, scenario.duration));
    });
    const m = scenario.protocol.membership;
    // As in the simulator: declarations this long after a heal are partition fallout.
    this.partitionGraceMs = suspicionBounds(m, this.nodes.length).max + m.gossipToTheDeadMs;
    scenario.workload.leaves.forEach((w, i) => {
      validateSelector(w.nodes, this.nodes, `workload.leaves[${i}].nodes`);
      end = Math.max(end, w.at + scenario.protocol.membership.leavePropagateMs);
    });
    this.lastFaultEnd = end;
    this.consensus = scenario.consensus
      ? new ClusterConsensus(scenario, this.nodes, () => this.now())
      : null;
    this.observer = new MembershipObserver(
      this.nodes.length,
      this.nodes.filter((n) => !n.isJoiner).length,
      () => this.now(),
      (a, b) => this.partitioned(a, b),
      (i) => this.nodes[i].name,
    );
    this.observer.checkIncarnations = scenario.checks.some((c) =>
      c.type === "membership.incarnation-monotonic"
    );
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  /**
   * Whether a declaration by `x` about `y` is partition fallout: a partition separates them
   * now, or did and healed within the grace period. The runner sees views, not who judged
   * (the simulator passes the originator of a dead item): after a heal, a dead item about
   * `y` from a node of the other side reaches `y`'s own side before `y` refutes it, so within
   * the grace period any declaration about a node the partition cut off counts as fallout.
   */
  private partitioned(x: number, y: number): boolean {
    const now = this.now();
    return this.partitions.some((p) => {
      if (p.groupOf[x] !== p.groupOf[y]) {
        return p.healedAt === null || now - p.healedAt <= this.partitionGraceMs;
      }
      return p.healedAt !== null && now - p.healedAt <= this.partitionGraceMs &&
        p.groupOf.some((g) => g !== p.groupOf[y]);
    });
  }

  /** Creates the network and every node identity (before the clock starts). */
  private async prepare(): Promise<void> {
    await Deno.mkdir(join(this.opts.workDir, "nodes"), { recursive: true });
    const net = await createTestNetwork(this.opts.workDir, "cluster");
    for (const n of this.nodes) {
      const dataDir = await net.node(n.name);
      await Deno.rename(dataDir, n.dataDir);
    }
    await this.consensus?.prepare();
  }

  private env(n: ClusterNode, seeds: string[]): Record<string, string> {
    const extra: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.scenario.protocol.membership)) {
      extra[`MYCELIUM_MEMBERSHIP_${envName(k)}`] = String(v);
    }
    extra.MYCELIUM_NODE_TIER = n.tier;
    if (this.consensus) Object.assign(extra, this.consensus.env());
    if (this.lab) {
      // Every node has an address of its own: the well-known ports, which the relay's
      // steering rules match.
      const addr = this.lab.addr(n.index);
      extra.MYCELIUM_GOSSIP_BIND = addr;
      extra.MYCELIUM_GOSSIP_PORT = String(GOSSIP_PORT);
      extra.MYCELIUM_STREAMS_BIND = addr;
      extra.MYCELIUM_STREAMS_PORT = String(STREAMS_PORT);
      extra.MYCELIUM_ADMIN_BIND = addr;
      extra.MYCELIUM_ADMIN_PORT = String(ADMIN_PORT);
    }
    return nodeEnv(n.dataDir, seeds, extra);
  }

  private seedAddrs(): string[] {
    const k = this.scenario.bootstrap.seedNodes;
    return this.nodes.filter((n) => !n.isJoiner).slice(0, k)
      .map((n) => n.proc?.addresses?.gossip).filter((a): a is string => !!a);
  }

  private async startNode(n: ClusterNode): Promise<void> {
    if (n.up) return;
    const proc = new NodeProcess(
      n.name,
      n.dataDir,
      this.env(n, this.seedAddrs()),
      this.opts.binary,
      this.lab ? this.lab.commandPrefix(n.index) : [],
    );
    n.proc = proc;
    n.lives.push(proc);
    const addrs = await proc.ready();
    if (n.lives.length === 1 && !n.isJoiner) {
      this.lastInitialReadyMs = Math.max(this.lastInitialReadyMs, this.now());
    }
    n.id = addrs.nodeId;
    this.byId.set(n.id, n.index);
    n.up = true;
    n.upSince = this.now();
    n.base = { bytesSent: n.bytesSent, bytesReceived: n.bytesReceived, msgsSent: n.msgsSent };
    this.views.set(n.index, new Map());
    this.observer.nodeUp(n.index, n.isJoiner && n.lives.length === 1);
  }

  private async stopNode(n: ClusterNode, signal: "SIGKILL" | "SIGTERM"): Promise<void> {
    if (!n.up || !n.proc) return;
    if (signal === "SIGTERM") await this.scrape(n); // last counters before a graceful exit
    n.up = false;
    n.upMs += this.now() - n.upSince;
    const view = this.views.get(n.index) ?? new Map();
    this.observer.nodeDown(n.index, signal === "SIGKILL", (_o, t) => view.get(t)?.state ?? UNKNOWN);
    n.proc.kill(signal);
    await n.proc.exited;
  }

  private at(ms: number, fn: () => Promise<void> | void): void {
    this.timers.push(setTimeout(() => {
      this.pending.push(
        Promise.resolve(fn()).catch((e) => console.error(`cluster action failed: ${e}`)),
      );
    }, Math.max(0, ms - this.now())));
  }

  /** Removes a link fault's rules and counts the packets they dropped as its firings. */
  private async heal(a: ActiveFault): Promise<void> {
    if (!this.active.delete(a)) return;
    if (a.partition) a.partition.healedAt = this.now();
    a.account.fired += await a.handle.remove();
  }

  /** Partitions, one-way cuts, jams and degraded nodes as nftables rules in their window. */
  private scheduleLinkFaults(): void {
    const lab = this.lab;
    if (!lab) return;
    const duration = this.scenario.duration;
    this.scenario.faults.forEach((f, fi) => {
      if (f.type === "crash" || f.type === "clock") return;
      const rng = this.rng.derive(`fault/${fi}`);
      const resolve = (sel: Parameters<typeof resolveSelector>[0]) =>
        resolveSelector(sel, this.nodes, rng);
      let partition: ActiveFault["partition"] = null;
      let apply: () => Promise<RuleHandle>;
      switch (f.type) {
        case "partition": {
          const groups = f.groups.map(resolve);
          const groupOf = new Int32Array(this.nodes.length).fill(-1);
          groups.forEach((g, gi) => g.forEach((i) => groupOf[i] = gi));
          partition = { groupOf, healedAt: null };
          apply = () => lab.partition(groups);
          break;
        }
        case "oneway": {
          const from = resolve(f.from), to = resolve(f.to);
          apply = () => lab.oneway(from, to, f.loss);
          break;
        }
        case "jam": {
          const a = resolve(f.between[0]), b = resolve(f.between[1]);
          apply = () => lab.loss([a, b], f.loss);
          break;
        }
        case "slow": {
          const a = resolve(f.between[0]), b = resolve(f.between[1]);
          apply = () =>
            Promise.resolve(this.delayRule({
              kind: "slow",
              a: this.mask(a),
              b: this.mask(b),
              loss: 0,
              addLatency: f.addLatency,
              affected: 0,
            }, a.length * b.length * 2));
          break;
        }
        case "degrade": {
          const nodes = resolve(f.nodes);
          apply = async () => {
            const hs = await Promise.all(nodes.map((i) => lab.degrade(i, f.loss, f.direction)));
            if (f.addLatency > 0) {
              hs.push(this.delayRule({
                kind: "degrade",
                a: this.mask(nodes),
                loss: 0, // the nftables rules above drop; the relay only delays
                addLatency: f.addLatency,
                direction: f.direction,
                affected: 0,
              }, 0));
            }
            const sum = async (fn: (h: RuleHandle) => Promise<number>) =>
              (await Promise.all(hs.map(fn))).reduce((x, y) => x + y, 0);
            return {
              pairs: hs.reduce((x, h) => x + h.pairs, 0),
              dropped: () => sum((h) => h.dropped()),
              remove: () => sum((h) => h.remove()),
            };
          };
          break;
        }
      }
      const account = declared(f.type, f.at, f.name);
      this.faults.push(account);
      let applying: Promise<ActiveFault> | null = null;
      this.at(f.at, () => {
        this.observer.closeFormation();
        if (partition) this.partitions.push(partition);
        applying = apply().then((handle) => {
          const a = { handle, account, partition };
          this.active.add(a);
          return a;
        });
        return applying.then(() => undefined);
      });
      const until = Math.min(f.until ?? duration, duration);
      if (until < duration) {
        this.at(until, async () => {
          if (applying) await this.heal(await applying);
        });
      }
    });
  }

  private mask(nodes: number[]): Uint8Array {
    const m = new Uint8Array(this.nodes.length);
    for (const i of nodes) m[i] = 1;
    return m;
  }

  /**
   * A slowed link or a degraded node's added latency: a rule of the relay's network model
   * (the simulator's own), in force until removed; its firings are the packets it delayed.
   */
  private delayRule(rule: LinkRule, pairs: number): RuleHandle {
    const model = this.relayModel;
    if (!model) throw new Error("a delay rule needs the relay (relayReasons missed a field)");
    model.addRule(rule);
    let removed = false;
    return {
      pairs,
      dropped: () => Promise.resolve(rule.affected),
      remove: () => {
        if (!removed) model.removeRule(rule, this.now());
        removed = true;
        return Promise.resolve(rule.affected);
      },
    };
  }

  /**
   * Starts the delaying relay when the scenario asks for latency, jitter, regions, reordering,
   * duplication or slowed links: steers node-to-node traffic through it, and draws every
   * packet's delay from a `NetworkModel` of the scenario's network (loss and bandwidth are
   * left to nftables and tc, so the model has neither).
   */
  private async startRelay(lab: NetnsLab): Promise<void> {
    if (relayReasons(this.scenario).length === 0) return;
    if (this.nodes.length > RELAY_MAX_NODES) {
      throw new ConfigError(`the relay serves at most ${RELAY_MAX_NODES} nodes`, "nodes");
    }
    await lab.steerThroughRelay(GOSSIP_PORT, STREAMS_PORT);
    const model = new NetworkModel(
      { ...this.scenario.network, loss: 0, bandwidth: undefined },
      this.nodes.map((n) => n.region),
    );
    this.relayModel = model;
    const rng = this.rng.derive("relay");
    this.relay = await DelayRelay.start({
      size: lab.size,
      addr: (i) => lab.addr(i),
      alias: (i) => lab.alias(i),
      relayPort: (j) => lab.relayPort(j),
      gossipPort: GOSSIP_PORT,
      streamsPort: STREAMS_PORT,
    }, {
      delay: (from, to, bytes) => model.route(from, to, bytes, this.now(), rng),
      duplicate: () => model.duplicate(rng) ? { delayMs: model.resample(rng) } : null,
    });
  }

  /** Network-wide loss and bandwidth, for the whole run. */
  private async applyNetwork(lab: NetnsLab): Promise<void> {
    const net = this.scenario.network;
    const all = this.nodes.map((n) => n.index);
    if (net.loss > 0) await lab.loss([all, all], net.loss);
    if (net.bandwidth !== undefined) {
      await Promise.all(all.map((i) => lab.bandwidth(i, net.bandwidth!, net.queue)));
    }
  }

  private scheduleFaults(): void {
    this.scheduleLinkFaults();
    const isUp = (i: number) => this.nodes[i].up;
    this.scenario.faults.forEach((f, fi) => {
      if (f.type !== "crash") return;
      const account = declared("crash", f.at, f.name);
      this.faults.push(account);
      const rng = this.rng.derive(`fault/${fi}`);
      this.at(f.at, async () => {
        this.observer.closeFormation();
        const victims = resolveSelector(f.nodes, this.nodes, rng, isUp).filter(isUp);
        await Promise.all(victims.map(async (i) => {
          await this.stopNode(this.nodes[i], "SIGKILL");
          account.fired++;
          if (f.restartAfter !== undefined) {
            this.at(this.now() + f.restartAfter, () => this.startNode(this.nodes[i]));
          }
        }));
      });
    });
    this.scenario.workload.leaves.forEach((w, wi) => {
      const account = declared("leave", w.at, w.name);
      this.workload.push(account);
      const rng = this.rng.derive(`workload/leave/${wi}`);
      this.at(w.at, async () => {
        this.observer.closeFormation();
        const leavers = resolveSelector(w.nodes, this.nodes, rng, isUp).filter(isUp);
        await Promise.all(leavers.map(async (i) => {
          await this.stopNode(this.nodes[i], "SIGTERM");
          account.fired++;
        }));
      });
    });
  }

  /** Reads every live node's view and feeds the differences to the observer. */
  private async poll(): Promise<void> {
    await Promise.all(
      this.nodes.filter((n) => n.up).map(async (n) => {
        let view: MemberView;
        try {
          view = await n.proc!.json<MemberView>("/v1/members");
        } catch {
          return; // the node is going down; its last view stands
        }
        if (!n.up) return;
        const last = this.views.get(n.index)!;
        for (const m of view) {
          const t = this.byId.get(m.node);
          if (t === undefined) continue;
          const to = STATE[m.state];
          const prev = last.get(t);
          if (prev && prev.state === to && prev.inc === m.incarnation) continue;
          last.set(t, { state: to, inc: m.incarnation });
          this.events++;
          this.observer.onChange(
            n.index,
            t,
            prev?.state ?? UNKNOWN,
            to,
            prev?.inc ?? 0,
            m.incarnation,
            n.index,
          );
        }
      }),
    );
    if (this.observer.violation && !this.violation) {
      this.violation = { ...this.observer.violation, event: this.events, t: this.now() };
    }
  }

  private async scrape(n: ClusterNode): Promise<string | null> {
    try {
      const body = (await n.proc!.get("/metrics")).body;
      const num = (name: string) => Number(new RegExp(`^${name} (\\S+)`, "m").exec(body)?.[1] ?? 0);
      n.bytesSent = n.base.bytesSent + num("mycelium_datagram_bytes_sent");
      n.bytesReceived = n.base.bytesReceived + num("mycelium_datagram_bytes_received");
      n.msgsSent = n.base.msgsSent + num("mycelium_datagrams_sent");
      n.metricsBody = body;
      return body;
    } catch {
      return null;
    }
  }

  private lastSampleBytes = 0;
  private lastSampleMsgs = 0;

  private async sample(): Promise<void> {
    await Promise.all(this.nodes.filter((n) => n.up).map((n) => this.scrape(n)));
    const o = this.observer;
    this.consensus?.sample(this.now());
    const secs = this.scenario.outputs.sampleInterval / 1000;
    this.samples.push({
      t: this.now(),
      up: o.upCount,
      suspectViews: o.suspectViews,
      deadViews: o.deadViews,
      bytesPerSec: (this.totalBytes - this.lastSampleBytes) / secs,
      msgsPerSec: (this.totalMsgs - this.lastSampleMsgs) / secs,
    });
    this.lastSampleBytes = this.totalBytes;
    this.lastSampleMsgs = this.totalMsgs;
    if (o.converged()) {
      if (this.convergedAt === null && this.now() >= this.lastFaultEnd) {
        this.convergedAt = this.now();
      }
    } else this.convergedAt = null;
  }

  get totalBytes(): number {
    return this.nodes.reduce((s, n) => s + n.bytesSent, 0);
  }
  get totalMsgs(): number {
    return this.nodes.reduce((s, n) => s + n.msgsSent, 0);
  }

  /** Runs the scenario in real time; returns when it ended and every node stopped. */
  async run(outDir?: string): Promise<void> {
    if (this.netns) {
      this.lab = await NetnsLab.create(this.nodes.length);
      this.opts.onNetns?.(this.lab);
      try {
        await this.applyNetwork(this.lab);
        await this.startRelay(this.lab);
        await this.runNodes(outDir);
      } finally {
        await this.shutdown();
      }
    } else {
      try {
        await this.runNodes(outDir);
      } finally {
        await this.shutdown();
      }
    }
  }

  /** Stops every node process still running, then removes the namespaces (idempotent). */
  async shutdown(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const n of this.nodes) for (const p of n.lives) p.kill("SIGKILL");
    await Promise.all(
      this.nodes.flatMap((n) => n.lives.map((p) => p.exited.catch(() => undefined))),
    );
    this.relay?.close();
    const lab = this.lab;
    this.lab = null;
    await lab?.close();
  }

  private async runNodes(outDir?: string): Promise<void> {
    await this.prepare();
    this.t0 = performance.now();
    // Seeds first (others need their addresses), then the rest on their schedule.
    const seeds = this.nodes.filter((n) => !n.isJoiner).slice(0, this.scenario.bootstrap.seedNodes);
    for (const n of seeds) await this.startNode(n);
    for (const n of this.nodes) if (!seeds.includes(n)) this.at(n.startAt, () => this.startNode(n));
    this.scheduleFaults();
    this.consensus?.startClients();
    const duration = this.scenario.duration;
    const pollMs = this.opts.pollMs ?? 250;
    const every = this.scenario.outputs.sampleInterval;
    let nextSample = every;
    while (this.now() < duration && !this.violation) {
      await this.poll();
      await this.consensus?.poll();
      if (this.now() >= nextSample) {
        await this.sample();
        nextSample += every;
        this.opts.onProgress?.(this.now(), duration);
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
    for (const t of this.timers) clearTimeout(t);
    await Promise.all(this.pending);
    await this.consensus?.stop();
    await this.consensus?.poll();
    // Link faults still in force end with the run; their drop counters are their firings.
    for (const a of [...this.active]) await this.heal(a).catch((e) => console.error(`${e}`));
    this.virtualMs = this.now();
    if (outDir) await this.keepArtifacts(outDir);
    for (const n of this.nodes) {
      if (n.up) n.upMs += this.now() - n.upSince;
      n.up = false;
      n.proc?.kill("SIGTERM");
    }
    await Promise.all(
      this.nodes.flatMap((n) => n.lives.map((p) => p.exited.catch(() => undefined))),
    );
    if (outDir) await this.writeLogs(outDir);
  }

  /** When the last initial node process reported itself started (process boot excluded). */
  lastInitialReadyMs = 0;

  /** Largest peak RSS of any node process still running at the end. */
  peakNodeRssBytes = 0;

  /** DIR/metrics/<node>.prom: each live node's last /metrics scrape. */
  private async keepArtifacts(outDir: string): Promise<void> {
    await Deno.mkdir(join(outDir, "metrics"), { recursive: true });
    for (const n of this.nodes) {
      if (!n.up) continue;
      this.peakNodeRssBytes = Math.max(this.peakNodeRssBytes, n.proc!.peakRssBytes());
      const body = await this.scrape(n);
      if (body !== null) await Deno.writeTextFile(join(outDir, "metrics", `${n.name}.prom`), body);
    }
  }

  /** DIR/logs/<node>.log: every life of every node, in order. */
  private async writeLogs(outDir: string): Promise<void> {
    await Deno.mkdir(join(outDir, "logs"), { recursive: true });
    for (const n of this.nodes) {
      const text = n.lives.map((p, i) => `# life ${i + 1}\n${p.logs.join("\n")}`).join("\n");
      await Deno.writeTextFile(join(outDir, "logs", `${n.name}.log`), text + "\n");
    }
  }

  dropCounts(): Record<string, number> {
    return {};
  }
  /** What the delaying relay forwarded (empty without a relay). */
  counters(): Record<string, number> {
    const r = this.relay?.stats;
    if (!r) return {};
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [`relay.${k}`, v]));
  }
  /** A counter summed over every node's last /metrics scrape (all label sets). */
  counterSum(name: string): number {
    let sum = 0;
    const re = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm");
    for (const n of this.nodes) for (const m of n.metricsBody.matchAll(re)) sum += Number(m[1]);
    return sum;
  }

  evaluateChecks(): CheckResult[] {
    const out = evaluateChecks(this);
    if (this.consensus) {
      const metrics = this.nodes.filter((n) => n.metricsBody !== "")
        .map((n) => ({ name: n.name, body: n.metricsBody }));
      out.push(...this.consensus.evaluateChecks(this.lastFaultEnd, this.virtualMs, metrics));
    }
    return out;
  }
}
