/**
 * Vote bookkeeping for one height: who voted what in each (round, type), tallies per block,
 * and proof when a voter signs two different votes for one (height, round, type).
 */
import type { NodeId } from "../ids.ts";
import type { Evidence, Vote, VoteType } from "./types.ts";

const NIL = "nil";

/** The votes of one type in one round. */
export class RoundVotes {
  readonly byVoter = new Map<NodeId, Vote>();
  private readonly tally = new Map<string, number>();

  /** Adds a vote; returns evidence if the voter already voted differently here. */
  add(v: Vote): { added: boolean; evidence: Evidence | null } {
    const prev = this.byVoter.get(v.voter);
    if (prev) {
      if (prev.block === v.block) return { added: false, evidence: null };
      return { added: false, evidence: { kind: "double-vote", a: prev, b: v } };
    }
    this.byVoter.set(v.voter, v);
    const k = v.block ?? NIL;
    this.tally.set(k, (this.tally.get(k) ?? 0) + 1);
    return { added: true, evidence: null };
  }

  get total(): number {
    return this.byVoter.size;
  }

  /** Votes for this block hash (null: nil). */
  count(block: string | null): number {
    return this.tally.get(block ?? NIL) ?? 0;
  }

  /** A block hash (not nil) with at least `q` votes, if any. */
  majority(q: number): string | null {
    for (const [k, n] of this.tally) if (k !== NIL && n >= q) return k;
    return null;
  }

  /** The votes for `block`, sorted by voter (a certificate's order). */
  votesFor(block: string | null): Vote[] {
    return [...this.byVoter.values()].filter((v) => v.block === block)
      .sort((a, b) => (a.voter < b.voter ? -1 : a.voter > b.voter ? 1 : 0));
  }
}

/** Every vote of one height, by round and type. */
export class HeightVotes {
  private readonly rounds = new Map<number, { prevote: RoundVotes; precommit: RoundVotes }>();
  /** Voters heard from in each round (any message): f+1 of them in a later round skip ahead. */
  private readonly heard = new Map<number, Set<NodeId>>();

  round(r: number): { prevote: RoundVotes; precommit: RoundVotes } {
    let x = this.rounds.get(r);
    if (!x) {
      x = { prevote: new RoundVotes(), precommit: new RoundVotes() };
      this.rounds.set(r, x);
    }
    return x;
  }

  get(r: number, t: VoteType): RoundVotes {
    return this.round(r)[t];
  }

  hear(r: number, from: NodeId): number {
    let s = this.heard.get(r);
    if (!s) {
      s = new Set();
      this.heard.set(r, s);
    }
    s.add(from);
    return s.size;
  }

  roundsSeen(): number[] {
    return [...this.rounds.keys()].sort((a, b) => a - b);
  }
}
