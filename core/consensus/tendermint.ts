/**
 * Tendermint-style BFT ordering (Buchman, Kwon, Milosevic, "The latest gossip on BFT
 * consensus", 2018, Algorithm 1): heights and rounds, round-robin proposers, propose /
 * prevote / precommit with locking and the valid-value rule, timeouts growing per round,
 * blocks that batch client operations, commits carrying 2f+1 precommits (a certificate),
 * catch-up by fetching certified blocks, and a durable record of every signed vote so that a
 * restarted voter never signs a conflicting one.
 *
 * Sans-IO: the host signs records (`sign`) and delivers only records whose signatures it has
 * verified; the core checks everything else (voter sets, heights, hashes, quorums,
 * certificate structure). The application (`ConsensusApp`) supplies the voter set of each
 * height from its committed state and receives committed blocks in height order.
 */
import type { Host } from "../host.ts";
import type { NodeId } from "../ids.ts";
import { type ConsensusConfig, roundTimeout } from "./config.ts";
import {
  type Block,
  blockHash,
  type Certificate,
  type ClientOp,
  type CommittedBlock,
  type ConsensusMessage,
  type Evidence,
  type Proposal,
  proposalPayload,
  quorum,
  type Vote,
  votePayload,
  type VoteType,
} from "./types.ts";
import { HeightVotes } from "./votes.ts";

export interface ConsensusHost extends Host<ConsensusMessage> {
  /** Signs a record's canonical payload with this node's key. */
  sign(payload: string): string;
}

export interface ConsensusApp {
  /** Every node that takes part (voters and followers): messages go to all of them. */
  peers(): readonly NodeId[];
  /** The voters of height h, sorted, from the committed state after height h - 1. */
  voters(h: number): readonly NodeId[];
  /** Whether an operation may go into a block (well-formed, not yet committed). */
  admissible(op: ClientOp): boolean;
  /** A committed block, exactly once per height, in height order. */
  commit(cb: CommittedBlock): void;
  /** Proof of equivocation seen by this node (the app turns it into an exclusion). */
  evidence?(e: Evidence): void;
}

type Step = "propose" | "prevote" | "precommit";

/** What a voter signed at its current height; written (and synced) before anything is sent. */
interface SignedRecord {
  h: number;
  votes: Record<string, Vote>;
  proposals: Record<string, Proposal>;
  locked: { r: number; block: Block | null };
  valid: { r: number; block: Block | null };
}

const K_HEIGHT = "cons/height";
const K_SIGNED = "cons/signed";
const kBlock = (h: number) => `cons/block/${h}`;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Structural check of a certificate against a voter set: 2f+1 distinct voters' precommits. */
export function certificateProblem(
  cert: Certificate,
  hash: string,
  height: number,
  voters: readonly NodeId[],
): string | null {
  if (cert.h !== height) return `certificate is for height ${cert.h}, not ${height}`;
  if (cert.block !== hash) return "certificate is for another block";
  const set = new Set(voters);
  const seen = new Set<NodeId>();
  for (const v of cert.votes) {
    if (v.t !== "precommit" || v.h !== cert.h || v.r !== cert.r || v.block !== hash) {
      return `certificate holds a vote that is not a precommit for the block (${v.voter})`;
    }
    if (!set.has(v.voter)) return `certificate holds a vote from a non-voter (${v.voter})`;
    seen.add(v.voter);
  }
  const q = quorum(voters.length);
  if (seen.size < q) return `certificate has ${seen.size} distinct voters, needs ${q}`;
  return null;
}

/** A node that signs nothing (not a voter, or idle) still syncs its log this often. */
const BLOCKS_PER_SYNC = 64;
const BLOCK_SYNC_DELAY_MS = 100;

/** How many heights ahead a node buffers proposals and votes. */
const FUTURE_HEIGHTS = 8;

