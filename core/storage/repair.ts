/**
 * Re-replication (DESIGN.md section 5, Storage): after nodes are declared dead (or lose
 * eligibility), plan the chunk copies that restore each chunk's replica set.
 *
 * For each chunk the target set is `placeReplicas` over the live nodes eligible for its
 * class, keeping every live eligible replica it can (one per domain, at most rf): existing
 * data never moves while it satisfies the class. Missing members of the target are copied
 * from a live replica. Work is bounded: at most `maxCopies` copies per step, given first to
 * the chunks with the fewest live eligible replicas (most at risk), then by chunk id. A chunk
 * whose target is complete releases its other live replicas (ineligible, or a second one in
 * a domain). A chunk with no live replica at all is reported lost.
 *
 * Applying the plans of successive steps until a plan is empty leaves every chunk that has a
 * live replica with exactly min(rf, distinct live eligible domains) live replicas, on
 * distinct domains, all eligible for its class (repair_test.ts checks this with fast-check).
 */
import type { NodeId } from "../ids.ts";
import { compareStrings } from "../spores/types.ts";
import { eligibleFor, type StorageClass } from "./classes.ts";
import { DEFAULT_REPLICATION_FACTOR, placeReplicas, type StorageNode } from "./placement.ts";

export interface ChunkPlacement {
  readonly chunk: string;
  readonly class: StorageClass;
  /** Nodes believed to hold the chunk. */
  readonly replicas: readonly NodeId[];
}

export interface RepairCopy {
  readonly chunk: string;
  readonly from: NodeId;
  readonly to: NodeId;
}

export interface ChunkRepair {
  readonly chunk: string;
  /** The replica set the chunk converges to. */
  readonly target: readonly NodeId[];
  /** Copies planned in this step (possibly fewer than the target misses, under the bound). */
  readonly copies: readonly RepairCopy[];
  /** Live replicas outside the target, to delete once the target is complete (this step). */
  readonly release: readonly NodeId[];
}

export interface RepairPlan {
  readonly repairs: readonly ChunkRepair[];
  /** Chunks with no live replica: nothing to copy from. */
  readonly lost: readonly string[];
  /** Chunks that need copies the step's bound left for a later step. */
  readonly deferred: readonly string[];
  readonly copies: number;
}

export interface RepairOptions {
  readonly replicationFactor?: number;
  /** Copies per step (default 64). */
  readonly maxCopies?: number;
}

interface Need {
  readonly p: ChunkPlacement;
  readonly liveReplicas: NodeId[];
  readonly keptEligible: number;
  readonly target: NodeId[];
  readonly missing: NodeId[];
}

/** One step of re-replication for `placements`, given every known node and which are live. */
export function planRepair(
  placements: readonly ChunkPlacement[],
  nodes: readonly StorageNode[],
  live: ReadonlySet<NodeId>,
  opts: RepairOptions = {},
): RepairPlan {
  const rf = opts.replicationFactor ?? DEFAULT_REPLICATION_FACTOR;
  const maxCopies = opts.maxCopies ?? 64;
  if (!Number.isInteger(maxCopies) || maxCopies < 0) {
    throw new RangeError(`maxCopies must be a non-negative integer: ${maxCopies}`);
  }
  const liveNodes = nodes.filter((n) => live.has(n.id));
  const byId = new Map(liveNodes.map((n) => [n.id, n]));
  const lost: string[] = [];
  const needs: Need[] = [];
  for (const p of placements) {
    const liveReplicas = [...new Set(p.replicas)].filter((r) => byId.has(r)).sort(compareStrings);
    if (liveReplicas.length === 0) {
      lost.push(p.chunk);
      continue;
    }
    const eligibleReplicas = liveReplicas.filter((r) => eligibleFor(p.class, byId.get(r)!));
    const target = placeReplicas(p.chunk, p.class, liveNodes, {
      replicationFactor: rf,
      keep: eligibleReplicas,
    });
    const held = new Set(liveReplicas);
    const missing = target.filter((t) => !held.has(t));
    const inTarget = new Set(target);
    const keptEligible = eligibleReplicas.filter((r) => inTarget.has(r)).length;
    needs.push({ p, liveReplicas, keptEligible, target, missing });
  }
  needs.sort((a, b) => a.keptEligible - b.keptEligible || compareStrings(a.p.chunk, b.p.chunk));

  let budget = maxCopies;
  let copies = 0;
  const repairs: ChunkRepair[] = [];
  const deferred: string[] = [];
  for (const n of needs) {
    const inTarget = new Set(n.target);
    const extra = n.liveReplicas.filter((r) => !inTarget.has(r));
    if (n.missing.length === 0) {
      if (extra.length > 0) {
        repairs.push({ chunk: n.p.chunk, target: n.target, copies: [], release: extra });
      }
      continue;
    }
    const allowed = Math.min(budget, n.missing.length);
    if (allowed === 0) {
      deferred.push(n.p.chunk);
      continue;
    }
    // Copy from the best-placed live replica: one in the target if any, else any live one.
    const from = n.target.find((t) => n.liveReplicas.includes(t)) ?? n.liveReplicas[0];
    const planned = n.missing.slice(0, allowed).map((to) => ({ chunk: n.p.chunk, from, to }));
    budget -= planned.length;
    copies += planned.length;
    const complete = planned.length === n.missing.length;
    if (!complete) deferred.push(n.p.chunk);
    repairs.push({
      chunk: n.p.chunk,
      target: n.target,
      copies: planned,
      release: complete ? extra : [],
    });
  }
  return { repairs, lost: lost.sort(compareStrings), deferred, copies };
}

/** The placements after a plan's copies succeeded and its releases were deleted. */
export function applyRepair(
  placements: readonly ChunkPlacement[],
  plan: RepairPlan,
): ChunkPlacement[] {
  const by = new Map<string, ChunkRepair[]>();
  for (const r of plan.repairs) by.set(r.chunk, [...(by.get(r.chunk) ?? []), r]);
  return placements.map((p) => {
    const rs = by.get(p.chunk);
    if (!rs) return p;
    const set = new Set(p.replicas);
    for (const r of rs) {
      for (const c of r.copies) set.add(c.to);
      for (const x of r.release) set.delete(x);
    }
    return { ...p, replicas: [...set].sort(compareStrings) };
  });
}
