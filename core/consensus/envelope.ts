/**
 * The consensus envelope: the wire codec (JSON validated by a zod schema, so malformed input
 * is a DecodeError and never reaches the core) and the signature walk that checks every
 * signature a message carries, nested ones included (certificates in catch-up responses,
 * evidence inside proposed blocks). The signature scheme itself is the caller's: modelled
 * in the simulator, Ed25519 in the node.
 */
import { z } from "zod";
import { DecodeError } from "../errors.ts";
import { isNodeId, type NodeId } from "../ids.ts";
import {
  type CommittedBlock,
  type ConsensusMessage,
  type Evidence,
  proposalPayload,
  type SignedProposalHeader,
  type Vote,
  votePayload,
} from "./types.ts";

/** Checks one signature: `sig` by `signer` over `payload`. */
export type VerifyFn = (signer: NodeId, payload: string, sig: string) => boolean;

export function verifyVote(v: Vote, verify: VerifyFn): boolean {
  return verify(v.voter, votePayload(v), v.sig);
}

export function verifyProposalHeader(p: SignedProposalHeader, verify: VerifyFn): boolean {
  return verify(p.proposer, proposalPayload(p), p.sig);
}

function verifyEvidence(e: Evidence, verify: VerifyFn): boolean {
  if (e.kind === "double-vote") return verifyVote(e.a, verify) && verifyVote(e.b, verify);
  if (e.kind === "double-proposal") {
    return verifyProposalHeader(e.a, verify) && verifyProposalHeader(e.b, verify);
  }
  return true; // commit-reveal evidence is derived from the ordered log, not signed
}

function verifyCommitted(cb: CommittedBlock, verify: VerifyFn): boolean {
  return cb.cert.votes.every((v) => verifyVote(v, verify)) &&
    cb.block.ops.every((o) =>
      o.op.kind !== "node.exclude" || verifyEvidence(o.op.evidence, verify)
    );
}

/** Every signature `msg` carries verifies. */
export function verifyMessage(msg: ConsensusMessage, verify: VerifyFn): boolean {
  switch (msg.t) {
    case "prevote":
    case "precommit":
      return verifyVote(msg, verify);
    case "proposal":
      return verifyProposalHeader(msg, verify) &&
        msg.body.ops.every((o) =>
          o.op.kind !== "node.exclude" || verifyEvidence(o.op.evidence, verify)
        );
    case "sync-resp":
      return msg.blocks.every((b) => verifyCommitted(b, verify));
    case "submit":
    case "sync-req":
      return true;
  }
}

// ---- wire schema ----

const nodeId = z.string().refine(isNodeId, "expected a node id (32 hex characters)");
const hash = z.string().regex(/^[0-9a-f]{64}$/, "expected a sha256 hex digest");
const height = z.int().min(1).max(Number.MAX_SAFE_INTEGER);
const round = z.int().min(0).max(1_000_000);
const text = (max: number) => z.string().max(max);
const sig = text(512);

const voteSchema = z.strictObject({
  t: z.enum(["prevote", "precommit"]),
  h: height,
  r: round,
  block: hash.nullable(),
  voter: nodeId,
  sig,
});
const headerSchema = z.strictObject({
  h: height,
  r: round,
  block: hash,
  validRound: z.int().min(-1).max(1_000_000),
  proposer: nodeId,
  sig,
});
const evidenceSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("double-vote"), a: voteSchema, b: voteSchema }),
  z.strictObject({ kind: z.literal("double-proposal"), a: headerSchema, b: headerSchema }),
  z.strictObject({
    kind: z.literal("commit-reveal"),
    task: text(256),
    node: nodeId,
    detail: text(1024),
  }),
]);
const tier = z.enum(["sclerotia", "rhizomorph", "hypha"]);
/** Any operation (KV or network), as clients submit it. */
export const operationSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("put"), key: text(1024), value: text(1 << 20) }),
  z.strictObject({
    kind: z.literal("cas"),
    key: text(1024),
    expect: text(1 << 20).nullable(),
    value: text(1 << 20),
  }),
  z.strictObject({ kind: z.literal("get"), key: text(1024) }),
  z.strictObject({ kind: z.literal("node.join"), node: nodeId, tier }),
  z.strictObject({ kind: z.literal("node.leave"), node: nodeId }),
  z.strictObject({ kind: z.literal("node.exclude"), node: nodeId, evidence: evidenceSchema }),
  z.strictObject({ kind: z.literal("config.set"), key: text(256), value: text(65536) }),
  z.strictObject({
    kind: z.literal("service.set"),
    service: text(256),
    owner: nodeId,
    value: text(65536),
  }),
  z.strictObject({
    kind: z.literal("resource.set"),
    resource: text(256),
    owner: nodeId,
    value: text(65536),
  }),
  z.strictObject({
    kind: z.literal("cr.open"),
    task: text(256),
    input: text(65536),
    executors: z.array(nodeId).max(1024),
  }),
  z.strictObject({ kind: z.literal("cr.commit"), task: text(256), node: nodeId, digest: hash }),
  z.strictObject({
    kind: z.literal("cr.reveal"),
    task: text(256),
    node: nodeId,
    result: text(65536),
    salt: text(256),
  }),
]);
export const clientOpSchema = z.strictObject({
  id: text(256),
  client: text(256),
  op: operationSchema,
});
const blockSchema = z.strictObject({
  height,
  parent: z.union([hash, z.literal("")]),
  proposer: nodeId,
  time: z.number().finite(),
  ops: z.array(clientOpSchema).max(100_000),
});
const committedSchema = z.strictObject({
  block: blockSchema,
  hash,
  cert: z.strictObject({
    h: height,
    r: round,
    block: hash,
    votes: z.array(voteSchema).max(10_000),
  }),
});

export const consensusMessageSchema = z.discriminatedUnion("t", [
  z.strictObject({ ...headerSchema.shape, t: z.literal("proposal"), body: blockSchema }),
  voteSchema.extend({ t: z.literal("prevote") }),
  voteSchema.extend({ t: z.literal("precommit") }),
  z.strictObject({ t: z.literal("submit"), op: clientOpSchema }),
  z.strictObject({ t: z.literal("sync-req"), from: height }),
  z.strictObject({ t: z.literal("sync-resp"), blocks: z.array(committedSchema).max(1024) }),
]);

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export function encodeConsensus(msg: ConsensusMessage): Uint8Array {
  return enc.encode(JSON.stringify(msg));
}

/** Decodes and validates one message; throws DecodeError naming what is wrong. */
export function decodeConsensus(bytes: Uint8Array): ConsensusMessage {
  let doc: unknown;
  try {
    doc = JSON.parse(dec.decode(bytes));
  } catch (e) {
    throw new DecodeError(`consensus message is not JSON: ${(e as Error).message}`, 0, e);
  }
  const r = consensusMessageSchema.safeParse(doc);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new DecodeError(`consensus message: ${i.path.join(".") || "(root)"}: ${i.message}`, 0);
  }
  return r.data as ConsensusMessage;
}
