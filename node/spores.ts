/**
 * Spores on the real node (DESIGN.md section 5, Spore tiers): the core's Latent gossip
 * (core/spores/gossip.ts) over FRAME_SPORES frames on the mutual-TLS streams, and Seed spore
 * files (core/spores/seed.ts) this node writes and reads.
 *
 * - Latent. Every node signs its entry (health from SWIM's local health, trust, usage,
 *   uptime, processing volume, stream connection events condensed) with its Ed25519 key
 *   (self-certifying signatures, as consensus records) and gossips the bounded map. Entries
 *   from another network, forged, replayed stale or dated beyond the skew bound are
 *   discarded and counted (`mycelium_spores_discarded_total{reason}`). The spores host runs
 *   on the wall clock (`Date.now()`), not the monotonic one: hybrid logical clocks, TTLs and
 *   the skew bound compare times taken on different machines.
 * - Seed. Every `spores.seed.writeIntervalMs` (and soon after joining) a member node writes
 *   a signed, versioned snapshot of the live members (tier, trust, gossip address): always
 *   to its data dir (`spores/cached.seed`, the cached spore of its next start), to each of
 *   `spores.seed.write` (file paths), and serves it at `GET /v1/spores/seed`, so another
 *   node's seed location may be that URL. Files are written to a temporary name, fsync'd,
 *   renamed and the directory fsync'd: a reader never sees half a seed (and if it did,
 *   `readSeed` reports it truncated).
 * - Primary. Not on the node: the node's consensus orders a key-value store and a trust
 *   table, not the membership/config state the Primary spore needs, so the node announces
 *   Primary height 0, adopts none, and a lower-tier entry is never checked against one.
 *   Trust claims come from the consensus trust table where the node runs consensus. The
 *   simulator runs the Primary tier (sim/spores/).
 *
 * A seed's writer is checked by signature only (anyone can make a key pair): a forged seed
 * can name addresses, but joining through them still needs the network's isolation key
 * (datagrams) and a certificate of the network CA (streams), so it cannot take a node
 * into another network. It is one of the attempts discovery makes, never trusted further.
 */
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger, Metrics } from "../core/host.ts";
import type { NodeId } from "../core/ids.ts";
import { LatentGossip, type OwnStatus, type SporeGossipConfig } from "../core/spores/gossip.ts";
import { type LatentConfig, latentEntries, type LatentEntry } from "../core/spores/latent.ts";
import {
  readSeed,
  type SeedConfig,
  type SeedEntry,
  seedLocationKind,
  type SeedRead,
  type SeedSnapshot,
  writeSeed,
} from "../core/spores/seed.ts";
import { MASTER_SCOPE, type SignFn, type Tier, type VerifyFn } from "../core/spores/types.ts";
import { NodeHost } from "./host.ts";
import { decodeSpores, encodeSpores } from "./spores_codec.ts";
import type { SqliteStore } from "./store.ts";
import { IdInterner } from "../core/ids.ts";

export { FRAME_SPORES } from "./spores_codec.ts";

export interface NodeSporesConfig {
  readonly gossip: SporeGossipConfig;
  readonly latent: LatentConfig;
  readonly seed: SeedConfig & { readonly write: readonly string[] };
}

/** A live member as the seed lists it. */
export interface SeedMember {
  readonly node: NodeId;
  readonly tier: Tier;
  readonly gossip: string;
}

export interface NodeSporesParts {
  readonly self: NodeId;
  readonly network: string;
  readonly tier: Tier;
  readonly config: NodeSporesConfig;
  readonly dataDir: string;
  readonly sign: SignFn;
  readonly verify: VerifyFn;
  readonly store: SqliteStore;
  readonly metrics: Metrics;
  readonly log: Logger;
  sendFrame(to: NodeId, body: Uint8Array): boolean;
  /** This node's status when it signs its entry. */
  status(): OwnStatus;
  /** This node (first) and the members alive now, for a seed. */
  members(): SeedMember[];
  /** A node's consensus-ordered trust score, where this node runs consensus. */
  trustOf?(node: NodeId): number | undefined;
  /** Whether this node is a member (joined, or the founder of the network). */
  isMember(): boolean;
}

