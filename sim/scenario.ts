/**
 * Scenario files: YAML validated by zod. A bad file is rejected before anything runs, with
 * the path of the bad field and what was expected.
 */
import { z } from "zod";
import YAML from "yaml";
import { formatZodError } from "../core/config_errors.ts";
import { ConfigError } from "../core/errors.ts";
import { swimConfigSchema } from "../core/membership/config.ts";
import { consensusConfigSchema } from "../core/consensus/config.ts";
import { ramConfigSchema } from "../core/ram/config.ts";
import { workloadSchema as ramWorkloadSchema } from "../core/ram/workloads.ts";
import { latentConfigSchema } from "../core/spores/latent.ts";
import { sporeGossipConfigSchema } from "../core/spores/gossip.ts";
import { seedConfigSchema } from "../core/spores/seed.ts";
import { DISCOVERY_ORDER } from "../core/spores/discovery.ts";
import { storageConfigSchema } from "../core/storage/config.ts";
import { storageClassSchema } from "../core/storage/classes.ts";
import { type NodeInfo, validateSelector } from "./selectors.ts";

// ---- durations and rates ----

const DURATION_RE = /^(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "250ms", "1.5s", "2m", "1h" or a number of milliseconds. */
export const duration = z
  .union([
    z.number().finite(),
    z.string().regex(DURATION_RE, "expected a duration like 500ms, 2s, 1m"),
  ])
  .transform((v) => {
    if (typeof v === "number") return v;
    const m = DURATION_RE.exec(v)!;
    return Number(m[1]) * UNIT_MS[m[2]];
  });
const nonNegDuration = duration.refine((v) => v >= 0, "must not be negative");

const RATE_RE = /^(\d+(?:\.\d+)?)\s*(bit|kbit|Mbit|Gbit)(?:\/s)?$/;
const RATE_BPS: Record<string, number> = { bit: 1, kbit: 1e3, Mbit: 1e6, Gbit: 1e9 };
/** "100Mbit", "1Gbit/s" or bits per second. */
export const bitrate = z
  .union([
    z.number().positive(),
    z.string().regex(RATE_RE, "expected a rate like 100Mbit or 1Gbit"),
  ])
  .transform((v) => {
    if (typeof v === "number") return v;
    const m = RATE_RE.exec(v)!;
    return Number(m[1]) * RATE_BPS[m[2]];
  });

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)$/;
const SIZE_B: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};
export const bytes = z
  .union([z.int().nonnegative(), z.string().regex(SIZE_RE, "expected a size like 64KiB or 1MB")])
  .transform((v) => {
    if (typeof v === "number") return v;
    const m = SIZE_RE.exec(v)!;
    return Math.round(Number(m[1]) * SIZE_B[m[2]]);
  });

const probability = z.number().min(0).max(1);

// ---- selectors ----

/**
 * Which nodes a fault or check applies to: `all`, a group name, `group[a..b]` (inclusive
 * indices), a node name (`group-7`), `region:NAME`, `tier:NAME`, `P%` (a random P percent
 * of the nodes up when it fires), `random:K`, or a list of these.
 */
export const SELECTOR_RE =
  /^(all|[A-Za-z][\w.-]*(\[\d+\.\.\d+\])?|region:[\w.-]+|tier:(sclerotia|rhizomorph|hypha)|\d+(\.\d+)?%|random:\d+)$/;
const selectorAtom = z.string().regex(
  SELECTOR_RE,
  "expected a node selector: all, GROUP, GROUP[a..b], NODE, region:R, tier:T, P% or random:K",
);
export const selector = z.union([selectorAtom, z.array(selectorAtom).min(1)]);
export type Selector = z.infer<typeof selector>;

// ---- nodes ----

export const tierSchema = z.enum(["sclerotia", "rhizomorph", "hypha"]);
export type Tier = z.infer<typeof tierSchema>;

const nodeGroupSchema = z.strictObject({
  group: z.string().regex(/^[A-Za-z][\w.-]*$/, "expected a group name (letters, digits, - _ .)"),
  count: z.int().min(1).max(200_000),
  tier: tierSchema.default("sclerotia"),
  region: z.string().default("default"),
  /** Nodes start at `at`, spread uniformly over `spread`. Nodes started after 0 are joiners. */
  start: z.strictObject({ at: nonNegDuration.default(0), spread: nonNegDuration.default(0) })
    .default({ at: 0, spread: 0 }),
});

// ---- network ----

export const latencySchema = z.discriminatedUnion("dist", [
  z.strictObject({ dist: z.literal("constant"), value: nonNegDuration }),
  z.strictObject({ dist: z.literal("uniform"), min: nonNegDuration, max: nonNegDuration }).refine(
    (u) => u.max >= u.min,
    { message: "max must be >= min", path: ["max"] },
  ),
  z.strictObject({ dist: z.literal("normal"), mean: nonNegDuration, sd: nonNegDuration }),
  z.strictObject({
    dist: z.literal("lognormal"),
    median: duration.refine((v) => v > 0, "must be positive"),
    // Beyond ~10 the tail overflows to Infinity in float64 samples.
    sigma: z.number().nonnegative().max(10),
  }),
  z.strictObject({
    dist: z.literal("pareto"),
    scale: duration.refine((v) => v > 0, "must be positive"),
    // Below 0.5 the tail overflows to Infinity in float64 samples; below 1 the mean is infinite.
    shape: z.number().min(0.5),
  }),
]);
export type Latency = z.infer<typeof latencySchema>;

