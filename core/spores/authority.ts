/**
 * The authority merge (DESIGN.md section 5, Spore tiers): Primary > Seed > Latent.
 *
 * - Primary: the newest certified consensus state. Only a certified view of our own network
 *   has authority; otherwise the merge runs as if there were none (bootstrap).
 * - Seed: every snapshot's entries, joined per node by the seed order (version, Primary
 *   height, created, writer, entry) - a join, so the seed list's order never matters.
 * - Latent: the bounded LWW map (latent.ts), already a join.
 *
 * Every seed and Latent entry is checked again against the Primary (it may have changed since
 * the entry was accepted): entries about excluded nodes, claiming a membership, tier or trust
 * the Primary says otherwise, or from another network or scope are discarded and counted by
 * tier and reason. Of what remains, for each node and each field the highest tier that says
 * something wins: tier and trust from the Primary, else the Seed, else the Latent entry;
 * addresses from the Seed; status (health, usage, uptime, volume, connections) from the
 * Latent entry.
 */
import type { NodeId } from "../ids.ts";
import type { LatentEntry, LatentMap } from "./latent.ts";
import { contradiction, DEFAULT_TRUST_TOLERANCE, type PrimaryView } from "./primary.ts";
import type { SeedEntry, SeedSnapshot } from "./seed.ts";
import {
  compareStrings,
  type DiscardCounts,
  emptyDiscardCounts,
  MASTER_SCOPE,
  type SporeTier,
  type Tier,
} from "./types.ts";

/** One seed entry with the snapshot facts that order it against other seeds' entries. */
export interface SeedClaim {
  readonly entry: SeedEntry;
  readonly version: number;
  readonly primaryHeight: number;
  readonly created: number;
  readonly writer: NodeId;
}

/** The Seed tier: the winning claim per node. */
export type SeedTier = ReadonlyMap<NodeId, SeedClaim>;

function entryKey(e: SeedEntry): string {
  return JSON.stringify([e.node, e.tier, e.trust, e.addrs]);
}

/** Total order of seed claims: (version, primaryHeight, created, writer, entry). */
export function compareSeedClaims(a: SeedClaim, b: SeedClaim): number {
  if (a === b) return 0;
  const num = (x: number, y: number) => (x < y ? -1 : x > y ? 1 : 0);
  return num(a.version, b.version) || num(a.primaryHeight, b.primaryHeight) ||
    num(a.created, b.created) || compareStrings(a.writer, b.writer) ||
    compareStrings(entryKey(a.entry), entryKey(b.entry));
}

function seedTierOf(claims: Iterable<SeedClaim>): SeedTier {
  const best = new Map<NodeId, SeedClaim>();
  for (const c of claims) {
    const cur = best.get(c.entry.node);
    if (!cur || compareSeedClaims(c, cur) > 0) best.set(c.entry.node, c);
  }
  const sorted = [...best.values()].sort((a, b) => compareStrings(a.entry.node, b.entry.node));
  return new Map(sorted.map((c) => [c.entry.node, c]));
}

export function seedClaims(s: SeedSnapshot): SeedClaim[] {
  return s.entries.map((entry) => ({
    entry,
    version: s.version,
    primaryHeight: s.primaryHeight,
    created: s.created,
    writer: s.writer,
  }));
}

/** The Seed tier of a set of snapshots (no checks; see `authorityMerge`). */
export function seedTierFrom(snapshots: readonly SeedSnapshot[]): SeedTier {
  return seedTierOf(snapshots.flatMap(seedClaims));
}

/** The join of two Seed tiers: per node, the greater claim. */
export function mergeSeedTiers(a: SeedTier, b: SeedTier): SeedTier {
  return seedTierOf([...a.values(), ...b.values()]);
}

export function seedTierEquals(a: SeedTier, b: SeedTier): boolean {
  if (a.size !== b.size) return false;
  for (const [k, c] of a) {
    const o = b.get(k);
    if (!o || compareSeedClaims(c, o) !== 0) return false;
  }
  return true;
}

export interface AuthorityInput {
  readonly network: string;
  /** Default "master". */
  readonly scope?: string;
  /** The newest Primary view (with `certified` from the caller's certificate check). */
  readonly primary: PrimaryView | null;
  /** Snapshots that `readSeed` accepted. */
  readonly seeds: readonly SeedSnapshot[];
  readonly latent: LatentMap;
  readonly trustTolerance?: number;
}