export class Tendermint {
  private host!: ConsensusHost;
  private stopped = false;
  /** The height being decided (committed height + 1). */
  h = 1;
  round = 0;
  step: Step = "propose";
  private lastHash = "";
  private votes = new HeightVotes();
  /** Proposals of this height by round (the first valid one from the round's proposer). */
  private proposals = new Map<number, Proposal>();
  private signed: SignedRecord = emptyRecord(1);
  private prevoteTimerSet = new Set<number>();
  private precommitTimerSet = new Set<number>();
  private awaitingOps = false;
  private future: Array<Extract<ConsensusMessage, { h: number }>> = [];
  private lastSyncReq = -Infinity;
  private readonly mempool = new Map<string, ClientOp>();
  /** Operations handed to this node directly, still uncommitted: id -> when last relayed. */
  private readonly own = new Map<string, number>();
  private readonly pendingEvidence = new Map<string, ClientOp>();
  private votersCache: { h: number; list: readonly NodeId[]; set: Set<NodeId> } | null = null;
  /** Round changes over the run (a metric), and committed heights. */
  roundsStarted = 0;

  constructor(readonly config: ConsensusConfig, readonly app: ConsensusApp) {}

  // ---- lifecycle ----

  start(host: ConsensusHost): void {
    this.host = host;
    this.enter(() => this.begin());
  }

  private begin(): void {
    const host = this.host;
    const st = host.storage;
    const hRaw = st.get(K_HEIGHT);
    const committed = hRaw ? Number(dec.decode(hRaw)) : 0;
    // Replay the durable log into the (fresh) application.
    for (let h = 1; h <= committed; h++) {
      const raw = st.get(kBlock(h));
      if (!raw) break;
      const cb = JSON.parse(dec.decode(raw)) as CommittedBlock;
      this.app.commit(cb);
      this.lastHash = cb.hash;
      this.h = h + 1;
    }
    const sRaw = st.get(K_SIGNED);
    if (sRaw) {
      const rec = JSON.parse(dec.decode(sRaw)) as SignedRecord;
      if (rec.h === this.h) this.signed = rec;
    }
    if (this.signed.h !== this.h) this.signed = emptyRecord(this.h);
    this.startRound(0);
  }

  stop(): void {
    this.stopped = true;
  }

  /** Committed height. */
  get committedHeight(): number {
    return this.h - 1;
  }

  /** Operations waiting for a block. */
  get pending(): number {
    return this.mempool.size;
  }

  /** A committed block from the durable log, if this node has it. */
  committedBlock(h: number): CommittedBlock | null {
    const raw = this.host.storage.get(kBlock(h));
    return raw ? JSON.parse(dec.decode(raw)) as CommittedBlock : null;
  }

  // ---- voters ----

  private voters(h = this.h): { list: readonly NodeId[]; set: Set<NodeId> } {
    if (this.votersCache?.h !== h) {
      const list = this.app.voters(h);
      this.votersCache = { h, list, set: new Set(list) };
    }
    return this.votersCache;
  }

  proposer(h: number, r: number): NodeId {
    const list = this.voters(h).list;
    return list[(h + r) % list.length];
  }

  private get isVoter(): boolean {
    return this.voters().set.has(this.host.self);
  }

  private get q(): number {
    return quorum(this.voters().list.length);
  }

  // ---- client operations ----

  /** A client operation handed to this node directly (the node's API). */
  submit(op: ClientOp): boolean {
    return this.enter(() => this.submitNow(op));
  }

  private submitNow(op: ClientOp): boolean {
    if (!this.addToMempool(op)) return false;
    this.relay(op);
    if (this.own.size === 0) this.host.setTimer("resubmit", this.resendInterval());
    this.own.set(op.id, this.host.now());
    return true;
  }

  private relay(op: ClientOp): void {
    for (const p of this.app.peers()) {
      if (p !== this.host.self) this.post(p, { t: "submit", op });
    }
  }

  /**
   * Relays this node's own uncommitted operations again. A relay sent while the links to
   * the proposers were down (a restart, a partition) is lost, and while heights advance the
   * round-0 resend never fires; without this such an operation waits for this node's turn
   * to propose, or forever if it is not a voter.
   */
  private resubmit(): void {
    const now = this.host.now();
    const every = this.resendInterval();
    for (const [id, sent] of this.own) {
      const op = this.mempool.get(id);
      if (!op) this.own.delete(id);
      else if (now - sent >= every) {
        this.own.set(id, now);
        this.relay(op);
        this.host.metrics.inc("mycelium_consensus_resubmits_total");
      }
    }
    if (this.own.size > 0) this.host.setTimer("resubmit", every);
  }