const networkSchema = z.strictObject({
  latency: latencySchema.default({ dist: "uniform", min: 0.2, max: 1 }),
  jitter: nonNegDuration.default(0),
  loss: probability.default(0),
  duplicate: probability.default(0),
  /** Probability that a message is held back by `reorderDelay` (so later ones overtake it). */
  reorder: probability.default(0),
  reorderDelay: nonNegDuration.default(5),
  /** Uplink of every node; serialisation delay and a FIFO queue. Omit for unlimited. */
  bandwidth: bitrate.optional(),
  /** Uplink queue capacity; a message that would wait longer than this drains is dropped. */
  queue: bytes.default(1024 * 1024),
  /** One-way base latency between regions, added to the latency distribution. */
  regions: z.record(z.string(), z.record(z.string(), nonNegDuration)).default({}),
});

// ---- faults ----

const faultBase = {
  at: nonNegDuration,
  name: z.string().optional(),
};
const windowed = { ...faultBase, until: nonNegDuration.optional() };

export const faultSchema = z.discriminatedUnion("type", [
  z.strictObject({
    ...faultBase,
    type: z.literal("crash"),
    nodes: selector,
    restartAfter: nonNegDuration.optional(),
    loseUnsynced: z.boolean().default(false),
  }),
  z.strictObject({
    ...windowed,
    type: z.literal("partition"),
    groups: z.array(selector).min(2, "a partition needs at least 2 groups"),
  }),
  z.strictObject({
    ...windowed,
    type: z.literal("oneway"),
    from: selector,
    to: selector,
    loss: probability.default(1),
  }),
  z.strictObject({
    ...windowed,
    type: z.literal("slow"),
    between: z.tuple([selector, selector]),
    addLatency: nonNegDuration,
  }),
  z.strictObject({
    ...windowed,
    type: z.literal("jam"),
    between: z.tuple([selector, selector]),
    loss: probability.default(0.95),
  }),
  z.strictObject({
    ...windowed,
    type: z.literal("degrade"),
    nodes: selector,
    loss: probability.default(0),
    addLatency: nonNegDuration.default(0),
    direction: z.enum(["in", "out", "both"]).default("both"),
  }),
  z.strictObject({
    ...faultBase,
    type: z.literal("clock"),
    nodes: selector,
    offset: duration.default(0),
    drift: z.number().gt(-0.5).lt(0.5).default(0),
  }),
]).superRefine((f, ctx) => {
  if ("until" in f && f.until !== undefined && f.until <= f.at) {
    ctx.addIssue({ code: "custom", path: ["until"], message: `must be after at (${f.at} ms)` });
  }
});
export type Fault = z.infer<typeof faultSchema>;

// ---- workload ----

/**
 * What the nodes are asked to do. For membership that is churn: joins are node groups that
 * start later (see `nodes[].start`), and leaves are scheduled here. Later protocols add their
 * client operations.
 */
const workloadSchema = z.strictObject({
  /** Graceful leaves: the nodes announce their departure, then stop. */
  leaves: z.array(
    z.strictObject({ at: nonNegDuration, nodes: selector, name: z.string().optional() }),
  )
    .default([]),
});

// ---- consensus ----

export const BYZANTINE_BEHAVIOURS = [
  "equivocate-proposal",
  "double-vote",
  "withhold-votes",
  "withhold-reveals",
  "forge-signatures",
  "replay",
  "wrong-result",
  "copy-reveal",
] as const;
export type ByzantineBehaviour = typeof BYZANTINE_BEHAVIOURS[number];

/**
 * BFT consensus among the voters (DESIGN.md section 5). Every node runs the protocol; the
 * voters are the genesis voter set (trust 0.9), shrinking as trust falls below 0.7 or nodes
 * are excluded. Clients run closed loops against the voters.
 */
const consensusSchema = z.strictObject({
  config: consensusConfigSchema.prefault({}),
  voters: selector.default("tier:sclerotia"),
  load: z.strictObject({
    /** Closed-loop clients, each with one operation outstanding. */
    clients: z.int().min(0).max(10_000).default(4),
    /** Pause between an operation's completion and the next (ms). */
    thinkMs: nonNegDuration.default(100),
    keys: z.int().min(1).default(16),
    reads: probability.default(0.2),
    cas: probability.default(0.1),
    valueBytes: z.int().min(1).max(1_000_000).default(100),
    /** A client resubmits to the next voter after this long without a commit. */
    retryMs: nonNegDuration.default(3000),
    /** Clients stop issuing new operations here (default: 80 % of the duration). */
    until: nonNegDuration.optional(),
  }).prefault({}),
  /** Commit-reveal tasks: one every `every` ms (0: none), executed by the voters. */
  tasks: z.strictObject({
    every: nonNegDuration.default(0),
    /** Executors per task (0: every voter). */
    executors: z.int().min(0).default(0),
    commitWindow: z.int().min(1).default(4),
    revealWindow: z.int().min(1).default(4),
  }).prefault({}),
  byzantine: z.array(z.strictObject({
    nodes: selector,
    behaviour: z.enum(BYZANTINE_BEHAVIOURS),
  })).default([]),
  /**
   * Twins (Bano et al., "Twins: BFT systems made robust"): each listed voter gets a second
   * instance with the same identity and key, named `twin-<name>`, which faults can select.
   */
  twins: z.array(z.string().regex(/^[A-Za-z][\w.-]*$/, "expected a node name")).default([]),
});
export type ConsensusScenario = z.infer<typeof consensusSchema>;

