/**
 * The Primary spore (DESIGN.md section 5, Spore tiers): the consensus-ordered state
 * (membership, trust, exclusions, config) at some height, with the commit certificate of
 * that height, so any holder can check it. This module holds what the lower tiers need from
 * it: the view itself, the certificate check, and the rule for when a lower-tier claim
 * contradicts it.
 */
import { verifyVote } from "../consensus/envelope.ts";
import { toBp } from "../consensus/trust.ts";
import { type Certificate, quorum } from "../consensus/types.ts";
import type { NodeId } from "../ids.ts";
import type { NetworkId, Tier, VerifyFn } from "./types.ts";

/** The consensus-ordered state as the lower tiers see it. */
export interface PrimaryView {
  readonly network: NetworkId;
  /** The committed height this state is the result of. */
  readonly height: number;
  /**
   * Whether the caller checked the commit certificate of `height` (see
   * `certificateProblem`). An uncertified view has no authority: nothing is discarded
   * against it and it never overrides a lower tier.
   */
  readonly certified: boolean;
  /** Members and their tiers (`node.join` minus `node.leave`). */
  readonly members: ReadonlyMap<NodeId, Tier>;
  /** Trust scores of the Primary's trust table (nodes missing here are not checked). */
  readonly trust: ReadonlyMap<NodeId, number>;
  /** Excluded nodes (proven equivocation). */
  readonly excluded: ReadonlySet<NodeId>;
  readonly config: ReadonlyMap<string, string>;
}

/**
 * Why a certificate does not certify `blockHash` at `height` for `voters` (null: it does):
 * it must carry precommits for that block from at least quorum(n) distinct voters of the
 * height, every one with a valid signature.
 */
export function certificateProblem(
  cert: Certificate,
  height: number,
  blockHash: string,
  voters: readonly NodeId[],
  verify: VerifyFn,
): string | null {
  if (cert.h !== height) return `certificate is for height ${cert.h}, not ${height}`;
  if (cert.block !== blockHash) return "certificate is for another block";
  if (voters.length === 0) return "no voters at this height";
  const allowed = new Set(voters);
  const seen = new Set<NodeId>();
  for (const v of cert.votes) {
    if (v.t !== "precommit" || v.h !== cert.h || v.r !== cert.r || v.block !== cert.block) {
      return `vote of ${v.voter} is not a precommit for this block, height and round`;
    }
    if (!allowed.has(v.voter)) return `${v.voter} is not a voter at height ${height}`;
    if (seen.has(v.voter)) return `${v.voter} votes twice`;
    if (!verifyVote(v, verify)) return `signature of ${v.voter} does not verify`;
    seen.add(v.voter);
  }
  const need = quorum(voters.length);
  return seen.size >= need ? null : `${seen.size} precommits, ${need} needed`;
}

/** What a lower-tier record claims about a node. */
export interface PrimaryClaim {
  readonly node: NodeId;
  readonly tier: Tier;
  /** Omitted or null: the record makes no trust claim. */
  readonly trust?: number | null;
}

/** How a claim contradicts the Primary. */
export type Contradiction = "excluded" | "not-a-member" | "tier" | "trust";

/** Default tolerance of a trust claim against the Primary's score (see `contradiction`). */
export const DEFAULT_TRUST_TOLERANCE = 0.05;

/**
 * How `claim` contradicts the certified Primary `p` (null: it does not, or `p` is not
 * certified):
 * - the Primary excludes the node;
 * - the node is not a member but claims a serving tier (Sclerotia and Rhizomorphs join
 *   through consensus before they serve; a Hyphae client need not be a member);
 * - the node is a member of another tier;
 * - the claimed trust is further than `trustTolerance` from the Primary's score. Trust moves
 *   by at most 0.05 per decided operation, so a record signed a few heights ago differs a
 *   little; the tolerance (default 0.05, compared in integer basis points) absorbs that lag
 *   and still catches an inflated claim.
 */
export function contradiction(
  p: PrimaryView | null,
  claim: PrimaryClaim,
  trustTolerance = DEFAULT_TRUST_TOLERANCE,
): Contradiction | null {
  if (!p || !p.certified) return null;
  if (p.excluded.has(claim.node)) return "excluded";
  const tier = p.members.get(claim.node);
  if (tier === undefined) {
    if (claim.tier !== "hypha") return "not-a-member";
  } else if (tier !== claim.tier) return "tier";
  const held = p.trust.get(claim.node);
  if (held !== undefined && claim.trust !== undefined && claim.trust !== null) {
    if (Math.abs(toBp(claim.trust) - toBp(held)) > toBp(trustTolerance)) return "trust";
  }
  return null;
}