  /** Whether an operation with this id waits in this node's mempool. */
  hasPending(id: string): boolean {
    return this.mempool.has(id);
  }

  private addToMempool(op: ClientOp): boolean {
    if (this.mempool.has(op.id) || !this.app.admissible(op)) return false;
    this.mempool.set(op.id, op);
    if (this.awaitingOps && this.step === "propose") {
      this.awaitingOps = false;
      this.host.cancelTimer(`build:${this.h}:${this.round}`);
      this.propose();
    }
    return true;
  }

  // ---- rounds ----

  private startRound(r: number): void {
    if (this.stopped) return;
    if (r === 0) this.host.setTimer(`resend:${this.h}:0`, this.resendInterval());
    this.round = r;
    this.step = "propose";
    this.awaitingOps = false;
    this.roundsStarted++;
    this.host.metrics.set("mycelium_consensus_height", this.h);
    this.host.metrics.set("mycelium_consensus_round", r);
    if (r > 0) {
      this.host.metrics.inc("mycelium_consensus_round_changes_total");
      // What the previous round lacked: the first thing to read when rounds fail on a LAN.
      const prev = this.votes.get(r - 1, "prevote"), pc = this.votes.get(r - 1, "precommit");
      this.host.log.log("info", "round_change", {
        h: this.h,
        r,
        proposal: this.proposals.has(r - 1),
        prevotes: prev.total,
        prevotesNil: prev.count(null),
        precommits: pc.total,
        precommitsNil: pc.count(null),
        mempool: this.mempool.size,
      });
    }
    if (this.isVoter && this.proposer(this.h, r) === this.host.self) {
      const again = this.signed.proposals[String(r)];
      if (again) {
        this.broadcast({ t: "proposal", ...again });
      } else if (
        this.signed.valid.block || this.mempool.size > 0 || this.pendingEvidence.size > 0 ||
        this.config.emptyBlockDelayMs === 0
      ) {
        this.propose();
      } else {
        this.awaitingOps = true;
        this.host.setTimer(`build:${this.h}:${r}`, this.config.emptyBlockDelayMs);
      }
    }
    this.host.setTimer(`propose:${this.h}:${r}`, this.timeout(this.config.proposeTimeoutMs, r));
    // Messages of this round may already be here.
    this.reevaluate();
  }

  private timeout(base: number, r: number): number {
    return roundTimeout(base, this.config.timeoutGrowth, r);
  }

  private propose(): void {
    const r = this.round;
    const block = this.signed.valid.block ?? this.buildBlock();
    const validRound = this.signed.valid.block ? this.signed.valid.r : -1;
    const hash = blockHash(block);
    const header = { h: this.h, r, block: hash, validRound, proposer: this.host.self };
    const p: Proposal = { ...header, sig: this.host.sign(proposalPayload(header)), body: block };
    this.signed.proposals[String(r)] = p;
    this.persistSigned();
    this.broadcast({ t: "proposal", ...p });
  }

  private buildBlock(): Block {
    const ops: ClientOp[] = [];
    const accused = new Set<string>();
    for (const [key, ev] of this.pendingEvidence) {
      const node = (ev.op as { node: string }).node;
      if (!this.app.admissible(ev)) this.pendingEvidence.delete(key); // already excluded
      else if (!accused.has(node)) {
        accused.add(node); // one exclusion per offender and block is enough
        ops.push(ev);
      }
    }
    for (const op of this.mempool.values()) {
      if (ops.length >= this.config.maxBatch) break;
      if (this.app.admissible(op)) ops.push(op);
    }
    return {
      height: this.h,
      parent: this.lastHash,
      proposer: this.host.self,
      time: Math.round(this.host.now()),
      ops: ops.slice(0, this.config.maxBatch),
    };
  }

