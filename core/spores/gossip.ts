/**
 * Latent spore gossip (DESIGN.md section 5, Membership and the Latent Spore): the protocol
 * that spreads the Latent map (latent.ts) between nodes. Sans-IO: a `Protocol` driven by a
 * Host (timers, sends, clock, randomness).
 *
 * - Rumors. Every entry a node signs or newly accepts becomes a rumor, retransmitted
 *   `retransmitMult x ceil(log10(peers + 1))` times (memberlist's transmit limit). Every
 *   `gossipMs` the node pushes up to `maxPush` rumors to each of `fanout` random known peers;
 *   fresh rumors go before retransmissions. Nothing queued: nothing sent. All but the last
 *   of the `fanout` targets are drawn from the peers heard from within `liveWindowMs` (a
 *   passive liveness hint, as SWIM's alive set is for memberlist); the last is any peer.
 *   Behind a partition the other side falls silent, so rumors stop being spent on it, while
 *   the last slot and anti-entropy keep probing it.
 * - Anti-entropy. Every `pushPullMs` the node sends its digest ((node, hlc) per entry) to one
 *   random peer (uniformly: this is what finds a healed partition); the peer answers with
 *   the entries it holds newer and the nodes it wants,
 *   and the node sends those back (three messages).
 * - Acceptance. Every received entry goes through `LatentStore.offer` (network, scope, skew,
 *   staleness, signature, certified Primary), plus the TTL: an entry signed more than `ttlMs`
 *   ago is `stale`. Discards are counted by reason. An entry that contradicts our Primary
 *   while its sender holds a newer Primary is deferred (not discarded) and offered again
 *   once we have pulled that Primary: the sender may know of a join we have not seen yet.
 * - Primary. Every message carries the sender's Primary height; a node behind pulls the
 *   Primary from the sender (`primary-pull` / `primary`). A view is adopted only if the
 *   `acceptPrimary` check passes (default: certified and of our network) and it is newer.
 * - Sweep. Every `sweepMs` entries past the TTL, and entries that contradict the current
 *   Primary (it may have excluded a node or moved its trust since they were accepted), are
 *   dropped. Such entries are never relayed either.
 * - Own entry. The node signs its entry (status from the host) on `bootstrap`, on `refresh()`
 *   (an AP write) and every `refreshMs` (jittered), always with a fresh HLC timestamp.
 */
import { z } from "zod";
import { parseSection } from "../config_errors.ts";
import type { Host, Protocol } from "../host.ts";
import type { NodeId } from "../ids.ts";
import { compareHlc, type Hlc, HLC_ZERO, hlcReceive, hlcTick } from "./hlc.ts";
import {
  type AcceptContext,
  type ConnSummary,
  type Health,
  type LatentConfig,
  type LatentEntry,
  LatentStore,
  signLatentEntry,
  type Usage,
  verifyLatentEntry,
} from "./latent.ts";
import { contradiction, type PrimaryView } from "./primary.ts";
import {
  type DiscardCounts,
  type DiscardReason,
  emptyDiscardCounts,
  MASTER_SCOPE,
  type SignFn,
  type Tier,
  type VerifyFn,
} from "./types.ts";

// ---- configuration ----

