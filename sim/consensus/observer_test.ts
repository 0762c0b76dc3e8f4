/**
 * Each online consensus checker fires on the violation it exists for, fed hand-made commits.
 */
import assert from "node:assert/strict";
import { asNodeId, type NodeId } from "../../core/ids.ts";
import {
  type Block,
  blockHash,
  type CommittedBlock,
  type Vote,
  votePayload,
} from "../../core/consensus/types.ts";
import { ConsensusObserver } from "./observer.ts";
import { SignatureModel } from "./signatures.ts";

const ids: NodeId[] = [0, 1, 2, 3].map((i) => asNodeId(String(i).repeat(32)));
const ALL = new Set([
  "consensus.agreement",
  "consensus.validity",
  "consensus.no-fork",
  "consensus.monotonic",
  "consensus.certificates",
]);

function setup() {
  const sigs = new SignatureModel();
  ids.forEach((id, i) => sigs.register(id, 1000 + i));
  const obs = new ConsensusObserver(sigs, ALL);
  return { sigs, obs };
}

function committed(
  sigs: SignatureModel,
  height: number,
  parent: string,
  opts: { time?: number; signers?: NodeId[]; badSig?: boolean; opId?: string } = {},
): CommittedBlock {
  const block: Block = {
    height,
    parent,
    proposer: ids[0],
    time: opts.time ?? 0,
    ops: opts.opId ? [{ id: opts.opId, client: "c", op: { kind: "get", key: "k" } }] : [],
  };
  const hash = blockHash(block);
  const votes: Vote[] = (opts.signers ?? ids.slice(0, 3)).map((voter) => {
    const body = { t: "precommit" as const, h: height, r: 0, block: hash, voter };
    return { ...body, sig: opts.badSig ? "bad" : sigs.sign(voter, votePayload(body)) };
  });
  return { block, hash, cert: { h: height, r: 0, block: hash, votes } };
}

const ctx = (instance: number, correct = true) => ({
  instance,
  name: `voter-${instance}`,
  correct,
  voters: ids,
});

Deno.test("observer: a correct chain passes every checker", () => {
  const { sigs, obs } = setup();
  obs.submitted.add("c/1");
  const b1 = committed(sigs, 1, "", { opId: "c/1" });
  const b2 = committed(sigs, 2, b1.hash);
  for (const i of [0, 1, 2]) {
    obs.onCommit(ctx(i), b1, false);
    obs.onCommit(ctx(i), b2, false);
  }
  assert.equal(obs.violation, null);
  assert.equal(obs.height, 2);
});

Deno.test("observer: agreement fires when two correct nodes commit different blocks", () => {
  const { sigs, obs } = setup();
  obs.onCommit(ctx(0), committed(sigs, 1, "", { time: 1 }), false);
  obs.onCommit(ctx(1), committed(sigs, 1, "", { time: 2 }), false);
  assert.equal(obs.violation?.check, "consensus.agreement");
});

Deno.test("observer: a faulty node's different block is not an agreement violation", () => {
  const { sigs, obs } = setup();
  obs.onCommit(ctx(0), committed(sigs, 1, "", { time: 1 }), false);
  obs.onCommit(ctx(3, false), committed(sigs, 1, "", { time: 2 }), false);
  assert.equal(obs.violation, null);
});

Deno.test("observer: monotonic fires on a skipped or repeated height", () => {
  const { sigs, obs } = setup();
  const b1 = committed(sigs, 1, "");
  obs.onCommit(ctx(0), b1, false);
  obs.onCommit(ctx(0), committed(sigs, 3, b1.hash), false);
  assert.equal(obs.violation?.check, "consensus.monotonic");
});

Deno.test("observer: no-fork fires when a block does not link to the node's previous one", () => {
  const { sigs, obs } = setup();
  obs.onCommit(ctx(0), committed(sigs, 1, ""), false);
  obs.onCommit(ctx(0), committed(sigs, 2, "not-the-parent"), false);
  assert.equal(obs.violation?.check, "consensus.no-fork");
});

Deno.test("observer: certificates fire on too few signers and on a bad signature", () => {
  {
    const { sigs, obs } = setup();
    obs.onCommit(ctx(0), committed(sigs, 1, "", { signers: ids.slice(0, 2) }), false);
    assert.equal(obs.violation?.check, "consensus.certificates");
    assert.match(obs.violation!.detail, /2 distinct voters, needs 3/);
  }
  {
    const { sigs, obs } = setup();
    obs.onCommit(ctx(0), committed(sigs, 1, "", { badSig: true }), false);
    assert.equal(obs.violation?.check, "consensus.certificates");
    assert.match(obs.violation!.detail, /signature/);
  }
});

Deno.test("observer: validity fires on an operation nobody submitted", () => {
  const { sigs, obs } = setup();
  obs.onCommit(ctx(0), committed(sigs, 1, "", { opId: "ghost/1" }), false);
  assert.equal(obs.violation?.check, "consensus.validity");
});

Deno.test("observer: a check not enabled never fires", () => {
  const sigs = new SignatureModel();
  ids.forEach((id, i) => sigs.register(id, 1000 + i));
  const obs = new ConsensusObserver(sigs, new Set(["consensus.agreement"]));
  obs.onCommit(ctx(0), committed(sigs, 1, "", { opId: "ghost/1" }), false);
  assert.equal(obs.violation, null);
});