/** What the network looks like for one node, and which tier each answer came from. */
export interface EffectiveNode {
  readonly node: NodeId;
  readonly tier: Tier;
  readonly tierFrom: SporeTier;
  readonly trust: number | null;
  readonly trustFrom: SporeTier | null;
  readonly addrs: readonly string[];
  /** The node's own Latent entry (health, usage, uptime, volume, connections), if kept. */
  readonly status: LatentEntry | null;
}

export interface EffectiveView {
  readonly network: string;
  readonly scope: string;
  /** The height of the Primary used, or null when none was (missing or uncertified). */
  readonly primaryHeight: number | null;
  /** Why a given Primary was not used. */
  readonly primaryIgnored: "uncertified" | "wrong-network" | null;
  readonly config: ReadonlyMap<string, string>;
  readonly excluded: ReadonlySet<NodeId>;
  /** Every known node that is not excluded, in node id order. */
  readonly nodes: ReadonlyMap<NodeId, EffectiveNode>;
  readonly discarded: { readonly seed: DiscardCounts; readonly latent: DiscardCounts };
}

const NO_CONFIG: ReadonlyMap<string, string> = new Map();
const NO_EXCLUDED: ReadonlySet<NodeId> = new Set();

export function authorityMerge(input: AuthorityInput): EffectiveView {
  const scope = input.scope ?? MASTER_SCOPE;
  const tol = input.trustTolerance ?? DEFAULT_TRUST_TOLERANCE;
  let primary: PrimaryView | null = null;
  let primaryIgnored: EffectiveView["primaryIgnored"] = null;
  if (input.primary) {
    if (!input.primary.certified) primaryIgnored = "uncertified";
    else if (input.primary.network !== input.network) primaryIgnored = "wrong-network";
    else primary = input.primary;
  }

  const seedCounts = emptyDiscardCounts();
  const claims: SeedClaim[] = [];
  for (const s of input.seeds) {
    if (s.network !== input.network) {
      seedCounts["wrong-network"] += s.entries.length;
      continue;
    }
    if (s.scope !== scope) {
      seedCounts["wrong-scope"] += s.entries.length;
      continue;
    }
    for (const c of seedClaims(s)) {
      if (contradiction(primary, c.entry, tol)) seedCounts["contradicts-primary"]++;
      else claims.push(c);
    }
  }
  const seeds = seedTierOf(claims);

  const latentCounts = emptyDiscardCounts();
  const latent = new Map<NodeId, LatentEntry>();
  for (const e of input.latent.values()) {
    if (e.network !== input.network) latentCounts["wrong-network"]++;
    else if (e.scope !== scope) latentCounts["wrong-scope"]++;
    else if (contradiction(primary, e, tol)) latentCounts["contradicts-primary"]++;
    else latent.set(e.node, e);
  }

  const excluded = primary?.excluded ?? NO_EXCLUDED;
  const ids = new Set<NodeId>();
  if (primary) { for (const n of primary.members.keys()) ids.add(n); }
  for (const n of seeds.keys()) ids.add(n);
  for (const n of latent.keys()) ids.add(n);
  const nodes = new Map<NodeId, EffectiveNode>();
  for (const node of [...ids].sort(compareStrings)) {
    if (excluded.has(node)) continue;
    const pTier = primary?.members.get(node);
    const pTrust = primary?.trust.get(node);
    const s = seeds.get(node)?.entry;
    const l = latent.get(node);
    let tier: Tier;
    let tierFrom: SporeTier;
    if (pTier !== undefined) [tier, tierFrom] = [pTier, "primary"];
    else if (s) [tier, tierFrom] = [s.tier, "seed"];
    else [tier, tierFrom] = [l!.tier, "latent"];
    let trust: number | null = null;
    let trustFrom: SporeTier | null = null;
    if (pTrust !== undefined) [trust, trustFrom] = [pTrust, "primary"];
    else if (s) [trust, trustFrom] = [s.trust, "seed"];
    else if (l) [trust, trustFrom] = [l.trust, "latent"];
    nodes.set(node, {
      node,
      tier,
      tierFrom,
      trust,
      trustFrom,
      addrs: s?.addrs ?? [],
      status: l ?? null,
    });
  }

  return {
    network: input.network,
    scope,
    primaryHeight: primary ? primary.height : null,
    primaryIgnored,
    config: primary?.config ?? NO_CONFIG,
    excluded,
    nodes,
    discarded: { seed: seedCounts, latent: latentCounts },
  };
}
