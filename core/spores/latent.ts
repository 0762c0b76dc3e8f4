/**
 * The Latent spore (DESIGN.md section 5, Membership and the Latent Spore): a gossiped CRDT,
 * a last-writer-wins map of signed node entries keyed by node id. Each node signs its own
 * entry (health, trust, usage, uptime differential, processing volume, a condensed summary
 * of its connection events) stamped with its hybrid logical clock.
 *
 * Order and merge. Entries are totally ordered by (hlc, node id, canonical payload,
 * signature); the last two only break ties between two different entries a node signed with
 * one timestamp (a Byzantine node or twins), so that every replica picks the same one.
 * A map holds at most one entry per node and at most K entries: `bound` keeps the newest
 * entry of each node, then the K greatest entries. `mergeLatent(a, b) = bound(a ∪ b)`.
 *
 * Why the bounded merge is still a join. Write f(S) for `bound` of any set S of entries.
 * An entry e survives f(S) iff it is the greatest entry of its node in S and fewer than K
 * nodes have an entry greater than e in S. From this, f(A ∪ B) = f(f(A) ∪ f(B)) for all A, B
 * (an entry f drops from B is below K entries of other nodes that f(B) keeps, so it could
 * neither survive nor displace anything in the union). Hence on maps (sets with f(S) = S)
 * merge is commutative (∪ is), idempotent (f(a ∪ a) = a) and associative
 * (f(f(a ∪ b) ∪ c) = f(a ∪ b ∪ c)): a semilattice join. What the bound gives up is
 * inflation: merge(a, b) need not contain every entry of a (an old entry is evicted), and an
 * evicted node's entry is forgotten until the node signs a newer one. Eviction is never
 * undone by old data: once a map is full its smallest entry only grows, so a replayed entry
 * below it is dropped again (`acceptRemote` reports it as `stale`). latent_test.ts checks
 * all of this with fast-check, including against the unbounded map.
 */
import { z } from "zod";
import { formatZodError, parseSection } from "../config_errors.ts";
import { DecodeError } from "../errors.ts";
import type { NodeId } from "../ids.ts";
import { compareHlc, type Hlc, hlcSchema } from "./hlc.ts";
import { contradiction, DEFAULT_TRUST_TOLERANCE, type PrimaryView } from "./primary.ts";
import {
  compareStrings,
  type DiscardCounts,
  type DiscardReason,
  networkIdSchema,
  nodeIdSchema,
  scopeSchema,
  type SignFn,
  type Tier,
  tierSchema,
  trustSchema,
  type VerifyFn,
} from "./types.ts";

export const HEALTH = ["ok", "degraded", "failing"] as const;
export type Health = typeof HEALTH[number];

/** Resource usage as fractions of capacity, each in [0, 1]. */
export interface Usage {
  readonly cpu: number;
  readonly memory: number;
  readonly storage: number;
  readonly bandwidth: number;
}

/**
 * Connection events with intermittency condensed: a fixed-size summary (counts and the
 * last change times), never a log, so an entry's size does not grow with a flapping link.
 * A flap is a reconnect within the flap window of the last disconnect.
 */
export interface ConnSummary {
  readonly up: boolean;
  readonly connects: number;
  readonly disconnects: number;
  readonly flaps: number;
  readonly lastUpMs: number | null;
  readonly lastDownMs: number | null;
}

export const CONN_NEVER: ConnSummary = Object.freeze({
  up: false,
  connects: 0,
  disconnects: 0,
  flaps: 0,
  lastUpMs: null,
  lastDownMs: null,
});

/** Folds one connection event (up or down at time `at`) into the summary. */
export function recordConnEvent(
  s: ConnSummary,
  up: boolean,
  at: number,
  flapWindowMs: number,
): ConnSummary {
  if (up === s.up) return s; // a repeated state is not a change
  if (up) {
    const flap = s.lastDownMs !== null && at - s.lastDownMs <= flapWindowMs;
    return {
      ...s,
      up: true,
      connects: s.connects + 1,
      flaps: s.flaps + (flap ? 1 : 0),
      lastUpMs: at,
    };
  }
  return { ...s, up: false, disconnects: s.disconnects + 1, lastDownMs: at };
}

/** Share of reconnects that came back within the flap window: 0 steady, 1 always flapping. */
export function intermittency(s: ConnSummary): number {
  return s.connects === 0 ? 0 : s.flaps / s.connects;
}