  private validBlock(b: Block): boolean {
    if (b.height !== this.h || b.parent !== this.lastHash) return false;
    if (!Array.isArray(b.ops) || b.ops.length > this.config.maxBatch) return false;
    const ids = new Set<string>();
    for (const op of b.ops) {
      if (ids.has(op.id) || !this.app.admissible(op)) return false;
      ids.add(op.id);
    }
    return this.voters().set.has(b.proposer);
  }

  // ---- messages ----

  onMessage(from: NodeId, msg: ConsensusMessage): void {
    this.enter(() => this.handle(from, msg));
  }

  private handle(from: NodeId, msg: ConsensusMessage): void {
    if (this.stopped) return;
    switch (msg.t) {
      case "submit":
        this.addToMempool(msg.op);
        return;
      case "sync-req":
        this.onSyncRequest(from, msg.from);
        return;
      case "sync-resp":
        this.onSyncResponse(msg.blocks);
        return;
      case "proposal":
      case "prevote":
      case "precommit":
        break;
    }
    const h = msg.h;
    if (h < this.h) return; // decided already
    if (h > this.h) {
      // A node that fell a few heights behind (quorum moves on without the slowest) keeps
      // the proposals and votes of the next heights: with them it commits those heights
      // itself, and, proposer of the next one, proposes at once instead of after the other
      // voters' propose timeout.
      if (
        h <= this.h + FUTURE_HEIGHTS &&
        this.future.length < FUTURE_HEIGHTS * 4 * this.voters().list.length
      ) {
        this.future.push(msg);
      }
      this.requestSync(from);
      return;
    }
    if (msg.t === "proposal") this.onProposal(msg);
    else this.onVote(msg);
  }

  private onProposal(p: Proposal): void {
    if (p.r < 0 || p.proposer !== this.proposer(p.h, p.r)) return;
    if (!p.body || blockHash(p.body) !== p.block) return;
    const prev = this.proposals.get(p.r);
    if (prev) {
      if (prev.block !== p.block) {
        const { body: _a, ...a } = prev;
        const { body: _b, ...b } = p;
        this.reportEvidence({ kind: "double-proposal", a, b }, `${p.proposer}/${p.h}/${p.r}/p`);
      }
      return;
    }
    if (!this.validBlock(p.body)) {
      this.host.metrics.inc("mycelium_consensus_invalid_proposals_total");
      return;
    }
    this.proposals.set(p.r, p);
    for (const r of this.votes.roundsSeen()) if (this.tryCommit(r)) return;
    if (p.r > this.round) this.heard(p.r, p.proposer);
    if (p.r === this.round) this.reevaluate();
  }

  private onVote(v: Vote): void {
    if (!this.voters().set.has(v.voter) || v.r < 0) return;
    const { added, evidence } = this.votes.get(v.r, v.t).add(v);
    if (evidence) this.reportEvidence(evidence, `${v.voter}/${v.h}/${v.r}/${v.t}`);
    if (!added) return;
    if (v.t === "precommit" && this.tryCommit(v.r)) return;
    if (v.r > this.round) this.heard(v.r, v.voter);
    // Votes of an earlier round matter only to the valid-round rule of the current proposal.
    if (
      v.r === this.round ||
      (this.step === "propose" && this.proposals.get(this.round)?.validRound === v.r)
    ) {
      this.reevaluate();
    }
  }

  /** Commits if round r holds 2f+1 precommits for a block whose proposal we have. */
  private tryCommit(r: number): boolean {
    const pcs = this.votes.get(r, "precommit");
    const target = pcs.majority(this.q);
    if (target === null) return false;
    for (const p of this.proposals.values()) {
      if (p.block === target) {
        this.decide(p.body, target, r);
        return true;
      }
    }
    this.requestSync(pcs.votesFor(target)[0].voter);
    return false;
  }

  /** f+1 voters heard from in a later round: skip to it (they cannot all be faulty). */
  private heard(r: number, voter: NodeId): void {
    const n = this.votes.hear(r, voter);
    const skip = this.voters().list.length - this.q + 1;
    if (r > this.round && n >= skip) this.startRound(r);
  }