export const sporeGossipConfigSchema = z.strictObject({
  gossipMs: z.number().positive().finite().default(200).describe(
    "rumor round: push queued entries to `fanout` peers this often (ms)",
  ),
  fanout: z.int().min(1).max(64).default(3).describe("peers per rumor round"),
  maxPush: z.int().min(1).max(1024).default(64).describe("entries per push message"),
  retransmitMult: z.int().min(1).max(32).default(2).describe(
    "a rumor is sent retransmitMult x ceil(log10(peers + 1)) times",
  ),
  pushPullMs: z.number().nonnegative().finite().default(5000).describe(
    "anti-entropy digest exchange with one random peer this often (ms; 0: never)",
  ),
  ttlMs: z.number().positive().finite().default(300_000).describe(
    "an entry signed longer ago than this expires (ms)",
  ),
  refreshMs: z.number().positive().finite().default(100_000).describe(
    "a node re-signs its own entry about this often (ms, jittered +-25 %)",
  ),
  sweepMs: z.number().positive().finite().default(10_000).describe(
    "expired and Primary-contradicting entries are dropped this often (ms)",
  ),
  pullTimeoutMs: z.number().positive().finite().default(1000).describe(
    "a Primary pull without an answer is given up after this long (ms)",
  ),
  liveWindowMs: z.number().nonnegative().finite().default(5000).describe(
    "rumor targets prefer peers heard from within this long (a passive liveness hint; 0: off)",
  ),
  deferMax: z.int().min(0).max(100_000).default(256).describe(
    "entries kept aside until the newer Primary their sender holds arrives",
  ),
});
export type SporeGossipConfig = z.output<typeof sporeGossipConfigSchema>;

export function parseSporeGossipConfig(input: unknown, path = "spores.gossip"): SporeGossipConfig {
  return parseSection(sporeGossipConfigSchema, input, path);
}

// ---- messages ----

/** (node, hlc.ms, hlc.c) of one held entry. */
export type DigestItem = readonly [NodeId, number, number];

export type SporeMessage =
  | {
    readonly t: "spore-push";
    readonly net: string;
    /** The sender's Primary height (0: none). */
    readonly ph: number;
    readonly entries: readonly LatentEntry[];
  }
  | {
    readonly t: "spore-digest";
    readonly net: string;
    readonly ph: number;
    readonly digest: readonly DigestItem[];
  }
  | {
    readonly t: "spore-entries";
    readonly net: string;
    readonly ph: number;
    readonly entries: readonly LatentEntry[];
    /** Nodes whose entries the sender wants back (newer or missing on its side). */
    readonly want: readonly NodeId[];
  }
  | { readonly t: "primary-pull"; readonly net: string; readonly have: number }
  | {
    readonly t: "primary";
    readonly net: string;
    readonly view: PrimaryView;
    /** The requester's height when it asked (sizes the transfer as a delta). */
    readonly have: number;
  };

/** Approximate encoded size of one Latent entry (its JSON is about this long). */
export const ENTRY_BYTES = 400;
const HEADER_BYTES = 64;
const DIGEST_ITEM_BYTES = 48;
const OP_BYTES = 160;

/** Bytes of a 2f+1 commit certificate (precommits of a few dozen voters at most). */
const CERTIFICATE_BYTES = 2048;

/** Bytes of a full Primary view (members with trust, exclusions, config, certificate). */
export function primaryViewBytes(v: PrimaryView): number {
  return 256 + v.members.size * 48 + v.excluded.size * 40 + v.config.size * 64 +
    CERTIFICATE_BYTES;
}

/** Encoded size of a message, for network accounting and the size bound. */
export function sporeMessageBytes(m: SporeMessage): number {
  switch (m.t) {
    case "spore-push":
      return HEADER_BYTES + m.entries.length * ENTRY_BYTES;
    case "spore-digest":
      return HEADER_BYTES + m.digest.length * DIGEST_ITEM_BYTES;
    case "spore-entries":
      return HEADER_BYTES + m.entries.length * ENTRY_BYTES + m.want.length * 34;
    case "primary-pull":
      return HEADER_BYTES;
    case "primary": {
      const full = primaryViewBytes(m.view);
      // A holder of an older height gets the committed operations since then.
      return m.have > 0 ? Math.min(full, 512 + (m.view.height - m.have) * OP_BYTES) : full;
    }
  }
}

/** The largest message a node with this configuration sends (the size bound's value). */
export function maxSporeMessageBytes(gossip: SporeGossipConfig, latent: LatentConfig): number {
  return Math.max(
    HEADER_BYTES + gossip.maxPush * ENTRY_BYTES,
    HEADER_BYTES + latent.maxEntries * (ENTRY_BYTES + 34),
  );
}

// ---- the protocol ----