// ---- distributed RAM ----

const NAME_RE = /^[A-Za-z][\w.-]*$/;

/**
 * Distributed RAM replication (DESIGN.md section 5, issue 5): VMs whose memory the nodes
 * replicate, each on a primary with `backups` backups, driven by a guest workload. Every
 * node runs the RAM replicator (`core/ram/replicator.ts`); no membership protocol runs.
 */
const ramVmSchema = z.strictObject({
  /** VM name; `count` > 1 expands to name-0, name-1, ... (a single VM keeps the name). */
  name: z.string().regex(NAME_RE, "expected a VM name (letters, digits, - _ .)"),
  count: z.int().min(1).max(100_000).default(1),
  /** Guest memory; pages = memoryMiB * 256 (4 KiB pages). */
  memoryMiB: z.number().positive().max(1024 * 1024).default(64),
  /** Nodes the VMs' primaries are placed on, round-robin in node order. */
  primaries: selector.default("all"),
  /** Backups per VM (default: config.backupNodeCount). */
  backups: z.int().min(0).optional(),
  /**
   * Nodes backups are chosen from: for a primary at node index p, the first `backups`
   * candidates after p in node order (wrapping around), the primary excluded.
   */
  backupsFrom: selector.default("all"),
  /**
   * Rhizomorph relays: the VM's replicas talk only through these nodes, the stream split
   * across them in proportion to their measured bandwidth (core/ram/multipath.ts).
   */
  relays: selector.optional(),
  workload: ramWorkloadSchema.prefault({ kind: "web-server" }),
});

const ramSchema = z.strictObject({
  config: ramConfigSchema.prefault({}),
  policy: z.enum(["mycelium", "auto-converge", "remus"]).default("mycelium"),
  remus: z.strictObject({
    /** The guest stops this long at every epoch boundary to capture the checkpoint. */
    checkpointPauseMs: nonNegDuration.default(2),
  }).prefault({}),
  /**
   * Remus-style output buffering: the guest's outputs (one per guest tick) are released to
   * clients only once the epoch containing them is acknowledged by the backups. Outputs are
   * modelled when the policy is remus or the ram.output-buffering check is on; false
   * releases them at once (which the check must catch on a failover).
   */
  outputBuffering: z.boolean().default(true),
  /** The guests' tick: each tick every running guest dirties its pages for the elapsed time. */
  guestTickMs: duration.refine((v) => v > 0, "must be positive").default(5),
  vms: z.array(ramVmSchema).min(1, "a ram section needs at least one VM"),
  /** Planned live migrations: at `at`, the VM's primary migrates it to `to` (default: its first backup). */
  migrations: z.array(z.strictObject({
    at: nonNegDuration,
    vm: z.string(),
    to: z.string().optional(),
    name: z.string().optional(),
  })).default([]),
});
export type RamScenario = z.infer<typeof ramSchema>;
export type RamVmSpec = z.infer<typeof ramVmSchema>;

// ---- spores and storage (issue 6) ----

/** What a Byzantine node adds to the Latent entries it gossips. */
export const SPORE_BYZANTINE = [
  "forge",
  "replay-stale",
  "future-dated",
  "wrong-network",
  "contradict-primary",
] as const;
export type SporeByzantine = typeof SPORE_BYZANTINE[number];

/** What a seed event does to the file at a location. */
export const SEED_ACTIONS = [
  "corrupt",
  "truncate",
  "stale",
  "forge",
  "delete",
  "wrong-network",
] as const;
export type SeedAction = typeof SEED_ACTIONS[number];

const SERVICE_RE = /^[A-Za-z][\w.-]*$/;
const trustValue = z.number().min(0).max(1);

/**
 * Spore tiers, bootstrap and split brain (DESIGN.md section 5, issue 6): every node runs the
 * Latent gossip (core/spores/gossip.ts); a stand-in for consensus orders the Primary.
 */
