/**
 * The chunk and manifest stores on disk: files where the layout says, nothing left behind
 * by a write, checksums verified on read with corrupt files moved aside, temp files of a
 * crash removed at open, manifest versions converging whatever the write order.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { NodeId } from "../core/ids.ts";
import type { ManifestRecord } from "./objects_codec.ts";
import { BoundedSemaphore, ChunkStore, ManifestStore, sha256Hex } from "./objects_store.ts";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "mycelium-objstore-" });
}

async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) out.push(...(await listAll(join(dir, e.name))).map((f) => `${e.name}/${f}`));
    else out.push(e.name);
  }
  return out.sort();
}

Deno.test("chunk store: durable write layout, verified reads, corrupt files moved aside", async () => {
  const dir = await tempDir();
  try {
    const store = new ChunkStore(join(dir, "chunks"));
    await store.open();
    const a = crypto.getRandomValues(new Uint8Array(60_000));
    const id = sha256Hex(a);
    assert.equal(await store.put(id, a), "written");
    assert.equal(await store.put(id, a), "present");
    assert.deepEqual(await listAll(join(dir, "chunks")), [`${id.slice(0, 2)}/${id}`]);
    assert.equal(store.count, 1);
    assert.equal(store.bytes, a.length);
    const r = await store.get(id);
    assert.ok(r.ok);
    assert.deepEqual(r.bytes, a);

    // Bytes that do not match the id are refused before anything is written.
    await assert.rejects(store.put(sha256Hex(new Uint8Array([1])), a), /do not match/);
    assert.equal(store.count, 1);

    // Corrupt the file: the read reports it and moves it aside; a new put rewrites it.
    const path = store.path(id);
    const bytes = await Deno.readFile(path);
    bytes[123] ^= 0xff;
    await Deno.writeFile(path, bytes);
    const bad = await store.get(id);
    assert.ok(!bad.ok && bad.kind === "corrupt", JSON.stringify(bad));
    assert.equal(store.corruptFound, 1);
    assert.equal(store.count, 0);
    const missing = await store.get(id);
    assert.ok(!missing.ok && missing.kind === "missing");
    assert.equal((await listAll(join(dir, "chunks", "corrupt"))).length, 1);
    assert.equal(await store.put(id, a), "written");
    assert.ok((await store.get(id)).ok);

    // Concurrent writes of one chunk: one file, counted once.
    const b = crypto.getRandomValues(new Uint8Array(10_000));
    const bid = sha256Hex(b);
    const rs = await Promise.all([store.put(bid, b), store.put(bid, b), store.put(bid, b)]);
    assert.deepEqual(rs.sort(), ["present", "present", "written"]);
    assert.equal(store.count, 2);

    // A crash mid-write leaves a temp file: removed at the next open, chunks counted again.
    await Deno.writeFile(join(dir, "chunks", bid.slice(0, 2), `.tmp-${bid}-dead`), b);
    const again = new ChunkStore(join(dir, "chunks"));
    assert.deepEqual(await again.open(), { removedTemp: 1 });
    assert.equal(again.count, 2);
    assert.equal(again.bytes, a.length + b.length);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function record(objectId: string, ms: number, writer: string, size: number): ManifestRecord {
  return {
    manifest: {
      objectId,
      size,
      chunkSize: 1024,
      chunks: size === 0 ? [] : ["ab".repeat(32)],
      class: "Standard",
      consistency: "strong",
      encrypted: false,
    },
    version: { hlc: { ms, c: 0 }, writer: writer as NodeId },
    plainSize: size,
    replicas: size === 0 ? [] : [[]],
  };
}

Deno.test("manifest store: the newest version wins whatever the order", async () => {
  const dir = await tempDir();
  try {
    const store = new ManifestStore(join(dir, "manifests"));
    await store.open();
    const w1 = "1".repeat(32), w2 = "2".repeat(32);
    const old = record("a/b c", 5, w1, 10);
    const newer = record("a/b c", 5, w2, 20); // same clock, larger writer
    const newest = record("a/b c", 6, w1, 0);
    assert.equal(await store.put(newer), "written");
    assert.equal(await store.put(old), "kept");
    assert.equal(await store.put(newer), "kept");
    const got = await store.get("a/b c");
    assert.ok(got.ok && got.record.plainSize === 20);
    // Concurrent writes: serialized per object, the newest stays.
    await Promise.all([store.put(newest), store.put(old), store.put(newer)]);
    const last = await store.get("a/b c");
    assert.ok(last.ok && last.record.version.hlc.ms === 6);
    assert.equal(store.count, 1);
    assert.ok(!(await store.get("other")).ok);

    // An unreadable file is reported (treated as missing), never thrown.
    const name = ManifestStore.fileName("a/b c");
    await Deno.writeTextFile(join(dir, "manifests", name.slice(0, 2), name), "{nope");
    const bad = await store.get("a/b c");
    assert.ok(!bad.ok && bad.kind === "corrupt");
    assert.equal(await store.put(old), "written");
    const reopened = new ManifestStore(join(dir, "manifests"));
    await reopened.open();
    assert.equal(reopened.count, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bounded semaphore: limit, FIFO queue, refusal when the queue is full", async () => {
  const s = new BoundedSemaphore(2, 1);
  const r1 = await s.acquire()!;
  const r2 = await s.acquire()!;
  const order: number[] = [];
  const third = s.acquire()!.then((r) => {
    order.push(3);
    return r;
  });
  assert.equal(s.acquire(), null, "queue full");
  assert.equal(s.busy, 3);
  r1();
  r1(); // idempotent
  const r3 = await third;
  assert.deepEqual(order, [3]);
  r2();
  r3();
  assert.equal(s.busy, 0);
});

Deno.test("chunk store: references; a chunk goes with its last one, survives reopen; one written without any is kept", async () => {
  const dir = await tempDir();
  try {
    const root = join(dir, "chunks");
    let store = new ChunkStore(root);
    await store.open();
    const a = crypto.getRandomValues(new Uint8Array(1000));
    const id = sha256Hex(a);
    assert.equal(await store.put(id, a, false, "x"), "written");
    assert.equal(await store.put(id, a, false, "y"), "present");
    assert.equal(store.refsOf(id).size, 2);
    // Asking whether it is held records a reference too (repair's `have`).
    assert.equal(await store.holds(id, "z"), true);
    assert.equal(await store.holds("0".repeat(64), "z"), false);
    store = new ChunkStore(root); // reopen: references are files
    await store.open();
    assert.equal(store.refsOf(id).size, 3);
    assert.equal(await store.unref(id, "x"), "kept");
    assert.equal(await store.unref(id, "x"), "not-referenced");
    assert.equal(await store.unref(id, "y"), "kept");
    assert.ok(await store.has(id));
    assert.equal(await store.unref(id, "z"), "deleted");
    assert.equal(await store.has(id), false);
    assert.equal(store.count, 0);
    assert.deepEqual((await listAll(root)).filter((f) => !f.startsWith("corrupt")), []);
    // Without a reference (e.g. written before references existed): never deleted by unref.
    const b = crypto.getRandomValues(new Uint8Array(1000));
    const idb = sha256Hex(b);
    await store.put(idb, b);
    assert.equal(await store.unref(idb, "x"), "not-referenced");
    assert.ok(await store.has(idb));
    // A put racing an unref of the last reference: they run one after the other per chunk,
    // so the chunk is either deleted and rewritten or kept, never lost after "written".
    const c = crypto.getRandomValues(new Uint8Array(1000));
    const idc = sha256Hex(c);
    await store.put(idc, c, false, "x");
    const [u, p] = await Promise.all([store.unref(idc, "x"), store.put(idc, c, false, "y")]);
    assert.equal(u, "deleted");
    assert.equal(p, "written");
    assert.ok(await store.has(idc));
    assert.deepEqual([...store.refsOf(idc)].length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("manifest store: list yields every readable record, tombstones included", async () => {
  const dir = await tempDir();
  try {
    const store = new ManifestStore(join(dir, "m"));
    await store.open();
    const rec = (objectId: string, ms: number, deleted?: true): ManifestRecord => ({
      manifest: {
        objectId,
        size: 0,
        chunkSize: 1024,
        chunks: [],
        class: "Standard",
        consistency: "strong",
        encrypted: false,
      },
      version: { hlc: { ms, c: 0 }, writer: "a".repeat(32) as NodeId },
      plainSize: 0,
      replicas: [],
      ...(deleted ? { deleted } : {}),
    });
    await store.put(rec("one", 1));
    await store.put(rec("two", 1));
    await store.put(rec("two", 2, true)); // the tombstone is newer: it replaces the record
    await store.put(rec("two", 1)); // a stale record never replaces it
    const seen = [];
    for await (const r of store.list()) seen.push([r.manifest.objectId, r.deleted ?? false]);
    seen.sort();
    assert.deepEqual(seen, [["one", false], ["two", true]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
