/**
 * Re-replication and deletes (objects_repair.ts) with NodeObjects in one process: nodes with
 * their own data directories, an in-memory transport, and a `dead` set standing for SWIM's
 * view (a dead node is unreachable and missing from every `peers()`). Plus the pure parts:
 * `decideManifest` (one coordinator whoever computes it) and `batches`, with fast-check.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { join } from "node:path";
import type { NodeId } from "../core/ids.ts";
import { type StorageNode } from "../core/storage/placement.ts";
import { STORAGE_CLASS_NAMES, type StorageClass } from "../core/storage/classes.ts";
import { parseNodeConfig } from "./config.ts";
import { JsonLogger } from "./log.ts";
import { PromMetrics } from "./metrics.ts";
import { NodeObjects, ObjectsError } from "./objects.ts";
import type { StorageSection } from "./objects_config.ts";
import { batches, decideManifest, type ManifestView } from "./objects_repair.ts";
import { bytes, chunkHolders } from "./objects_testing.ts";

interface Cluster {
  nodes: NodeObjects[];
  ids: NodeId[];
  dead: Set<NodeId>;
  metrics: PromMetrics[];
  restart(i: number): Promise<void>;
  close(): Promise<void>;
}

async function cluster(n: number, storage: Partial<StorageSection> = {}): Promise<Cluster> {
  const dir = await Deno.makeTempDir({ prefix: "mycelium-objrepair-" });
  const ids = Array.from({ length: n }, (_, i) => (i + 1).toString(16).padStart(32, "0") as NodeId);
  const dead = new Set<NodeId>();
  const nodes: NodeObjects[] = [];
  const metrics: PromMetrics[] = [];
  const cfg = { ...parseNodeConfig({}).storage, ...storage };
  const make = (i: number) => {
    const self = ids[i];
    const m = new PromMetrics();
    metrics[i] = m;
    return new NodeObjects({
      self,
      tier: "sclerotia",
      config: cfg,
      dataDir: join(dir, `n${i}`),
      isolationKey: new Uint8Array(32).fill(7),
      maxFrameBytes: 8 * 2 ** 20,
      metrics: m,
      log: new JsonLogger({ level: "error", sink: () => {} }),
      sendFrame: (to, frame) => {
        if (dead.has(to) || dead.has(self)) return false;
        const body = frame.slice(5);
        setTimeout(() => nodes[ids.indexOf(to)].onFrame(self, body), 0);
        return true;
      },
      peers: () =>
        ids.filter((id) => id !== self && !dead.has(id)).map((id) => ({
          id,
          state: "alive" as const,
          tier: "sclerotia" as const,
          labels: {},
        })),
    });
  };
  for (let i = 0; i < n; i++) {
    nodes.push(make(i));
    await nodes[i].open();
  }
  return {
    nodes,
    ids,
    dead,
    metrics,
    async restart(i) {
      nodes[i].stop();
      nodes[i] = make(i);
      await nodes[i].open();
    },
    async close() {
      for (const o of nodes) o.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function manifestHolders(c: Cluster, id: string): Promise<NodeId[]> {
  const out: NodeId[] = [];
  for (const [i, o] of c.nodes.entries()) if ((await o.manifests.get(id)).ok) out.push(c.ids[i]);
  return out;
}

/** One scan on every live node, in turn. */
async function scanAll(c: Cluster): Promise<void> {
  for (const [i, o] of c.nodes.entries()) if (!c.dead.has(c.ids[i])) await o.repair.scan("test");
}

function counter(m: PromMetrics, text: string, name: string): number {
  void m;
  const re = new RegExp(`^${name.replace(/[{}"=]/g, (ch) => `\\${ch}`)} (\\S+)$`, "m");
  return Number(re.exec(text)?.[1] ?? 0);
}

async function totalRepairs(c: Cluster, kind: "chunk" | "manifest"): Promise<number> {
  let n = 0;
  for (const m of c.metrics) {
    n += counter(m, await m.render(), `mycelium_storage_repairs_total{kind="${kind}"}`);
  }
  return n;
}

