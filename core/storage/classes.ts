/**
 * Storage classes (DESIGN.md section 5, Storage): which nodes may hold a replica of an
 * object's chunks. Trust is compared in integer basis points (as the trust table keeps it),
 * so 0.7 is eligible for a 0.7 class however the float was computed. Hyphae are pure clients
 * and never hold replicas; Standard and Public objects may live on Sclerotia and Rhizomorphs.
 */
import { z } from "zod";
import { toBp } from "../consensus/trust.ts";
import type { Tier } from "../spores/types.ts";

export const STORAGE_CLASS_NAMES = ["Critical", "Sensitive", "Standard", "Public"] as const;
export type StorageClass = typeof STORAGE_CLASS_NAMES[number];
export const storageClassSchema = z.enum(STORAGE_CLASS_NAMES);

export interface StorageClassRule {
  /** Least trust score of a replica holder. */
  readonly minTrust: number;
  /** Tiers that may hold replicas. */
  readonly tiers: readonly Tier[];
  /** Chunks are stored encrypted (the object is encrypted before it is split). */
  readonly encrypted: boolean;
}

export const STORAGE_CLASSES: Readonly<Record<StorageClass, StorageClassRule>> = Object.freeze({
  Critical: Object.freeze({ minTrust: 0.9, tiers: Object.freeze(["sclerotia"]), encrypted: true }),
  Sensitive: Object.freeze({
    minTrust: 0.7,
    tiers: Object.freeze(["sclerotia", "rhizomorph"]),
    encrypted: true,
  }),
  Standard: Object.freeze({
    minTrust: 0.5,
    tiers: Object.freeze(["sclerotia", "rhizomorph"]),
    encrypted: false,
  }),
  Public: Object.freeze({
    minTrust: 0.1,
    tiers: Object.freeze(["sclerotia", "rhizomorph"]),
    encrypted: false,
  }),
} as Record<StorageClass, StorageClassRule>);

export function requiresEncryption(cls: StorageClass): boolean {
  return STORAGE_CLASSES[cls].encrypted;
}

/** What eligibility looks at. */
export interface HolderFacts {
  readonly tier: Tier;
  readonly trust: number;
  /** Excluded by the Primary: never eligible. */
  readonly excluded?: boolean;
}

/** Why a node may not hold a replica of `cls` (null: it may). */
export function ineligibility(cls: StorageClass, n: HolderFacts): string | null {
  const rule = STORAGE_CLASSES[cls];
  if (n.excluded) return "excluded";
  if (!rule.tiers.includes(n.tier)) return `tier ${n.tier} may not hold ${cls} data`;
  if (!Number.isFinite(n.trust) || toBp(n.trust) < toBp(rule.minTrust)) {
    return `trust ${n.trust} below ${rule.minTrust}`;
  }
  return null;
}

export function eligibleFor(cls: StorageClass, n: HolderFacts): boolean {
  return ineligibility(cls, n) === null;
}
