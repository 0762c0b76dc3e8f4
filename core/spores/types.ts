/**
 * Shared vocabulary of the spore tiers (DESIGN.md section 5, Spore tiers): node tiers, spore
 * scopes, the id schemas every spore record is validated with, and the reasons a lower-tier
 * record is discarded (counted, never thrown).
 */
import { z } from "zod";
import { isNodeId, type NodeId } from "../ids.ts";

/** The three node tiers: backbone, semi-node/relay, pure client. */
export const TIERS = ["sclerotia", "rhizomorph", "hypha"] as const;
export type Tier = typeof TIERS[number];
export const tierSchema = z.enum(TIERS);

/** The authority tiers of spores, highest first. */
export const SPORE_TIERS = ["primary", "seed", "latent"] as const;
export type SporeTier = typeof SPORE_TIERS[number];

/**
 * A spore's scope: the whole network ("master") or one service ("service:<name>"). Scope is
 * part of every signed payload, so a record cannot be replayed into another scope.
 */
export type Scope = string;
export const MASTER_SCOPE: Scope = "master";
export const scopeSchema = z.string().regex(
  /^(master|service:[A-Za-z0-9._/-]{1,128})$/,
  'expected "master" or "service:<name>"',
);

/** NetworkId = first 16 bytes of sha256(genesis public key), hex (as NodeId). */
export type NetworkId = string;
export const networkIdSchema = z.string().regex(/^[0-9a-f]{32}$/, "expected a network id");
export const nodeIdSchema = z.string().refine(isNodeId, "expected a node id (32 hex characters)")
  .transform((s) => s as NodeId);

/** A trust score as carried in spores: [0, 1]. */
export const trustSchema = z.number().min(0).max(1);

/** Checks one signature: `sig` by `signer` over `payload` (modelled in sim, Ed25519 in node). */
export type VerifyFn = (signer: NodeId, payload: string, sig: string) => boolean;
/** Signs a canonical payload with this node's key. */
export type SignFn = (payload: string) => string;

/**
 * Why a lower-tier record was discarded:
 * - `wrong-network`: from another network;
 * - `wrong-scope`: signed for another scope (master vs a service);
 * - `future-dated`: dated beyond the skew bound of the receiver's clock;
 * - `stale`: older than what we hold (a replay of an old record, or below the bounded map's
 *   horizon);
 * - `duplicate`: exactly what we hold (normal gossip redundancy, counted separately so that
 *   `stale` stays a signal);
 * - `forged`: the signature does not verify;
 * - `contradicts-primary`: claims a membership, tier or trust the newest certified Primary
 *   says otherwise about, or is about a node the Primary excludes.
 */
export const DISCARD_REASONS = [
  "wrong-network",
  "wrong-scope",
  "future-dated",
  "stale",
  "duplicate",
  "forged",
  "contradicts-primary",
] as const;
export type DiscardReason = typeof DISCARD_REASONS[number];
export type DiscardCounts = Record<DiscardReason, number>;

export function emptyDiscardCounts(): DiscardCounts {
  return {
    "wrong-network": 0,
    "wrong-scope": 0,
    "future-dated": 0,
    "stale": 0,
    "duplicate": 0,
    "forged": 0,
    "contradicts-primary": 0,
  };
}

/** Adds every count of `b` into `a` (mutates and returns `a`). */
export function addDiscardCounts(a: DiscardCounts, b: Readonly<DiscardCounts>): DiscardCounts {
  for (const r of DISCARD_REASONS) a[r] += b[r];
  return a;
}

export function totalDiscarded(c: Readonly<DiscardCounts>): number {
  let n = 0;
  for (const r of DISCARD_REASONS) n += c[r];
  return n;
}

/** Byte-wise (code unit) string order, independent of locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
