/**
 * Modelled signatures for the consensus simulator (DESIGN.md section 2): a signature is a
 * keyed hash of the payload under a per-identity secret that only that identity's instances
 * (a node and its twin) hold. Nothing in the simulation can produce another identity's
 * signature, so forgeries fail verification exactly as Ed25519 forgeries would, at a
 * fraction of the cost.
 */
import type { NodeId } from "../../core/ids.ts";
import type { ConsensusMessage, Vote } from "../../core/consensus/types.ts";
import { votePayload } from "../../core/consensus/types.ts";
import { verifyMessage } from "../../core/consensus/envelope.ts";

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
  /** (signer, signature, payload) triples already verified: a vote reaches n - 1 nodes. */
  private readonly good = new Set<string>();
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
    const key = `${id}|${sig}|${payload}`;
    if (this.good.has(key)) return true;
    const secret = this.secrets.get(id);
    const ok = secret !== undefined && hash53(payload, secret).toString(36) === sig;
    if (ok) this.remember(key);
    return ok;
  }

  private remember(key: string): void {
    if (this.good.size >= 200_000) this.good.clear();
    this.good.add(key);
  }

  verifyVote(v: Vote): boolean {
    return this.ok(v.voter, votePayload(v), v.sig);
  }

  /** The envelope check: every signature a message carries, nested ones included. */
  verify(msg: ConsensusMessage): boolean {
    // Votes and headers are checked once per object (see `good`); the walk is shared with the node.
    const ok = verifyMessage(msg, (signer, payload, sig) => this.ok(signer, payload, sig));
    if (ok) this.verified++;
    else this.rejected++;
    return ok;
  }
}
