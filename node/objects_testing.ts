/** Shared by the in-process object storage tests (objects_unit_test.ts, objects_repair_test.ts). */
import type { NodeId } from "../core/ids.ts";
import type { NodeObjects } from "./objects.ts";

/** `n` deterministic pseudo-random bytes for `seed`. */
export function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** The ids of the nodes whose disk holds `chunk`. */
export async function chunkHolders(
  c: { nodes: readonly NodeObjects[]; ids: readonly NodeId[] },
  chunk: string,
): Promise<NodeId[]> {
  const out: NodeId[] = [];
  for (const [i, o] of c.nodes.entries()) if (await o.chunks.has(chunk)) out.push(c.ids[i]);
  return out;
}
