import assert from "node:assert/strict";
import fc from "fast-check";
import { type Certificate, type Vote, votePayload } from "../consensus/types.ts";
import type { NodeId } from "../ids.ts";
import { certificateProblem, contradiction, type PrimaryView } from "./primary.ts";
import { modelSigner, modelVerify, TEST_NETWORK, testNode } from "./testing.ts";
import type { Tier } from "./types.ts";

const BLOCK = "ab".repeat(32);
const voters = [1, 2, 3, 4].map(testNode);

function precommit(voter: NodeId, over: Partial<Omit<Vote, "sig">> = {}): Vote {
  const v = { t: "precommit" as const, h: 7, r: 0, block: BLOCK, voter, ...over };
  return { ...v, sig: modelSigner(voter)(votePayload(v)) };
}

function cert(votes: Vote[]): Certificate {
  return { h: 7, r: 0, block: BLOCK, votes };
}

Deno.test("certificateProblem accepts 2f+1 distinct valid precommits of the voters", () => {
  assert.equal(
    certificateProblem(
      cert(voters.slice(0, 3).map((v) => precommit(v))),
      7,
      BLOCK,
      voters,
      modelVerify,
    ),
    null,
  );
});

Deno.test("certificateProblem catches each way a certificate can fail", () => {
  const three = voters.slice(0, 3).map((v) => precommit(v));
  const check = (c: Certificate, h = 7, block = BLOCK) =>
    certificateProblem(c, h, block, voters, modelVerify);
  assert.match(check(cert(three.slice(0, 2)))!, /2 precommits, 3 needed/);
  assert.match(check(cert([...three.slice(0, 2), three[0]]))!, /votes twice/);
  assert.match(check(cert([...three.slice(0, 2), precommit(testNode(9))]))!, /not a voter/);
  assert.match(check(cert([...three.slice(0, 2), { ...three[2], sig: "forged" }]))!, /signature/);
  assert.match(
    check(cert([...three.slice(0, 2), precommit(voters[2], { t: "prevote" })]))!,
    /not a precommit/,
  );
  assert.match(check(cert(three), 8)!, /height 7, not 8/);
  assert.match(check(cert(three), 7, "cd".repeat(32))!, /another block/);
  assert.match(certificateProblem(cert(three), 7, BLOCK, [], modelVerify)!, /no voters/);
});

function view(over: Partial<PrimaryView> = {}): PrimaryView {
  return {
    network: TEST_NETWORK,
    height: 1,
    certified: true,
    members: new Map<NodeId, Tier>([[testNode(1), "sclerotia"]]),
    trust: new Map([[testNode(1), 0.7]]),
    excluded: new Set(),
    config: new Map(),
    ...over,
  };
}

Deno.test("contradiction: a trust claim is checked in basis points with a tolerance", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 10_000 }), (bp) => {
      const trust = bp / 10_000;
      const got = contradiction(view(), { node: testNode(1), tier: "sclerotia", trust });
      assert.equal(got === "trust", Math.abs(bp - 7000) > 500);
    }),
  );
  assert.equal(contradiction(view(), { node: testNode(1), tier: "sclerotia" }), null);
  assert.equal(
    contradiction(view(), { node: testNode(1), tier: "sclerotia", trust: 0.2 }, 1),
    null,
  );
});

Deno.test("contradiction: no Primary or an uncertified one contradicts nothing", () => {
  const claim = { node: testNode(5), tier: "sclerotia" as const, trust: 1 };
  assert.equal(contradiction(null, claim), null);
  assert.equal(contradiction(view({ certified: false }), claim), null);
  assert.equal(contradiction(view(), claim), "not-a-member");
});