export interface LatentEntry {
  readonly network: string;
  readonly scope: string;
  readonly node: NodeId;
  readonly tier: Tier;
  readonly health: Health;
  /** The node's trust score as it last saw it in the Primary (checked against it). */
  readonly trust: number;
  readonly usage: Usage;
  /** Uptime accrued since this node's previous entry (ms). */
  readonly uptimeDiffMs: number;
  /** Operations processed, cumulative (the first key of singleton resolution). */
  readonly processingVolume: number;
  readonly conn: ConnSummary;
  readonly hlc: Hlc;
  /** The node's signature over `latentPayload(entry)`. */
  readonly sig: string;
}

export type UnsignedLatentEntry = Omit<LatentEntry, "sig">;

/** Canonical payload a node signs: fixed field order, JSON-escaped strings. */
export function latentPayload(e: UnsignedLatentEntry): string {
  const u = e.usage;
  const c = e.conn;
  return "latent/1" + JSON.stringify([
    e.network,
    e.scope,
    e.node,
    e.tier,
    e.health,
    e.trust,
    [u.cpu, u.memory, u.storage, u.bandwidth],
    e.uptimeDiffMs,
    e.processingVolume,
    [c.up, c.connects, c.disconnects, c.flaps, c.lastUpMs, c.lastDownMs],
    e.hlc.ms,
    e.hlc.c,
  ]);
}

export function signLatentEntry(e: UnsignedLatentEntry, sign: SignFn): LatentEntry {
  return { ...e, sig: sign(latentPayload(e)) };
}

export function verifyLatentEntry(e: LatentEntry, verify: VerifyFn): boolean {
  return verify(e.node, latentPayload(e), e.sig);
}

/** The total order of entries: (hlc, node id, canonical payload, signature). */
export function compareLatentEntries(a: LatentEntry, b: LatentEntry): number {
  if (a === b) return 0;
  return compareHlc(a.hlc, b.hlc) || compareStrings(a.node, b.node) ||
    compareStrings(latentPayload(a), latentPayload(b)) || compareStrings(a.sig, b.sig);
}

/** A bounded Latent map: one entry per node, at most K, iterated in node id order. */
export type LatentMap = ReadonlyMap<NodeId, LatentEntry>;

export const EMPTY_LATENT: LatentMap = new Map();

/** Entries in node id order (the map's iteration order, made explicit). */
export function latentEntries(m: LatentMap): LatentEntry[] {
  return [...m.values()].sort((a, b) => compareStrings(a.node, b.node));
}

function sortedMap(entries: Iterable<LatentEntry>): Map<NodeId, LatentEntry> {
  const list = [...entries].sort((a, b) => compareStrings(a.node, b.node));
  return new Map(list.map((e) => [e.node, e]));
}

function checkBound(maxEntries: number): void {
  if (!Number.isInteger(maxEntries) || maxEntries < 0) {
    throw new RangeError(`maxEntries must be a non-negative integer: ${maxEntries}`);
  }
}

/** f(S): the newest entry of each node, then the `maxEntries` greatest of those. */
export function boundLatent(entries: Iterable<LatentEntry>, maxEntries: number): LatentMap {
  checkBound(maxEntries);
  const best = new Map<NodeId, LatentEntry>();
  for (const e of entries) {
    const cur = best.get(e.node);
    if (!cur || compareLatentEntries(e, cur) > 0) best.set(e.node, e);
  }
  let kept: Iterable<LatentEntry> = best.values();
  if (best.size > maxEntries) {
    kept = [...best.values()].sort((a, b) => compareLatentEntries(b, a)).slice(0, maxEntries);
  }
  return sortedMap(kept);
}

/** The join of two Latent maps under the bound. */
export function mergeLatent(a: LatentMap, b: LatentMap, maxEntries: number): LatentMap {
  return boundLatent([...a.values(), ...b.values()], maxEntries);
}

/** Same entries (by the total order), regardless of insertion order. */
export function latentEquals(a: LatentMap, b: LatentMap): boolean {
  if (a.size !== b.size) return false;
  for (const [k, e] of a) {
    const o = b.get(k);
    if (!o || compareLatentEntries(e, o) !== 0) return false;
  }
  return true;
}

