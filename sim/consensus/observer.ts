/**
 * Online consensus checkers, fed every commit of every instance as it happens:
 * - agreement: no two correct nodes commit different blocks at one height;
 * - no-fork: each node's block at height h links to its block at h - 1;
 * - monotonic: each node commits 1, 2, 3, ... in order, each height once;
 * - certificates: each committed block carries 2f+1 valid precommits from that height's voters;
 * - validity: a committed block holds only operations that were submitted (or proven evidence).
 * The first violation is kept (the simulator stops there).
 */
import { certificateProblem } from "../../core/consensus/tendermint.ts";
import { evidenceProblem } from "../../core/consensus/state.ts";
import type { ClientOp, CommittedBlock, Vote } from "../../core/consensus/types.ts";
import type { NodeId } from "../../core/ids.ts";
import type { Violation } from "../membership_observer.ts";

/** Checks a precommit's signature: modelled in the simulator, Ed25519 on a real cluster. */
export interface VoteVerifier {
  verifyVote(v: Vote): boolean;
}

export interface CommitContext {
  /** Instance index and name (twins have their own). */
  readonly instance: number;
  readonly name: string;
  /** Correct: neither Byzantine nor one of a pair of twins. */
  readonly correct: boolean;
  /** The voters of this height in the committing node's own state. */
  readonly voters: readonly NodeId[];
}

export class ConsensusObserver {
  violation: Violation | null = null;
  /** The block hash correct nodes committed at each height (index h - 1). */
  readonly canonical: string[] = [];
  private readonly canonicalBy: string[] = [];
  private readonly lastHeight: number[] = [];
  private readonly lastHash: string[] = [];
  /** Operation ids that clients and executors submitted. */
  readonly submitted = new Set<string>();
  /**
   * Whether someone submitted `op` (default: its id is in `submitted`). A real cluster's
   * nodes assign ids themselves, so there the runner recognises its clients' values.
   */
  isSubmitted: (op: ClientOp) => boolean = (op) => this.submitted.has(op.id);
  /** Commits seen (all instances). */
  commits = 0;

  constructor(
    private readonly sigs: VoteVerifier,
    private readonly enabled: ReadonlySet<string>,
  ) {}

  private fail(check: string, detail: string): void {
    if (!this.violation && this.enabled.has(check)) this.violation = { check, detail };
  }

  /** A node that restarts from its durable log starts its chain checks over. */
  restarted(instance: number): void {
    this.lastHeight[instance] = 0;
    this.lastHash[instance] = "";
  }

  onCommit(ctx: CommitContext, cb: CommittedBlock, replay: boolean): void {
    this.commits++;
    const h = cb.block.height;
    const last = this.lastHeight[ctx.instance] ?? 0;
    if (h !== last + 1) {
      this.fail(
        "consensus.monotonic",
        `${ctx.name} committed height ${h} after height ${last}`,
      );
    }
    const prevHash = this.lastHash[ctx.instance] ?? "";
    if (h === last + 1 && cb.block.parent !== prevHash) {
      this.fail(
        "consensus.no-fork",
        `${ctx.name}'s block ${h} links to ${
          cb.block.parent.slice(0, 12)
        }, not its block ${last} ` +
          `(${prevHash.slice(0, 12)})`,
      );
    }
    this.lastHeight[ctx.instance] = h;
    this.lastHash[ctx.instance] = cb.hash;
    if (replay) return; // the durable log replayed at restart was checked when first committed
    const problem = certificateProblem(cb.cert, cb.hash, h, ctx.voters) ??
      (cb.cert.votes.every((v) => this.sigs.verifyVote(v))
        ? null
        : "a precommit's signature does not verify");
    if (problem) {
      this.fail("consensus.certificates", `${ctx.name} committed height ${h}: ${problem}`);
    }
    for (const op of cb.block.ops) {
      if (op.op.kind === "node.exclude") {
        const why = evidenceProblem(op.op.evidence);
        if (why) this.fail("consensus.validity", `height ${h} excludes on bad evidence: ${why}`);
      } else if (!this.isSubmitted(op)) {
        this.fail(
          "consensus.validity",
          `${ctx.name} committed operation ${op.id} at height ${h}, which nobody submitted`,
        );
      }
    }
    if (!ctx.correct) return;
    const known = this.canonical[h - 1];
    if (known === undefined) {
      this.canonical[h - 1] = cb.hash;
      this.canonicalBy[h - 1] = ctx.name;
    } else if (known !== cb.hash) {
      this.fail(
        "consensus.agreement",
        `${ctx.name} committed ${cb.hash.slice(0, 12)} at height ${h}, but ` +
          `${this.canonicalBy[h - 1]} committed ${known.slice(0, 12)}`,
      );
    }
  }

  /** Highest height every correct node agreed on so far. */
  get height(): number {
    return this.canonical.length;
  }
}
