/**
 * The consensus envelope: the wire schema rejects malformed messages with a DecodeError
 * naming the field, and the signature walk fails on any bad signature, nested ones included.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { DecodeError } from "../errors.ts";
import { asNodeId } from "../ids.ts";
import { decodeConsensus, encodeConsensus, verifyMessage } from "./envelope.ts";
import { type Block, blockHash, type ConsensusMessage, votePayload } from "./types.ts";

const a = asNodeId("a".repeat(32)), b = asNodeId("b".repeat(32));
const sign = (id: string, payload: string) => `ok:${id.slice(0, 2)}:${payload.length}`;
const verify = (id: string, payload: string, sig: string) => sig === sign(id, payload);

function vote(voter: typeof a, block: string | null, good = true) {
  const body = { t: "precommit" as const, h: 3, r: 0, block, voter };
  return { ...body, sig: good ? sign(voter, votePayload(body)) : "forged" };
}

Deno.test("envelope: messages round-trip through the codec", () => {
  const block: Block = { height: 3, parent: "", proposer: a, time: 1, ops: [] };
  const hash = blockHash(block);
  const msgs: ConsensusMessage[] = [
    vote(a, hash),
    { t: "sync-req", from: 2 },
    {
      t: "submit",
      op: { id: "c/1", client: "c", op: { kind: "cas", key: "k", expect: null, value: "v" } },
    },
    {
      t: "sync-resp",
      blocks: [{ block, hash, cert: { h: 3, r: 0, block: hash, votes: [vote(a, hash)] } }],
    },
  ];
  for (const m of msgs) assert.deepEqual(decodeConsensus(encodeConsensus(m)), m);
});

Deno.test("envelope: malformed input is a DecodeError naming the field, never anything else", () => {
  const bad = (doc: unknown) => new TextEncoder().encode(JSON.stringify(doc));
  assert.throws(() => decodeConsensus(new TextEncoder().encode("{nope")), DecodeError);
  assert.throws(
    () => decodeConsensus(bad({ t: "prevote", h: 0, r: 0, block: null, voter: a, sig: "" })),
    /h:/,
  );
  assert.throws(() => decodeConsensus(bad({ t: "sync-req", from: 1, extra: 1 })), DecodeError);
  assert.throws(
    () =>
      decodeConsensus(
        bad({ t: "submit", op: { id: "x", client: "c", op: { kind: "put", key: 1, value: "v" } } }),
      ),
    /op\.op\.key/,
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        decodeConsensus(bytes);
      } catch (e) {
        assert.ok(e instanceof DecodeError, String(e));
      }
    }),
  );
});

Deno.test("envelope: the signature walk fails on a bad vote, nested in a certificate too", () => {
  const block: Block = { height: 3, parent: "", proposer: a, time: 1, ops: [] };
  const hash = blockHash(block);
  assert.equal(verifyMessage(vote(a, hash), verify), true);
  assert.equal(verifyMessage(vote(a, hash, false), verify), false);
  const resp = (votes: ReturnType<typeof vote>[]): ConsensusMessage => ({
    t: "sync-resp",
    blocks: [{ block, hash, cert: { h: 3, r: 0, block: hash, votes } }],
  });
  assert.equal(verifyMessage(resp([vote(a, hash), vote(b, hash)]), verify), true);
  assert.equal(verifyMessage(resp([vote(a, hash), vote(b, hash, false)]), verify), false);
});