  private reportEvidence(e: Evidence, key: string): void {
    if (this.pendingEvidence.has(key)) return;
    const voter = e.kind === "double-vote"
      ? e.a.voter
      : e.kind === "double-proposal"
      ? e.a.proposer
      : e.node;
    this.host.metrics.inc("mycelium_consensus_equivocations_total");
    this.host.log.log("warn", "equivocation", { voter, key });
    this.pendingEvidence.set(key, {
      id: `evidence/${key}`,
      client: "consensus",
      op: { kind: "node.exclude", node: voter, evidence: e },
    });
    this.app.evidence?.(e);
  }

  /** Applies every rule of Algorithm 1 whose condition now holds (each at most once). */
  private reevaluate(): void {
    for (let guard = 0; guard < 16 && !this.stopped; guard++) {
      const before = `${this.h}/${this.round}/${this.step}`;
      this.rules();
      if (`${this.h}/${this.round}/${this.step}` === before) return;
    }
  }

  /**
   * One pass over the rules of the current round (commits are checked where precommits and
   * proposals arrive); returns after the first one that acts (the caller loops), and
   * moves to the new step *before* signing, since delivering our own vote can complete the
   * height re-entrantly.
   */
  private rules(): void {
    const h = this.h, r = this.round, q = this.q;
    const proposal = this.proposals.get(r);
    const prevotes = this.votes.get(r, "prevote");
    if (this.step === "propose" && proposal) {
      const { lockedRound, lockedHash } = this.lock();
      if (proposal.validRound === -1) {
        const ok = lockedRound === -1 || lockedHash === proposal.block;
        this.step = "prevote";
        this.castVote("prevote", ok ? proposal.block : null);
        return;
      }
      if (proposal.validRound < r) {
        const vr = this.votes.get(proposal.validRound, "prevote");
        if (vr.count(proposal.block) >= q) {
          const ok = lockedRound <= proposal.validRound || lockedHash === proposal.block;
          this.step = "prevote";
          this.castVote("prevote", ok ? proposal.block : null);
          return;
        }
      }
    }
    if (this.step === "prevote" && prevotes.total >= q && !this.prevoteTimerSet.has(r)) {
      this.prevoteTimerSet.add(r);
      this.host.setTimer(`prevote:${h}:${r}`, this.timeout(this.config.prevoteTimeoutMs, r));
    }
    if (proposal && this.step !== "propose" && prevotes.count(proposal.block) >= q) {
      if (this.step === "prevote") {
        this.signed.locked = { r, block: proposal.body };
        this.signed.valid = { r, block: proposal.body };
        this.step = "precommit";
        this.castVote("precommit", proposal.block);
        return;
      }
      if (this.signed.valid.r < r) {
        this.signed.valid = { r, block: proposal.body };
        this.persistSigned();
      }
    }
    if (this.step === "prevote" && prevotes.count(null) >= q) {
      this.step = "precommit";
      this.castVote("precommit", null);
      return;
    }
    const precommits = this.votes.get(r, "precommit");
    if (precommits.total >= q && !this.precommitTimerSet.has(r)) {
      this.precommitTimerSet.add(r);
      this.host.setTimer(`precommit:${h}:${r}`, this.timeout(this.config.precommitTimeoutMs, r));
    }
  }

  private lock(): { lockedRound: number; lockedHash: string | null } {
    const l = this.signed.locked;
    return { lockedRound: l.r, lockedHash: l.block ? blockHash(l.block) : null };
  }

  /** Signs (once per round and type, ever) and broadcasts a vote; a re-vote re-sends the old. */
  private castVote(t: VoteType, block: string | null): void {
    if (!this.isVoter) return;
    const key = `${this.round}/${t}`;
    let vote = this.signed.votes[key];
    if (!vote) {
      const body = { t, h: this.h, r: this.round, block, voter: this.host.self };
      vote = { ...body, sig: this.host.sign(votePayload(body)) };
      this.signed.votes[key] = vote;
      this.persistSigned();
    }
    this.broadcast(vote);
  }

  private broadcast(msg: ConsensusMessage): void {
    for (const p of this.app.peers()) if (p !== this.host.self) this.post(p, msg);
    // Our own records count like everyone else's.
    if (msg.t === "proposal") this.onProposal(msg);
    else if (msg.t === "prevote" || msg.t === "precommit") this.onVote(msg);
  }

