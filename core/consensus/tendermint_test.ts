/**
 * The Tendermint core in isolation, with a hand-driven host: quorum arithmetic, certificate
 * checks, the durable signed-vote record (a restarted voter re-sends, never re-signs), the
 * replay of the durable log into a fresh application, and equivocation evidence.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { MemoryStore, nullLogger } from "../host.ts";
import { asNodeId, IdInterner, type NodeId } from "../ids.ts";
import { consensusConfigSchema } from "./config.ts";
import {
  certificateProblem,
  type ConsensusApp,
  type ConsensusHost,
  Tendermint,
} from "./tendermint.ts";
import {
  type Block,
  blockHash,
  type CommittedBlock,
  type ConsensusMessage,
  faultBound,
  type Proposal,
  proposalPayload,
  quorum,
  type Vote,
  votePayload,
} from "./types.ts";

const ids: NodeId[] = [1, 2, 3, 4].map((i) => asNodeId(String(i).repeat(32)));
const config = consensusConfigSchema.parse({ emptyBlockDelayMs: 0 });

const sign = (id: NodeId, payload: string) => `${id.slice(0, 4)}:${payload}`;

class Harness {
  sent: Array<{ to: NodeId; msg: ConsensusMessage }> = [];
  timers = new Map<string, number>();
  committed: CommittedBlock[] = [];
  evidence = 0;
  constructor(readonly self: NodeId, readonly store = new MemoryStore()) {}
  app(): ConsensusApp {
    return {
      peers: () => ids,
      voters: () => ids,
      admissible: () => true,
      commit: (cb) => this.committed.push(cb),
      evidence: () => this.evidence++,
    };
  }
  host(): ConsensusHost {
    return {
      self: this.self,
      ids: new IdInterner(),
      now: () => 0,
      random: () => 0.5,
      send: (to, msg) => this.sent.push({ to, msg }),
      setTimer: (k, d) => this.timers.set(k, d),
      cancelTimer: (k) => this.timers.delete(k),
      storage: this.store,
      log: nullLogger,
      metrics: { inc() {}, set() {}, observe() {} },
      sign: (p) => sign(this.self, p),
    };
  }
  start(): Tendermint {
    const t = new Tendermint(config, this.app());
    t.start(this.host());
    return t;
  }
  /** The distinct votes of one type this node sent (a broadcast sends one copy per peer). */
  votesSent(t: "prevote" | "precommit"): Vote[] {
    return [...new Set(this.sent.map((s) => s.msg).filter((m): m is Vote => m.t === t))];
  }
}

function proposal(h: number, r: number, proposer: NodeId, time = 0): Proposal & { t: "proposal" } {
  const body: Block = { height: h, parent: "", proposer, time, ops: [] };
  const header = { h, r, block: blockHash(body), validRound: -1, proposer };
  return { t: "proposal", ...header, sig: sign(proposer, proposalPayload(header)), body };
}

function vote(
  t: "prevote" | "precommit",
  h: number,
  r: number,
  block: string | null,
  voter: NodeId,
) {
  const body = { t, h, r, block, voter };
  return { ...body, sig: sign(voter, votePayload(body)) };
}

Deno.test("quorum: two quorums share more than f voters; n - f voters form a quorum", () => {
  fc.assert(
    fc.property(fc.integer({ min: 4, max: 2000 }), (n) => {
      const q = quorum(n), f = faultBound(n);
      assert.ok(2 * q - n >= f + 1, `n=${n}: quorums meet in ${2 * q - n} <= f=${f}`);
      assert.ok(q <= n - f, `n=${n}: ${n - f} correct voters cannot reach q=${q}`);
      assert.ok(3 * q > 2 * n, `n=${n}: q=${q} is not more than two thirds`);
    }),
  );
  assert.deepEqual([1, 2, 3].map(quorum), [1, 2, 2]); // crash-only: a majority
  assert.equal(quorum(4), 3);
  assert.equal(quorum(5), 4); // 2f+1 = 3 would let two quorums meet in one voter
});

Deno.test("certificateProblem names every way a certificate can be wrong", () => {
  const hash = "ab".repeat(32);
  const pcs = ids.slice(0, 3).map((v) => vote("precommit", 5, 0, hash, v));
  const cert = { h: 5, r: 0, block: hash, votes: pcs };
  assert.equal(certificateProblem(cert, hash, 5, ids), null);
  assert.match(certificateProblem(cert, hash, 6, ids)!, /height 5, not 6/);
  assert.match(certificateProblem(cert, "cd".repeat(32), 5, ids)!, /another block/);
  assert.match(
    certificateProblem({ ...cert, votes: pcs.slice(0, 2) }, hash, 5, ids)!,
    /2 distinct voters, needs 3/,
  );
  assert.match(
    certificateProblem({ ...cert, votes: [pcs[0], pcs[0], pcs[1]] }, hash, 5, ids)!,
    /2 distinct voters/,
  );
  const stranger = vote("precommit", 5, 0, hash, asNodeId("9".repeat(32)));
  assert.match(
    certificateProblem({ ...cert, votes: [...pcs.slice(0, 2), stranger] }, hash, 5, ids)!,
    /non-voter/,
  );
  const prevote = vote("prevote", 5, 0, hash, ids[2]);
  assert.match(
    certificateProblem({ ...cert, votes: [...pcs.slice(0, 2), prevote] }, hash, 5, ids)!,
    /not a precommit/,
  );
});