const sporesSchema = z.strictObject({
  latent: latentConfigSchema.prefault({}),
  gossip: sporeGossipConfigSchema.prefault({}),
  /** Nodes that create the network at t = 0 (those of them that start at 0). */
  genesis: selector.default("tier:sclerotia"),
  trust: z.strictObject({
    genesis: trustValue.default(0.9),
    joiner: trustValue.default(0.5),
    /** Trust a node is admitted with, by selector (later entries win). */
    nodes: z.array(z.strictObject({ nodes: selector, value: trustValue })).default([]),
  }).prefault({}),
  /** The consensus stand-in: one block of pending operations every blockMs per side. */
  primary: z.strictObject({
    blockMs: duration.refine((v) => v > 0, "must be positive").default(500),
    /**
     * Commit rule: bft (a quorum of the voters, the protocol's rule); all (every voter:
     * locks out with one voter down); any (any side commits: split brain). The last two
     * exist to show that spores.no-lockout and spores.single-writer catch them.
     */
    quorum: z.enum(["bft", "all", "any"]).default("bft"),
  }).prefault({}),
  seed: seedConfigSchema.extend({
    /** Member nodes that rewrite the seed files every writeIntervalMs. */
    writers: selector.default("tier:sclerotia"),
    /** Sclerotia listed per seed file. */
    maxEntries: z.int().min(1).max(10_000).default(32),
    /** Latency of reading a file location (URLs cost a network round trip instead). */
    readMs: nonNegDuration.default(2),
  }).prefault({}),
  discovery: z.strictObject({
    /** Sources a joiner tries, in this order (DESIGN.md: all four). */
    sources: z.array(z.enum(DISCOVERY_ORDER)).min(1).default([...DISCOVERY_ORDER]),
    /** Rhizomorph contacts every joiner is configured with. */
    rhizomorphs: selector.optional(),
    /** Latent entry points every joiner is configured with. */
    entryPoints: selector.optional(),
    /** Sclerotia a node keeps connections to. */
    want: z.int().min(1).max(16).default(3),
    attemptTimeoutMs: duration.refine((v) => v > 0, "must be positive").default(1000),
    joinTimeoutMs: duration.refine((v) => v > 0, "must be positive").default(5000),
    retryMs: duration.refine((v) => v > 0, "must be positive").default(2000),
  }).prefault({}),
  byzantine: z.array(z.strictObject({
    nodes: selector,
    behaviour: z.enum(SPORE_BYZANTINE),
    /** Bad entries added to each push and entries message. */
    perMessage: z.int().min(1).max(64).default(4),
  })).default([]),
  /** Primary operations, manual overrides and seed tampering at given times. */
  events: z.array(z.discriminatedUnion("type", [
    z.strictObject({
      at: nonNegDuration,
      type: z.literal("trust"),
      nodes: selector,
      value: trustValue,
      name: z.string().optional(),
    }),
    z.strictObject({
      at: nonNegDuration,
      type: z.literal("exclude"),
      nodes: selector,
      name: z.string().optional(),
    }),
    /**
     * A manual override by the side of the current partition holding `nodes`: it starts a
     * fork epoch and its CP plane commits without a quorum until the heal (no partition: none).
     */
    z.strictObject({
      at: nonNegDuration,
      type: z.literal("override"),
      nodes: selector,
      name: z.string().optional(),
    }),
    z.strictObject({
      at: nonNegDuration,
      type: z.literal("seed"),
      location: z.string().min(1),
      action: z.enum(SEED_ACTIONS),
      name: z.string().optional(),
    }),
  ])).default([]),
  /** Client load per active node: AP writes (own Latent entry), CP writes, reads (0: none). */
  workload: z.strictObject({
    apWriteMs: nonNegDuration.default(0),
    cpWriteMs: nonNegDuration.default(0),
    readMs: nonNegDuration.default(0),
    /** The load stops here (default: 80 % of the duration). */
    until: nonNegDuration.optional(),
    opTimeoutMs: duration.refine((v) => v > 0, "must be positive").default(2000),
  }).prefault({}),
  /** Singleton services: one instance per connected side, resolved on heal. */
  singletons: z.array(z.string().regex(SERVICE_RE, "expected a service name")).default([]),
  /**
   * Rhizomorph promotion to Dynamic Sclerotia and demotion (DESIGN.md section 5, Spore
   * tiers): every `everyMs` an eligible Rhizomorph (trust >= minTrust, up >= minUptimeMs,
   * spare capacity >= minCapacity) proposes its promotion through the Primary; a promoted
   * node whose trust falls below demoteBelowTrust or that stays down longer than
   * minUptimeMs is demoted (also through the Primary).
   */
  promotion: z.strictObject({
    everyMs: duration.refine((v) => v > 0, "must be positive").default(5000),
    minTrust: trustValue.default(0.7),
    minUptimeMs: nonNegDuration.default(60_000),
    minCapacity: z.number().min(0).max(1).default(0.3),
    demoteBelowTrust: trustValue.default(0.7),
    /** Capacity (0..1) by selector, later entries win; others draw 0.5..1 from the seed. */
    capacity: z.array(z.strictObject({ nodes: selector, value: z.number().min(0).max(1) }))
      .default([]),
  }).optional(),
  /**
   * Hyphae clients: each Hyphae keeps `connections` Sclerotia from discovery, sends an op to
   * one of them every `opMs` and retries once on another on error (refused, unreachable,
   * timeout); connections lost (keepalive every keepaliveMs) are refreshed from discovery.
   */
  clients: z.strictObject({
    opMs: duration.refine((v) => v > 0, "must be positive").default(1000),
    connections: z.int().min(1).max(16).default(3),
    timeoutMs: duration.refine((v) => v > 0, "must be positive").default(1000),
    keepaliveMs: duration.refine((v) => v > 0, "must be positive").default(1000),
    /** The load stops here (default: 80 % of the duration). */
    until: nonNegDuration.optional(),
  }).optional(),
});
export type SporesScenario = z.infer<typeof sporesSchema>;