const small = { chunkSize: 64 * 1024, hedgeMs: 100, requestTimeoutMs: 1000 };

Deno.test("repair (in process): after a holder dies, one scan per node restores 3 live replicas of every chunk and manifest, each copy made once", async () => {
  const c = await cluster(6, small);
  try {
    const objs = new Map<string, Uint8Array>();
    for (let k = 0; k < 5; k++) {
      const data = bytes(150_000 + k * 20_000, k + 1);
      objs.set(`o${k}`, data);
      await c.nodes[k % 6].put(`o${k}`, data);
    }
    for (const o of c.nodes) await o.drain();
    // The node holding the most chunks dies.
    const recs = await Promise.all([...objs.keys()].map((id) => c.nodes[0].findManifest(id)));
    const count = new Map<NodeId, number>();
    for (const r of recs) {
      for (const reps of r.replicas) for (const n of reps) count.set(n, (count.get(n) ?? 0) + 1);
    }
    const victim = [...count].sort((a, b) => b[1] - a[1])[0][0];
    c.dead.add(victim);
    let missingChunks = 0;
    let missingManifests = 0;
    for (const r of recs) {
      for (const id of new Set(r.manifest.chunks)) {
        if ((await chunkHolders(c, id)).includes(victim)) missingChunks++;
      }
      if ((await manifestHolders(c, r.manifest.objectId)).includes(victim)) missingManifests++;
    }
    assert.ok(missingChunks > 0, "the victim held chunks");
    await scanAll(c);
    for (const r of recs) {
      for (const id of r.manifest.chunks) {
        const live = (await chunkHolders(c, id)).filter((n) => n !== victim);
        assert.equal(live.length, 3, `chunk ${id.slice(0, 8)} on ${live.length} live nodes`);
      }
      const m = (await manifestHolders(c, r.manifest.objectId)).filter((n) => n !== victim);
      assert.equal(m.length, 3, `manifest of ${r.manifest.objectId} on ${m.length} live nodes`);
    }
    // Exactly one node copied each missing replica.
    assert.equal(await totalRepairs(c, "chunk"), missingChunks);
    assert.equal(await totalRepairs(c, "manifest"), missingManifests);
    // A second round finds nothing to do.
    await scanAll(c);
    assert.equal(await totalRepairs(c, "chunk"), missingChunks);
    assert.equal(await totalRepairs(c, "manifest"), missingManifests);
    for (const [id, data] of objs) assert.deepEqual((await c.nodes[1].get(id)).data, data);
    // The victim comes back with its data: it is found holding its chunks (asked, not
    // assumed), so the next round copies nothing either.
    c.dead.delete(victim);
    await c.restart(c.ids.indexOf(victim));
    await scanAll(c);
    assert.equal(await totalRepairs(c, "chunk"), missingChunks);
  } finally {
    await c.close();
  }
});

Deno.test("repair (in process): chunks placed while a node was away are found where they are when it returns (asked, not assumed)", async () => {
  const c = await cluster(5, small);
  try {
    // Node 2 is unreachable during the write, so its chunks go to the next node in order.
    c.dead.add(c.ids[2]);
    const data = bytes(200_000, 9);
    await c.nodes[0].put("x", data);
    for (const o of c.nodes) await o.drain();
    c.dead.delete(c.ids[2]);
    // Now node 2 is back (placement includes it again): holders are asked, so nothing is
    // lost or needlessly moved; every chunk keeps its 3 replicas and gains the 4th at most.
    await scanAll(c);
    const rec = await c.nodes[0].findManifest("x");
    for (const id of rec.manifest.chunks) {
      assert.ok((await chunkHolders(c, id)).length >= 3);
    }
    assert.equal(await totalRepairs(c, "chunk"), 0, "3 live replicas already: no copies");
  } finally {
    await c.close();
  }
});