/** The hybrid logical clocks of different machines meet here: wall-clock time. */
class WallClockHost<M> extends NodeHost<M> {
  override now(): number {
    return Date.now();
  }
}

/** Writes `bytes` to `path` so that no reader ever sees a partial file. */
export async function writeFileDurably(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const f = await open(tmp, "w", 0o644);
  try {
    await f.write(bytes);
    await f.sync();
  } finally {
    await f.close();
  }
  await rename(tmp, path);
  const d = await open(dirname(path), "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** The bytes at a seed location: a file path or an http(s) URL (null: not there). */
export async function fetchSeedBytes(loc: string, timeoutMs = 3000): Promise<Uint8Array | null> {
  if (seedLocationKind(loc) === "file") {
    try {
      return new Uint8Array(await readFile(loc));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw e;
    }
  }
  const res = await fetch(loc, { signal: AbortSignal.timeout(timeoutMs) });
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status}`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

export class NodeSpores {
  readonly gossip: LatentGossip;
  private readonly host: WallClockHost<import("../core/spores/gossip.ts").SporeMessage>;
  private seedBytes: Uint8Array | null = null;
  private seed: SeedSnapshot | null = null;
  private seedVersion = 0;
  private writing: Promise<void> | null = null;
  private stopped = false;
  /** Seed reads by location: the last outcome, for /v1/spores. */
  readonly seedReads = new Map<string, { at: number; ok: boolean; problem?: string }>();
  readonly cachedPath: string;

  constructor(private readonly p: NodeSporesParts) {
    this.cachedPath = join(p.dataDir, "spores", "cached.seed");
    this.gossip = new LatentGossip({
      network: p.network,
      tier: p.tier,
      gossip: p.config.gossip,
      latent: p.config.latent,
      sign: p.sign,
      verify: p.verify,
      status: () => p.status(),
      observer: {
        accepted: () => p.metrics.inc("mycelium_spores_accepted_total"),
        discarded: (e, reason, from) => {
          p.metrics.inc("mycelium_spores_discarded_total", 1, { reason });
          if (reason !== "duplicate") {
            p.log.log("debug", "spore_discarded", { node: e.node, reason, from });
          }
        },
      },
    });
    this.host = new WallClockHost({
      self: p.self,
      ids: new IdInterner(),
      storage: p.store,
      log: p.log,
      metrics: p.metrics,
      send: (to, msg) => {
        const body = encodeSpores(msg);
        if (!p.sendFrame(to, body)) return;
        p.metrics.inc("mycelium_spores_messages_sent_total");
        p.metrics.inc("mycelium_spores_bytes_sent_total", body.length);
      },
      sendToAddress: () => {},
      onTimer: (key) => key === "seed-write" ? this.writeSeedSoon() : this.gossip.onTimer(key),
    });
  }

  /** Starts gossip (signs the own entry) and the seed writer; reads the held seed version. */
  async start(peers: Iterable<NodeId>): Promise<void> {
    for (const loc of [this.cachedPath, ...this.p.config.seed.write]) {
      const r = await this.readLocation(loc, { record: false });
      if (r.ok && r.seed.writer === this.p.self) {
        this.seedVersion = Math.max(this.seedVersion, r.seed.version);
      }
    }
    this.gossip.start(this.host);
    this.host.guard("spores bootstrap", () => this.gossip.bootstrap(null, [], peers));
    this.host.setTimer("seed-write", 1000);
  }

  stop(): void {
    this.stopped = true;
    this.gossip.stop();
    this.host.close();
  }

  addPeer(peer: NodeId): void {
    this.gossip.addPeer(peer);
  }

  onFrame(from: NodeId, body: Uint8Array): void {
    let msg;
    try {
      msg = decodeSpores(body);
    } catch (e) {
      this.p.metrics.inc("mycelium_spores_dropped_frames_total", 1, { reason: "malformed" });
      this.p.log.log("warn", "spores_frame_dropped", { from, error: (e as Error).message });
      return;
    }
    this.host.guard("spores message", () => this.gossip.onMessage(from, msg));
  }

  /** The entries held, newest view of each node. */
  entries(): LatentEntry[] {
    return latentEntries(this.gossip.store.snapshot());
  }

  /** The seed this node wrote last (bytes as served), or null. */
  get latestSeed(): Uint8Array | null {
    return this.seedBytes;
  }

  /** Reads and checks one seed location; problems are logged and counted. */
  async readLocation(loc: string, opts: { record?: boolean } = {}): Promise<SeedRead> {
    const c = this.p.config.seed;
    let r: SeedRead;
    try {
      r = readSeed(await fetchSeedBytes(loc), {
        network: this.p.network,
        scope: MASTER_SCOPE,
        verify: this.p.verify,
        now: Date.now(),
        maxAgeMs: c.maxAgeMs,
        maxSkewMs: c.maxSkewMs,
      });
    } catch (e) {
      r = { ok: false, problem: "missing", detail: (e as Error).message };
    }
    if (opts.record ?? true) {
      this.seedReads.set(loc, {
        at: Date.now(),
        ok: r.ok,
        ...(r.ok ? {} : { problem: r.problem }),
      });
      if (!r.ok) {
        this.p.metrics.inc("mycelium_spores_seed_problems_total", 1, { problem: r.problem });
        this.p.log.log("warn", "seed_skipped", {
          location: loc,
          problem: r.problem,
          detail: r.detail,
        });
      }
    }
    return r;
  }

  /** Writes a seed now unless a write is running; reschedules the next. */
  private writeSeedSoon(): void {
    if (this.stopped) return;
    this.host.setTimer("seed-write", this.p.config.seed.writeIntervalMs);
    if (this.writing || !this.p.isMember()) return;
    this.writing = this.writeSeedNow()
      .then(() => {}, (e) => this.p.log.log("error", "seed_write_failed", { error: e }))
      .finally(() => this.writing = null);
  }

  /** Signs a snapshot of the live members and writes it to every location it keeps. */
  async writeSeedNow(): Promise<SeedSnapshot> {
    // Consensus-ordered trust where this node runs consensus, else what the member claims.
    const trustOf = (n: NodeId) => this.p.trustOf?.(n) ?? this.gossip.entryOf(n)?.trust ?? 0.5;
    const entries: SeedEntry[] = this.p.members().map((m) => ({
      node: m.node,
      tier: m.tier,
      trust: trustOf(m.node),
      addrs: [m.gossip],
    }));
    const { seed, bytes } = writeSeed({
      version: this.seedVersion + 1,
      network: this.p.network,
      scope: MASTER_SCOPE,
      created: Date.now(),
      writer: this.p.self,
      primaryHeight: 0,
      entries,
    }, { sign: this.p.sign, isMember: () => this.p.isMember() });
    for (const path of [this.cachedPath, ...this.p.config.seed.write]) {
      await writeFileDurably(path, bytes);
    }
    this.seedVersion = seed.version;
    this.seed = seed;
    this.seedBytes = bytes;
    this.p.metrics.inc("mycelium_spores_seed_writes_total");
    this.p.metrics.set("mycelium_spores_seed_version", seed.version);
    this.p.log.log("info", "seed_written", { version: seed.version, entries: entries.length });
    return seed;
  }

  refreshGauges(): void {
    this.p.metrics.set("mycelium_spores_latent_entries", this.gossip.store.size);
  }

  summary() {
    const g = this.gossip;
    return {
      latentEntries: g.store.size,
      peers: g.peerCount,
      primaryHeight: g.primaryHeight,
      discarded: { ...g.discards },
      stats: { ...g.stats },
      seed: this.seed
        ? {
          version: this.seed.version,
          created: this.seed.created,
          entries: this.seed.entries.length,
        }
        : null,
      seedReads: Object.fromEntries(this.seedReads),
    };
  }
}