/** Trust-aware object storage (DESIGN.md section 5, Storage) in the spores simulator. */
const storageSchema = z.strictObject({
  config: storageConfigSchema.prefault({}),
  writes: z.strictObject({
    /** Objects per second (Poisson arrivals), from random active nodes of `from`. */
    rate: z.number().nonnegative().finite().default(1),
    size: z.strictObject({ min: bytes.default(1024 ** 2), max: bytes.default(8 * 1024 ** 2) })
      .refine((r) => r.max >= r.min && r.max > 0, {
        message: "max must be >= min and > 0",
        path: ["max"],
      }).prefault({}),
    /** Class weights (relative). */
    classes: z.partialRecord(storageClassSchema, z.number().nonnegative()).default({
      Standard: 1,
    }).refine((c) => Object.values(c).some((w) => (w ?? 0) > 0), "some class needs a weight > 0"),
    /** Share of Strong writes; the rest are Eventual. */
    strong: probability.default(0.5),
    from: selector.default("all"),
    /** Writes stop here (default: 80 % of the duration). */
    until: nonNegDuration.optional(),
  }).prefault({}),
  reads: z.strictObject({ rate: z.number().nonnegative().finite().default(0) }).prefault({}),
  /** Relative capacity (placement weight) per tier. */
  weights: z.strictObject({
    sclerotia: z.number().positive().finite().default(1),
    rhizomorph: z.number().positive().finite().default(1),
  }).prefault({}),
  /** A crashed node is declared dead (for repair) this long after it went down. */
  detectionMs: nonNegDuration.default(5000),
  repairEveryMs: duration.refine((v) => v > 0, "must be positive").default(1000),
  /** false: no re-replication (storage.rf-restored must then fail). */
  repair: z.boolean().default(true),
  writeTimeoutMs: duration.refine((v) => v > 0, "must be positive").default(10_000),
  /** Every node verifies the checksums of the chunks it holds this often (0: never). */
  scrubMs: nonNegDuration.default(60_000),
  /** Bit rot: a fraction of the chunks stored on the nodes is corrupted at `at`. */
  corrupt: z.array(z.strictObject({
    at: nonNegDuration,
    nodes: selector,
    fraction: probability.default(1),
    name: z.string().optional(),
  })).default([]),
});
export type StorageScenario = z.infer<typeof storageSchema>;

// ---- checks ----