/** The smallest entry of a map (its horizon when full), or null when empty. */
export function latentMin(m: LatentMap): LatentEntry | null {
  let min: LatentEntry | null = null;
  for (const e of m.values()) if (!min || compareLatentEntries(e, min) < 0) min = e;
  return min;
}

// ---- acceptance of remote entries ----

export interface AcceptContext {
  readonly network: string;
  readonly scope: string;
  /** The receiver's clock (ms). */
  readonly now: number;
  /** An entry dated more than this after `now` is future-dated. */
  readonly maxSkewMs: number;
  readonly maxEntries: number;
  readonly verify: VerifyFn;
  /** The newest Primary view, or null before the first sync. */
  readonly primary: PrimaryView | null;
  readonly trustTolerance?: number;
  /**
   * Checks a whole entry's signature instead of `verify(e.node, latentPayload(e), e.sig)`:
   * for a host that verified at its envelope boundary or remembers verified entries (the
   * simulator, where one entry object reaches every node). Must agree with `verify`.
   */
  readonly verifyEntry?: (e: LatentEntry) => boolean;
}

export type Acceptance =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: DiscardReason; readonly detail: string };

const OK: Acceptance = Object.freeze({ ok: true });

function reject(reason: DiscardReason, detail: string): Acceptance {
  return { ok: false, reason, detail };
}

/**
 * Whether a remote entry may be merged into `held`, or why it is discarded. Checks run
 * cheapest first: network, scope, skew, staleness against what is held (a replay or an
 * entry below the full map's horizon), then the signature, then the certified Primary. The
 * signature is checked before the Primary so that a `contradicts-primary` count is always
 * attributable to the node that signed the claim, and after staleness so that ordinary
 * gossip redundancy costs no verification.
 */
export function acceptRemote(held: LatentMap, e: LatentEntry, ctx: AcceptContext): Acceptance {
  return check(held, e, ctx, () => latentMin(held));
}

function check(
  held: LatentMap,
  e: LatentEntry,
  ctx: AcceptContext,
  smallest: () => LatentEntry | null,
): Acceptance {
  if (e.network !== ctx.network) return reject("wrong-network", `network ${e.network}`);
  if (e.scope !== ctx.scope) return reject("wrong-scope", `scope ${e.scope}`);
  if (e.hlc.ms > ctx.now + ctx.maxSkewMs) {
    return reject("future-dated", `dated ${e.hlc.ms - ctx.now} ms ahead of ${ctx.now}`);
  }
  const cur = held.get(e.node);
  if (cur) {
    const cmp = compareLatentEntries(e, cur);
    if (cmp === 0) return reject("duplicate", "already held");
    if (cmp < 0) return reject("stale", "older than the entry held for this node");
  } else if (held.size >= ctx.maxEntries) {
    const min = smallest();
    if (!min || compareLatentEntries(e, min) < 0) {
      return reject("stale", "older than every entry of the full map");
    }
  }
  const signed = ctx.verifyEntry ? ctx.verifyEntry(e) : verifyLatentEntry(e, ctx.verify);
  if (!signed) return reject("forged", "signature does not verify");
  const why = contradiction(ctx.primary, e, ctx.trustTolerance ?? DEFAULT_TRUST_TOLERANCE);
  if (why) return reject("contradicts-primary", why);
  return OK;
}

/**
 * Merges a batch of remote entries into `held`: each is checked by `acceptRemote` against
 * the map as it stands, discarded ones are counted in `counts` (mutated).
 */
export function ingestLatent(
  held: LatentMap,
  entries: Iterable<LatentEntry>,
  ctx: AcceptContext,
  counts: DiscardCounts,
): LatentMap {
  const store = new LatentStore(ctx.maxEntries, held);
  for (const e of entries) {
    const a = store.offer(e, ctx);
    if (!a.ok) counts[a.reason]++;
  }
  return store.snapshot();
}

/**
 * A mutable Latent map for a running node: `offer` checks and inserts in place (evicting the
 * smallest entry when full), which equals `mergeLatent(map, {e})` for every accepted entry
 * (latent_test.ts checks the equivalence).
 */
export class LatentStore {
  private readonly map: Map<NodeId, LatentEntry>;
  private min: LatentEntry | null = null;
  private minValid = false;

  constructor(readonly maxEntries: number, initial: LatentMap = EMPTY_LATENT) {
    checkBound(maxEntries);
    this.map = new Map(boundLatent(initial.values(), maxEntries));
  }