/** What the host reports about this node when it signs its entry. */
export interface OwnStatus {
  readonly health: Health;
  readonly trust: number;
  readonly usage: Usage;
  readonly uptimeDiffMs: number;
  readonly processingVolume: number;
  readonly conn: ConnSummary;
}

export interface GossipObserver {
  /** An entry was accepted from `from` (null: a bootstrap snapshot) under `primary`. */
  accepted?(e: LatentEntry, primary: PrimaryView | null, from: NodeId | null): void;
  discarded?(e: LatentEntry, reason: DiscardReason, from: NodeId | null): void;
  /** This node signed a new own entry. */
  signed?(e: LatentEntry): void;
}

export interface LatentGossipOptions {
  readonly network: string;
  readonly scope?: string;
  readonly tier: Tier;
  readonly gossip: SporeGossipConfig;
  readonly latent: LatentConfig;
  readonly sign: SignFn;
  readonly verify: VerifyFn;
  /** The node's status, read whenever it signs its entry. */
  status(): OwnStatus;
  /** Whether a received Primary may be adopted (default: certified and of our network). */
  acceptPrimary?(v: PrimaryView): boolean;
  readonly observer?: GossipObserver;
}

export interface GossipStats {
  pushesSent: number;
  digestsSent: number;
  entriesSent: number;
  primaryPulls: number;
  primaryAdopted: number;
  deferred: number;
  deferDropped: number;
  expired: number;
  purged: number;
  /** Messages of another network, dropped whole. */
  foreignMessages: number;
}

interface Rumor {
  readonly e: LatentEntry;
  left: number;
}

const verifiedBy = new WeakMap<VerifyFn, WeakSet<LatentEntry>>();

/** Remembers entries (immutable values) whose signature `verify` accepted. */
function cachedVerify(verify: VerifyFn): (e: LatentEntry) => boolean {
  let ok = verifiedBy.get(verify);
  if (!ok) verifiedBy.set(verify, ok = new WeakSet());
  const good = ok;
  return (e) => {
    if (good.has(e)) return true;
    if (!verifyLatentEntry(e, verify)) return false;
    good.add(e);
    return true;
  };
}

export class LatentGossip implements Protocol<SporeMessage> {
  readonly store: LatentStore;
  readonly discards: DiscardCounts = emptyDiscardCounts();
  readonly stats: GossipStats = {
    pushesSent: 0,
    digestsSent: 0,
    entriesSent: 0,
    primaryPulls: 0,
    primaryAdopted: 0,
    deferred: 0,
    deferDropped: 0,
    expired: 0,
    purged: 0,
    foreignMessages: 0,
  };
  private host: Host<SporeMessage> | null = null;
  private readonly scope: string;
  private readonly verifyEntry: (e: LatentEntry) => boolean;
  private _primary: PrimaryView | null = null;
  private hlc: Hlc = HLC_ZERO;
  private own: LatentEntry | null = null;
  private readonly peers: NodeId[] = [];
  private readonly peerIndex = new Map<NodeId, number>();
  private fresh: Rumor[] = [];
  private freshHead = 0;
  private retry: Rumor[] = [];
  private retryHead = 0;
  private readonly deferred = new Map<NodeId, LatentEntry>();
  /** When each peer was last heard from (our clock). */
  private readonly lastHeard = new Map<NodeId, number>();
  /** Peers heard from lately (pruned lazily when drawn). */
  private readonly recent: NodeId[] = [];
  private readonly recentIndex = new Map<NodeId, number>();
  private pullingUntil = -Infinity;
  private stopped = false;

  constructor(private readonly opts: LatentGossipOptions) {
    this.scope = opts.scope ?? MASTER_SCOPE;
    this.store = new LatentStore(opts.latent.maxEntries);
    this.verifyEntry = cachedVerify(opts.verify);
  }