export const checkSchema = z.discriminatedUnion("type", [
  /** Eventually: every live node sees every live node alive and every gone node dead. */
  z.strictObject({
    type: z.literal("membership.converged"),
    /** Bound after the last fault ends (or after the start when there is none). */
    within: nonNegDuration.default(60_000),
  }),
  /** Every crash is detected by every live node within `maxMs`. */
  z.strictObject({
    type: z.literal("membership.detection"),
    maxMs: nonNegDuration.default(30_000),
  }),
  /** Live, reachable nodes declared dead at most `max` times. */
  z.strictObject({ type: z.literal("membership.false-positives"), max: z.int().min(0).default(0) }),
  /** Formation (everyone sees everyone alive) within `within`. */
  z.strictObject({
    type: z.literal("membership.formation"),
    within: nonNegDuration.default(30_000),
  }),
  /** Joiners are seen alive by every live node within `within` of starting. */
  z.strictObject({
    type: z.literal("membership.join-dissemination"),
    within: nonNegDuration.default(10_000),
  }),
  /** Safety, online: during a partition each side keeps its own live members (never dead). */
  z.strictObject({ type: z.literal("membership.sides-serving") }),
  /** Safety, online: no view ever lowers a member's incarnation. */
  z.strictObject({ type: z.literal("membership.incarnation-monotonic") }),
  /** Consensus safety, online: no two correct nodes commit different blocks at a height. */
  z.strictObject({ type: z.literal("consensus.agreement") }),
  /** Consensus safety, online: committed blocks hold only operations someone submitted. */
  z.strictObject({ type: z.literal("consensus.validity") }),
  /** Consensus safety, online: each node's chain links every block to the one before. */
  z.strictObject({ type: z.literal("consensus.no-fork") }),
  /** Consensus safety, online: each node commits heights 1, 2, 3, ... in order, once each. */
  z.strictObject({ type: z.literal("consensus.monotonic") }),
  /** Consensus safety, online: every committed block carries a valid 2f+1 certificate. */
  z.strictObject({ type: z.literal("consensus.certificates") }),
  /** Liveness: every submitted operation commits within `within` of the faults' end. */
  z.strictObject({
    type: z.literal("consensus.liveness"),
    within: nonNegDuration.default(30_000),
  }),
  /** End of run: the clients' KV histories are linearizable. */
  z.strictObject({ type: z.literal("consensus.linearizable") }),
  /** End of run: every trust score stays in [0, 1]; equivocators end at 0 and excluded. */
  z.strictObject({ type: z.literal("consensus.trust-bounds") }),
  /**
   * End of run: the derived trust dynamics (DESIGN.md: honest 0.5 -> 0.9 in 40 rounds,
   * always-wrong below 0.3 after 5) hold, and in this run every node that was always
   * wrong lost trust and every always-correct executor gained it.
   */
  z.strictObject({ type: z.literal("consensus.trust-dynamics") }),
  /** RAM safety, online: each tick's intensity is in [0, M] and the policy's I(b). */
  z.strictObject({ type: z.literal("ram.intensity") }),
  /** RAM safety, online: at most one primary per VM per term, never two at once. */
  z.strictObject({ type: z.literal("ram.single-primary") }),
  /** RAM safety, online: applied and promoted states equal the digest of a cut epoch. */
  z.strictObject({ type: z.literal("ram.failover-consistent") }),
  /** RAM safety, online: no output released to clients is missing after a failover. */
  z.strictObject({ type: z.literal("ram.output-buffering") }),
  /** RAM safety, online: every emergency pause <= convergenceTimeoutMs + one interval. */
  z.strictObject({ type: z.literal("ram.pause-bounded") }),
  /**
   * End of run: p99 replication lag (now - oldest unacknowledged cut, sampled every epoch)
   * <= maxMs, leaving out each fault's window and `afterFaultMs` after it.
   */
  z.strictObject({
    type: z.literal("ram.replication-lag"),
    maxMs: nonNegDuration.default(100),
    afterFaultMs: nonNegDuration.default(5000),
  }),
  /** End of run: every planned migration ends as `expect` (completed: within `withinMs`). */
  z.strictObject({
    type: z.literal("ram.migration"),
    withinMs: nonNegDuration.default(10_000),
    expect: z.enum(["completed", "aborted"]).default("completed"),
  }),
  /**
   * End of run: whenever a VM loses its primary (a crash, or a lease lapse that fences it),
   * a new primary is elected within `maxMs`.
   */
  z.strictObject({
    type: z.literal("ram.failover-time"),
    maxMs: nonNegDuration.default(5000),
  }),
  /**
   * End of run: a VM with relays keeps replicating while one relay path lives: no backup
   * goes `maxGapMs` without applying an epoch while its primary runs and a relay is up.
   */
  z.strictObject({
    type: z.literal("ram.replication-continues"),
    maxGapMs: nonNegDuration.default(1000),
  }),
  /**
   * Spores safety, online: Latent maps hold at most latent.maxEntries, pushes at most
   * gossip.maxPush entries, every message and seed file at most `maxMessageBytes`.
   */
  z.strictObject({
    type: z.literal("spores.bounded"),
    maxMessageBytes: bytes.default(512 * 1024),
  }),
  /** All nodes started by then are active and the Latent maps converged by `within`. */
  z.strictObject({ type: z.literal("spores.formation"), within: nonNegDuration.default(30_000) }),
  /**
   * Every live active node holds the newest entry of every live member within `within` of
   * the last update (the last fault, event, start or scheduled AP write).
   */
  z.strictObject({ type: z.literal("spores.converged"), within: nonNegDuration.default(60_000) }),
  /** Safety, online: no accepted entry contradicts the certified Primary its node held. */
  z.strictObject({ type: z.literal("spores.no-contradiction") }),
  /** A joiner finds a Sclerotium within `within` whenever some discovery path exists. */
  z.strictObject({ type: z.literal("spores.discovery"), within: nonNegDuration.default(10_000) }),
  /** CP safety, online: one block per height, each committed by a side with a quorum. */
  z.strictObject({ type: z.literal("spores.single-writer") }),
  /** CP liveness: while a side holds a connected quorum, its operations commit within `within`. */
  z.strictObject({ type: z.literal("spores.no-lockout"), within: nonNegDuration.default(10_000) }),
  /** Safety, online: no Byzantine entry is accepted; each declared behaviour was discarded. */
  z.strictObject({ type: z.literal("spores.byzantine-discarded") }),
  /**
   * During partitions every side serves reads (a certified Primary) and its AP writes reach
   * every live node of the side within `within`.
   */
  z.strictObject({
    type: z.literal("spores.sides-serving"),
    within: nonNegDuration.default(10_000),
  }),
  /** After sides merge, each singleton service runs once per side within `within`. */
  z.strictObject({ type: z.literal("spores.singletons"), within: nonNegDuration.default(10_000) }),
  /**
   * Safety, online: a Rhizomorph holds the Sclerotia role only with a committed promotion in
   * its certified Primary, and no promotion commits for a node that is not eligible.
   */
  z.strictObject({ type: z.literal("spores.promotion") }),
  /** Online, at each heal: every fork epoch a manual override started is flagged. */
  z.strictObject({ type: z.literal("spores.fork-flagged") }),
  /**
   * End of run, on the newest certified Primary's chain: no node keeps an absence penalty for a
   * round it spent on a minority side of a certified partition record, and every other absent
   * voter of a committed block was penalised (DESIGN.md section 5, Trust).
   */
  z.strictObject({ type: z.literal("spores.absence-excused") }),
  /**
   * Hyphae clients, online: no op fails while one of the client's Sclerotia was reachable
   * when it retried; no client holds fewer than min(connections, reachable Sclerotia) live
   * connections for longer than `within`.
   */
  z.strictObject({
    type: z.literal("spores.client-failover"),
    within: nonNegDuration.default(5000),
  }),
  /** Storage safety, online and at the end: every replica holder satisfies its chunk's class. */
  z.strictObject({ type: z.literal("storage.class") }),
  /** Every chunk that lost a replica regains its replication factor within `within`. */
  z.strictObject({
    type: z.literal("storage.rf-restored"),
    within: nonNegDuration.default(60_000),
  }),
  /** End of run: every acknowledged Strong write is readable, no chunk of it lost. */
  z.strictObject({ type: z.literal("storage.no-lost-writes") }),
]);
export type CheckSpec = z.infer<typeof checkSchema>;

// ---- the scenario ----

