/** Node identity: NodeId = hex(sha256(public key)), truncated to 16 bytes for compactness. */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

/** Hex string of 32 characters. Branded so plain strings are not mistaken for ids. */
export type NodeId = string & { readonly __brand: "NodeId" };

export const NODE_ID_BYTES = 16;
export const NODE_ID_HEX = NODE_ID_BYTES * 2;
const NODE_ID_RE = /^[0-9a-f]{32}$/;

export function nodeIdFromPublicKey(publicKey: Uint8Array): NodeId {
  return bytesToHex(sha256(publicKey).subarray(0, NODE_ID_BYTES)) as NodeId;
}

export function isNodeId(s: unknown): s is NodeId {
  return typeof s === "string" && NODE_ID_RE.test(s);
}

/** Asserts the string is a node id; for trusted inputs (config, tests). */
export function asNodeId(s: string): NodeId {
  if (!isNodeId(s)) throw new TypeError(`not a node id: ${JSON.stringify(s)}`);
  return s;
}

/**
 * Maps node ids to dense small integers so protocols can keep per-member state in typed
 * arrays. In the simulator one interner is shared by every node (ids are interned once),
 * which keeps 10,000 full membership tables in memory; a real node has its own.
 * Indices are assigned in first-seen order, so determinism follows from event order.
 */
export class IdInterner {
  private readonly index = new Map<NodeId, number>();
  private readonly ids: NodeId[] = [];
  private readonly lists = new WeakMap<readonly NodeId[], Int32Array>();

  intern(id: NodeId): number {
    let i = this.index.get(id);
    if (i === undefined) {
      i = this.ids.length;
      this.index.set(id, i);
      this.ids.push(id);
    }
    return i;
  }

  /**
   * Interns a whole list; the result is cached by the list's identity, so a snapshot shared
   * by 10,000 nodes is interned once instead of 10,000 times.
   */
  internAll(list: readonly NodeId[]): Int32Array {
    let out = this.lists.get(list);
    if (!out) {
      out = Int32Array.from(list, (id) => this.intern(id));
      this.lists.set(list, out);
    }
    return out;
  }

  lookup(id: NodeId): number | undefined {
    return this.index.get(id);
  }

  id(i: number): NodeId {
    const id = this.ids[i];
    if (id === undefined) throw new RangeError(`no node id at index ${i}`);
    return id;
  }

  get size(): number {
    return this.ids.length;
  }
}
