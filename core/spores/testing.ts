/**
 * Test and simulation helpers for spores: node ids by number and a modelled signature
 * scheme (an unforgeable-by-construction token: the signer's id and a digest of the payload).
 * A modelled signature verifies only for the same signer and the same payload, which is all
 * the spore rules rely on; real runtimes pass Ed25519 functions instead.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { asNodeId, type NodeId } from "../ids.ts";
import type { SignFn, VerifyFn } from "./types.ts";

export function testNode(i: number): NodeId {
  return asNodeId(i.toString(16).padStart(32, "0"));
}

export const TEST_NETWORK = "a".repeat(32);
export const OTHER_NETWORK = "b".repeat(32);

function token(signer: NodeId, payload: string): string {
  return `m1:${signer}:${bytesToHex(sha256(utf8ToBytes(payload))).slice(0, 32)}`;
}

/** A signer for `node` under the modelled scheme. */
export function modelSigner(node: NodeId): SignFn {
  return (payload) => token(node, payload);
}

/** Verifies modelled signatures. */
export const modelVerify: VerifyFn = (signer, payload, sig) => sig === token(signer, payload);
