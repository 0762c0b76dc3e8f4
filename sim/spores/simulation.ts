/**
 * The spores simulator (issue 6): spore tiers, bootstrap and join, split brain, and (with a
 * `storage` section) trust-aware object storage, on the shared engine, network model, fault
 * schedule and seeded streams.
 *
 * - Latent: every active node runs `LatentGossip` (core/spores/gossip.ts) behind a simulated
 *   Host; entries carry modelled signatures (core/spores/testing.ts).
 * - Primary: a consensus stand-in (ledger.ts) cuts one block per side of a partition every
 *   `primary.blockMs` from the operations that side's Sclerotia accepted, only where the
 *   side holds a quorum of the voters (`cpPlaneMode`); committed views reach the side's
 *   voters and the operations' Sclerotia, and everyone else by gossip (`ph` + pull).
 * - Seed: virtual files per location (seeds.ts), written by member nodes every
 *   `seed.writeIntervalMs` (the Master Seed at genesis), read with `readSeed`; scenario
 *   events tamper with them.
 * - Join: a node that is not a genesis node (or restarts) runs discovery (core/spores/
 *   discovery.ts: cached spore, Rhizomorph contacts, Seed lookup, Latent entry points), then a
 *   join round trip to a found Sclerotium (failing over once), which submits the node's
 *   admission to the Primary when it serves (Sclerotia, Rhizomorphs) and answers with the
 *   certified Primary and its Latent snapshot. The node is then active.
 * - Byzantine nodes run the honest protocol but add forged, replayed, future-dated,
 *   foreign or Primary-contradicting entries to what they gossip.
 * - Split brain: CP writes go to a node's Sclerotium; a side without a quorum refuses them
 *   (reads only) while AP writes (own Latent entries) continue everywhere; singleton services
 *   run once per side and are resolved on heal by (processing volume, last write, id).
 * - Checks (`spores.*`, `storage.*`) run online where they are safety properties, the rest at
 *   the end; a violation stops the run.
 */
import { ConfigError } from "../../core/errors.ts";
import type { Host, Logger } from "../../core/host.ts";
import { nullMetrics } from "../../core/host.ts";
import { IdInterner, type NodeId, nodeIdFromPublicKey } from "../../core/ids.ts";
import {
  DISCOVERY_ORDER,
  DiscoveryCursor,
  type DiscoveryInputs,
  discoveryPlan,
  type DiscoverySource,
} from "../../core/spores/discovery.ts";
import {
  ENTRY_BYTES,
  LatentGossip,
  primaryViewBytes,
  type SporeGossipConfig,
  type SporeMessage,
  sporeMessageBytes,
} from "../../core/spores/gossip.ts";
import type { Hlc } from "../../core/spores/hlc.ts";
import {
  compareLatentEntries,
  CONN_NEVER,
  type ConnSummary,
  type LatentEntry,
  recordConnEvent,
  signLatentEntry,
  type UnsignedLatentEntry,
} from "../../core/spores/latent.ts";
import { contradiction, type PrimaryView } from "../../core/spores/primary.ts";
import { demotionDue, promotionEligible, spareCapacity } from "../../core/spores/promotion.ts";
import { seedLocationKind, type SeedProblem } from "../../core/spores/seed.ts";
import {
  type Epoch,
  genesisEpoch,
  healEpochs,
  nextEpoch,
  resolveSingletons,
  sideHasQuorum,
} from "../../core/spores/split_brain.ts";
import { modelSigner, modelVerify } from "../../core/spores/testing.ts";
import {
  addDiscardCounts,
  compareStrings,
  type DiscardCounts,
  emptyDiscardCounts,
  type SignFn,
  type Tier,
  type VerifyFn,
} from "../../core/spores/types.ts";
import { type CheckResult, declared, type FaultAccount } from "../checks.ts";
import { closeUptime, Engine, runSliced } from "../engine.ts";
import { lifeTimers, newNodeRuntime, nodeClock, type NodeRuntime } from "../node_runtime.ts";
import { scheduleFaults } from "../fault_schedule.ts";
import type { Violation } from "../membership_observer.ts";
import { dropReasonName, latencySampler, NetworkModel } from "../network.ts";
import { Rng } from "../rng.ts";
import type { Scenario, SporeByzantine, SporesScenario } from "../scenario.ts";
import { type NodeInfo, resolveSelector } from "../selectors.ts";
import { type PendingOp, PrimaryLedger } from "./ledger.ts";
import { SeedFiles } from "./seeds.ts";
import { StorageModel, type StorageOptions } from "./storage.ts";
import { evaluateSporeChecks, sporeMetrics } from "./checks.ts";

/** IP + UDP header bytes added to every message for byte accounting. */
const OVERHEAD = 28;
/** Fine-grained probes for formation and convergence (ms). */
const PROBE_MS = 100;
/**
 * A member's entry signed less than this long ago may still be spreading: a holder of the
 * member's previous entry still counts as converged (background refreshes never settle in a
 * large network otherwise).
 */
const SETTLE_MS = 3000;
const REQUEST_BYTES = 128;
/** A network id that is not ours (wrong-network spores and seeds). */
const FOREIGN_NETWORK = "f0".repeat(16);
const ATTACKER = "e".repeat(32) as NodeId;

export type NodeState = "down" | "discovering" | "joining" | "active";

interface ByzSpec {
  readonly behaviour: SporeByzantine;
  readonly perMessage: number;
}

export interface SporeNode extends NodeInfo, NodeRuntime {
  readonly id: NodeId;
  readonly startAt: number;
  readonly genesis: boolean;
  readonly byz: readonly ByzSpec[];
  readonly admitTrust: number;
  readonly sign: SignFn;
  readonly rng: Rng;
  state: NodeState;
  active: boolean;
  everActive: boolean;
  proto: LatentGossip | null;
  firstActiveAt: number | null;
  /** The cached spore (durable): Sclerotia it was connected to. */
  cached: number[];
  /** Sclerotia it keeps connections to (this life). */
  conns: number[];
  processingVolume: number;
  conn: ConnSummary;
  lastStatusAt: number;
  /** Own entries signed this life: (time, entry), newest last, at most 16. */
  history: Array<{ at: number; e: LatentEntry }>;
  /** Entries a Byzantine node has seen (its replay material), at most 64. */
  seen: LatentEntry[];
  discoveryStart: number | null;
  pathSince: number | null;
  /** Joiners waiting on this Sclerotium for their admission to reach it. */
  waiting: Array<{ node: NodeId; reply: () => void }>;
  /** Last Primary height the simulator saw this node hold (waiting joins). */
  seenHeight: number;
  /** The tier it serves as now: a Rhizomorph promoted by its certified Primary is a Sclerotium. */
  role: Tier;
  /** Set only by the promotionWithoutLedger test knob. */
  selfPromoted: boolean;
  /** Capacity (0..1) for promotion. */
  readonly capacity: number;
  downSince: number;
  /** Hyphae clients: Sclerotia connections (node, its life when connected). */
  clientConns: Array<{ node: number; life: number }>;
  clientRr: number;
  shortSince: number | null;
}

export interface SporeSample {
  t: number;
  up: number;
  active: number;
  joining: number;
  primaryHeight: number;
  divergence: number;
  readOnly: number;
  discards: DiscardCounts;
  bytesPerSec: number;
  msgsPerSec: number;
}

export interface SporeTraceEvent {
  index: number;
  t: number;
  kind: string;
  node: string;
  detail: string;
}

export interface SporeProgress {
  virtualMs: number;
  durationMs: number;
  events: number;
}

export interface SporeSimOptions {
  seed?: number;
  stopAtEvent?: number;
  recordLast?: number;
  /** Test knobs that break a mechanism so its checker can be seen to fire. */
  /** Nodes get uncertified copies of the Primary and adopt them (spores.no-contradiction). */
  uncertifiedPrimary?: boolean;
  /** Overrides the nodes' gossip configuration; checks keep the scenario's (spores.bounded). */
  gossipOverride?: Partial<SporeGossipConfig>;
  /** Duplicate singleton instances are never resolved (spores.singletons). */
  keepDuplicateSingletons?: boolean;
  /** Signature check the nodes use (a broken one accepts forgeries). */
  verify?: VerifyFn;
  storage?: StorageOptions;
  /** Eligible Rhizomorphs take the Sclerotia role without a ledger operation (spores.promotion). */
  promotionWithoutLedger?: boolean;
  /** Clients retry on the connection that just failed (spores.client-failover). */
  clientRetrySame?: boolean;
  /** Clients never refresh lost connections (spores.client-failover). */
  clientNoRefresh?: boolean;
  /** Heals adopt a chain without flagging the override's fork epoch (spores.fork-flagged). */
  skipForkFlag?: boolean;
  /** Partition records excuse no absence penalty (spores.absence-excused). */
  noAbsenceExcuse?: boolean;
  /** Absent voters are never penalised (spores.absence-excused). */
  noAbsencePenalty?: boolean;
}

/** A side of the current partition that made a manual override (until the heal). */
interface ForkSide {
  readonly epoch: Epoch;
  /** The side's epoch chain, genesis first, ending with the fork epoch. */
  readonly chain: Epoch[];
  readonly nodes: string[];
  /** Blocks the side committed without a quorum under the override. */
  readonly writes: Array<{ height: number; ops: number; at: number }>;
}

export interface ForkFlagRecord {
  readonly at: number;
  /** Fork epochs (id prefix and who forced them). */
  readonly overrides: string[];
  readonly kept: "quorum line" | "override";
  /** Override writes of the side that lost the fork choice, reported for reconciliation. */
  readonly reported: Array<{ height: number; ops: number; at: number }>;
  readonly side: string[];
}

interface Side {
  readonly nodes: number[];
  readonly base: PrimaryView | null;
  readonly can: boolean;
  readonly bft: boolean;
  readonly liveVoters: NodeId[];
  /** Set when the side made a manual override: it commits without a quorum. */
  readonly fork: ForkSide | null;
}

interface Instance {
  readonly node: number;
  readonly life: number;
  readonly startedAt: number;
  volume: number;
  lastWrite: Hlc;
}

/** What a simulator-level event is (replay): by the code `at` was given. */
const CALL_NAMES: Record<number, string> = {
  0: "scheduled work (timer, workload, probe, block)",
  2: "simulator message arrives (join, probe, Primary, chunk)",
  3: "local delivery",
};

const MSG_CODE: Record<SporeMessage["t"], number> = {
  "spore-push": 11,
  "spore-digest": 12,
  "spore-entries": 13,
  "primary-pull": 14,
  "primary": 15,
};