  get primary(): PrimaryView | null {
    return this._primary;
  }
  get primaryHeight(): number {
    return this._primary?.height ?? 0;
  }
  /** The newest entry this node signed. */
  get ownEntry(): LatentEntry | null {
    return this.own;
  }
  get peerCount(): number {
    return this.peers.length;
  }
  get deferredCount(): number {
    return this.deferred.size;
  }
  /** Rumors still to send (fresh and retransmissions). */
  get queued(): number {
    return this.fresh.length - this.freshHead + this.retry.length - this.retryHead;
  }

  start(host: Host<SporeMessage>): void {
    this.host = host;
    const g = this.opts.gossip;
    host.setTimer("gossip", host.random() * g.gossipMs);
    if (g.pushPullMs > 0) host.setTimer("pushpull", host.random() * g.pushPullMs);
    host.setTimer("sweep", g.sweepMs * (0.5 + 0.5 * host.random()));
    host.setTimer("refresh", g.refreshMs * (0.75 + 0.5 * host.random()));
  }

  stop(): void {
    this.stopped = true;
    if (!this.host) return;
    for (const k of ["gossip", "pushpull", "sweep", "refresh"]) this.host.cancelTimer(k);
  }

  /**
   * Joins the network: adopts the Primary a Sclerotium handed over, offers its Latent
   * snapshot (checked like gossip), learns the given peers, and signs the own entry.
   */
  bootstrap(
    primary: PrimaryView | null,
    snapshot: Iterable<LatentEntry>,
    peers: Iterable<NodeId>,
  ): void {
    if (primary) this.setPrimary(primary);
    for (const p of peers) this.addPeer(p);
    this.ingest(snapshot, null, this.primaryHeight);
    this.refresh();
  }

  /** Adopts a newer acceptable Primary; re-offers deferred entries. True if adopted. */
  setPrimary(v: PrimaryView): boolean {
    const ok = this.opts.acceptPrimary
      ? this.opts.acceptPrimary(v)
      : v.certified && v.network === this.opts.network;
    if (!ok || (this._primary && v.height <= this._primary.height)) return false;
    this._primary = v;
    this.stats.primaryAdopted++;
    this.pullingUntil = -Infinity;
    if (this.deferred.size > 0) {
      const again = [...this.deferred.values()];
      this.deferred.clear();
      this.ingest(again, null, v.height);
    }
    // Our own entry carries the trust the Primary holds for us: re-sign when it moved.
    const mine = this.own && v.trust.get(this.own.node);
    if (this.own && mine !== undefined && mine !== this.own.trust && this.host) this.refresh();
    return true;
  }

  /** Signs a new own entry now (an AP write) and queues it as a rumor. */
  refresh(): LatentEntry | null {
    const host = this.host;
    if (!host || this.stopped) return null;
    const s = this.opts.status();
    this.hlc = hlcTick(this.hlc, host.now());
    const e = signLatentEntry({
      network: this.opts.network,
      scope: this.scope,
      node: host.self,
      tier: this.opts.tier,
      health: s.health,
      trust: s.trust,
      usage: s.usage,
      uptimeDiffMs: s.uptimeDiffMs,
      processingVolume: s.processingVolume,
      conn: s.conn,
      hlc: this.hlc,
    }, this.opts.sign);
    this.own = e;
    this.store.insert(e);
    this.enqueue(e);
    this.opts.observer?.signed?.(e);
    return e;
  }

  /** The entry held for a node (undefined: none). */
  entryOf(node: NodeId): LatentEntry | undefined {
    return this.store.get(node);
  }

  /** Known peers (node ids other than ours), in no particular order. */
  knownPeers(): readonly NodeId[] {
    return this.peers;
  }

  addPeer(p: NodeId): void {
    if (this.host && p === this.host.self) return;
    if (this.peerIndex.has(p)) return;
    this.peerIndex.set(p, this.peers.length);
    this.peers.push(p);
  }

  private removePeer(p: NodeId): void {
    const i = this.peerIndex.get(p);
    if (i === undefined) return;
    const last = this.peers.pop()!;
    if (last !== p) {
      this.peers[i] = last;
      this.peerIndex.set(last, i);
    }
    this.peerIndex.delete(p);
  }

