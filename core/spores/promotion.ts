/**
 * Rhizomorph promotion to Dynamic Sclerotia and demotion (DESIGN.md section 5, Spore tiers):
 * the pure eligibility rules. The promotion itself is an operation ordered by consensus
 * (joining the voter set is a BFT operation); these functions only say whether a node
 * qualifies, so that proposer and voters apply the same rule.
 */

export interface PromotionRule {
  /** Trust from the certified Primary, at least (the vote threshold, 0.7). */
  readonly minTrust: number;
  /** Continuous uptime, at least (ms). */
  readonly minUptimeMs: number;
  /** Spare capacity (0..1), at least. */
  readonly minCapacity: number;
  /** A Dynamic Sclerotium whose trust falls below this is demoted. */
  readonly demoteBelowTrust: number;
}

export interface PromotionStatus {
  readonly trust: number;
  /** Continuous uptime (ms); 0 while down. */
  readonly uptimeMs: number;
  /** Spare capacity (0..1). */
  readonly capacity: number;
}

/** Whether a Rhizomorph qualifies for promotion. */
export function promotionEligible(s: PromotionStatus, r: PromotionRule): boolean {
  return s.trust >= r.minTrust && s.uptimeMs >= r.minUptimeMs && s.capacity >= r.minCapacity;
}

/** Whether a Dynamic Sclerotium is demoted: trust below the bound, or down longer than minUptime. */
export function demotionDue(
  trust: number,
  downForMs: number | null,
  r: PromotionRule,
): boolean {
  return trust < r.demoteBelowTrust || (downForMs !== null && downForMs > r.minUptimeMs);
}

/** Spare capacity of a node with `capacity` (0..1) of which `usage` (0..1) is used. */
export function spareCapacity(capacity: number, usage: number): number {
  const c = Math.min(1, Math.max(0, capacity));
  const u = Math.min(1, Math.max(0, usage));
  return c * (1 - u);
}
