/**
 * Modelled signatures for the consensus simulator (DESIGN.md section 2): a signature is a
 * keyed hash of the payload under a per-identity secret that only that identity's instances
 * (a node and its twin) hold. Nothing in the simulation can produce another identity's
 * signature, so forgeries fail verification exactly as Ed25519 forgeries would, at a
 * fraction of the cost.
 */
import type { NodeId } from "../../core/ids.ts";
import type {
  CommittedBlock,
  ConsensusMessage,
  Evidence,
  SignedProposalHeader,
  Vote,
} from "../../core/consensus/types.ts";
import { proposalPayload, votePayload } from "../../core/consensus/types.ts";

/** cyrb53-style 53-bit string hash, seeded. */
function hash53(s: string, seed: number): number {
  let h1 = 0xdeadbeef ^ seed, h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

export class SignatureModel {
  private readonly secrets = new Map<NodeId, number>();
  /**
   * Records already verified. The simulator hands the same immutable record object to every
   * receiver, so checking it once is checking its bytes once; a forged copy is a new object.
   */
  private readonly good = new WeakSet<object>();
  verified = 0;
  rejected = 0;

  /** Registers an identity's secret (drawn from the run's seeded stream). */
  register(id: NodeId, secret: number): void {
    this.secrets.set(id, secret >>> 0);
  }

  sign(id: NodeId, payload: string): string {
    const secret = this.secrets.get(id);
    if (secret === undefined) throw new Error(`no key for ${id}`);
    return hash53(payload, secret).toString(36);
  }

  private ok(id: NodeId, payload: string, sig: string): boolean {
    const secret = this.secrets.get(id);
    return secret !== undefined && hash53(payload, secret).toString(36) === sig;
  }

  verifyVote(v: Vote): boolean {
    if (this.good.has(v)) return true;
    const ok = this.ok(v.voter, votePayload(v), v.sig);
    if (ok) this.good.add(v);
    return ok;
  }

  verifyProposalHeader(p: SignedProposalHeader): boolean {
    if (this.good.has(p)) return true;
    const ok = this.ok(p.proposer, proposalPayload(p), p.sig);
    if (ok) this.good.add(p);
    return ok;
  }

  private verifyEvidence(e: Evidence): boolean {
    if (e.kind === "double-vote") return this.verifyVote(e.a) && this.verifyVote(e.b);
    if (e.kind === "double-proposal") {
      return this.verifyProposalHeader(e.a) && this.verifyProposalHeader(e.b);
    }
    return true;
  }

  private verifyCommitted(cb: CommittedBlock): boolean {
    return cb.cert.votes.every((v) => this.verifyVote(v));
  }

  /** The envelope check: every signature a message carries, nested ones included. */
  verify(msg: ConsensusMessage): boolean {
    let ok: boolean;
    switch (msg.t) {
      case "prevote":
      case "precommit":
        ok = this.verifyVote(msg);
        break;
      case "proposal":
        ok = this.verifyProposalHeader(msg) &&
          (msg.body?.ops ?? []).every((o) =>
            o.op.kind !== "node.exclude" || this.verifyEvidence(o.op.evidence)
          );
        break;
      case "sync-resp":
        ok = msg.blocks.every((b) => this.verifyCommitted(b));
        break;
      default:
        ok = true;
    }
    if (ok) this.verified++;
    else this.rejected++;
    return ok;
  }
}