  // ---- messages ----

  onMessage(from: NodeId, msg: SporeMessage): void {
    if (this.stopped || !this.host) return;
    if (msg.net !== this.opts.network) {
      this.stats.foreignMessages++;
      return;
    }
    switch (msg.t) {
      case "spore-push":
        this.heard(from, msg.ph);
        this.ingest(msg.entries, from, msg.ph);
        break;
      case "spore-digest":
        this.heard(from, msg.ph);
        this.answerDigest(from, msg.digest);
        break;
      case "spore-entries":
        this.heard(from, msg.ph);
        this.ingest(msg.entries, from, msg.ph);
        if (msg.want.length > 0) {
          const back = this.relayable(msg.want.map((n) => this.store.get(n)));
          this.send(from, {
            t: "spore-entries",
            net: this.opts.network,
            ph: this.primaryHeight,
            entries: back,
            want: [],
          });
        }
        break;
      case "primary-pull":
        if (this._primary && this._primary.height > msg.have) {
          this.send(from, {
            t: "primary",
            net: this.opts.network,
            view: this._primary,
            have: msg.have,
          });
        }
        break;
      case "primary":
        this.setPrimary(msg.view);
        break;
    }
  }

  /** The sender holds Primary height `ph`: pull it when it is ahead of ours. */
  private heard(from: NodeId, ph: number): void {
    this.addPeer(from);
    const host = this.host!;
    this.lastHeard.set(from, host.now());
    if (!this.recentIndex.has(from)) {
      this.recentIndex.set(from, this.recent.length);
      this.recent.push(from);
    }
    if (ph <= this.primaryHeight || host.now() < this.pullingUntil) return;
    this.pullingUntil = host.now() + this.opts.gossip.pullTimeoutMs;
    this.stats.primaryPulls++;
    this.send(from, { t: "primary-pull", net: this.opts.network, have: this.primaryHeight });
  }

  private context(): AcceptContext {
    const l = this.opts.latent;
    return {
      network: this.opts.network,
      scope: this.scope,
      now: this.host!.now(),
      maxSkewMs: l.maxSkewMs,
      maxEntries: l.maxEntries,
      verify: this.opts.verify,
      verifyEntry: this.verifyEntry,
      primary: this._primary,
      trustTolerance: l.trustTolerance,
    };
  }

  /** Offers entries from `from` (null: a snapshot) whose sender holds Primary height `ph`. */
  private ingest(entries: Iterable<LatentEntry>, from: NodeId | null, ph: number): void {
    const ctx = this.context();
    const horizon = ctx.now - this.opts.gossip.ttlMs;
    const obs = this.opts.observer;
    const self = this.host!.self;
    for (const e of entries) {
      if (this.store.get(e.node) === e) {
        this.discards.duplicate++;
        continue;
      }
      let reason: DiscardReason | null = null;
      if (e.hlc.ms < horizon && e.network === ctx.network) reason = "stale";
      else if (e.node === self && e.network === ctx.network && e.scope === ctx.scope) {
        // Nobody else signs our entry: anything newer than ours is forged or replayed.
        reason = this.verifyEntry(e) ? (this.own === e ? "duplicate" : "stale") : "forged";
      } else {
        const a = this.store.offer(e, ctx);
        if (a.ok) {
          this.hlc = hlcReceive(this.hlc, e.hlc, ctx.now);
          this.addPeer(e.node);
          this.enqueue(e);
          obs?.accepted?.(e, this._primary, from);
          continue;
        }
        reason = a.reason;
        if (reason === "contradicts-primary" && ph > this.primaryHeight) {
          this.defer(e);
          continue;
        }
      }
      this.discards[reason]++;
      obs?.discarded?.(e, reason, from);
    }
  }

  private defer(e: LatentEntry): void {
    const cur = this.deferred.get(e.node);
    if (cur && compareHlc(cur.hlc, e.hlc) >= 0) return;
    if (!cur && this.deferred.size >= this.opts.gossip.deferMax) {
      this.stats.deferDropped++;
      return;
    }
    this.deferred.set(e.node, e);
    this.stats.deferred++;
  }