Deno.test("delete (in process): 404 after, chunks gone, shared chunks kept, no resurrection by repair, a holder that missed it catches up", async () => {
  const c = await cluster(5, small);
  try {
    const shared = bytes(64 * 1024, 1); // one full chunk both objects contain
    const a = new Uint8Array([...shared, ...bytes(70_000, 2)]);
    const b = new Uint8Array([...shared, ...bytes(10_000, 3)]);
    await c.nodes[0].put("a", a);
    await c.nodes[1].put("b", b);
    const keep = bytes(100_000, 4);
    await c.nodes[2].put("keep", keep);
    for (const o of c.nodes) await o.drain();
    const ra = await c.nodes[0].findManifest("a");
    const rb = await c.nodes[0].findManifest("b");
    assert.equal(ra.manifest.chunks[0], rb.manifest.chunks[0], "the first chunk is shared");
    const onlyA = ra.manifest.chunks.filter((x) => !rb.manifest.chunks.includes(x));
    assert.ok(onlyA.length > 0);

    // A manifest holder of "a" is down during the delete; it keeps the old record.
    const mh = await manifestHolders(c, "a");
    const sleeper = mh.find((n) => n !== c.ids[3])!;
    c.dead.add(sleeper);
    const d = await c.nodes[3].delete("a");
    assert.equal(d.deleted, true);
    await assert.rejects(c.nodes[4].get("a"), (e: ObjectsError) => e.status === 404);
    await assert.rejects(c.nodes[4].findManifest("a"), (e: ObjectsError) => e.status === 404);
    await assert.rejects(c.nodes[4].delete("a"), (e: ObjectsError) => e.status === 404);
    for (const id of onlyA) {
      const h = (await chunkHolders(c, id)).filter((n) => n !== sleeper);
      assert.deepEqual(h, [], `chunk ${id.slice(0, 8)} left on live nodes`);
    }
    // The shared chunk is still held (b references it) and b reads back.
    assert.ok((await chunkHolders(c, rb.manifest.chunks[0])).length >= 3);
    assert.deepEqual((await c.nodes[4].get("b")).data, b);

    // Repair rounds with the sleeper back: its stale record loses to the tombstone, it
    // frees its copies, and nothing of "a" comes back.
    c.dead.delete(sleeper);
    for (const o of c.nodes) o.memberChanged(sleeper, "alive");
    await scanAll(c);
    await scanAll(c);
    for (const id of onlyA) assert.deepEqual(await chunkHolders(c, id), [], id.slice(0, 8));
    const rec = await c.nodes[c.ids.indexOf(sleeper)].manifests.get("a");
    assert.ok(rec.ok && rec.record.deleted, "the sleeper adopted the tombstone");
    for (const o of c.nodes) {
      await assert.rejects(o.get("a", "eventual"), (e: ObjectsError) => e.status === 404);
    }
    // A dead tombstone holder: the tombstone is re-replicated too.
    const th = (await manifestHolders(c, "a"))[0];
    c.dead.add(th);
    await scanAll(c);
    const live = (await manifestHolders(c, "a")).filter((n) => n !== th);
    assert.ok(live.length >= 3, `tombstone on ${live.length} live nodes`);
    await assert.rejects(
      c.nodes[c.ids.indexOf(live[0])].get("a"),
      (e: ObjectsError) => e.status === 404,
    );
    assert.deepEqual((await c.nodes[c.ids.indexOf(live[0])].get("keep")).data, keep);
    // Deleting b frees the shared chunk too; a new PUT of "a" is a newer version.
    const alive = c.nodes.filter((_, i) => c.ids[i] !== th);
    await alive[0].delete("b");
    const left = (await chunkHolders(c, rb.manifest.chunks[0])).filter((n) => n !== th);
    assert.deepEqual(left, [], "the shared chunk is gone from every live node");
    await alive[1].put("a", bytes(5000, 8));
    assert.deepEqual((await alive[2].get("a")).data, bytes(5000, 8));
  } finally {
    await c.close();
  }
});

// ---- pure parts ----

