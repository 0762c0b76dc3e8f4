/**
 * NodeObjects in one process: several nodes with their own data directories, wired by an
 * in-memory transport that can make a node unreachable (its stream is down: sends fail) or
 * hung (frames to it vanish). Placement, quorums, replacement of failed targets, hedged
 * reads, class eligibility, overwrites and chunk shrinking, without real sockets.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { NodeId } from "../core/ids.ts";
import type { Tier } from "../core/spores/types.ts";
import { parseNodeConfig } from "./config.ts";
import { JsonLogger } from "./log.ts";
import { PromMetrics } from "./metrics.ts";
import { NodeObjects, ObjectsError, type PutResult } from "./objects.ts";
import type { StorageSection } from "./objects_config.ts";
import { bytes, chunkHolders } from "./objects_testing.ts";

interface Cluster {
  nodes: NodeObjects[];
  ids: NodeId[];
  down: Set<NodeId>;
  hung: Set<NodeId>;
  logs: string[][];
  close(): Promise<void>;
}

async function cluster(
  n: number,
  opts: { tiers?: Tier[]; storage?: Partial<StorageSection>; maxFrameBytes?: number } = {},
): Promise<Cluster> {
  const dir = await Deno.makeTempDir({ prefix: "mycelium-objunit-" });
  const ids = Array.from({ length: n }, (_, i) => i.toString(16).padStart(32, "0") as NodeId);
  const down = new Set<NodeId>(), hung = new Set<NodeId>();
  const nodes: NodeObjects[] = [];
  const logs: string[][] = [];
  const storage = { ...parseNodeConfig({}).storage, ...opts.storage };
  for (let i = 0; i < n; i++) {
    const self = ids[i];
    const lines: string[] = [];
    logs.push(lines);
    nodes.push(
      new NodeObjects({
        self,
        tier: opts.tiers?.[i] ?? "sclerotia",
        config: storage,
        dataDir: join(dir, `n${i}`),
        isolationKey: new Uint8Array(32).fill(42),
        maxFrameBytes: opts.maxFrameBytes ?? 8 * 2 ** 20,
        metrics: new PromMetrics(),
        log: new JsonLogger({ level: "info", sink: (l) => lines.push(l) }),
        sendFrame: (to, frame) => {
          if (down.has(to) || down.has(self)) return false;
          if (hung.has(to) || hung.has(self)) return true; // accepted, never arrives
          const body = frame.slice(5);
          setTimeout(() => nodes[ids.indexOf(to)].onFrame(self, body), 0);
          return true;
        },
        peers: () =>
          ids.filter((id) => id !== self).map((id) => ({
            id,
            state: "alive" as const, // as SWIM sees them before it notices anything
            tier: opts.tiers?.[ids.indexOf(id)] ?? "sclerotia",
            labels: {},
          })),
      }),
    );
  }
  for (const o of nodes) await o.open();
  return {
    nodes,
    ids,
    down,
    hung,
    logs,
    async close() {
      for (const o of nodes) o.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const small = { chunkSize: 64 * 1024, hedgeMs: 100, requestTimeoutMs: 1000 };

Deno.test("objects (in process): Strong put on 5 nodes, get from another, 3 replicas per chunk", async () => {
  const c = await cluster(5, { storage: small });
  try {
    const data = bytes(300_000, 1);
    const r = await c.nodes[0].put("a", data);
    assert.equal(r.chunks, 5);
    for (const reps of r.replicas) assert.equal(new Set(reps).size, 3);
    const g = await c.nodes[3].get("a");
    assert.deepEqual(g.data, data);
    for (const o of c.nodes) await o.drain();
    const rec = await c.nodes[4].findManifest("a");
    for (const [i, id] of rec.manifest.chunks.entries()) {
      assert.deepEqual((await chunkHolders(c, id)).sort(), [...rec.replicas[i]].sort());
    }
    // An overwrite is a newer version: every node reads the new bytes.
    const v2 = bytes(1000, 2);
    await c.nodes[2].put("a", v2, { consistency: "eventual" });
    for (const o of c.nodes) assert.deepEqual((await o.get("a", "strong")).data, v2);
    await assert.rejects(c.nodes[1].get("missing"), (e: ObjectsError) => e.status === 404);
  } finally {
    await c.close();
  }
});

Deno.test("objects (in process): an unreachable target is replaced; reads and writes route around a hung one", async () => {
  const c = await cluster(5, { storage: small });
  try {
    c.down.add(c.ids[1]);
    c.hung.add(c.ids[2]);
    const writes: PutResult[] = [];
    for (let k = 0; k < 6; k++) writes.push(await c.nodes[0].put(`o${k}`, bytes(200_000, k)));
    for (const o of [c.nodes[0], c.nodes[3], c.nodes[4]]) {
      await Promise.race([o.drain(), new Promise((r) => setTimeout(r, 3000))]);
    }
    let replaced = 0;
    for (const w of writes) {
      for (const reps of w.replicas) if (reps.includes(c.ids[1])) replaced++;
    }
    assert.ok(replaced > 0, "some chunk targeted the unreachable node");
    // Every chunk of every object is on at least 2 of the reachable nodes.
    for (const w of writes) {
      const rec = await c.nodes[3].findManifest(w.id);
      for (const id of rec.manifest.chunks) {
        const h = (await chunkHolders(c, id)).filter((x) => x !== c.ids[1] && x !== c.ids[2]);
        assert.ok(h.length >= 2, `chunk ${id.slice(0, 8)} on ${h.length} reachable nodes`);
      }
      // Reads hedge past the hung node.
      const g = await c.nodes[4].get(w.id);
      assert.deepEqual(g.data, bytes(200_000, writes.indexOf(w)));
    }
  } finally {
    await c.close();
  }
});

Deno.test("objects (in process): quorums, class eligibility, chunk shrinking", async () => {
  const one = await cluster(1, { storage: small });
  try {
    await assert.rejects(
      one.nodes[0].put("x", bytes(10, 1)),
      (e: ObjectsError) =>
        e.status === 503 && /^class: Standard objects need 2 live eligible nodes/.test(e.message),
    );
    const r = await one.nodes[0].put("x", bytes(10, 1), { consistency: "eventual" });
    assert.deepEqual(r.stored, [1]);
    assert.deepEqual((await one.nodes[0].get("x", "eventual")).data, bytes(10, 1));
  } finally {
    await one.close();
  }

  // Critical: Sclerotia only; Hyphae never hold data.
  const tiers: Tier[] = [
    "sclerotia",
    "rhizomorph",
    "sclerotia",
    "hypha",
    "sclerotia",
    "rhizomorph",
  ];
  const c = await cluster(6, { tiers, storage: small });
  try {
    const r = await c.nodes[1].put("secret", bytes(150_000, 3), { class: "Critical" });
    assert.ok(r.encrypted);
    for (const reps of r.replicas) {
      for (const id of reps) assert.equal(tiers[c.ids.indexOf(id as NodeId)], "sclerotia");
    }
    const p = await c.nodes[1].put("plain", bytes(150_000, 4), { class: "Public" });
    for (const reps of p.replicas) assert.ok(!reps.includes(c.ids[3]), "a hypha holds data");
    assert.deepEqual((await c.nodes[3].get("secret")).data, bytes(150_000, 3));
  } finally {
    await c.close();
  }

  // A frame limit below the chunk size: smaller chunks, said in the log.
  const tiny = await cluster(3, { maxFrameBytes: 64 * 1024 });
  try {
    assert.equal(tiny.nodes[0].chunkSize, 53_248);
    assert.ok(tiny.logs[0].some((l) => l.includes('"storage_chunk_shrunk"')));
    const r = await tiny.nodes[0].put("y", bytes(200_000, 5));
    assert.equal(r.chunkSize, 53_248);
    assert.deepEqual((await tiny.nodes[2].get("y")).data, bytes(200_000, 5));
  } finally {
    await tiny.close();
  }
});