  get size(): number {
    return this.map.size;
  }

  get(node: NodeId): LatentEntry | undefined {
    return this.map.get(node);
  }

  /** The held entries, in no particular (but deterministic) order; do not mutate while iterating. */
  entries(): IterableIterator<LatentEntry> {
    return this.map.values();
  }

  /**
   * Forgets a node's entry (expired, or contradicting a newer Primary). Not a join: the entry
   * may come back through gossip unless the caller's acceptance rules refuse it again.
   */
  delete(node: NodeId): boolean {
    const cur = this.map.get(node);
    if (!cur) return false;
    this.map.delete(node);
    if (this.min === cur) this.minValid = false;
    return true;
  }

  /** The current map, in node id order (a copy). */
  snapshot(): LatentMap {
    return sortedMap(this.map.values());
  }

  private smallest(): LatentEntry | null {
    if (!this.minValid) {
      this.min = latentMin(this.map);
      this.minValid = true;
    }
    return this.min;
  }

  /** Checks `e` as `acceptRemote` does and inserts it when accepted. */
  offer(e: LatentEntry, ctx: AcceptContext): Acceptance {
    const a = check(this.map, e, { ...ctx, maxEntries: this.maxEntries }, () => this.smallest());
    if (a.ok) this.insert(e);
    return a;
  }

  /** Inserts an entry (own entries, or ones already checked): the join with {e}. */
  insert(e: LatentEntry): void {
    const cur = this.map.get(e.node);
    if (cur) {
      if (compareLatentEntries(e, cur) <= 0) return;
      this.map.set(e.node, e);
      if (this.min === cur) this.minValid = false;
      return;
    }
    if (this.maxEntries === 0) return;
    if (this.map.size >= this.maxEntries) {
      const min = this.smallest()!;
      if (compareLatentEntries(e, min) < 0) return;
      this.map.delete(min.node);
      this.minValid = false;
    }
    this.map.set(e.node, e);
    if (this.minValid && this.min && compareLatentEntries(e, this.min) < 0) this.min = e;
    else if (this.minValid && !this.min) this.min = e;
  }
}

// ---- wire schema and config ----

const fraction = z.number().min(0).max(1);
const count = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const time = z.int().min(0).max(Number.MAX_SAFE_INTEGER);

export const latentEntrySchema = z.strictObject({
  network: networkIdSchema,
  scope: scopeSchema,
  node: nodeIdSchema,
  tier: tierSchema,
  health: z.enum(HEALTH),
  trust: trustSchema,
  usage: z.strictObject({
    cpu: fraction,
    memory: fraction,
    storage: fraction,
    bandwidth: fraction,
  }),
  uptimeDiffMs: time,
  processingVolume: count,
  conn: z.strictObject({
    up: z.boolean(),
    connects: count,
    disconnects: count,
    flaps: count,
    lastUpMs: time.nullable(),
    lastDownMs: time.nullable(),
  }),
  hlc: hlcSchema,
  sig: z.string().max(512),
});

/** Validates a decoded entry; throws DecodeError naming the field. */
export function parseLatentEntry(doc: unknown, path = "entry"): LatentEntry {
  const r = latentEntrySchema.safeParse(doc);
  if (!r.success) throw new DecodeError(`latent ${formatZodError(r.error, path)}`, 0);
  return r.data;
}

export const latentConfigSchema = z.strictObject({
  maxEntries: z.int().min(1).max(1_000_000).default(1024).describe(
    "K: the Latent map keeps the K most recent node entries",
  ),
  maxSkewMs: z.number().nonnegative().finite().default(5000).describe(
    "an entry dated more than this ahead of the receiver's clock is future-dated (ms)",
  ),
  trustTolerance: z.number().min(0).max(1).default(DEFAULT_TRUST_TOLERANCE).describe(
    "a trust claim further than this from the Primary's score contradicts it",
  ),
  flapWindowMs: z.number().nonnegative().finite().default(10_000).describe(
    "a reconnect within this long of a disconnect counts as a flap (ms)",
  ),
});
export type LatentConfig = z.output<typeof latentConfigSchema>;

export function parseLatentConfig(input: unknown, path = "spores.latent"): LatentConfig {
  return parseSection(latentConfigSchema, input, path);
}