  private answerDigest(from: NodeId, digest: readonly DigestItem[]): void {
    const theirs = new Map<NodeId, DigestItem>();
    for (const d of digest) theirs.set(d[0], d);
    const give: LatentEntry[] = [];
    const want: NodeId[] = [];
    for (const e of this.store.entries()) {
      const d = theirs.get(e.node);
      if (!d || compareHlc(e.hlc, { ms: d[1], c: d[2] }) > 0) give.push(e);
    }
    for (const d of digest) {
      const mine = this.store.get(d[0]);
      if (!mine || compareHlc({ ms: d[1], c: d[2] }, mine.hlc) > 0) want.push(d[0]);
    }
    const entries = this.relayable(give);
    if (entries.length === 0 && want.length === 0) return;
    const max = this.opts.latent.maxEntries;
    this.send(from, {
      t: "spore-entries",
      net: this.opts.network,
      ph: this.primaryHeight,
      entries: entries.slice(0, max),
      want: want.slice(0, max),
    });
  }

  /** Entries fit to pass on: held, not expired, not contradicting our Primary. */
  private relayable(list: Iterable<LatentEntry | undefined>): LatentEntry[] {
    const out: LatentEntry[] = [];
    const horizon = this.host!.now() - this.opts.gossip.ttlMs;
    const tol = this.opts.latent.trustTolerance;
    for (const e of list) {
      if (!e || e.hlc.ms < horizon) continue;
      if (e !== this.own && contradiction(this._primary, e, tol)) continue;
      out.push(e);
    }
    return out;
  }

  private send(to: NodeId, msg: SporeMessage): void {
    if (msg.t === "spore-push" || msg.t === "spore-entries") {
      this.stats.entriesSent += msg.entries.length;
    }
    this.host!.send(to, msg);
  }

  // ---- timers ----

  onTimer(key: string): void {
    if (this.stopped || !this.host) return;
    const host = this.host;
    const g = this.opts.gossip;
    switch (key) {
      case "gossip":
        this.gossipRound();
        host.setTimer("gossip", g.gossipMs);
        break;
      case "pushpull":
        this.pushPull();
        host.setTimer("pushpull", g.pushPullMs);
        break;
      case "sweep":
        this.sweep();
        host.setTimer("sweep", g.sweepMs);
        break;
      case "refresh":
        if (this.own) this.refresh();
        host.setTimer("refresh", g.refreshMs * (0.75 + 0.5 * host.random()));
        break;
    }
  }

  private transmitLimit(): number {
    const n = this.peers.length;
    return this.opts.gossip.retransmitMult * Math.max(1, Math.ceil(Math.log10(n + 1)));
  }

  private enqueue(e: LatentEntry): void {
    this.fresh.push({ e, left: this.transmitLimit() });
  }

  /** Up to `n` rumors to send: fresh first, then retransmissions, each counted once. */
  private takeRumors(n: number): LatentEntry[] {
    const out: LatentEntry[] = [];
    const tol = this.opts.latent.trustTolerance;
    const horizon = this.host!.now() - this.opts.gossip.ttlMs;
    const next = (): Rumor | undefined => {
      if (this.freshHead < this.fresh.length) {
        const r = this.fresh[this.freshHead++];
        if (this.freshHead === this.fresh.length) this.fresh = [], this.freshHead = 0;
        return r;
      }
      if (this.retryHead < this.retry.length) {
        const r = this.retry[this.retryHead++];
        if (this.retryHead > 1024 && this.retryHead * 2 > this.retry.length) {
          this.retry = this.retry.slice(this.retryHead);
          this.retryHead = 0;
        }
        return r;
      }
      return undefined;
    };
    const again: Rumor[] = [];
    let guard = this.queued;
    while (out.length < n && guard-- > 0) {
      const r = next();
      if (!r) break;
      const e = r.e;
      const current = e === this.own || this.store.get(e.node) === e;
      if (!current || e.hlc.ms < horizon) continue; // superseded or expired
      if (e !== this.own && contradiction(this._primary, e, tol)) continue;
      out.push(e);
      if (--r.left > 0) again.push(r);
    }
    for (const r of again) this.retry.push(r);
    return out;
  }