Deno.test("a voter prevotes a valid proposal, locks on 2f+1 prevotes and commits on 2f+1 precommits", () => {
  const me = ids[1]; // the proposer of (1, 0) is ids[(1 + 0) % 4] = ids[1]
  const hx = new Harness(ids[2]);
  const t = hx.start();
  const p = proposal(1, 0, me);
  t.onMessage(me, p);
  assert.deepEqual(hx.votesSent("prevote").map((v) => v.block), [p.block]);
  for (const v of [ids[0], ids[1]]) t.onMessage(v, vote("prevote", 1, 0, p.block, v));
  assert.deepEqual(hx.votesSent("precommit").map((v) => v.block), [p.block]);
  for (const v of [ids[0], ids[1]]) t.onMessage(v, vote("precommit", 1, 0, p.block, v));
  assert.equal(hx.committed.length, 1);
  assert.equal(hx.committed[0].hash, p.block);
  assert.equal(hx.committed[0].cert.votes.length, 3);
  assert.equal(t.h, 2);
});

Deno.test("a restarted voter re-sends its durable vote instead of signing a conflicting one", () => {
  const store = new MemoryStore();
  const first = new Harness(ids[2], store);
  const t1 = first.start();
  const p = proposal(1, 0, ids[1]);
  t1.onMessage(ids[1], p);
  assert.equal(first.votesSent("prevote")[0].block, p.block);
  store.crash(false); // kill -9: what was synced survives
  t1.stop();

  const second = new Harness(ids[2], store);
  const t2 = second.start();
  // No proposal this time: the propose timeout fires, which would normally prevote nil.
  t2.onTimer("propose:1:0");
  const sent = second.votesSent("prevote");
  assert.equal(sent.length > 0, true);
  assert.ok(sent.every((v) => v.block === p.block), "re-signed a conflicting prevote");

  // Without the durable record the same restart would sign nil: the test can fail.
  const wiped = new MemoryStore();
  const third = new Harness(ids[2], wiped);
  const t3 = third.start();
  t3.onTimer("propose:1:0");
  assert.equal(third.votesSent("prevote")[0].block, null);
});

Deno.test("a restart replays the durable log into a fresh application", () => {
  const store = new MemoryStore();
  const hx = new Harness(ids[2], store);
  const t = hx.start();
  const p = proposal(1, 0, ids[1]);
  t.onMessage(ids[1], p);
  for (const v of [ids[0], ids[1]]) t.onMessage(v, vote("prevote", 1, 0, p.block, v));
  for (const v of [ids[0], ids[1]]) t.onMessage(v, vote("precommit", 1, 0, p.block, v));
  assert.equal(hx.committed.length, 1);
  store.crash(false);
  const again = new Harness(ids[2], store);
  const t2 = again.start();
  assert.equal(again.committed.length, 1);
  assert.equal(again.committed[0].hash, p.block);
  assert.equal(t2.h, 2);
});

Deno.test("two different votes from one voter become exclusion evidence in the next block", () => {
  const hx = new Harness(ids[2]);
  const t = hx.start();
  const a = vote("prevote", 1, 0, "aa".repeat(32), ids[3]);
  const b = vote("prevote", 1, 0, null, ids[3]);
  t.onMessage(ids[3], a);
  t.onMessage(ids[3], b);
  assert.equal(hx.evidence, 1);
  // Height 2 round 1 is ours to propose (ids[(2 + 0) % 4] = ids[2]); get there by committing 1.
  const p = proposal(1, 0, ids[1]);
  t.onMessage(ids[1], p);
  for (const v of [ids[0], ids[1]]) t.onMessage(v, vote("prevote", 1, 0, p.block, v));
  for (const v of [ids[0], ids[1]]) t.onMessage(v, vote("precommit", 1, 0, p.block, v));
  const mine = hx.sent.map((s) => s.msg).find((m) => m.t === "proposal" && m.h === 2);
  assert.ok(mine && mine.t === "proposal", "no proposal at height 2");
  const ex = mine.body.ops.find((o) => o.op.kind === "node.exclude");
  assert.ok(ex, "the evidence was not proposed");
  assert.equal((ex.op as { node: string }).node, ids[3]);
});

Deno.test("f+1 voters in a later round pull a voter into that round", () => {
  const hx = new Harness(ids[2]);
  const t = hx.start();
  t.onMessage(ids[0], vote("prevote", 1, 3, null, ids[0]));
  assert.equal(t.round, 0);
  t.onMessage(ids[1], vote("prevote", 1, 3, null, ids[1]));
  assert.equal(t.round, 3);
});