export const scenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().default(""),
  seed: z.int().min(0).max(2 ** 32 - 1).default(1),
  duration: duration.refine((v) => v > 0, "must be positive"),
  nodes: z.array(nodeGroupSchema).min(1, "a scenario needs at least one node group"),
  /**
   * How nodes find each other: `seeds` joins through the first `seedNodes` nodes by
   * push-pull; `snapshot` starts every node from the initial member list (a Seed spore).
   */
  bootstrap: z.strictObject({
    mode: z.enum(["seeds", "snapshot"]).default("seeds"),
    seedNodes: z.int().min(1).default(3),
  }).default({ mode: "seeds", seedNodes: 3 }),
  network: networkSchema.default(networkSchema.parse({})),
  protocol: z.strictObject({
    membership: swimConfigSchema.default(swimConfigSchema.parse({})),
  }).default({ membership: swimConfigSchema.parse({}) }),
  /**
   * Signatures are modelled (unforgeable sender identity from the simulator) with an
   * optional CPU cost per verified message, in virtual time.
   */
  signatures: z.strictObject({
    mode: z.enum(["modelled"]).default("modelled"),
    verifyCostUs: z.number().nonnegative().default(0),
  }).default({ mode: "modelled", verifyCostUs: 0 }),
  faults: z.array(faultSchema).default([]),
  workload: workloadSchema.default({ leaves: [] }),
  /** Present: the run is a consensus run (the consensus simulator; no membership protocol). */
  consensus: consensusSchema.optional(),
  /** Present: the run is a distributed RAM run (the RAM simulator; no membership protocol). */
  ram: ramSchema.optional(),
  /** Present: the run is a spores run (Latent gossip, Primary stand-in, seeds, joins). */
  spores: sporesSchema.optional(),
  /** Present: objects are stored too (the spores simulator; spores defaults if absent). */
  storage: storageSchema.optional(),
  checks: z.array(checkSchema).default([
    { type: "membership.converged", within: 60_000 },
    { type: "membership.detection", maxMs: 30_000 },
  ]),
  outputs: z.strictObject({
    sampleInterval: duration.refine((v) => v > 0, "must be positive").default(1000),
    trace: z.boolean().default(false),
  }).default({ sampleInterval: 1000, trace: false }),
});

export type Scenario = z.infer<typeof scenarioSchema>;
export type ScenarioInput = z.input<typeof scenarioSchema>;

/** Validates a parsed document; throws ConfigError naming the field path. */
export function parseScenario(doc: unknown, source = "scenario"): Scenario {
  const r = scenarioSchema.safeParse(doc);
  if (!r.success) throw new ConfigError(formatZodError(r.error, ""), source, r.error);
  const s = r.data;
  const names = new Set<string>();
  s.nodes.forEach((g, i) => {
    if (names.has(g.group)) {
      throw new ConfigError(`nodes[${i}].group: duplicate group name "${g.group}"`, source);
    }
    names.add(g.group);
  });
  if (s.spores || s.storage) {
    validateSpores(s, doc, source);
  } else {
    s.checks.forEach((c, i) => {
      if (c.type.startsWith("spores.") || c.type.startsWith("storage.")) {
        throw new ConfigError(`checks[${i}]: ${c.type} needs a spores or storage section`, source);
      }
    });
  }
  if (s.ram) {
    if (s.consensus) {
      throw new ConfigError("ram: a scenario has either a consensus or a ram section", source);
    }
    // A RAM run has no membership protocol: without an explicit list, no default checks.
    const given = (doc as { checks?: unknown } | null)?.checks;
    if (given === undefined) s.checks = [];
    validateRam(s, source);
  } else {
    s.checks.forEach((c, i) => {
      if (c.type.startsWith("ram.")) {
        throw new ConfigError(`checks[${i}]: ${c.type} needs a ram section`, source);
      }
    });
  }
  return s;
}

/** Node names of the scenario (`group-k`), in network index order. */
export function scenarioNodeInfo(s: Scenario): NodeInfo[] {
  const out: NodeInfo[] = [];
  for (const g of s.nodes) {
    for (let k = 0; k < g.count; k++) {
      out.push({
        name: `${g.group}-${k}`,
        group: g.group,
        indexInGroup: k,
        tier: g.tier,
        region: g.region,
      });
    }
  }
  return out;
}

/** The VM names a `vms` entry expands to. */
export function ramVmNames(v: Pick<RamVmSpec, "name" | "count">): string[] {
  return v.count === 1 ? [v.name] : Array.from({ length: v.count }, (_, k) => `${v.name}-${k}`);
}