function snode(i: number, domain = `d${i}`): StorageNode {
  return {
    id: i.toString(16).padStart(32, "0") as NodeId,
    tier: "sclerotia",
    trust: 1,
    weight: 1,
    domain,
  };
}

Deno.test("decideManifest: the newest version wins; one coordinator, the first holder in rendezvous order; copies fill the target", () => {
  const nodes = [1, 2, 3, 4, 5].map((i) => snode(i));
  const v = (ms: number, deleted = false): ManifestView => ({
    version: { hlc: { ms, c: 0 }, writer: nodes[0].id },
    deleted,
  });
  const answers = new Map<NodeId, ManifestView | null>([
    [nodes[0].id, v(5)],
    [nodes[1].id, v(7, true)],
    [nodes[2].id, null],
  ]);
  const d = decideManifest("object:x", "Standard", nodes, answers, 3);
  assert.deepEqual(d.newest, v(7, true));
  assert.deepEqual(d.holders, [nodes[1].id]);
  assert.equal(d.coordinator, nodes[1].id);
  assert.equal(d.copyTo.length, 2);
  assert.ok(!d.copyTo.includes(nodes[1].id));
  const none = decideManifest("object:x", "Standard", nodes, new Map([[nodes[0].id, null]]), 3);
  assert.deepEqual([none.newest, none.coordinator, none.copyTo], [null, null, []]);
});

Deno.test("decideManifest (property): every node computes the same decision; the coordinator holds the newest; holders + copies = min(rf, domains) live nodes on distinct domains", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 9 }),
      fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 9, maxLength: 9 }),
      fc.array(fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }), {
        minLength: 9,
        maxLength: 9,
      }),
      fc.integer({ min: 1, max: 4 }),
      fc.constantFrom<StorageClass>(...STORAGE_CLASS_NAMES),
      fc.string({ maxLength: 8 }),
      (n, domains, vers, rf, cls, key) => {
        const nodes = Array.from({ length: n }, (_, i) => snode(i + 1, `d${domains[i]}`));
        const entries: Array<[NodeId, ManifestView | null]> = nodes.map((x, i) => [
          x.id,
          vers[i] === null ? null : {
            version: { hlc: { ms: vers[i]!, c: 0 }, writer: nodes[0].id },
            deleted: vers[i]! % 2 === 0,
          },
        ]);
        const d = decideManifest(key, cls, nodes, new Map(entries), rf);
        const reversed = decideManifest(
          key,
          cls,
          [...nodes].reverse(),
          new Map(entries.reverse()),
          rf,
        );
        assert.deepEqual(reversed, d, "independent of the order of nodes and answers");
        const max = Math.max(0, ...vers.slice(0, n).map((x) => x ?? 0));
        if (max === 0) {
          assert.equal(d.coordinator, null);
          return;
        }
        assert.equal(d.newest!.version.hlc.ms, max);
        assert.ok(d.coordinator !== null && d.holders.includes(d.coordinator));
        assert.equal(d.coordinator, d.holders[0]);
        for (const t of d.copyTo) assert.ok(!d.holders.includes(t));
        const dom = (id: NodeId) => nodes.find((x) => x.id === id)!.domain;
        const want = Math.min(rf, new Set(nodes.map((x) => x.domain)).size);
        const all = new Set([...d.holders, ...d.copyTo]);
        const covered = new Set([...all].map(dom));
        assert.ok(covered.size >= want, `${covered.size} domains covered, want ${want}`);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("batches (property): concatenation is the input; bounded by count and weight", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 50 })),
      fc.integer({ min: 1, max: 10 }),
      fc.integer({ min: 1, max: 100 }),
      (items, maxItems, maxWeight) => {
        const b = batches(items, maxItems, maxWeight, (x) => x);
        assert.deepEqual(b.flat(), items);
        for (const g of b) {
          assert.ok(g.length >= 1 && g.length <= maxItems);
          const w = g.reduce((s, x) => s + x, 0);
          assert.ok(w <= maxWeight || g.length === 1, `group ${g} over ${maxWeight}`);
        }
      },
    ),
  );
});