  /**
   * Records what we signed; it is made durable (one fsync) before any message leaves this
   * handler, so a restarted voter never signs against it (see `flush`).
   */
  private persistSigned(): void {
    this.host.storage.put(K_SIGNED, enc.encode(JSON.stringify(this.signed)));
    this.unsynced = true;
  }

  // ---- output: persist, then send (one fsync per handler, as etcd-raft's Ready) ----

  private outbox: Array<[NodeId, ConsensusMessage]> = [];
  private unsynced = false;
  /** Committed blocks written since the last sync (synced with the next vote, or soon). */
  private blocksUnsynced = 0;
  private syncTimer = false;
  private depth = 0;

  private post(to: NodeId, msg: ConsensusMessage): void {
    this.outbox.push([to, msg]);
  }

  private enter<T>(fn: () => T): T {
    this.depth++;
    try {
      return fn();
    } finally {
      if (--this.depth === 0) this.flush();
    }
  }

  /**
   * At the end of a handler: one sync for everything it wrote (signed records, and committed
   * blocks, which alone need no sync: a block lost to a crash is fetched again), then its
   * messages in order.
   */
  private flush(): void {
    if (this.unsynced || this.blocksUnsynced >= BLOCKS_PER_SYNC) {
      this.host.storage.sync();
      this.unsynced = false;
      this.blocksUnsynced = 0;
    } else if (this.blocksUnsynced > 0 && !this.syncTimer && !this.stopped) {
      this.syncTimer = true;
      this.host.setTimer("sync", BLOCK_SYNC_DELAY_MS);
    }
    const out = this.outbox;
    if (out.length === 0) return;
    this.outbox = [];
    for (const [to, msg] of out) this.host.send(to, msg);
  }

  // ---- timers ----

  onTimer(key: string): void {
    this.enter(() => this.timer(key));
  }

  private timer(key: string): void {
    if (this.stopped) return;
    const [kind, hs, rs] = key.split(":");
    const h = Number(hs), r = Number(rs);
    if (kind === "next") {
      if (h === this.h) this.startRound(0);
      return;
    }
    if (kind === "resend") {
      if (h === this.h) this.resend();
      return;
    }
    if (kind === "sync") {
      this.syncTimer = false;
      if (this.blocksUnsynced > 0) this.unsynced = true;
      return;
    }
    if (kind === "resubmit") {
      this.resubmit();
      return;
    }
    if (h !== this.h || r !== this.round) return;
    switch (kind) {
      case "build":
        if (this.step === "propose" && this.awaitingOps) {
          this.awaitingOps = false;
          this.propose();
        }
        break;
      case "propose":
        if (this.step === "propose") {
          this.host.metrics.inc("mycelium_consensus_propose_timeouts_total");
          this.host.log.log("info", "propose_timeout", {
            h,
            r,
            proposer: this.proposer(h, r),
            awaitingOps: this.awaitingOps,
            future: this.future.length,
          });
          this.step = "prevote";
          this.castVote("prevote", null);
          this.reevaluate();
        }
        break;
      case "prevote":
        if (this.step === "prevote") {
          this.step = "precommit";
          this.castVote("precommit", null);
          this.reevaluate();
        }
        break;
      case "precommit":
        this.startRound(r + 1);
        break;
    }
  }

  private resendInterval(): number {
    return Math.max(1, this.config.proposeTimeoutMs);
  }

  /**
   * Still at this height after a while: send our signed records of the current round again.
   * Messages lost to a partition or to loss are never retransmitted by the transport, and
   * without them a healed network can sit with every node waiting (the role Tendermint's
   * vote gossip plays). Peers behind us see a later height and fetch blocks.
   */
  private resend(): void {
    this.host.metrics.inc("mycelium_consensus_resends_total");
    const mine: ConsensusMessage[] = [];
    const p = this.signed.proposals[String(this.round)];
    if (p) mine.push({ t: "proposal", ...p });
    for (const t of ["prevote", "precommit"] as const) {
      const v = this.signed.votes[`${this.round}/${t}`];
      if (v) mine.push(v);
    }
    for (const peer of this.app.peers()) {
      if (peer === this.host.self) continue;
      for (const m of mine) this.post(peer, m);
    }
    this.host.setTimer(`resend:${this.h}:0`, this.resendInterval());
  }