  private dropRecent(i: number): void {
    const id = this.recent[i];
    const last = this.recent.pop()!;
    if (last !== id) {
      this.recent[i] = last;
      this.recentIndex.set(last, i);
    }
    this.recentIndex.delete(id);
  }

  /** A peer heard from within the live window, not in `taken`, or null. */
  private pickRecent(taken: ReadonlySet<NodeId>): NodeId | null {
    const host = this.host!;
    const window = this.opts.gossip.liveWindowMs;
    const now = host.now();
    for (let tries = 0; tries < 8 && this.recent.length > 0; tries++) {
      const i = Math.floor(host.random() * this.recent.length);
      const id = this.recent[i];
      if (now - (this.lastHeard.get(id) ?? -Infinity) > window || !this.peerIndex.has(id)) {
        this.dropRecent(i);
        continue;
      }
      if (!taken.has(id)) return id;
    }
    return null;
  }

  /**
   * `k` distinct random peers. With `preferLive`, all but the last are drawn from the peers
   * heard from lately when there are such peers; the rest uniformly.
   */
  private pickPeers(k: number, preferLive: boolean): NodeId[] {
    const n = this.peers.length;
    const want = Math.min(k, n);
    const chosen = new Set<NodeId>();
    if (preferLive && this.opts.gossip.liveWindowMs > 0) {
      const live = k === 1 ? 1 : k - 1;
      while (chosen.size < Math.min(live, want)) {
        const id = this.pickRecent(chosen);
        if (id === null) break;
        chosen.add(id);
      }
    }
    if (n - chosen.size <= want - chosen.size) {
      for (const p of this.peers) if (chosen.size < want) chosen.add(p);
      return [...chosen];
    }
    const host = this.host!;
    while (chosen.size < want) {
      let i = Math.floor(host.random() * n);
      while (chosen.has(this.peers[i])) i = (i + 1) % n;
      chosen.add(this.peers[i]);
    }
    return [...chosen];
  }

  private gossipRound(): void {
    if (this.queued === 0 || this.peers.length === 0) return;
    const g = this.opts.gossip;
    for (const to of this.pickPeers(g.fanout, true)) {
      const entries = this.takeRumors(g.maxPush);
      if (entries.length === 0) break;
      this.stats.pushesSent++;
      this.send(to, { t: "spore-push", net: this.opts.network, ph: this.primaryHeight, entries });
    }
  }

  private pushPull(): void {
    const [to] = this.pickPeers(1, false);
    if (to === undefined) return;
    const digest: DigestItem[] = [];
    for (const e of this.store.entries()) digest.push([e.node, e.hlc.ms, e.hlc.c]);
    this.stats.digestsSent++;
    this.send(to, { t: "spore-digest", net: this.opts.network, ph: this.primaryHeight, digest });
  }

  /** Drops expired entries and entries that contradict the current Primary. */
  private sweep(): void {
    const horizon = this.host!.now() - this.opts.gossip.ttlMs;
    const tol = this.opts.latent.trustTolerance;
    const drop: Array<[NodeId, "expired" | "purged"]> = [];
    for (const e of this.store.entries()) {
      if (e === this.own) continue;
      if (e.hlc.ms < horizon) drop.push([e.node, "expired"]);
      else if (contradiction(this._primary, e, tol)) drop.push([e.node, "purged"]);
    }
    for (const [node, why] of drop) {
      this.store.delete(node);
      this.removePeer(node);
      this.lastHeard.delete(node);
      const r = this.recentIndex.get(node);
      if (r !== undefined) this.dropRecent(r);
      this.stats[why]++;
    }
  }
}
