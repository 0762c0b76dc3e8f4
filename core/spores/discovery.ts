/**
 * Client discovery (DESIGN.md section 5, Spore tiers): how a node with no connection finds a
 * Sclerotium. Sources are tried in a fixed order: the cached spore (Sclerotia remembered
 * from the last session), Rhizomorph contacts, Seed lookups (configured file paths and
 * URLs), then Latent entry points (any node that gossips the Latent spore). Within a source,
 * targets are tried in the order given, each once.
 *
 * Sans-IO: `discoveryPlan` orders the attempts, `DiscoveryCursor` hands them out one at a
 * time and takes each outcome (the host does the I/O), and `runDiscovery` drives a cursor
 * with a pure probe (simulation, tests). An attempt succeeds when the target is reached and
 * reveals at least one reachable Sclerotium; discovery stops at the first success.
 */
import { compareStrings } from "./types.ts";

export const DISCOVERY_ORDER = ["cached", "rhizomorph", "seed", "latent"] as const;
export type DiscoverySource = typeof DISCOVERY_ORDER[number];

export interface DiscoveryInputs {
  /** Sclerotia addresses from the cached spore (empty for a fresh client). */
  readonly cached: readonly string[];
  /** Known Rhizomorph contacts. */
  readonly rhizomorphs: readonly string[];
  /** Seed locations: file paths or URLs. */
  readonly seeds: readonly string[];
  /** Latent entry points: addresses of any gossiping node. */
  readonly entryPoints: readonly string[];
}

export interface DiscoveryAttempt {
  readonly source: DiscoverySource;
  readonly target: string;
}

/** What one attempt gave: not reached, or reached and these Sclerotia were revealed. */
export type AttemptOutcome =
  | { readonly reached: false }
  | { readonly reached: true; readonly sclerotia: readonly string[] };

const FIELD: Record<DiscoverySource, keyof DiscoveryInputs> = {
  cached: "cached",
  rhizomorph: "rhizomorphs",
  seed: "seeds",
  latent: "entryPoints",
};

/** Every attempt in order: sources by DISCOVERY_ORDER, targets as given, duplicates once. */
export function discoveryPlan(inputs: DiscoveryInputs): DiscoveryAttempt[] {
  const out: DiscoveryAttempt[] = [];
  for (const source of DISCOVERY_ORDER) {
    const seen = new Set<string>();
    for (const target of inputs[FIELD[source]]) {
      if (seen.has(target)) continue;
      seen.add(target);
      out.push({ source, target });
    }
  }
  return out;
}

export type AttemptResult = "unreachable" | "no-sclerotium" | "found";

export interface DiscoveryRecord {
  readonly attempt: DiscoveryAttempt;
  readonly result: AttemptResult;
}

export interface DiscoveryFound {
  readonly via: DiscoveryAttempt;
  /** Reachable Sclerotia revealed by the successful attempt, sorted, at most `want`. */
  readonly sclerotia: readonly string[];
}

export interface DiscoveryOptions {
  /** Sclerotia to keep connections to (default 3). */
  readonly want?: number;
  /** Give up after this many attempts (default: the whole plan). */
  readonly maxAttempts?: number;
  /** Whether a revealed Sclerotium can be connected to (default: all can). */
  readonly sclerotiumReachable?: (s: string) => boolean;
}

/** Hands out attempts one at a time; the host reports each outcome before asking again. */
export class DiscoveryCursor {
  private i = 0;
  private pending: DiscoveryAttempt | null = null;
  readonly records: DiscoveryRecord[] = [];
  found: DiscoveryFound | null = null;
  private readonly max: number;

  constructor(
    readonly plan: readonly DiscoveryAttempt[],
    private readonly opts: DiscoveryOptions = {},
  ) {
    this.max = Math.min(plan.length, opts.maxAttempts ?? plan.length);
  }

  /** True once a Sclerotium was found or every allowed attempt failed. */
  get done(): boolean {
    return this.found !== null || (this.pending === null && this.i >= this.max);
  }

  /** The next attempt to make, or null when done (or one is still outstanding). */
  next(): DiscoveryAttempt | null {
    if (this.done || this.pending) return null;
    this.pending = this.plan[this.i++];
    return this.pending;
  }

  report(outcome: AttemptOutcome): AttemptResult {
    const attempt = this.pending;
    if (!attempt) throw new Error("report() without an outstanding attempt");
    this.pending = null;
    let result: AttemptResult = "unreachable";
    if (outcome.reached) {
      const ok = this.opts.sclerotiumReachable ?? (() => true);
      const live = [...new Set(outcome.sclerotia)].filter(ok).sort(compareStrings);
      if (live.length > 0) {
        result = "found";
        this.found = { via: attempt, sclerotia: live.slice(0, Math.max(1, this.opts.want ?? 3)) };
      } else result = "no-sclerotium";
    }
    this.records.push({ attempt, result });
    return result;
  }
}

export interface DiscoveryResult {
  readonly attempts: readonly DiscoveryRecord[];
  readonly found: DiscoveryFound | null;
}

/** Runs the plan against a pure probe: the sequence of attempts and the first success. */
export function runDiscovery(
  inputs: DiscoveryInputs,
  probe: (a: DiscoveryAttempt) => AttemptOutcome,
  opts: DiscoveryOptions = {},
): DiscoveryResult {
  const cursor = new DiscoveryCursor(discoveryPlan(inputs), opts);
  for (let a = cursor.next(); a; a = cursor.next()) cursor.report(probe(a));
  return { attempts: cursor.records, found: cursor.found };
}
