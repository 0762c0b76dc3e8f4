/**
 * How a starting node finds the network (DESIGN.md section 5, Spore tiers: "cached spore,
 * Rhizomorph contact, Seed lookup, Latent network"): the core's discovery plan
 * (core/spores/discovery.ts) driven over real I/O.
 *
 * Sources, in order:
 * - cached: the seed this node wrote last time (`<dataDir>/spores/cached.seed`, checked like
 *   any seed): the Sclerotia it knew;
 * - rhizomorph: `join.rhizomorphs`, gossip addresses of Rhizomorph contacts;
 * - seed: `spores.seed.locations`, files or URLs, each read and checked (a missing,
 *   truncated, tampered, stale, future-dated or foreign seed is reported and skipped);
 * - latent: `join.seeds`, gossip addresses of any member (Latent entry points).
 *
 * An attempt is a SWIM join through the attempt's addresses (a seed's Sclerotia first); it
 * succeeds when a member answers within `join.attemptTimeoutMs` and the membership it hands
 * over holds a live Sclerotium. A join that reached only non-Sclerotia keeps the node in the
 * network while discovery tries the next source. With no source at all, the node founds the
 * network (it writes the Master Seed spore once it is up). After every attempt failed, the
 * plan starts over after `join.retryMs` (seeds are read again: they may have been written
 * meanwhile), until the node stops.
 */
import type { Logger, Metrics } from "../core/host.ts";
import type { NodeId } from "../core/ids.ts";
import {
  type AttemptOutcome,
  type DiscoveryAttempt,
  DiscoveryCursor,
  discoveryPlan,
  type DiscoveryRecord,
  type DiscoverySource,
} from "../core/spores/discovery.ts";
import type { SeedSnapshot } from "../core/spores/seed.ts";
import type { NodeSpores } from "./spores.ts";

export interface BootstrapParts {
  readonly self: NodeId;
  /** Our own gossip address: never a join target. */
  readonly selfAddr: string;
  readonly rhizomorphs: readonly string[];
  readonly seedLocations: readonly string[];
  readonly entryPoints: readonly string[];
  readonly attemptTimeoutMs: number;
  readonly retryMs: number;
  readonly spores: NodeSpores;
  /** Starts a SWIM join through these addresses. */
  joinThrough(addrs: readonly string[]): void;
  isJoined(): boolean;
  /** Gossip addresses of the live Sclerotia this node knows (itself excluded). */
  sclerotia(): string[];
  stopped(): boolean;
  readonly log: Logger;
  readonly metrics: Metrics;
}

export interface BootstrapResult {
  /** How the node came in: a discovery source, or `founder` (no source configured). */
  readonly source: DiscoverySource | "founder" | "joined-without-sclerotium";
  readonly target: string | null;
  readonly attempts: readonly DiscoveryRecord[];
  readonly rounds: number;
  readonly ms: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Addresses of a seed to join through: its Sclerotia first, then the other members. */
export function seedJoinAddrs(seed: SeedSnapshot, self: NodeId): string[] {
  const others = seed.entries.filter((e) => e.node !== self);
  const rank = (t: string) => t === "sclerotia" ? 0 : 1;
  return others
    .slice()
    .sort((a, b) => rank(a.tier) - rank(b.tier))
    .flatMap((e) => e.addrs);
}

/** Runs discovery until a Sclerotium is found (or the node founds the network / stops). */
export async function bootstrap(p: BootstrapParts): Promise<BootstrapResult> {
  const t0 = performance.now();
  const all: DiscoveryRecord[] = [];
  for (let round = 1;; round++) {
    const cached = await p.spores.readLocation(p.spores.cachedPath, { record: false });
    const notSelf = (a: string) => a !== p.selfAddr;
    const plan = discoveryPlan({
      cached: cached.ok ? seedJoinAddrs(cached.seed, p.self).filter(notSelf) : [],
      rhizomorphs: p.rhizomorphs.filter(notSelf),
      seeds: p.seedLocations,
      entryPoints: p.entryPoints.filter(notSelf),
    });
    const done = (source: BootstrapResult["source"], target: string | null) => {
      const r = { source, target, attempts: all, rounds: round, ms: performance.now() - t0 };
      p.log.log("info", "bootstrap", { ...r, attempts: all.length });
      return r;
    };
    if (plan.length === 0) return done("founder", null);
    const cursor = new DiscoveryCursor(plan);
    let reachedAny: DiscoveryAttempt | null = null;
    for (let a = cursor.next(); a; a = cursor.next()) {
      if (p.stopped()) return done("joined-without-sclerotium", null);
      const outcome = await attempt(p, a);
      const result = cursor.report(outcome);
      all.push(cursor.records[cursor.records.length - 1]);
      p.metrics.inc("mycelium_bootstrap_attempts_total", 1, { source: a.source, result });
      p.log.log(result === "found" ? "info" : "warn", "bootstrap_attempt", {
        source: a.source,
        target: a.target,
        result,
      });
      if (outcome.reached) reachedAny = a;
    }
    if (cursor.found) return done(cursor.found.via.source, cursor.found.via.target);
    if (reachedAny && p.isJoined()) return done("joined-without-sclerotium", reachedAny.target);
    if (p.stopped()) return done("joined-without-sclerotium", null);
    await sleep(p.retryMs);
  }
}

async function attempt(p: BootstrapParts, a: DiscoveryAttempt): Promise<AttemptOutcome> {
  let addrs: string[];
  if (a.source === "seed") {
    const r = await p.spores.readLocation(a.target);
    if (!r.ok) return { reached: false };
    addrs = seedJoinAddrs(r.seed, p.self).filter((x) => x !== p.selfAddr);
    if (addrs.length === 0) return { reached: false };
  } else addrs = [a.target];
  p.joinThrough(addrs);
  const deadline = performance.now() + p.attemptTimeoutMs;
  while (!p.isJoined() && performance.now() < deadline && !p.stopped()) await sleep(20);
  if (!p.isJoined()) return { reached: false };
  return { reached: true, sclerotia: p.sclerotia() };
}
