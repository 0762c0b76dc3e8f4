/**
 * Replica placement (DESIGN.md section 5, Storage): weighted rendezvous hashing (highest
 * random weight) over the nodes eligible for the object's class, on distinct failure domains.
 *
 * Every (key, node) pair gets a uniform u in (0, 1) from a deterministic hash, and the score
 * -weight / ln(u) (the weighted HRW of Schindelhauer and Schomaker; Ceph's straw2 uses the
 * same form). The node with the highest score is the first replica; a node wins the first
 * slot with probability weight / (sum of weights). Replicas are taken greedily in score
 * order, skipping nodes whose failure domain already holds one, until `replicationFactor`
 * are chosen or the domains run out: the result has min(rf, distinct eligible domains) nodes.
 *
 * What HRW gives (placement_test.ts checks each): removing or adding a node that is not
 * chosen changes nothing; removing a chosen node replaces exactly that one replica (the set
 * changes by one node; the others stay); adding a node changes at most one replica.
 *
 * The hash is MurmurHash3 (x86, 32-bit) of "key\0node" under two seeds, giving 53 bits: fast
 * (placement over 10,000 nodes per chunk in the simulator) and deterministic everywhere. It
 * is not a cryptographic hash; node ids are hashes of public keys already, so a node can no
 * more aim at a chunk through this hash than it could by grinding keys.
 */
import type { NodeId } from "../ids.ts";
import type { Tier } from "../spores/types.ts";
import { compareStrings } from "../spores/types.ts";
import { eligibleFor, type StorageClass } from "./classes.ts";

export const DEFAULT_REPLICATION_FACTOR = 3;

export interface StorageNode {
  readonly id: NodeId;
  readonly tier: Tier;
  readonly trust: number;
  /** Relative capacity (> 0): a node with twice the weight gets twice the share. */
  readonly weight: number;
  /** Failure domain label (e.g. "eu-1/a/host7" at host level); replicas never share one. */
  readonly domain: string;
  readonly excluded?: boolean;
}

export type DomainLevel = "region" | "zone" | "host";

/** The failure domain label of a node at a level: "region", "region/zone" or the full path. */
export function failureDomain(
  labels: { readonly region: string; readonly zone: string; readonly host: string },
  level: DomainLevel,
): string {
  if (level === "region") return labels.region;
  if (level === "zone") return `${labels.region}/${labels.zone}`;
  return `${labels.region}/${labels.zone}/${labels.host}`;
}

/** MurmurHash3 x86_32 over UTF-16 code units (two per 32-bit block). */
export function murmur3(s: string, seed: number): number {
  let h = seed >>> 0;
  const n = s.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    let k = (s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16)) >>> 0;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < n) {
    let k = s.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= n * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const TWO_32 = 2 ** 32;
const TWO_53 = 2 ** 53;

/** Uniform in (0, 1) from the pair: 53 bits, offset by half a step so 0 and 1 never occur. */
export function hash01(key: string, node: string): number {
  const s = `${key}\u0000${node}`;
  const hi = murmur3(s, 0x9747b28c) >>> 11; // 21 bits
  const lo = murmur3(s, 0x5bd1e995);
  return (hi * TWO_32 + lo + 0.5) / TWO_53;
}

/** The weighted rendezvous score of a node for a key: -weight / ln(u). */
export function hrwScore(key: string, node: string, weight: number): number {
  return -weight / Math.log(hash01(key, node));
}

function checkWeight(n: StorageNode): void {
  if (!(n.weight > 0) || !Number.isFinite(n.weight)) {
    throw new RangeError(`weight of ${n.id} must be finite and > 0: ${n.weight}`);
  }
}

/** Nodes by descending score for `key` (ties by node id), each with its score. */
export function rankNodes(
  key: string,
  nodes: readonly StorageNode[],
): Array<{ node: StorageNode; score: number }> {
  return nodes.map((node) => {
    checkWeight(node);
    return { node, score: hrwScore(key, node.id, node.weight) };
  }).sort((a, b) => b.score - a.score || compareStrings(a.node.id, b.node.id));
}

export interface PlaceOptions {
  readonly replicationFactor?: number;
  /**
   * Nodes that already hold a replica and should keep it (repair): each eligible one keeps
   * its slot, the best-scoring first, one per domain, at most rf; the rest are filled by HRW.
   */
  readonly keep?: readonly NodeId[];
}

/**
 * The replica set of `key` (a chunk id) for class `cls` among `nodes`: ids in descending
 * score order, min(rf, distinct eligible domains) of them, one per domain. Ineligible nodes
 * (class tier and trust, exclusion) are never chosen. Deterministic.
 */
export function placeReplicas(
  key: string,
  cls: StorageClass,
  nodes: readonly StorageNode[],
  opts: PlaceOptions = {},
): NodeId[] {
  const rf = opts.replicationFactor ?? DEFAULT_REPLICATION_FACTOR;
  if (!Number.isInteger(rf) || rf < 1) {
    throw new RangeError(`replication factor must be >= 1: ${rf}`);
  }
  const seen = new Set<NodeId>();
  const eligible = nodes.filter((n) => {
    if (seen.has(n.id) || !eligibleFor(cls, n)) return false;
    seen.add(n.id);
    return true;
  });
  const ranked = rankNodes(key, eligible);
  const chosen = new Set<NodeId>();
  const domains = new Set<string>();
  const take = (n: StorageNode) => {
    chosen.add(n.id);
    domains.add(n.domain);
  };
  if (opts.keep && opts.keep.length > 0) {
    const keep = new Set(opts.keep);
    for (const { node } of ranked) {
      if (chosen.size >= rf) break;
      if (keep.has(node.id) && !domains.has(node.domain)) take(node);
    }
  }
  for (const { node } of ranked) {
    if (chosen.size >= rf) break;
    if (!chosen.has(node.id) && !domains.has(node.domain)) take(node);
  }
  return ranked.filter((r) => chosen.has(r.node.id)).map((r) => r.node.id);
}