export class SporeSimulation {
  readonly scenario: Scenario;
  readonly sp: SporesScenario;
  readonly seed: number;
  readonly engine = new Engine();
  readonly rootRng: Rng;
  readonly ids = new IdInterner();
  readonly nodes: SporeNode[] = [];
  readonly network: NetworkModel;
  readonly ledger: PrimaryLedger;
  readonly seeds: SeedFiles;
  readonly storage: StorageModel | null;
  readonly faults: FaultAccount[] = [];
  readonly workload: FaultAccount[] = [];
  readonly samples: SporeSample[] = [];
  readonly durationMs: number;
  readonly lastFaultEnd: number;
  /** When the last scheduled update ends: convergence is measured from here. */
  readonly quietAt: number;
  readonly lastStart: number;
  readonly networkId: string;
  violation: (Violation & { event: number; t: number }) | null = null;
  formationAt: number | null = null;
  convergedAt: number | null = null;
  /** First probe after the last fault ended (a heal, a restart) at which the maps agreed. */
  healConvergedAt: number | null = null;
  totalBytes = 0;
  totalMsgs = 0;
  private intervalBytes = 0;
  private intervalMsgs = 0;
  private readonly enabled: Set<string>;
  private readonly byId = new Map<NodeId, SporeNode>();
  private readonly byName = new Map<string, SporeNode>();
  private readonly recorder: SporeTraceEvent[] | null;
  private readonly kDeliver: number;
  private readonly kTimer: number;
  private readonly kCall: number;
  private readonly gossipCfg: SporeGossipConfig;
  private readonly verify: VerifyFn;
  private readonly log: Logger;
  readonly logCounts = new Map<string, number>();
  private readonly latencyDraw: (rng: Rng) => number;
  private readonly rhizoContacts: number[];
  private readonly entryPoints: number[];
  private readonly workloadUntil: number;
  private readonly maxMessageBytes: number;
  /** Discards of nodes that crashed (live nodes keep their own counts). */
  private readonly retiredDiscards = emptyDiscardCounts();
  private readonly retiredStats = new Map<string, number>();
  private readonly badEntries = new WeakMap<LatentEntry, SporeByzantine>();
  /** Superseded genuine entries a Byzantine node replayed. */
  private readonly replays = new WeakSet<LatentEntry>();
  private readonly byzIds = new Set<NodeId>();
  private readonly uncertifiedCopies = new WeakMap<PrimaryView, PrimaryView>();
  private readonly sclerotiaCache = new WeakMap<PrimaryView, SporeNode[]>();
  private sideOf = new Map<number, Side>();
  private sidesList: Side[] = [];
  private partitionKey = "";
  private partitionSince = 0;
  /**
   * The current partition as the absence excuse will record it: node indices by side (every
   * node, up or not: the side the connectivity model puts it on) and the first round
   * (block height) committed during it.
   */
  private partitionOpen: { groups: number[][]; fromRound: number } | null = null;
  /** Partition records submitted to the Primary on heal (the absence excuse). */
  partitionRecordsSubmitted = 0;
  /** The epoch chain every side shares (genesis first). */
  epochs: Epoch[];
  /** Sides of the current partition that made an override, by side key. */
  private readonly forkSides = new Map<string, ForkSide>();
  /** Heights committed under an override (a second block there is the fork, not a bug). */
  private readonly overrideHeights = new Set<number>();
  readonly forkFlags: ForkFlagRecord[] = [];
  readonly counters = {
    discoveredVia: Object.fromEntries(DISCOVERY_ORDER.map((s) => [s, 0])) as Record<
      DiscoverySource,
      number
    >,
    discoveryRounds: 0,
    discoveryFailures: 0,
    seedProblems: {} as Partial<Record<SeedProblem, number>>,
    joinFailovers: 0,
    joinRetries: 0,
    joinsRefused: 0,
    cpSubmitted: 0,
    cpCommitted: 0,
    cpRefused: 0,
    cpTimedOut: 0,
    cpFailovers: 0,
    cpFailed: 0,
    reconnects: 0,
    readsServed: 0,
    readsServedReadOnly: 0,
    readsFailed: 0,
    apWrites: 0,
    seedWrites: 0,
    byzProduced: {} as Partial<Record<SporeByzantine, number>>,
    byzDiscarded: {} as Partial<Record<SporeByzantine, number>>,
    replaysAccepted: 0,
    acceptedChecked: 0,
    maxMapSize: 0,
    maxMessageBytes: 0,
    singletonStarts: 0,
    overrides: 0,
    overridesIgnored: 0,
    overrideWrites: 0,
    forksHealed: 0,
    partitionsSeen: 0,
    promotionsProposed: 0,
    promotionsRejected: 0,
    promotions: 0,
    demotionsProposed: 0,
    demotions: 0,
    clientOps: 0,
    clientOk: 0,
    clientRetries: 0,
    clientFailures: 0,
    clientRefreshes: 0,
  };
  readonly joinMs: number[] = [];
  readonly cpCommitMs: number[] = [];
  readonly resolutions: Array<{ at: number; service: string; winner: string; losers: string[] }> =
    [];
  private readonly instances = new Map<string, Instance[]>();
  private readonly dupSince = new Map<string, number>();

  constructor(scenario: Scenario, private readonly opts: SporeSimOptions = {}) {
    if (!scenario.spores && !scenario.storage) {
      throw new ConfigError("the scenario has no spores or storage section", "spores");
    }
    scenario.checks.forEach((c, i) => {
      if (!c.type.startsWith("spores.") && !c.type.startsWith("storage.")) {
        throw new ConfigError(`${c.type} cannot run in a spores run`, `checks[${i}]`);
      }
    });
    this.scenario = scenario;
    // parseScenario gives a storage-only scenario the spores defaults.
    if (!scenario.spores) throw new ConfigError("the scenario has no spores section", "spores");
    this.sp = scenario.spores;
    this.epochs = [genesisEpoch(`mycelium-sim/${scenario.seed}`)];
    this.seed = opts.seed ?? scenario.seed;
    this.rootRng = Rng.fromSeed(this.seed);
    this.durationMs = scenario.duration;
    this.recorder = opts.recordLast ? [] : null;
    this.enabled = new Set(scenario.checks.map((c) => c.type));
    this.gossipCfg = { ...this.sp.gossip, ...opts.gossipOverride };
    this.verify = opts.verify ?? modelVerify;
    this.latencyDraw = latencySampler(scenario.network.latency);
    this.log = {
      log: (level, event) => {
        if (level === "warn" || level === "error") {
          this.logCounts.set(event, (this.logCounts.get(event) ?? 0) + 1);
        }
      },
    };
    this.networkId = nodeIdFromPublicKey(
      new TextEncoder().encode(`mycelium-sim-network/${this.seed}`),
    );
    const bounded = scenario.checks.find((c) => c.type === "spores.bounded");
    this.maxMessageBytes = bounded?.type === "spores.bounded" ? bounded.maxMessageBytes : Infinity;

    // Nodes.
    const info: NodeInfo[] = [];
    for (const g of scenario.nodes) {
      for (let k = 0; k < g.count; k++) {
        info.push({
          name: `${g.group}-${k}`,
          group: g.group,
          indexInGroup: k,
          tier: g.tier,
          region: g.region,
        });
      }
    }
    const selRng = this.rootRng.derive("selectors");
    const pick = (sel: Parameters<typeof resolveSelector>[0]) => resolveSelector(sel, info, selRng);
    const startAt: number[] = [];
    for (const g of scenario.nodes) {
      const startRng = this.rootRng.derive(`start/${g.group}`);
      for (let k = 0; k < g.count; k++) {
        startAt.push(g.start.at + (g.start.spread > 0 ? startRng.next() * g.start.spread : 0));
      }
    }
    const genesis = new Set(pick(this.sp.genesis).filter((i) => startAt[i] === 0));
    if (genesis.size === 0) {
      throw new ConfigError(
        "no genesis node: spores.genesis selects no node starting at 0",
        "spores.genesis",
      );
    }
    const trust = info.map((
      _,
      i,
    ) => (genesis.has(i) ? this.sp.trust.genesis : this.sp.trust.joiner));
    for (const t of this.sp.trust.nodes) for (const i of pick(t.nodes)) trust[i] = t.value;
    const capRng = this.rootRng.derive("capacity");
    const capacity = info.map(() => 0.5 + 0.5 * capRng.next());
    for (const c of this.sp.promotion?.capacity ?? []) {
      for (const i of pick(c.nodes)) capacity[i] = c.value;
    }
    const byz: ByzSpec[][] = info.map(() => []);
    for (const b of this.sp.byzantine) {
      for (const i of pick(b.nodes)) {
        byz[i].push({ behaviour: b.behaviour, perMessage: b.perMessage });
      }
    }
    info.forEach((x, index) => {
      const id = nodeIdFromPublicKey(
        new TextEncoder().encode(`mycelium-sim-spores/${this.seed}/${x.name}`),
      );
      if (this.byId.has(id)) throw new ConfigError(`duplicate node id for ${x.name}`, "nodes");
      const n: SporeNode = {
        ...x,
        index,
        id,
        startAt: startAt[index],
        genesis: genesis.has(index),
        byz: byz[index],
        admitTrust: trust[index],
        sign: modelSigner(id),
        ...newNodeRuntime(this.rootRng, x.name),
        rng: this.rootRng.derive(`node/${x.name}`),
        state: "down",
        active: false,
        everActive: false,
        proto: null,
        firstActiveAt: null,
        cached: [],
        conns: [],
        processingVolume: 0,
        conn: CONN_NEVER,
        lastStatusAt: 0,
        history: [],
        seen: [],
        discoveryStart: null,
        pathSince: null,
        waiting: [],
        seenHeight: 0,
        role: x.tier,
        selfPromoted: false,
        capacity: capacity[index],
        downSince: 0,
        clientConns: [],
        clientRr: 0,
        shortSince: null,
      };
      this.nodes.push(n);
      this.byId.set(id, n);
      this.byName.set(n.name, n);
      this.ids.intern(id);
      if (n.byz.length > 0) this.byzIds.add(id);
    });
    this.rhizoContacts = this.sp.discovery.rhizomorphs ? pick(this.sp.discovery.rhizomorphs) : [];
    this.entryPoints = this.sp.discovery.entryPoints ? pick(this.sp.discovery.entryPoints) : [];
    this.network = new NetworkModel(scenario.network, this.nodes.map((n) => n.region));
    this.ledger = new PrimaryLedger(
      this.networkId,
      this.nodes.filter((n) => n.genesis).map((n) => ({
        id: n.id,
        tier: n.tier,
        trust: n.admitTrust,
      })),
      { excuseAbsences: !opts.noAbsenceExcuse, penalizeAbsences: !opts.noAbsencePenalty },
    );
    this.seeds = new SeedFiles(this.sp.seed.locations);
    this.workloadUntil = this.sp.workload.until ?? 0.8 * this.durationMs;

    this.kDeliver = this.engine.register((to, from, msg) =>
      this.deliver(to, from, msg as SporeMessage)
    );
    this.kTimer = this.engine.register((node, gen, key) =>
      this.fireTimer(node, gen, key as string)
    );
    this.kCall = this.engine.register((code, _b, fn) => {
      this.engine.mix(code);
      if (this.recorder) this.record("sim", "", CALL_NAMES[code] ?? `call ${code}`);
      (fn as () => void)();
    });

    // Storage.
    this.storage = scenario.storage
      ? new StorageModel(
        {
          nodes: this.nodes,
          now: () => this.engine.now,
          at: (t, fn) => this.at(t, fn),
          transfer: (from, to, bytes, arrive) => this.transfer(from, to, bytes, arrive),
          view: () => this.ledger.newest,
          violation: (check, detail) => this.fail(check, detail),
          wants: (check) => this.enabled.has(check),
        },
        scenario.storage,
        this.rootRng.derive("storage"),
        opts.storage,
      )
      : null;

    for (const n of this.nodes) this.at(n.startAt, () => this.startNode(n));
    this.lastStart = Math.max(0, ...this.nodes.map((n) => n.startAt));
    this.lastFaultEnd = scheduleFaults(scenario.faults, {
      durationMs: this.durationMs,
      rootRng: this.rootRng,
      network: this.network,
      nodesInfo: () => this.nodes,
      at: (t, fn) => this.at(t, fn),
      now: () => this.engine.now,
      isUp: (i) => this.nodes[i].up,
      crash: (i) => this.crash(this.nodes[i]),
      restart: (i) => this.startNode(this.nodes[i]),
      clock: (i) => ({ offset: this.nodes[i].clockOffset, drift: this.nodes[i].clockDrift }),
      setClock: (i, offset, drift) => {
        this.nodes[i].clockOffset = offset;
        this.nodes[i].clockDrift = drift;
      },
    }, this.faults);
    const lastEvent = this.scheduleEvents(info);
    this.scheduleSeedWriters(pick(this.sp.seed.writers));
    const w = this.sp.workload;
    this.quietAt = Math.max(
      this.lastStart,
      this.lastFaultEnd,
      lastEvent,
      w.apWriteMs > 0 ? Math.min(this.workloadUntil, this.durationMs) : 0,
    );

    // Periodic work: blocks, samples, probes, singletons, storage.
    const every = (ms: number, fn: () => void, from = ms) => {
      const loop = (t: number) =>
        this.at(t, () => {
          fn();
          if (t + ms <= this.durationMs) loop(t + ms);
        });
      if (from <= this.durationMs) loop(from);
    };
    every(this.sp.primary.blockMs, () => this.blockTick());
    every(scenario.outputs.sampleInterval, () => this.sample());
    if (this.sp.singletons.length > 0) every(1000, () => this.singletonTick());
    if (this.sp.promotion) every(this.sp.promotion.everyMs, () => this.promotionTick());
    this.probe("formation", this.lastStart);
    this.probe("converged", this.quietAt);
    if (this.lastFaultEnd > 0) this.probe("heal", this.lastFaultEnd);
    const st = scenario.storage;
    if (st && this.storage) {
      const model = this.storage;
      every(st.repairEveryMs, () => model.repairStep());
      if (st.scrubMs > 0) every(st.scrubMs, () => model.scrub());
      const writers = pick(st.writes.from);
      const until = st.writes.until ?? 0.8 * this.durationMs;
      const rng = this.rootRng.derive("storage/arrivals");
      if (st.writes.rate > 0) {
        const next = (t: number) => {
          if (t > until || t > this.durationMs) return;
          this.at(t, () => {
            model.write(writers);
            next(t + rng.exp(1000 / st.writes.rate));
          });
        };
        next(rng.exp(1000 / st.writes.rate));
      }
      if (st.reads.rate > 0) {
        const all = this.nodes.map((n) => n.index);
        const next = (t: number) => {
          if (t > this.durationMs) return;
          this.at(t, () => {
            model.read(all);
            next(t + rng.exp(1000 / st.reads.rate));
          });
        };
        next(rng.exp(1000 / st.reads.rate));
      }
      st.corrupt.forEach((c, ci) => {
        const account = declared("storage-event", c.at, c.name ?? `corrupt@${c.at}ms`);
        this.workload.push(account);
        const r = this.rootRng.derive(`storage/corrupt/${ci}`);
        this.at(c.at, () => {
          for (const i of resolveSelector(c.nodes, info, r)) {
            if (model.corrupt(i, c.fraction) > 0) account.fired++;
          }
        });
      });
    }
  }

