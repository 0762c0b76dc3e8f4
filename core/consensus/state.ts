/**
 * The replicated state machine every replica applies committed blocks to, in height order:
 * the key-value store, and the network's own state (membership, trust scores, config,
 * exclusions, services and resources, commit-reveal tasks). Everything here is derived from
 * the ordered log alone, so every correct replica computes the same state, the same voter
 * set for the next height, and the same trust scores (DESIGN.md section 5: trust is applied
 * from the ordered outcome, never voted on separately).
 *
 * Operation classes: KV, security (`node.exclude` with evidence), trust (commit-reveal
 * outcomes) and node lifecycle (`node.join`, `node.leave`) are ordered by full BFT; service
 * and resource management (`service.set`, `resource.set`) are ordered too, but applied only
 * when the authority hierarchy allows it (the current owner, or a Full-trust voter).
 */
import type { NodeId } from "../ids.ts";
import { CommitReveal, type CrDecision } from "./commit_reveal.ts";
import { type KvResult, KvStore } from "./kv.ts";
import type { ConsensusApp } from "./tendermint.ts";
import { TRUST, TrustTable } from "./trust.ts";
import type { ClientOp, CommittedBlock, Evidence, NetOp } from "./types.ts";

export interface StateOptions {
  /** The genesis voters (trust 0.9). */
  readonly genesisVoters: readonly NodeId[];
  /** Every node that runs the protocol (voters and followers). */
  readonly peers: readonly NodeId[];
  readonly commitWindow: number;
  readonly revealWindow: number;
}

/** What applying one operation produced (for clients and observers). */
export interface Applied {
  readonly op: ClientOp;
  readonly height: number;
  readonly result: KvResult;
}

export interface StateListener {
  applied?(a: Applied): void;
  decided?(d: CrDecision): void;
  excluded?(node: NodeId, height: number, evidence: Evidence): void;
}

/** Why the evidence does not prove equivocation (null: it does). */
export function evidenceProblem(e: Evidence): string | null {
  switch (e.kind) {
    case "double-vote": {
      const { a, b } = e;
      if (a.voter !== b.voter) return "the votes are from different voters";
      if (a.t !== b.t || a.h !== b.h || a.r !== b.r) return "the votes are for different steps";
      if (a.block === b.block) return "the votes agree";
      return null;
    }
    case "double-proposal": {
      const { a, b } = e;
      if (a.proposer !== b.proposer || a.h !== b.h || a.r !== b.r) {
        return "the proposals are for different slots";
      }
      return a.block === b.block ? "the proposals agree" : null;
    }
    case "commit-reveal":
      return null; // derived by every replica from the ordered log itself
  }
}

function offender(e: Evidence): NodeId {
  return e.kind === "double-vote"
    ? e.a.voter
    : e.kind === "double-proposal"
    ? e.a.proposer
    : e.node;
}

export class ReplicatedState implements ConsensusApp {
  readonly kv = new KvStore();
  readonly trust = new TrustTable();
  readonly cr: CommitReveal;
  readonly excluded = new Map<NodeId, number>();
  readonly config = new Map<string, string>();
  readonly services = new Map<string, { owner: NodeId; value: string }>();
  readonly resources = new Map<string, { owner: NodeId; value: string }>();
  private readonly members = new Map<NodeId, string>();
  private readonly candidates: NodeId[];
  height = 0;
  lastHash = "";
  private votersCache: readonly NodeId[] | null = null;
  private readonly peerList: readonly NodeId[];

  constructor(readonly opts: StateOptions, private readonly listener: StateListener = {}) {
    this.cr = new CommitReveal({
      commitWindow: opts.commitWindow,
      revealWindow: opts.revealWindow,
    });
    this.trust.setGenesis(opts.genesisVoters);
    for (const v of opts.genesisVoters) this.members.set(v, "sclerotia");
    this.candidates = [...opts.genesisVoters].sort();
    this.peerList = [...opts.peers];
  }

  peers(): readonly NodeId[] {
    return this.peerList;
  }