/** Sections, checks, selectors, names and times of a spores run, with errors naming the field. */
function validateSpores(s: Scenario, doc: unknown, source: string): void {
  const section = s.spores ? "spores" : "storage";
  if (s.consensus || s.ram) {
    throw new ConfigError(
      `${section}: a scenario with spores or storage has no consensus or ram section`,
      source,
    );
  }
  // Storage runs on the spores layer: a storage-only scenario gets its defaults.
  s.spores ??= sporesSchema.parse({});
  // The spores simulator runs no membership protocol: without an explicit list, no checks.
  if ((doc as { checks?: unknown } | null)?.checks === undefined) s.checks = [];
  s.checks.forEach((c, i) => {
    if (!c.type.startsWith("spores.") && !c.type.startsWith("storage.")) {
      throw new ConfigError(`checks[${i}]: ${c.type} cannot run in a spores run`, source);
    }
    if (c.type.startsWith("storage.") && !s.storage) {
      throw new ConfigError(`checks[${i}]: ${c.type} needs a storage section`, source);
    }
  });
  const info = scenarioNodeInfo(s);
  const sel = (v: Selector | undefined, path: string) => {
    if (v === undefined) return;
    try {
      validateSelector(v, info, path);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(e.message, source, e);
      throw e;
    }
  };
  const time = (at: number, path: string) => {
    if (at > s.duration) {
      throw new ConfigError(`${path}: ${at} ms is after the end of the run`, source);
    }
  };
  const sp = s.spores;
  if (sp) {
    sel(sp.genesis, "spores.genesis");
    sp.trust.nodes.forEach((t, i) => sel(t.nodes, `spores.trust.nodes[${i}].nodes`));
    sel(sp.seed.writers, "spores.seed.writers");
    sel(sp.discovery.rhizomorphs, "spores.discovery.rhizomorphs");
    sel(sp.discovery.entryPoints, "spores.discovery.entryPoints");
    sp.byzantine.forEach((b, i) => sel(b.nodes, `spores.byzantine[${i}].nodes`));
    sp.events.forEach((e, i) => {
      const path = `spores.events[${i}]`;
      time(e.at, `${path}.at`);
      if (e.type === "seed") {
        if (!sp.seed.locations.includes(e.location)) {
          throw new ConfigError(
            `${path}.location: "${e.location}" is not one of spores.seed.locations`,
            source,
          );
        }
      } else sel(e.nodes, `${path}.nodes`);
    });
    sp.promotion?.capacity.forEach((c, i) => sel(c.nodes, `spores.promotion.capacity[${i}].nodes`));
    const names = new Set<string>();
    sp.singletons.forEach((n, i) => {
      if (names.has(n)) {
        throw new ConfigError(`spores.singletons[${i}]: duplicate service "${n}"`, source);
      }
      names.add(n);
    });
  }
  const st = s.storage;
  if (st) {
    sel(st.writes.from, "storage.writes.from");
    st.corrupt.forEach((c, i) => {
      sel(c.nodes, `storage.corrupt[${i}].nodes`);
      time(c.at, `storage.corrupt[${i}].at`);
    });
  }
}

/** Names, selectors and times of the ram section, with errors naming the field. */
function validateRam(s: Scenario, source: string): void {
  const ram = s.ram!;
  const info = scenarioNodeInfo(s);
  const nodeNames = new Set(info.map((n) => n.name));
  const vms = new Set<string>();
  ram.vms.forEach((v, i) => {
    const path = `ram.vms[${i}]`;
    for (const name of ramVmNames(v)) {
      if (vms.has(name)) throw new ConfigError(`${path}.name: duplicate VM name "${name}"`, source);
      vms.add(name);
    }
    try {
      validateSelector(v.primaries, info, `${path}.primaries`);
      validateSelector(v.backupsFrom, info, `${path}.backupsFrom`);
      if (v.relays !== undefined) validateSelector(v.relays, info, `${path}.relays`);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(e.message, source, e);
      throw e;
    }
  });
  ram.migrations.forEach((m, i) => {
    const path = `ram.migrations[${i}]`;
    if (!vms.has(m.vm)) {
      throw new ConfigError(`${path}.vm: no VM named "${m.vm}"`, source);
    }
    if (m.to !== undefined && !nodeNames.has(m.to)) {
      throw new ConfigError(`${path}.to: no node named "${m.to}"`, source);
    }
    if (m.at > s.duration) {
      throw new ConfigError(`${path}.at: ${m.at} ms is after the end of the run`, source);
    }
  });
  if (ram.policy === "remus") {
    const ms = ram.remus.checkpointPauseMs;
    for (const p of ["low", "medium", "high"] as const) {
      if (ms > ram.config.profiles[p].intervalMs) {
        throw new ConfigError(
          `ram.remus.checkpointPauseMs: ${ms} ms exceeds the ${p} profile's interval ` +
            `(${ram.config.profiles[p].intervalMs} ms)`,
          source,
        );
      }
    }
  }
}

/** Parses YAML text, applies `--set path=value` overrides, validates. */
export function loadScenarioText(text: string, source: string, sets: string[] = []): Scenario {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new ConfigError(`invalid YAML: ${(e as Error).message}`, source, e);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError("expected a YAML mapping at the top level", source);
  }
  for (const s of sets) applySet(doc as Record<string, unknown>, s);
  return parseScenario(doc, source);
}

export async function loadScenarioFile(path: string, sets: string[] = []): Promise<Scenario> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new ConfigError(`cannot read scenario file: ${(e as Error).message}`, path, e);
  }
  return loadScenarioText(text, path, sets);
}

/**
 * `--set a.b[2].c=value`: the value is parsed as YAML (so numbers, booleans, lists and
 * durations like 2s work); missing objects on the path are created.
 */
export function applySet(doc: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf("=");
  if (eq <= 0) {
    throw new ConfigError(`expected path=value, got "${assignment}"`, "--set");
  }
  const path = assignment.slice(0, eq).trim();
  const value = YAML.parse(assignment.slice(eq + 1));
  const keys: (string | number)[] = [];
  for (const part of path.split(".")) {
    const m = /^([^[\]]+)((?:\[\d+\])*)$/.exec(part);
    if (!m) throw new ConfigError(`bad path "${path}"`, "--set");
    keys.push(m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) keys.push(Number(idx[1]));
  }
  // deno-lint-ignore no-explicit-any
  let cur: any = doc;
  for (let i = 0; i < keys.length - 1; i++) {
    const k = keys[i];
    if (cur[k] === undefined || cur[k] === null) cur[k] = typeof keys[i + 1] === "number" ? [] : {};
    cur = cur[k];
    if (typeof cur !== "object") {
      throw new ConfigError(`"${keys.slice(0, i + 1).join(".")}" is not an object`, "--set");
    }
  }
  cur[keys[keys.length - 1]] = value;
}