  // ---- scheduling ----

  private at(t: number, fn: () => void, code = 0): void {
    this.engine.schedule(Math.max(t, this.engine.now), this.kCall, code, 0, fn);
  }

  /** Records the first violation of an enabled check and stops the run. */
  private fail(check: string, detail: string): void {
    if (!this.enabled.has(check) || this.violation) return;
    this.violation = { check, detail, event: this.engine.events, t: this.engine.now };
    this.engine.halt();
  }

  private nodeNow(n: SporeNode): number {
    return nodeClock(n, this.engine.now);
  }

  private alive(n: SporeNode, life: number): boolean {
    return n.up && n.life === life;
  }

  // ---- scenario events and seed writers ----

  private scheduleEvents(info: readonly NodeInfo[]): number {
    let last = 0;
    this.sp.events.forEach((e, ei) => {
      const account = declared("spore-event", e.at, e.name ?? `${e.type}@${e.at}ms`);
      this.workload.push(account);
      last = Math.max(last, e.at);
      const rng = this.rootRng.derive(`event/${ei}`);
      this.at(e.at, () => {
        if (e.type === "seed") {
          const g = this.nodes.find((n) => n.genesis)!;
          this.seeds.tamper(e.location, e.action, {
            network: this.networkId,
            otherNetwork: FOREIGN_NETWORK,
            now: this.engine.now,
            maxAgeMs: this.sp.seed.maxAgeMs,
            writer: g.id,
            sign: g.sign,
            attacker: modelSigner(ATTACKER),
            entries: this.seedEntries(this.ledger.newest),
          });
          account.fired++;
          return;
        }
        if (e.type === "override") {
          this.override(resolveSelector(e.nodes, info, rng), e.name ?? "manual override");
          account.fired++;
          return;
        }
        for (const i of resolveSelector(e.nodes, info, rng)) {
          const node = this.nodes[i].id;
          const op = e.type === "trust"
            ? { kind: "trust" as const, node, trust: e.value }
            : { kind: "exclude" as const, node };
          this.ledger.submit(op, -1, this.engine.now, () => account.fired++);
        }
      });
    });
    return last;
  }

  private sclerotiaOf(v: PrimaryView | null): SporeNode[] {
    if (!v) return [];
    let out = this.sclerotiaCache.get(v);
    if (!out) {
      out = [];
      for (const [id, tier] of v.members) {
        const n = this.byId.get(id);
        if (n && tier === "sclerotia" && !v.excluded.has(id)) out.push(n);
      }
      out.sort((a, b) => compareStrings(a.name, b.name));
      this.sclerotiaCache.set(v, out);
    }
    return out;
  }

  private seedEntries(v: PrimaryView) {
    return this.sclerotiaOf(v).slice(0, this.sp.seed.maxEntries).map((n) => ({
      node: n.id,
      tier: "sclerotia" as Tier,
      trust: v.trust.get(n.id) ?? 0,
      addrs: [n.name],
    }));
  }

  private writeSeeds(n: SporeNode): void {
    const v = n.proto?.primary;
    if (!v || !v.members.has(n.id) || this.seeds.locations.length === 0) return;
    const bytes = this.seeds.writeAll(
      {
        network: this.networkId,
        writer: n.id,
        created: Math.max(0, Math.floor(this.nodeNow(n))),
        primaryHeight: v.height,
        entries: this.seedEntries(v),
      },
      n.sign,
      (id) => v.members.has(id),
    );
    this.counters.seedWrites++;
    if (bytes > this.maxMessageBytes) {
      this.fail("spores.bounded", `${n.name} wrote a ${bytes}-byte seed file`);
    }
  }

  private scheduleSeedWriters(writers: readonly number[]): void {
    if (this.seeds.locations.length === 0) return;
    const every = this.sp.seed.writeIntervalMs;
    const rng = this.rootRng.derive("seed-writers");
    for (const i of writers) {
      const n = this.nodes[i];
      const loop = (t: number) => {
        if (t > this.durationMs) return;
        this.at(t, () => {
          if (n.up && n.active) this.writeSeeds(n);
          loop(t + every);
        });
      };
      loop(n.startAt + every * (0.5 + 0.5 * rng.next()));
    }
  }

  // ---- network ----

  /** A simulator-level message (joins, probes, Primary deliveries, chunk copies). */
  transfer(from: number, to: number, bytes: number, arrive?: () => void): number {
    const a = this.nodes[from];
    const b = this.nodes[to];
    if (from === to) {
      if (arrive) this.at(this.engine.now, arrive, 3);
      return 0;
    }
    const size = bytes + OVERHEAD;
    a.bytesSent += size;
    a.msgsSent++;
    this.totalBytes += size;
    this.totalMsgs++;
    this.intervalBytes += size;
    this.intervalMsgs++;
    const delay = this.network.route(from, to, size, this.engine.now, a.netRng);
    if (delay < 0) return -1;
    if (arrive) {
      this.at(this.engine.now + delay, () => {
        b.bytesReceived += size;
        arrive();
      }, 2);
    }
    return delay;
  }