  // ---- commit ----

  private decide(body: Block, hash: string, r: number): void {
    const votes = this.votes.get(r, "precommit").votesFor(hash);
    const cert: Certificate = { h: this.h, r, block: hash, votes };
    this.commitBlock({ block: body, hash, cert });
  }

  private commitBlock(cb: CommittedBlock): void {
    const st = this.host.storage;
    st.put(kBlock(cb.block.height), enc.encode(JSON.stringify(cb)));
    st.put(K_HEIGHT, enc.encode(String(cb.block.height)));
    this.blocksUnsynced++;
    this.app.commit(cb);
    for (const op of cb.block.ops) {
      this.mempool.delete(op.id);
      if (op.id.startsWith("evidence/")) this.pendingEvidence.delete(op.id.slice(9));
    }
    this.host.metrics.inc("mycelium_consensus_commits_total");
    this.host.metrics.inc("mycelium_consensus_ops_committed_total", cb.block.ops.length);
    this.lastHash = cb.hash;
    this.h = cb.block.height + 1;
    this.votes = new HeightVotes();
    this.proposals = new Map();
    this.prevoteTimerSet = new Set();
    this.precommitTimerSet = new Set();
    this.signed = emptyRecord(this.h);
    this.votersCache = null;
    // Drop what the new state no longer admits (committed through another path, or evidence
    // against a node already excluded).
    for (const [id, op] of this.mempool) if (!this.app.admissible(op)) this.mempool.delete(id);
    for (const [k, op] of this.pendingEvidence) {
      if (!this.app.admissible(op)) this.pendingEvidence.delete(k);
    }
    const future = this.future.filter((m) => m.h === this.h);
    this.future = this.future.filter((m) => m.h > this.h);
    if (this.config.commitDelayMs > 0) {
      this.step = "precommit";
      this.host.setTimer(`next:${this.h}:0`, this.config.commitDelayMs);
      for (const m of future) this.handle(m.t === "proposal" ? m.proposer : voterOf(m), m);
    } else {
      this.startRound(0);
      for (const m of future) this.handle(m.t === "proposal" ? m.proposer : voterOf(m), m);
    }
  }

  // ---- catch-up ----

  private requestSync(to: NodeId): void {
    const now = this.host.now();
    if (now - this.lastSyncReq < this.config.syncRetryMs) return;
    this.lastSyncReq = now;
    this.host.metrics.inc("mycelium_consensus_sync_requests_total");
    this.post(to, { t: "sync-req", from: this.h });
  }

  private onSyncRequest(from: NodeId, height: number): void {
    if (!Number.isInteger(height) || height < 1 || height >= this.h) return;
    const blocks: CommittedBlock[] = [];
    for (let h = height; h < this.h && blocks.length < this.config.syncBatch; h++) {
      const cb = this.committedBlock(h);
      if (!cb) break;
      blocks.push(cb);
    }
    if (blocks.length > 0) this.post(from, { t: "sync-resp", blocks });
  }

  private onSyncResponse(blocks: readonly CommittedBlock[]): void {
    let took = 0;
    for (const cb of blocks) {
      if (cb.block.height !== this.h) continue;
      if (blockHash(cb.block) !== cb.hash || cb.block.parent !== this.lastHash) break;
      const problem = certificateProblem(cb.cert, cb.hash, this.h, this.voters().list);
      if (problem) {
        this.host.metrics.inc("mycelium_consensus_bad_certificates_total");
        this.host.log.log("warn", "bad_certificate", { height: this.h, problem });
        break;
      }
      this.commitBlock(cb);
      took++;
    }
    if (took > 0) this.host.metrics.inc("mycelium_consensus_synced_blocks_total", took);
  }
}

function voterOf(m: ConsensusMessage): NodeId {
  return (m as Vote).voter;
}

function emptyRecord(h: number): SignedRecord {
  return {
    h,
    votes: {},
    proposals: {},
    locked: { r: -1, block: null },
    valid: { r: -1, block: null },
  };
}