  /** Voters: Sclerotia members with trust >= 0.7 that are not excluded, sorted. */
  voters(_h: number): readonly NodeId[] {
    if (!this.votersCache) {
      this.votersCache = this.candidates.filter((n) =>
        this.members.get(n) === "sclerotia" && !this.excluded.has(n) && this.trust.canVote(n)
      );
    }
    return this.votersCache;
  }

  admissible(op: ClientOp): boolean {
    if (typeof op?.id !== "string" || typeof op.client !== "string" || !op.op) return false;
    const o = op.op;
    switch (o.kind) {
      case "put":
      case "get":
      case "cas":
        return this.kv.fresh(op);
      case "node.exclude":
        return !this.excluded.has(o.node) && offender(o.evidence) === o.node &&
          evidenceProblem(o.evidence) === null;
      case "node.join":
      case "node.leave":
      case "config.set":
      case "service.set":
      case "resource.set":
      case "cr.open":
      case "cr.commit":
      case "cr.reveal":
        return true;
      default:
        return false;
    }
  }

  commit(cb: CommittedBlock): void {
    const h = cb.block.height;
    this.height = h;
    this.lastHash = cb.hash;
    for (const op of cb.block.ops) {
      const result = this.applyOp(op, h);
      this.listener.applied?.({ op, height: h, result });
    }
    this.settle(this.cr.tick(h), h);
    this.votersCache = null;
  }

  private applyOp(op: ClientOp, h: number): KvResult {
    const o = op.op;
    switch (o.kind) {
      case "put":
      case "get":
      case "cas":
        return this.kv.apply(op);
      case "cr.open":
      case "cr.commit":
      case "cr.reveal":
        this.settle(this.cr.apply(o, h), h);
        return { ok: true };
      case "node.exclude":
        if (!this.admissible(op)) return { ok: false, error: "evidence does not hold" };
        this.exclude(o.node, h, o.evidence);
        return { ok: true };
      default:
        return this.applyNetOp(o, op);
    }
  }

  private applyNetOp(o: NetOp, op: ClientOp): KvResult {
    switch (o.kind) {
      case "node.join":
        this.members.set(o.node, o.tier);
        if (o.tier === "sclerotia" && !this.candidates.includes(o.node)) {
          this.candidates.push(o.node);
          this.candidates.sort();
        }
        return { ok: true };
      case "node.leave":
        this.members.delete(o.node);
        return { ok: true };
      case "config.set":
        this.config.set(o.key, o.value);
        return { ok: true };
      case "service.set":
      case "resource.set": {
        const table = o.kind === "service.set" ? this.services : this.resources;
        const name = o.kind === "service.set" ? o.service : o.resource;
        const cur = table.get(name);
        const submitter = op.client as NodeId;
        const authority = this.trust.get(submitter) >= TRUST.ACCESS.Full &&
          this.voters(this.height + 1).includes(submitter);
        if (cur && cur.owner !== submitter && !authority) {
          return { ok: false, error: `${name} is owned by ${cur.owner}` };
        }
        table.set(name, { owner: o.owner, value: o.value });
        return { ok: true };
      }
      default:
        return { ok: false, error: `unknown operation ${(o as { kind: string }).kind}` };
    }
  }

  /** Applies commit-reveal decisions: trust deltas, and slashing for proven equivocation. */
  private settle(decisions: CrDecision[], h: number): void {
    for (const d of decisions) {
      // An excluded node stays at 0: outcomes of tasks it was an executor of do not revive it.
      this.trust.applyVerdicts(d.verdicts.filter(([n]) => !this.excluded.has(n)));
      for (const e of d.evidence) this.exclude(offender(e), h, e);
      this.listener.decided?.(d);
    }
    if (decisions.length > 0) this.votersCache = null;
  }

  private exclude(node: NodeId, h: number, e: Evidence): void {
    this.trust.slash(node);
    if (this.excluded.has(node)) return;
    this.excluded.set(node, h);
    this.votersCache = null;
    this.listener.excluded?.(node, h, e);
  }
}