  private sendSpore(from: SporeNode, toId: NodeId, msg0: SporeMessage): void {
    const to = this.byId.get(toId);
    if (!to) return;
    let msg = msg0;
    const honest = from.byz.length === 0;
    if (!honest && (msg.t === "spore-push" || msg.t === "spore-entries")) {
      msg = this.byzantine(from, msg);
    }
    const size = sporeMessageBytes(msg) + OVERHEAD;
    if (honest) {
      this.counters.maxMessageBytes = Math.max(this.counters.maxMessageBytes, size);
      if (msg.t === "spore-push" && msg.entries.length > this.sp.gossip.maxPush) {
        this.fail(
          "spores.bounded",
          `${from.name} pushed ${msg.entries.length} entries (gossip.maxPush ${this.sp.gossip.maxPush})`,
        );
      }
      if (size > this.maxMessageBytes) {
        this.fail("spores.bounded", `${from.name} sent a ${size}-byte ${msg.t}`);
      }
    }
    from.bytesSent += size;
    from.msgsSent++;
    this.totalBytes += size;
    this.totalMsgs++;
    this.intervalBytes += size;
    this.intervalMsgs++;
    const now = this.engine.now;
    const delay = this.network.route(from.index, to.index, size, now, from.netRng);
    if (delay < 0) return;
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

  private deliver(toIdx: number, fromIdx: number, msg: SporeMessage): void {
    this.engine.mix(MSG_CODE[msg.t]);
    const to = this.nodes[toIdx];
    const from = this.nodes[fromIdx];
    if (this.recorder) this.record("deliver", to.name, `${msg.t} from ${from.name}`);
    if (!to.up || !to.active || !to.proto) return;
    to.bytesReceived += sporeMessageBytes(msg) + OVERHEAD;
    to.proto.onMessage(from.id, msg);
    this.afterProto(to);
  }

  private fireTimer(nodeIdx: number, gen: number, key: string): void {
    const n = this.nodes[nodeIdx];
    if (n.timers.get(key) !== gen) return;
    n.timers.delete(key);
    if (this.recorder) this.record("timer", n.name, key);
    n.proto?.onTimer(key);
    if (n.proto) this.afterProto(n);
  }

  /** After the node's protocol ran: answer joins its new Primary admits. */
  private afterProto(n: SporeNode): void {
    const h = n.proto!.primaryHeight;
    if (h === n.seenHeight) return;
    n.seenHeight = h;
    this.updateRole(n);
    if (n.waiting.length === 0) return;
    const v = n.proto!.primary!;
    const ready = n.waiting.filter((w) => v.members.has(w.node));
    n.waiting = n.waiting.filter((w) => !v.members.has(w.node));
    for (const w of ready) w.reply();
  }

  private host(n: SporeNode): Host<SporeMessage> {
    const life = n.life;
    const current = () => n.up && n.life === life;
    return {
      self: n.id,
      ids: this.ids,
      storage: n.store,
      log: this.log,
      metrics: nullMetrics,
      now: () => this.nodeNow(n),
      random: () => n.rng.next(),
      send: (to, msg) => {
        if (current()) this.sendSpore(n, to, msg);
      },
      ...lifeTimers(this.engine, this.kTimer, n, life),
    };
  }

  // ---- node lifecycle ----

  private startNode(n: SporeNode): void {
    if (n.up) return;
    const first = n.life === 0;
    n.up = true;
    n.life++;
    n.timers = new Map();
    n.upSince = this.engine.now;
    n.history = [];
    n.conn = recordConnEvent(
      n.conn,
      true,
      Math.floor(this.nodeNow(n)),
      this.sp.latent.flapWindowMs,
    );
    this.trace("start", n.name, first ? "start" : "restart");
    if (!first) this.storage?.onRestart(n.index);
    if (first && n.genesis) {
      n.conns = [n.index];
      const peers = this.nodes.filter((g) => g.genesis && g !== n).map((g) => g.id);
      this.activate(n, this.ledger.newest, [], peers);
      if (n === this.nodes.find((g) => g.genesis)) this.writeSeeds(n); // the Master Seed
      return;
    }
    this.beginDiscovery(n);
  }

  private crash(n: SporeNode): void {
    if (!n.up) return;
    this.trace("crash", n.name, "");
    if (n.proto) {
      addDiscardCounts(this.retiredDiscards, n.proto.discards);
      for (const [k, v] of Object.entries(n.proto.stats)) {
        this.retiredStats.set(k, (this.retiredStats.get(k) ?? 0) + v);
      }
      n.proto.stop();
    }
    n.proto = null;
    n.up = false;
    n.active = false;
    n.state = "down";
    n.life++;
    n.timers.clear();
    n.waiting = [];
    n.seenHeight = 0;
    n.discoveryStart = null;
    n.pathSince = null;
    n.upMs += this.engine.now - n.upSince;
    n.downSince = this.engine.now;
    n.clientConns = [];
    n.shortSince = null;
    n.conn = recordConnEvent(
      n.conn,
      false,
      Math.floor(this.nodeNow(n)),
      this.sp.latent.flapWindowMs,
    );
    this.storage?.onCrash(n.index);
  }

  private handout(v: PrimaryView): PrimaryView {
    if (!this.opts.uncertifiedPrimary) return v;
    let c = this.uncertifiedCopies.get(v);
    if (!c) this.uncertifiedCopies.set(v, c = { ...v, certified: false });
    return c;
  }

  private makeProto(n: SporeNode): LatentGossip {
    return new LatentGossip({
      network: this.networkId,
      // A promotion or demotion changes the tier the node's next entry claims.
      get tier() {
        return n.role;
      },
      gossip: this.gossipCfg,
      latent: this.sp.latent,
      sign: n.sign,
      verify: this.verify,
      status: () => this.status(n),
      acceptPrimary: this.opts.uncertifiedPrimary ? (v) => v.network === this.networkId : undefined,
      observer: {
        accepted: (e, primary, from) => this.onAccepted(n, e, primary, from),
        discarded: (e, _reason, from) => this.onDiscarded(n, e, from),
        signed: (e) => {
          n.history.push({ at: this.engine.now, e });
          if (n.history.length > 16) n.history.shift();
        },
      },
    });
  }

  private status(n: SporeNode) {
    const now = this.nodeNow(n);
    const diff = Math.max(0, Math.floor(now - n.lastStatusAt));
    n.lastStatusAt = now;
    const v = n.proto?.primary;
    const held = this.storage?.chunksHeld(n.index) ?? 0;
    return {
      health: "ok" as const,
      trust: v?.trust.get(n.id) ?? n.admitTrust,
      usage: {
        cpu: (n.processingVolume % 100) / 100,
        memory: 0.25,
        storage: Math.min(1, held / 10_000),
        bandwidth: 0.1,
      },
      uptimeDiffMs: diff,
      processingVolume: n.processingVolume,
      conn: n.conn,
    };
  }

  private activate(
    n: SporeNode,
    view: PrimaryView,
    snapshot: readonly LatentEntry[],
    peers: readonly NodeId[],
  ): void {
    const now = this.engine.now;
    n.state = "active";
    n.active = true;
    n.everActive = true;
    n.firstActiveAt ??= now;
    if (n.discoveryStart !== null) this.joinMs.push(now - n.discoveryStart);
    n.discoveryStart = null;
    n.pathSince = null;
    n.cached = this.cachedSpore(n, view);
    n.lastStatusAt = this.nodeNow(n);
    const proto = this.makeProto(n);
    n.proto = proto;
    proto.start(this.host(n));
    proto.bootstrap(this.handout(view), snapshot, peers);
    n.seenHeight = proto.primaryHeight;
    this.updateRole(n);
    this.trace("active", n.name, `Primary height ${proto.primaryHeight}`);
    this.scheduleLoad(n);
    if (n.tier === "hypha" && this.sp.clients) this.startClient(n);
  }

  /**
   * The cached spore a node keeps (durable): the Sclerotia it is connected to, then others of
   * its Primary, `want` of them (a Sclerotium's own connection is itself: it remembers peers).
   */
  private cachedSpore(n: SporeNode, view: PrimaryView): number[] {
    const out = n.conns.filter((i) => i !== n.index);
    for (const s of this.sclerotiaOf(view)) {
      if (out.length >= this.sp.discovery.want) break;
      if (s !== n && !out.includes(s.index)) out.push(s.index);
    }
    return out;
  }

  // ---- discovery and join ----

  private reachableSclerotium(n: SporeNode, s: SporeNode): boolean {
    return s !== n && s.up && s.active && s.role === "sclerotia" &&
      !this.network.partitioned(n.index, s.index, this.engine.now, 0);
  }

  /** The Sclerotia a contacted node reveals: itself if one, then those of its Primary. */
  private revealedBy(t: SporeNode): string[] {
    const out = t.role === "sclerotia" ? [t.name] : [];
    for (const s of this.sclerotiaOf(t.proto?.primary ?? null)) {
      if (out.length >= 16) break;
      if (s !== t) out.push(s.name);
    }
    return out;
  }

  private discoveryInputs(n: SporeNode): DiscoveryInputs {
    const on = new Set(this.sp.discovery.sources);
    const names = (xs: readonly number[]) =>
      xs.filter((i) => i !== n.index).map((i) => this.nodes[i].name);
    return {
      cached: on.has("cached") ? names(n.cached) : [],
      rhizomorphs: on.has("rhizomorph") ? names(this.rhizoContacts) : [],
      seeds: on.has("seed") ? this.sp.seed.locations : [],
      entryPoints: on.has("latent") ? names(this.entryPoints) : [],
    };
  }

  private beginDiscovery(n: SporeNode): void {
    if (!n.up) return;
    n.state = "discovering";
    n.active = false;
    n.discoveryStart ??= this.engine.now;
    this.counters.discoveryRounds++;
    const life = n.life;
    const plan = discoveryPlan(this.discoveryInputs(n));
    const cursor = new DiscoveryCursor(plan, {
      want: this.sp.discovery.want,
      sclerotiumReachable: (name) => {
        const s = this.byName.get(name);
        return s !== undefined && this.reachableSclerotium(n, s);
      },
    });
    this.nextAttempt(n, life, cursor);
  }

  private nextAttempt(n: SporeNode, life: number, cursor: DiscoveryCursor): void {
    if (!this.alive(n, life) || n.state !== "discovering") return;
    const a = cursor.next();
    const d = this.sp.discovery;
    if (!a) {
      this.counters.discoveryFailures++;
      this.at(this.engine.now + d.retryMs, () => {
        if (this.alive(n, life) && n.state === "discovering") this.beginDiscovery(n);
      });
      return;
    }
    const finish = (outcome: { reached: false } | { reached: true; sclerotia: string[] }) => {
      if (!this.alive(n, life) || n.state !== "discovering") return;
      cursor.report(outcome);
      if (cursor.found) {
        this.counters.discoveredVia[a.source]++;
        this.startJoin(n, life, cursor.found.sclerotia);
      } else this.nextAttempt(n, life, cursor);
    };
    if (a.source === "seed") {
      const url = seedLocationKind(a.target) === "url";
      const delay = this.sp.seed.readMs + (url ? 2 * this.latencyDraw(n.netRng) : 0);
      this.at(this.engine.now + delay, () => {
        const r = this.seeds.read(a.target, {
          network: this.networkId,
          verify: this.verify,
          now: this.nodeNow(n),
          maxAgeMs: this.sp.seed.maxAgeMs,
          maxSkewMs: this.sp.seed.maxSkewMs,
        });
        if (r.ok) {
          const names = r.seed.entries.filter((e) => e.tier === "sclerotia").map((e) =>
            e.addrs[0] ?? ""
          );
          finish({ reached: true, sclerotia: names.filter((x) => x !== "") });
        } else {
          const p = this.counters.seedProblems;
          p[r.problem] = (p[r.problem] ?? 0) + 1;
          finish({ reached: false });
        }
      });
      return;
    }
    const t = this.byName.get(a.target);
    let answered = false;
    if (t) {
      this.transfer(n.index, t.index, REQUEST_BYTES, () => {
        if (!t.up || !t.active) return;
        const list = this.revealedBy(t);
        this.transfer(t.index, n.index, 64 + 40 * list.length, () => {
          if (answered) return;
          answered = true;
          finish({ reached: true, sclerotia: list });
        });
      });
    }
    this.at(this.engine.now + d.attemptTimeoutMs, () => {
      if (answered) return;
      answered = true;
      finish({ reached: false });
    });
  }

  private startJoin(n: SporeNode, life: number, sclerotia: readonly string[]): void {
    n.state = "joining";
    n.pathSince = null;
    n.conns = sclerotia.map((s) => this.byName.get(s)!.index);
    this.tryJoin(n, life, 0);
  }

  /** Join through conns[k]; on timeout fail over once, then discover again. */
  private tryJoin(n: SporeNode, life: number, k: number): void {
    if (!this.alive(n, life) || n.state !== "joining") return;
    const d = this.sp.discovery;
    if (k >= Math.min(2, n.conns.length)) {
      this.counters.joinRetries++;
      n.state = "discovering";
      this.at(this.engine.now + d.retryMs, () => {
        if (this.alive(n, life) && n.state === "discovering") this.beginDiscovery(n);
      });
      return;
    }
    if (k > 0) this.counters.joinFailovers++;
    // Joiners spread over the Sclerotia they found (by id), not all onto the first one.
    const s = this.nodes[n.conns[(n.index + k) % n.conns.length]];
    let done = false;
    this.transfer(n.index, s.index, REQUEST_BYTES, () => {
      this.handleJoin(s, n, (view, snapshot) => {
        if (done || !this.alive(n, life) || n.state !== "joining") return;
        done = true;
        // The answering Sclerotium goes first in the connections and the cached spore.
        n.conns = [s.index, ...n.conns.filter((c) => c !== s.index)];
        this.activate(n, view, snapshot, [s.id]);
      });
    });
    this.at(this.engine.now + d.joinTimeoutMs, () => {
      if (done) return;
      done = true;
      this.tryJoin(n, life, k + 1);
    });
  }

  private handleJoin(
    s: SporeNode,
    n: SporeNode,
    respond: (view: PrimaryView, snapshot: readonly LatentEntry[]) => void,
  ): void {
    if (!s.up || !s.active || !s.proto?.primary) return;
    const v = s.proto.primary;
    if (v.excluded.has(n.id)) {
      this.counters.joinsRefused++;
      return;
    }
    const reply = () => {
      if (!s.up || !s.active || !s.proto?.primary) return;
      const view = s.proto.primary;
      const snapshot = [...s.proto.store.entries()];
      const bytes = primaryViewBytes(view) + snapshot.length * ENTRY_BYTES;
      this.transfer(s.index, n.index, bytes, () => respond(view, snapshot));
    };
    if (n.tier === "hypha" || v.members.has(n.id)) return reply();
    // A serving tier is admitted through the Primary first (a node.join operation).
    this.ledger.submit(
      { kind: "join", node: n.id, tier: n.tier, trust: n.admitTrust },
      s.index,
      this.engine.now,
    );
    if (!s.waiting.some((w) => w.node === n.id)) s.waiting.push({ node: n.id, reply });
  }

  // ---- the Primary stand-in ----

  private partitionRules() {
    return this.network.rules.filter((r) => r.kind === "partition");
  }

  /** Which side of the current partition a node is on (nodes no partition separates share). */
  private sideKey(i: number): string {
    return this.partitionRules().map((r) => r.groupOf![i]).join(",");
  }

  /** A manual override by the side holding `nodes`: a fork epoch; no partition, no fork. */
  private override(nodes: readonly number[], reason: string): void {
    if (this.partitionRules().length === 0 || nodes.length === 0) {
      this.counters.overridesIgnored++;
      return;
    }
    const key = this.sideKey(nodes[0]);
    if (this.forkSides.has(key)) {
      this.counters.overridesIgnored++;
      return;
    }
    const members = this.nodes.filter((n) => this.sideKey(n.index) === key).map((n) => n.name);
    const by = members.join(" ");
    const epoch = nextEpoch(this.epochs.at(-1)!, { by, reason, at: this.engine.now });
    this.forkSides.set(key, { epoch, chain: [...this.epochs, epoch], nodes: members, writes: [] });
    this.counters.overrides++;
    this.trace("override", this.nodes[nodes[0]].name, `fork epoch ${epoch.id.slice(0, 12)}`);
  }

  /**
   * The partition changed: each override side's chain meets the quorum line, which took a
   * heal epoch, through `healEpochs`; the fork is flagged and the losing side's override
   * writes are reported, not merged silently.
   */
  private healForks(): void {
    if (this.forkSides.size === 0) return;
    const now = this.engine.now;
    this.epochs = [...this.epochs, nextEpoch(this.epochs.at(-1)!)];
    for (const f of this.forkSides.values()) {
      this.counters.forksHealed++;
      const { chain, fork } = healEpochs(f.chain, this.epochs);
      if (fork && !this.opts.skipForkFlag) {
        const overrideLost = fork.kept === "b";
        this.forkFlags.push({
          at: now,
          overrides: fork.overrides.map((e) => `${e.id.slice(0, 12)} by ${e.override!.by}`),
          kept: overrideLost ? "quorum line" : "override",
          reported: overrideLost ? f.writes : [],
          side: f.nodes,
        });
        this.epochs = [...chain];
      } else if (this.enabled.has("spores.fork-flagged")) {
        this.fail(
          "spores.fork-flagged",
          `the fork epoch ${f.epoch.id.slice(0, 12)} of ${f.nodes.join(" ")} healed unflagged ` +
            `(${f.writes.length} override blocks merged silently)`,
        );
      }
    }
    this.forkSides.clear();
  }

  /** Groups nodes by partition side (nodes no partition separates share a side). */
  private groupSides(filter: (n: SporeNode) => boolean): number[][] {
    const rules = this.network.rules.filter((r) => r.kind === "partition");
    const by = new Map<string, number[]>();
    for (const n of this.nodes) {
      if (!filter(n)) continue;
      const key = rules.map((r) => r.groupOf![n.index]).join(",");
      const list = by.get(key);
      if (list) list.push(n.index);
      else by.set(key, [n.index]);
    }
    return [...by.values()];
  }

  /**
   * The partition shape changed (a heal, or another split): the partition that ended is
   * submitted to the Primary as the certified membership saw it, i.e. its sides restricted to
   * the members of the newest certified view, with the rounds committed while it lasted, so
   * that the minority sides' absences of those rounds are excused. A partition during which
   * nothing committed penalised nobody and is not recorded. Then the next one opens.
   */
  private recordPartition(): void {
    const open = this.partitionOpen;
    const toRound = this.ledger.newest.height + 1;
    if (open && toRound > open.fromRound) {
      const members = this.ledger.newest.members;
      const groups = open.groups
        .map((g) => g.map((i) => this.nodes[i].id).filter((id) => members.has(id)))
        .filter((g) => g.length > 0)
        .map((g) => g.sort(compareStrings));
      this.ledger.submit(
        { kind: "partition", record: { fromRound: open.fromRound, toRound, groups } },
        -1,
        this.engine.now,
      );
      this.partitionRecordsSubmitted++;
      this.trace("partition-record", "", `rounds [${open.fromRound}, ${toRound})`);
    }
    this.partitionOpen = this.partitionRules().length > 0
      ? { groups: this.groupSides(() => true), fromRound: toRound }
      : null;
  }

  private blockTick(): void {
    const now = this.engine.now;
    const rule = this.sp.primary.quorum;
    const key = this.network.rules.filter((r) => r.kind === "partition").length.toString() +
      this.network.rules.filter((r) => r.kind === "partition").map((r) => r.groupOf!.join("")).join(
        "|",
      );
    if (key !== this.partitionKey) {
      this.partitionKey = key;
      this.partitionSince = now;
      this.healForks();
      this.recordPartition();
      if (this.network.rules.some((r) => r.kind === "partition")) this.counters.partitionsSeen++;
    }
    const sides: Side[] = [];
    const sideOf = new Map<number, Side>();
    for (const nodes of this.groupSides((n) => n.up && n.active)) {
      let base: PrimaryView | null = null;
      for (const i of nodes) {
        const v = this.nodes[i].proto?.primary;
        if (v && (!base || v.height > base.height)) base = v;
      }
      const truth = base ? this.ledger.truthFor(base) ?? null : null;
      const voters = truth ? this.ledger.voters(truth) : [];
      const voterSet = new Set(voters);
      const liveVoters = nodes.map((i) => this.nodes[i].id).filter((id) => voterSet.has(id));
      const bft = sideHasQuorum(liveVoters, voters);
      const fork = this.forkSides.get(this.sideKey(nodes[0])) ?? null;
      const can = truth !== null && (fork !== null ||
        voters.length > 0 &&
          (rule === "bft"
            ? bft
            : rule === "all"
            ? liveVoters.length === voters.length
            : liveVoters.length > 0));
      const side: Side = { nodes, base: truth, can, bft, liveVoters, fork };
      sides.push(side);
      for (const i of nodes) sideOf.set(i, side);
    }
    this.sideOf = sideOf;
    this.sidesList = sides;

    const within = this.checkSpec("spores.no-lockout")?.within ?? Infinity;
    const firstCommitting = sides.find((s) => s.can) ?? null;
    const bySide = new Map<Side, PendingOp[]>();
    const dead: PendingOp[] = [];
    for (const op of this.ledger.pending) {
      let side: Side | null;
      if (op.via >= 0) {
        const via = this.nodes[op.via];
        if (!via.up || !via.active) {
          dead.push(op);
          continue;
        }
        side = sideOf.get(op.via) ?? null;
      } else side = firstCommitting ?? sides.find((s) => s.bft) ?? null;
      if (side?.bft) op.quorumMs += this.sp.primary.blockMs;
      else op.quorumMs = 0;
      if (op.quorumMs > within) {
        this.fail(
          "spores.no-lockout",
          `a ${op.op.kind} operation waited ${op.quorumMs} ms on a side holding a quorum of ` +
            `the voters without committing (bound ${within} ms)`,
        );
      }
      if (side?.can) {
        const list = bySide.get(side);
        if (list) list.push(op);
        else bySide.set(side, [op]);
      }
    }
    this.ledger.drop(dead);
    for (const side of sides) {
      let ops = bySide.get(side);
      if (ops && side.base && this.sp.promotion) {
        // Voters re-check a promotion against their view: an ineligible one is rejected.
        const base = side.base;
        const bad = ops.filter((p) =>
          p.op.kind === "tier" && p.op.tier === "sclerotia" && !this.promotable(p.op.node, base)
        );
        if (bad.length > 0) {
          this.counters.promotionsRejected += bad.length;
          this.ledger.drop(bad);
          ops = ops.filter((p) => !bad.includes(p));
        }
      }
      if (ops && ops.length > 0 && side.base) this.commit(side, side.base, ops);
    }
  }

  private commit(side: Side, base: PrimaryView, ops: PendingOp[]): void {
    const now = this.engine.now;
    for (const p of ops) {
      if (p.op.kind === "tier" && p.op.tier === "sclerotia" && !this.promotable(p.op.node, base)) {
        this.fail(
          "spores.promotion",
          `${this.nameOf(p.op.node)} was promoted at height ${base.height + 1} while ineligible`,
        );
      }
    }
    const { view, block } = this.ledger.commit(base, ops, now, side.liveVoters, side.bft);
    this.trace("commit", "", `height ${view.height}, ${ops.length} ops`);
    if (!side.bft && side.fork) {
      side.fork.writes.push({ height: view.height, ops: ops.length, at: now });
      this.overrideHeights.add(view.height);
      this.counters.overrideWrites += ops.length;
    } else if (!side.bft) {
      this.fail(
        "spores.single-writer",
        `height ${view.height} was committed by a side holding ${side.liveVoters.length} of ` +
          `${block.voters} voters (no quorum)`,
      );
    }
    if (this.ledger.forks.includes(view.height) && !this.overrideHeights.has(view.height)) {
      this.fail("spores.single-writer", `two blocks were committed at height ${view.height}`);
    }
    const voters = new Set(side.liveVoters);
    const leader = side.nodes.find((i) => voters.has(this.nodes[i].id)) ?? side.nodes[0];
    const targets = new Set<number>();
    for (const i of side.nodes) if (voters.has(this.nodes[i].id)) targets.add(i);
    for (const op of ops) if (op.via >= 0) targets.add(op.via);
    const bytes = 512 + ops.length * 160 + 2048;
    for (const t of targets) {
      const node = this.nodes[t];
      const life = node.life;
      this.transfer(leader, t, bytes, () => {
        if (!this.alive(node, life) || !node.proto) return;
        node.proto.setPrimary(this.handout(view));
        this.afterProto(node);
      });
    }
    if (this.storage && view === this.ledger.newest && ops.some((o) => o.op.kind !== "config")) {
      this.storage.onViewChange();
    }
  }

  // ---- promotion to Dynamic Sclerotia ----

  /** A Rhizomorph's role follows its certified Primary (unless a test knob promoted it). */
  private updateRole(n: SporeNode): void {
    if (n.tier !== "rhizomorph" || n.selfPromoted || !n.proto?.primary) return;
    const role = n.proto.primary.members.get(n.id) === "sclerotia" ? "sclerotia" : "rhizomorph";
    if (role === n.role) return;
    n.role = role;
    this.trace("role", n.name, role);
    n.proto.refresh(); // its entry now claims the tier its Primary gives it
  }

  /** Whether `id` (a live Rhizomorph member of `v`) qualifies for promotion now. */
  private promotable(id: NodeId, v: PrimaryView): boolean {
    const pr = this.sp.promotion;
    const n = this.byId.get(id);
    if (!pr || !n || n.tier !== "rhizomorph" || v.excluded.has(id)) return false;
    return promotionEligible({
      trust: v.trust.get(id) ?? 0,
      uptimeMs: n.up && n.active ? this.engine.now - n.upSince : 0,
      capacity: spareCapacity(
        n.capacity,
        Math.min(1, (this.storage?.chunksHeld(n.index) ?? 0) / 10_000),
      ),
    }, pr);
  }

  private promotionTick(): void {
    const pr = this.sp.promotion!;
    const now = this.engine.now;
    const newest = this.ledger.newest;
    for (const n of this.nodes) {
      if (n.tier !== "rhizomorph") continue;
      const v = n.proto?.primary;
      if (n.up && n.active && v && v.members.get(n.id) === "rhizomorph" && !n.selfPromoted) {
        if (this.promotable(n.id, v)) {
          if (this.opts.promotionWithoutLedger) {
            n.selfPromoted = true;
            n.role = "sclerotia";
            n.proto!.refresh();
          } else if (
            this.ledger.submit(
              { kind: "tier", node: n.id, tier: "sclerotia" },
              n.index,
              now,
              () => this.counters.promotions++,
            )
          ) this.counters.promotionsProposed++;
        }
      }
      if (newest.members.get(n.id) === "sclerotia" && !newest.excluded.has(n.id)) {
        const down = n.up ? null : now - n.downSince;
        if (demotionDue(newest.trust.get(n.id) ?? 0, down, pr)) {
          if (
            this.ledger.submit(
              { kind: "tier", node: n.id, tier: "rhizomorph" },
              -1,
              now,
              () => this.counters.demotions++,
            )
          ) this.counters.demotionsProposed++;
        }
      }
      if (this.enabled.has("spores.promotion") && n.up && n.active && n.role === "sclerotia") {
        const truth = v ? this.ledger.truthFor(v) : undefined;
        if (truth?.members.get(n.id) !== "sclerotia") {
          this.fail(
            "spores.promotion",
            `${n.name} serves as a Sclerotium without a committed promotion in its certified ` +
              `Primary (height ${v?.height ?? 0})`,
          );
        }
      }
    }
  }

  /** Dynamic Sclerotia now (promoted Rhizomorphs in the newest view). */
  dynamicSclerotia(): number {
    const v = this.ledger.newest;
    return this.nodes.filter((n) => n.tier === "rhizomorph" && v.members.get(n.id) === "sclerotia")
      .length;
  }

  // ---- Hyphae clients ----

  /** A client connection is live: the Sclerotium's session (life) holds and it is reachable. */
  private clientLive(n: SporeNode, c: { node: number; life: number }): boolean {
    const s = this.nodes[c.node];
    return s.life === c.life && this.reachableSclerotium(n, s);
  }

  /** Drops lost connections and refills them from discovery (reachable Sclerotia). */
  private refreshClient(n: SporeNode): void {
    const want = this.sp.clients!.connections;
    const before = n.clientConns.length;
    n.clientConns = n.clientConns.filter((c) => this.clientLive(n, c));
    if (n.clientConns.length >= want) return;
    const pool = this.sclerotiaOf(n.proto?.primary ?? null).filter((s) =>
      this.reachableSclerotium(n, s) && !n.clientConns.some((c) => c.node === s.index)
    );
    // Clients spread over the Sclerotia (by index), not all onto the first ones.
    for (let k = 0; k < pool.length && n.clientConns.length < want; k++) {
      const s = pool[(n.index + k) % pool.length];
      n.clientConns.push({ node: s.index, life: s.life });
    }
    if (n.clientConns.length > before || before > 0) this.counters.clientRefreshes++;
  }

  private startClient(n: SporeNode): void {
    const cl = this.sp.clients!;
    const life = n.life;
    n.clientConns = n.conns.filter((i) => i !== n.index).slice(0, cl.connections).map((i) => ({
      node: i,
      life: this.nodes[i].life,
    }));
    this.refreshClient(n);
    const until = cl.until ?? 0.8 * this.durationMs;
    const keep = (t: number) => {
      if (t > this.durationMs) return;
      this.at(t, () => {
        if (!this.alive(n, life)) return;
        if (!this.opts.clientNoRefresh) this.refreshClient(n);
        this.checkClientConns(n);
        keep(t + cl.keepaliveMs);
      });
    };
    keep(this.engine.now + cl.keepaliveMs);
    const op = (t: number) => {
      if (t > until || t > this.durationMs) return;
      this.at(t, () => {
        if (!this.alive(n, life)) return;
        this.clientOp(n);
        op(t + cl.opMs * (0.75 + 0.5 * n.rng.next()));
      });
    };
    op(this.engine.now + cl.opMs * n.rng.next());
  }

  private checkClientConns(n: SporeNode): void {
    if (!this.enabled.has("spores.client-failover")) return;
    const within = this.checkSpec("spores.client-failover")!.within;
    const reachable =
      this.sclerotiaOf(n.proto?.primary ?? null).filter((s) => this.reachableSclerotium(n, s))
        .length;
    const need = Math.min(this.sp.clients!.connections, reachable);
    const have = n.clientConns.filter((c) => this.clientLive(n, c)).length;
    const now = this.engine.now;
    if (have >= need) {
      n.shortSince = null;
      return;
    }
    n.shortSince ??= now;
    if (now - n.shortSince > within) {
      this.fail(
        "spores.client-failover",
        `${n.name} kept ${have} live Sclerotia connections for ${now - n.shortSince} ms while ` +
          `${reachable} were reachable (bound ${within} ms)`,
      );
    }
  }

  /** One client op: to one connection, on error one retry on another. */
  private clientOp(n: SporeNode): void {
    const c = this.counters;
    c.clientOps++;
    if (n.clientConns.length === 0 && !this.opts.clientNoRefresh) this.refreshClient(n);
    if (n.clientConns.length === 0) {
      c.clientFailures++;
      return;
    }
    const life = n.life;
    const first = n.clientConns[n.clientRr++ % n.clientConns.length];
    this.clientAttempt(n, first, (ok) => {
      if (!this.alive(n, life)) return;
      if (ok) {
        c.clientOk++;
        return;
      }
      c.clientRetries++;
      const others = n.clientConns.filter((x) => x !== first);
      // The client knows its sessions' transport state: a live one is tried first.
      const target = this.opts.clientRetrySame
        ? first
        : others.find((x) => this.clientLive(n, x)) ?? others[0];
      const reachable = others.filter((x) => this.clientLive(n, x));
      if (!this.opts.clientNoRefresh) {
        n.clientConns = n.clientConns.filter((x) => x !== first);
        this.refreshClient(n);
      }
      const failed = (why: string) => {
        c.clientFailures++;
        // A live, reachable retry target that did not answer, or a reachable one not tried.
        const ignored = !target || !reachable.includes(target) ||
          (why === "timeout" && this.clientLive(n, target));
        if (reachable.length > 0 && ignored) {
          this.fail(
            "spores.client-failover",
            `${n.name}'s op failed (${why}) although ${
              reachable.map((x) => this.nodes[x.node].name).join(", ")
            } was reachable when it retried` +
              (target ? ` (retried on ${this.nodes[target.node].name})` : ""),
          );
        }
      };
      if (!target) return failed("no other connection");
      this.clientAttempt(n, target, (ok2, why) => {
        if (!this.alive(n, life)) return;
        if (ok2) c.clientOk++;
        else failed(why);
      });
    });
  }

  /** Sends one op on a connection; `done(false)` on reset, unreachable or timeout. */
  private clientAttempt(
    n: SporeNode,
    conn: { node: number; life: number },
    done: (ok: boolean, why: string) => void,
  ): void {
    const s = this.nodes[conn.node];
    let over = false;
    const finish = (ok: boolean, why: string) => {
      if (over) return;
      over = true;
      done(ok, why);
    };
    if (s.life !== conn.life || !s.up) {
      this.at(this.engine.now, () => finish(false, "connection reset"), 3);
      return;
    }
    const d = this.transfer(n.index, s.index, REQUEST_BYTES, () => {
      if (!s.up || !s.active || s.role !== "sclerotia") return;
      this.transfer(s.index, n.index, 64, () => finish(true, ""));
    });
    if (d < 0 && this.network.partitioned(n.index, s.index, this.engine.now, 0)) {
      this.at(this.engine.now, () => finish(false, "unreachable"), 3);
      return;
    }
    this.at(this.engine.now + this.sp.clients!.timeoutMs, () => finish(false, "timeout"));
  }

  // ---- client load ----

  private scheduleLoad(n: SporeNode): void {
    const w = this.sp.workload;
    const life = n.life;
    const loop = (period: number, fn: () => void) => {
      if (period <= 0) return;
      const next = (t: number) => {
        if (t > this.workloadUntil || t > this.durationMs) return;
        this.at(t, () => {
          if (!this.alive(n, life) || !n.active) return;
          fn();
          next(t + period * (0.75 + 0.5 * n.rng.next()));
        });
      };
      next(this.engine.now + period * n.rng.next());
    };
    loop(w.apWriteMs, () => {
      n.processingVolume++;
      n.proto!.refresh();
      this.counters.apWrites++;
    });
    loop(w.cpWriteMs, () => this.cpWrite(n, 0));
    loop(w.readMs, () => {
      const side = this.sideOf.get(n.index);
      if (n.proto?.primary) {
        this.counters.readsServed++;
        if (side && !side.can) this.counters.readsServedReadOnly++;
      } else this.counters.readsFailed++;
    });
  }

  /** A CP write through the node's k-th Sclerotium connection (one failover). */
  private cpWrite(n: SporeNode, k: number): void {
    const life = n.life;
    const conns = n.conns.filter((c) => c !== n.index || n.role === "sclerotia");
    if (k >= Math.min(2, conns.length)) {
      this.counters.cpFailed++;
      this.reconnect(n);
      return;
    }
    if (k > 0) this.counters.cpFailovers++;
    const s = this.nodes[conns[k]];
    const started = this.engine.now;
    let done = false;
    const answer = (committed: boolean) =>
      this.transfer(s.index, n.index, 64, () => {
        if (done || !this.alive(n, life)) return;
        done = true;
        if (committed) {
          this.counters.cpCommitted++;
          this.cpCommitMs.push(this.engine.now - started);
        }
      });
    this.transfer(n.index, s.index, REQUEST_BYTES, () => {
      if (!s.up || !s.active) return;
      const side = this.sideOf.get(s.index);
      if (!side?.can) {
        this.counters.cpRefused++;
        if (side?.bft) {
          this.fail(
            "spores.no-lockout",
            `${s.name} refused a CP write while its side held a quorum`,
          );
        }
        answer(false);
        return;
      }
      this.counters.cpSubmitted++;
      this.ledger.submit(
        { kind: "config", key: `k${n.index % 16}`, value: `${n.name}@${Math.floor(started)}` },
        s.index,
        this.engine.now,
        () => answer(true),
      );
    });
    this.at(started + this.sp.workload.opTimeoutMs, () => {
      if (done) return;
      done = true;
      this.counters.cpTimedOut++;
      if (this.alive(n, life)) this.cpWrite(n, k + 1);
    });
  }

  /** Both connections failed: reconnect to reachable Sclerotia of the node's Primary. */
  private reconnect(n: SporeNode): void {
    const fresh = this.sclerotiaOf(n.proto?.primary ?? null)
      .filter((s) => s === n || this.reachableSclerotium(n, s))
      .slice(0, this.sp.discovery.want)
      .map((s) => s.index);
    if (fresh.length > 0) {
      n.conns = fresh;
      if (n.proto?.primary) n.cached = this.cachedSpore(n, n.proto.primary);
      this.counters.reconnects++;
    }
  }

  // ---- Byzantine spores ----

  private byzantine(
    n: SporeNode,
    msg: Extract<SporeMessage, { t: "spore-push" | "spore-entries" }>,
  ): SporeMessage {
    const extra: LatentEntry[] = [];
    for (const b of n.byz) {
      for (let k = 0; k < b.perMessage; k++) {
        const e = this.badEntry(n, b.behaviour, k);
        if (!e) continue;
        extra.push(e);
        if (b.behaviour !== "replay-stale") this.badEntries.set(e, b.behaviour);
        const p = this.counters.byzProduced;
        p[b.behaviour] = (p[b.behaviour] ?? 0) + 1;
      }
    }
    return { ...msg, entries: [...msg.entries, ...extra] };
  }

  private badEntry(n: SporeNode, b: SporeByzantine, k: number): LatentEntry | null {
    const proto = n.proto;
    const own = proto?.ownEntry;
    if (!proto || !own) return null;
    const now = Math.floor(this.nodeNow(n));
    const { sig: _sig, ...u } = own;
    const fresh = { ms: Math.max(own.hlc.ms, now), c: own.hlc.c + 1 + k };
    const sign = (x: UnsignedLatentEntry) => signLatentEntry(x, n.sign);
    switch (b) {
      case "forge": {
        const peers = proto.knownPeers();
        if (peers.length === 0) return null;
        const victim = peers[Math.floor(n.rng.next() * peers.length)];
        const v = this.ledger.newest;
        return sign({
          ...u,
          node: victim,
          tier: v.members.get(victim) ?? this.byId.get(victim)?.tier ?? "hypha",
          trust: v.trust.get(victim) ?? 0.5,
          health: "failing",
          hlc: fresh,
        });
      }
      case "replay-stale": {
        const old = n.seen.filter((e) => proto.entryOf(e.node) !== e);
        if (old.length === 0) return null;
        const e = old[Math.floor(n.rng.next() * old.length)];
        this.replays.add(e);
        return e;
      }
      case "future-dated":
        return sign({
          ...u,
          hlc: { ms: now + 10 * this.sp.latent.maxSkewMs + 60_000, c: k },
        });
      case "wrong-network":
        return sign({ ...u, network: FOREIGN_NETWORK, hlc: fresh });
      case "contradict-primary": {
        const v = proto.primary;
        const member = v?.members.has(n.id) ?? false;
        return member
          ? sign({ ...u, trust: own.trust >= 0.95 ? 0 : 1, hlc: fresh })
          : sign({ ...u, tier: n.tier === "sclerotia" ? "rhizomorph" : "sclerotia", hlc: fresh });
      }
    }
  }

  private onAccepted(
    n: SporeNode,
    e: LatentEntry,
    primary: PrimaryView | null,
    from: NodeId | null,
  ): void {
    if (n.byz.length > 0) {
      n.seen.push(e);
      if (n.seen.length > 64) n.seen.shift();
      return;
    }
    const bad = this.badEntries.get(e);
    if (bad) {
      this.fail(
        "spores.byzantine-discarded",
        `${n.name} accepted a ${bad} entry about ${this.nameOf(e.node)} from ${
          from ? this.nameOf(from) : "a snapshot"
        }`,
      );
    } else if (from && this.byzIds.has(from) && this.replays.has(e)) {
      this.counters.replaysAccepted++; // it held nothing newer: by the rules not stale
    }
    if (primary && this.enabled.has("spores.no-contradiction")) {
      this.counters.acceptedChecked++;
      const truth = this.ledger.truthFor(primary);
      const why = truth ? contradiction(truth, e, this.sp.latent.trustTolerance) : null;
      if (why) {
        this.fail(
          "spores.no-contradiction",
          `${n.name} accepted ${this.nameOf(e.node)}'s entry (${e.tier}, trust ${e.trust}) that ` +
            `contradicts the certified Primary at height ${primary.height} (${why})`,
        );
      }
    }
  }

  private onDiscarded(n: SporeNode, e: LatentEntry, from: NodeId | null): void {
    if (n.byz.length > 0 || !from || !this.byzIds.has(from)) return;
    const b = this.badEntries.get(e) ?? (this.replays.has(e) ? "replay-stale" : undefined);
    if (!b) return;
    const d = this.counters.byzDiscarded;
    d[b] = (d[b] ?? 0) + 1;
  }

  nameOf(id: NodeId): string {
    return this.byId.get(id)?.name ?? id.slice(0, 8);
  }

  // ---- singleton services ----

  private singletonTick(): void {
    const now = this.engine.now;
    const within = this.checkSpec("spores.singletons")?.within ?? Infinity;
    const sides = this.groupSides((n) => n.up && n.active && n.tier !== "hypha");
    const sideIndex = new Map<number, number>();
    sides.forEach((s, k) => s.forEach((i) => sideIndex.set(i, k)));
    for (const svc of this.sp.singletons) {
      let list = (this.instances.get(svc) ?? []).filter((x) => {
        const n = this.nodes[x.node];
        return n.up && n.active && n.life === x.life;
      });
      const perSide = sides.map(() => [] as Instance[]);
      for (const x of list) perSide[sideIndex.get(x.node)!].push(x);
      sides.forEach((side, k) => {
        let here = perSide[k];
        if (here.length === 0) {
          const host = side.map((i) =>
            this.nodes[i]
          ).sort((a, b) =>
            (a.role === "sclerotia" ? 0 : 1) - (b.role === "sclerotia" ? 0 : 1) ||
            compareStrings(a.id, b.id)
          )[0];
          const x: Instance = {
            node: host.index,
            life: host.life,
            startedAt: now,
            volume: 0,
            lastWrite: { ms: Math.floor(now), c: 0 },
          };
          list.push(x);
          here = [x];
          this.counters.singletonStarts++;
        } else if (here.length > 1 && !this.opts.keepDuplicateSingletons) {
          const [r] = resolveSingletons(here.map((x) => ({
            service: svc,
            node: this.nodes[x.node].id,
            processingVolume: x.volume,
            lastWrite: x.lastWrite,
          })));
          const keep = here.find((x) => this.nodes[x.node].id === r.winner.node)!;
          list = list.filter((x) => !here.includes(x) || x === keep);
          this.resolutions.push({
            at: now,
            service: svc,
            winner: this.nodes[keep.node].name,
            losers: here.filter((x) => x !== keep).map((x) => this.nodes[x.node].name),
          });
          here = [keep];
        }
        for (const x of here) {
          x.volume += side.length;
          x.lastWrite = { ms: Math.floor(now), c: 0 };
        }
        const key = `${svc}/${k}`;
        if (here.length > 1) {
          const since = this.dupSince.get(key) ?? now;
          this.dupSince.set(key, since);
          if (now - since > within) {
            this.fail(
              "spores.singletons",
              `${svc} ran ${here.length} instances on one side for ${
                now - since
              } ms (bound ${within} ms)`,
            );
          }
        } else this.dupSince.delete(key);
      });
      this.instances.set(svc, list);
    }
  }

  // ---- observation ----

  private checkSpec<T extends Scenario["checks"][number]["type"]>(
    type: T,
  ): Extract<Scenario["checks"][number], { type: T }> | undefined {
    return this.scenario.checks.find((c) => c.type === type) as
      | Extract<Scenario["checks"][number], { type: T }>
      | undefined;
  }

  /** Live, active members whose entries every holder should have (top-K when K is smaller). */
  private convergenceSets(): { holders: SporeNode[]; members: SporeNode[] } | null {
    const v = this.ledger.newest;
    const holders: SporeNode[] = [];
    let members: SporeNode[] = [];
    for (const n of this.nodes) {
      if (!n.up) continue;
      if (v.excluded.has(n.id)) continue;
      if (!n.active) {
        if (n.byz.length === 0) return null;
        continue;
      }
      if (n.proto?.ownEntry) members.push(n);
      if (n.byz.length === 0) holders.push(n);
    }
    const k = this.sp.latent.maxEntries;
    if (members.length > k) {
      members = members.sort((a, b) => compareLatentEntries(b.proto!.ownEntry!, a.proto!.ownEntry!))
        .slice(0, k);
    }
    return { holders, members };
  }

  private holds(h: SporeNode, m: SporeNode, now: number): boolean {
    if (h === m) return true;
    const own = m.proto!.ownEntry!;
    const held = h.proto!.entryOf(m.id);
    if (held === own) return true;
    if (!held) return false;
    const hist = m.history;
    const last = hist[hist.length - 1];
    return last !== undefined && last.e === own && now - last.at < SETTLE_MS && hist.length > 1 &&
      hist[hist.length - 2].e === held;
  }

  /** Every live honest active node holds the newest entry of every live active member. */
  convergedNow(): boolean {
    const sets = this.convergenceSets();
    if (!sets) return false;
    const now = this.engine.now;
    for (const h of sets.holders) {
      for (const m of sets.members) if (!this.holds(h, m, now)) return false;
    }
    return true;
  }

  /** (holder, member) pairs not converged (or -1: some live node is not active). */
  divergence(): number {
    const sets = this.convergenceSets();
    let missing = 0;
    const now = this.engine.now;
    const holders = sets?.holders ??
      this.nodes.filter((n) => n.up && n.active && n.byz.length === 0);
    const members = sets?.members ??
      this.nodes.filter((n) => n.up && n.active && n.proto?.ownEntry);
    for (const h of holders) for (const m of members) if (!this.holds(h, m, now)) missing++;
    return missing;
  }

  private probe(kind: "formation" | "converged" | "heal", from: number): void {
    const loop = (t: number) => {
      if (t > this.durationMs) return;
      this.at(t, () => {
        if (this.convergedNow()) {
          if (kind === "formation") this.formationAt = this.engine.now;
          else if (kind === "heal") this.healConvergedAt = this.engine.now;
          else this.convergedAt = this.engine.now;
          return;
        }
        loop(t + PROBE_MS);
      });
    };
    // One step after the reference time: what happens at that very time (a restart) first.
    loop(from + PROBE_MS);
  }

  private pathExists(n: SporeNode): boolean {
    const reach = (s: SporeNode | undefined) => s !== undefined && this.reachableSclerotium(n, s);
    const viaNode = (t: SporeNode) =>
      t !== n && t.up && t.active &&
      !this.network.partitioned(n.index, t.index, this.engine.now, 0) &&
      this.revealedBy(t).some((s) => reach(this.byName.get(s)));
    if (n.cached.some((i) => reach(this.nodes[i]))) return true;
    if (this.rhizoContacts.some((i) => viaNode(this.nodes[i]))) return true;
    if (this.entryPoints.some((i) => viaNode(this.nodes[i]))) return true;
    for (const loc of this.seeds.locations) {
      const r = this.seeds.read(loc, {
        network: this.networkId,
        verify: this.verify,
        now: this.nodeNow(n),
        maxAgeMs: this.sp.seed.maxAgeMs,
        maxSkewMs: this.sp.seed.maxSkewMs,
      });
      if (r.ok && r.seed.entries.some((e) => reach(this.byName.get(e.addrs[0] ?? "")))) return true;
    }
    return false;
  }

  discardTotals(): DiscardCounts {
    const out = addDiscardCounts(emptyDiscardCounts(), this.retiredDiscards);
    for (const n of this.nodes) if (n.proto) addDiscardCounts(out, n.proto.discards);
    return out;
  }

  gossipStats(): Record<string, number> {
    const out = new Map(this.retiredStats);
    for (const n of this.nodes) {
      if (!n.proto) continue;
      for (const [k, v] of Object.entries(n.proto.stats)) out.set(k, (out.get(k) ?? 0) + v);
    }
    return Object.fromEntries([...out].sort());
  }

  private sample(): void {
    const now = this.engine.now;
    const secs = this.scenario.outputs.sampleInterval / 1000;
    let up = 0, active = 0, joining = 0, readOnly = 0;
    const K = this.sp.latent.maxEntries;
    for (const n of this.nodes) {
      if (!n.up) continue;
      up++;
      if (n.active) {
        active++;
        if (this.sideOf.get(n.index)?.can === false) readOnly++;
        const size = n.proto!.store.size;
        this.counters.maxMapSize = Math.max(this.counters.maxMapSize, size);
        if (size > K || n.proto!.deferredCount > this.sp.gossip.deferMax) {
          this.fail("spores.bounded", `${n.name} holds ${size} Latent entries (bound ${K})`);
        }
      } else joining++;
    }
    this.samples.push({
      t: now,
      up,
      active,
      joining,
      primaryHeight: this.ledger.newest.height,
      divergence: this.divergence(),
      readOnly,
      discards: this.discardTotals(),
      bytesPerSec: this.intervalBytes / secs,
      msgsPerSec: this.intervalMsgs / secs,
    });
    this.intervalBytes = 0;
    this.intervalMsgs = 0;
    if (this.enabled.has("spores.discovery")) this.checkDiscovery();
    if (this.enabled.has("spores.sides-serving")) this.checkSidesServing();
    this.storage?.sample(now);
  }

  private checkDiscovery(): void {
    const within = this.checkSpec("spores.discovery")!.within;
    const now = this.engine.now;
    for (const n of this.nodes) {
      if (!n.up || n.state !== "discovering") {
        n.pathSince = null;
        continue;
      }
      if (!this.pathExists(n)) {
        n.pathSince = null;
        continue;
      }
      n.pathSince ??= now;
      if (now - n.pathSince > within) {
        this.fail(
          "spores.discovery",
          `${n.name} found no Sclerotium for ${now - n.pathSince} ms although a discovery path ` +
            `existed (sources: ${this.sp.discovery.sources.join(", ")})`,
        );
      }
    }
  }

  /** During a partition: every side reads, and its AP writes reach the side within `within`. */
  private checkSidesServing(): void {
    if (!this.network.rules.some((r) => r.kind === "partition")) return;
    const within = this.checkSpec("spores.sides-serving")!.within;
    const now = this.engine.now;
    const cutoff = now - within;
    if (cutoff < this.partitionSince) return;
    for (const side of this.groupSides((n) => n.up && n.active)) {
      const nodes = side.map((i) => this.nodes[i]);
      for (const h of nodes) {
        if (!h.proto?.primary) {
          this.fail("spores.sides-serving", `${h.name} cannot serve reads: it holds no Primary`);
          return;
        }
        if (h.byz.length > 0) continue;
        for (const m of nodes) {
          if (m === h || m.byz.length > 0) continue;
          let target: LatentEntry | null = null;
          for (const x of m.history) {
            if (x.at <= cutoff && x.at >= this.partitionSince) target = x.e;
          }
          if (!target) continue;
          const held = h.proto.entryOf(m.id);
          if (!held || compareLatentEntries(held, target) < 0) {
            this.fail(
              "spores.sides-serving",
              `${h.name} lacks ${m.name}'s AP write of ${(now - cutoff) / 1000} s ago or older ` +
                `although both are on one side of the partition`,
            );
            return;
          }
        }
      }
    }
  }

  // ---- running ----

  private record(kind: string, node: string, detail: string): void {
    const r = this.recorder!;
    r.push({ index: this.engine.events, t: this.engine.now, kind, node, detail });
    if (r.length > this.opts.recordLast! * 2) r.splice(0, r.length - this.opts.recordLast!);
  }

  private trace(kind: string, node: string, detail: string): void {
    if (this.recorder) this.record(kind, node, detail);
  }

  recentEvents(): SporeTraceEvent[] {
    return this.recorder ? this.recorder.slice(-this.opts.recordLast!) : [];
  }

  /** One line per node state and the Primary (replay). */
  positions(): string[] {
    const by = new Map<string, number>();
    for (const n of this.nodes) by.set(n.state, (by.get(n.state) ?? 0) + 1);
    return [
      `Primary height ${this.ledger.newest.height}, ${this.ledger.blocks.length} blocks, ` +
      `${this.ledger.pending.length} pending operations`,
      `nodes: ${[...by].map(([s, c]) => `${c} ${s}`).join(", ")}`,
      ...this.sidesList.map((s, k) =>
        `side ${k}: ${s.nodes.length} active nodes, ${s.liveVoters.length} voters, ` +
        `${s.can ? "read-write" : "read-only"}`
      ),
    ];
  }

  run(onProgress?: (p: SporeProgress) => void, sliceEvents = 200_000): void {
    runSliced(this.engine, {
      durationMs: this.durationMs,
      stopAt: this.opts.stopAtEvent ?? Infinity,
      sliceEvents,
      stop: () => this.violation !== null,
      onProgress,
    });
    closeUptime(this.nodes, this.engine.now);
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

  dropCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    dropReasonName.forEach((name, i) => {
      if (i > 0 && this.network.drops[i] > 0) out[name] = this.network.drops[i];
    });
    return out;
  }

  evaluateChecks(): CheckResult[] {
    return evaluateSporeChecks(this);
  }

  /** Headline metrics for summary.json (`metrics.spores`). */
  metricsSummary() {
    return sporeMetrics(this);
  }

  get sidesNow(): readonly Side[] {
    return this.sidesList;
  }
}
