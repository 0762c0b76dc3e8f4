/**
 * Object storage on 5 real node processes (127.0.0.1, mutual-TLS streams), 256 KiB chunks so
 * small objects span several chunks: a PUT on one node reads back byte for byte from
 * another; every chunk ends up on 3 distinct nodes' disks; a Critical object's chunk files
 * hold ciphertext only; a corrupted chunk file is detected, the read succeeds from another
 * replica and the file is repaired; API input errors name the input and malformed frames are
 * dropped and counted; DELETE answers 404 afterwards and removes the chunk files from every
 * holder; `kill -9` of a replica holder while a client writes Strong objects loses none of
 * the acknowledged ones; and once the survivors declare it dead, re-replication puts every
 * chunk and manifest back on 3 live nodes' disks (the deleted object stays deleted).
 * Runs against the built binary when MYCELIUM_BINARY is set.
 */
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { join } from "node:path";
import { FRAME_OBJECTS } from "./objects.ts";
import { encodeObjects, type ManifestRecord } from "./objects_codec.ts";
import { loadNodeIdentity } from "./pki.ts";
import { createTestNetwork, nodeEnv, NodeProcess, sendRawFrames, until } from "./testing.ts";

const BINARY = Deno.env.get("MYCELIUM_BINARY") || undefined;
Deno.env.delete("MYCELIUM_BINARY");

const KiB = 1024;
const CHUNK = 256 * KiB;

interface PutReply {
  id: string;
  size: number;
  chunks: number;
  class: string;
  consistency: string;
  encrypted: boolean;
  replicas: string[][];
  stored: number[];
  manifestReplicas: string[];
}

const sha = (b: Uint8Array) => crypto.createHash("sha256").update(b).digest("hex");

/** Pseudo-random bytes (crypto.getRandomValues takes at most 64 KiB at a time). */
function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(crypto.randomBytes(n));
}

async function put(
  p: NodeProcess,
  id: string,
  body: Uint8Array<ArrayBuffer>,
  query = "",
  headers: Record<string, string> = {},
): Promise<{ status: number; json: PutReply & { error?: string } }> {
  const res = await fetch(
    `http://${p.addresses!.admin}/v1/objects/${encodeURIComponent(id)}${query}`,
    { method: "PUT", body, headers },
  );
  return { status: res.status, json: await res.json() };
}

async function getBytes(
  p: NodeProcess,
  id: string,
): Promise<{ status: number; bytes: Uint8Array }> {
  const res = await fetch(`http://${p.addresses!.admin}/v1/objects/${encodeURIComponent(id)}`);
  return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
}

function metric(text: string, name: string): number {
  const re = new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\S+)$`, "m");
  return Number(re.exec(text)?.[1] ?? 0);
}

/** The nodes (by index) whose data dir holds a file for chunk `id`. */
async function holders(dataDirs: string[], id: string): Promise<number[]> {
  const out: number[] = [];
  for (const [i, d] of dataDirs.entries()) {
    try {
      await Deno.stat(join(d, "chunks", id.slice(0, 2), id));
      out.push(i);
    } catch { /* not here */ }
  }
  return out;
}

/** The nodes (by index) whose data dir holds a manifest file (or tombstone) of object `id`. */
async function manifestHolders(dataDirs: string[], id: string): Promise<number[]> {
  const name = `${sha(new TextEncoder().encode(id))}.json`;
  const out: number[] = [];
  for (const [i, d] of dataDirs.entries()) {
    try {
      await Deno.stat(join(d, "manifests", name.slice(0, 2), name));
      out.push(i);
    } catch { /* not here */ }
  }
  return out;
}

Deno.test({
  name: `objects (${BINARY ? "binary" : "deno run"}): 5 nodes; replicated chunks on disk; ` +
    "corrupt replica detected; DELETE; kill -9 of a replica holder loses no acknowledged " +
    "write and re-replication restores 3 live replicas",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "mycelium-objects-" });
    const procs: NodeProcess[] = [];
    try {
      const net = await createTestNetwork(dir, "obj");
      const names = ["a", "b", "c", "d", "e"];
      const dataDirs = await Promise.all(names.map((n) => net.node(n)));
      const ids = await Promise.all(
        dataDirs.map(async (d) => (await loadNodeIdentity(join(d, "identity"))).nodeId),
      );
      const intruder = await loadNodeIdentity(join(await net.node("x"), "identity"));
      const extra = {
        MYCELIUM_STREAMS_RECONNECT_MAX_MS: "1000",
        MYCELIUM_STORAGE_CHUNK_SIZE: String(CHUNK),
        MYCELIUM_STORAGE_MAX_OBJECT_BYTES: String(4 * 1024 * KiB),
        MYCELIUM_STORAGE_HEDGE_MS: "500",
      };
      procs.push(new NodeProcess("a", dataDirs[0], nodeEnv(dataDirs[0], [], extra), BINARY));
      const seed = (await procs[0].ready()).gossip;
      for (let i = 1; i < names.length; i++) {
        procs.push(
          new NodeProcess(names[i], dataDirs[i], nodeEnv(dataDirs[i], [seed], extra), BINARY),
        );
      }
      await Promise.all(procs.map((p) => p.ready()));
      await until("every node sees the other four alive", 20_000, async () => {
        for (const p of procs) {
          const m = await p.json<Array<{ state: string }>>("/v1/members");
          if (m.filter((x) => x.state === "alive").length < 4) return false;
        }
        return true;
      });
      const [a, b, c, d, e] = procs;
      const nodeOf = (id: string) => (ids as string[]).indexOf(id);

      const obj = randomBytes(3 * CHUNK + 1234); // 4 chunks, the last one short
      let record: ManifestRecord | undefined;
      await t.step("PUT on A, GET from B returns identical bytes", async () => {
        const r = await put(a, "photos/cat.jpg", obj, "?class=Standard&consistency=strong");
        assert.equal(r.status, 201, JSON.stringify(r.json));
        assert.equal(r.json.id, "photos/cat.jpg");
        assert.equal(r.json.size, obj.length);
        assert.equal(r.json.chunks, 4);
        assert.equal(r.json.encrypted, false);
        assert.equal(r.json.replicas.length, 4);
        for (const [i, reps] of r.json.replicas.entries()) {
          assert.equal(new Set(reps).size, 3, `chunk ${i} sent to ${reps}`);
          assert.ok(r.json.stored[i] >= 2, `chunk ${i} acknowledged by ${r.json.stored[i]}`);
        }
        const g = await getBytes(b, "photos/cat.jpg");
        assert.equal(g.status, 200);
        assert.equal(sha(g.bytes), sha(obj));
        const m = await b.get(`/v1/objects/${encodeURIComponent("photos/cat.jpg")}?manifest=1`);
        assert.equal(m.status, 200, m.body);
        record = JSON.parse(m.body) as ManifestRecord;
        assert.equal(record.manifest.chunks.length, 4);
        assert.equal(record.manifest.chunkSize, CHUNK);
        // An empty object is a manifest without chunks.
        const empty = await put(c, "empty", new Uint8Array(0));
        assert.equal(empty.status, 201, JSON.stringify(empty.json));
        const ge = await getBytes(e, "empty");
        assert.equal(ge.status, 200);
        assert.equal(ge.bytes.length, 0);
      });

      await t.step("every chunk is on 3 distinct nodes' disks", async () => {
        const chunks = record!.manifest.chunks;
        let seen: number[][] = [];
        await until("3 replicas of each chunk on disk", 15_000, async () => {
          seen = await Promise.all(chunks.map((id) => holders(dataDirs, id)));
          return seen.every((h) => h.length === 3);
        }).catch(() => assert.fail(`replicas on disk: ${JSON.stringify(seen)}`));
        // Where placement sent them: exactly those nodes.
        chunks.forEach((_, i) => {
          assert.deepEqual(seen[i], record!.replicas[i].map(nodeOf).sort());
        });
        // The nodes report them in their metrics.
        let total = 0;
        for (const p of procs) {
          total += metric((await p.get("/metrics")).body, "mycelium_storage_chunks_stored");
        }
        assert.equal(total, 3 * chunks.length);
      });

      await t.step("a Critical object is stored encrypted, read back in clear", async () => {
        const secret = new TextEncoder().encode("the launch code is 0000 ".repeat(20_000));
        const r = await put(c, "secret", secret, "", { "x-mycelium-class": "Critical" });
        assert.equal(r.status, 201, JSON.stringify(r.json));
        assert.equal(r.json.encrypted, true);
        assert.equal(r.json.class, "Critical");
        const g = await getBytes(d, "secret");
        assert.equal(g.status, 200);
        assert.equal(sha(g.bytes), sha(secret));
        const rec = JSON.parse((await e.get("/v1/objects/secret?manifest=1")).body);
        assert.equal(rec.manifest.size, secret.length + 28); // iv + tag
        const first = rec.manifest.chunks[0];
        const where = await holders(dataDirs, first);
        assert.ok(where.length >= 2);
        const file = await Deno.readFile(
          join(dataDirs[where[0]], "chunks", first.slice(0, 2), first),
        );
        const text = new TextDecoder("utf-8", { fatal: false }).decode(file);
        assert.ok(!text.includes("launch code"), "plaintext on disk");
      });

      await t.step(
        "a corrupted chunk file is detected; the read succeeds from another replica",
        async () => {
          const id = record!.manifest.chunks[1];
          const where = await holders(dataDirs, id);
          const victim = where[0];
          const path = join(dataDirs[victim], "chunks", id.slice(0, 2), id);
          const bytes = await Deno.readFile(path);
          bytes[1000] ^= 0x5a;
          await Deno.writeFile(path, bytes);
          const p = procs[victim];
          const before = metric(
            (await p.get("/metrics")).body,
            "mycelium_storage_corrupt_chunks_total",
          );
          const g = await getBytes(p, "photos/cat.jpg"); // the victim reads its own copy first
          assert.equal(g.status, 200);
          assert.equal(sha(g.bytes), sha(obj));
          const after = metric(
            (await p.get("/metrics")).body,
            "mycelium_storage_corrupt_chunks_total",
          );
          assert.equal(after, before + 1);
          assert.ok(p.logs.some((l) => l.includes('"storage_chunk_corrupt"') && l.includes(id)));
          // Read repair: the victim rewrites its copy from the good one.
          await until("the corrupt copy is repaired", 10_000, async () => {
            return sha(await Deno.readFile(path)) === id;
          });
          const moved = [...Deno.readDirSync(join(dataDirs[victim], "chunks", "corrupt"))];
          assert.equal(moved.length, 1);
        },
      );

      await t.step("bad input is named; malformed frames are dropped and counted", async () => {
        const bad = async (
          r: Promise<{ status: number; body: string }>,
          code: number,
          re: RegExp,
        ) => {
          const { status, body } = await r;
          assert.equal(status, code, body);
          assert.match(JSON.parse(body).error, re);
        };
        const small = new Uint8Array(10);
        const send = (method: string, path: string, body?: Uint8Array<ArrayBuffer>, headers = {}) =>
          fetch(`http://${a.addresses!.admin}${path}`, { method, body, headers }).then(
            async (r) => ({ status: r.status, body: await r.text() }),
          );
        await bad(
          send("PUT", "/v1/objects/x?class=Gold", small),
          400,
          /^class: "Gold" is not valid \(expected one of Critical/,
        );
        await bad(
          send("PUT", "/v1/objects/x", small, { "x-mycelium-consistency": "maybe" }),
          400,
          /^x-mycelium-consistency: /,
        );
        await bad(
          send("PUT", "/v1/objects/x?consistency=strong", small, {
            "x-mycelium-consistency": "eventual",
          }),
          400,
          /^consistency: /,
        );
        await bad(
          send("PUT", "/v1/objects/x?colour=red", small),
          400,
          /^colour: unknown query parameter/,
        );
        await bad(send("GET", "/v1/objects/x?manifest=2"), 400, /^manifest: expected 1 or 0/);
        await bad(send("PUT", "/v1/objects/a%00b", small), 400, /^id: /);
        await bad(
          send("PUT", "/v1/objects/%E0%A4%A", small),
          400,
          /^id: not valid percent-encoding/,
        );
        await bad(send("PUT", "/v1/objects/", small), 400, /^id: /);
        await bad(send("POST", "/v1/objects/x", small), 405, /^method POST not allowed/);
        await bad(send("DELETE", "/v1/objects/x"), 404, /^no object x$/);
        await bad(send("DELETE", "/v1/objects/x?manifest=1"), 400, /^manifest: unknown query/);
        await bad(
          send("PUT", "/v1/objects/big", new Uint8Array(4 * 1024 * KiB + 1)),
          413,
          /^body: over storage.maxObjectBytes/,
        );
        await bad(send("GET", "/v1/objects/never-written"), 404, /^no object never-written$/);

        const streams =
          (await b.json<{ addresses: { streams: string } }>("/status")).addresses.streams;
        const wrongBytes = encodeObjects({
          t: "put-chunk",
          req: 1,
          chunk: "0".repeat(64),
          bytes: new Uint8Array([1, 2, 3]),
        });
        const conn = await sendRawFrames(intruder, streams, FRAME_OBJECTS, [
          new TextEncoder().encode("\x01\x00\x05hello"),
          new Uint8Array([9, 9, 9]),
          wrongBytes, // well-formed, but the bytes do not hash to the id: refused, not stored
        ]);
        await until("B counts both drops", 10_000, async () => {
          const m = (await b.get("/metrics")).body;
          return metric(m, 'mycelium_storage_dropped_frames_total{reason="decode"}') === 2;
        });
        conn.close("done");
        assert.equal((await holders(dataDirs, "0".repeat(64))).length, 0);
        assert.equal((await getBytes(b, "photos/cat.jpg")).status, 200, "B goes on serving");
      });

      const deleted: string[] = []; // chunk ids of the deleted object
      await t.step("DELETE: 404 afterwards, the chunk files gone from every holder", async () => {
        const body = randomBytes(2 * CHUNK + 5000); // 3 chunks of its own
        const r = await put(b, "doomed", body);
        assert.equal(r.status, 201, JSON.stringify(r.json));
        const rec = JSON.parse((await c.get("/v1/objects/doomed?manifest=1")).body);
        deleted.push(...rec.manifest.chunks);
        await until("the chunks on 3 disks each", 15_000, async () => {
          for (const id of deleted) if ((await holders(dataDirs, id)).length !== 3) return false;
          return true;
        });
        const del = await fetch(`http://${d.addresses!.admin}/v1/objects/doomed`, {
          method: "DELETE",
        });
        const dj = await del.json();
        assert.equal(del.status, 200, JSON.stringify(dj));
        assert.equal(dj.deleted, true);
        for (const p of procs) assert.equal((await getBytes(p, "doomed")).status, 404, p.name);
        assert.equal((await a.get("/v1/objects/doomed?manifest=1")).status, 404);
        for (const id of deleted) {
          assert.deepEqual(await holders(dataDirs, id), [], `chunk ${id.slice(0, 12)} on disk`);
        }
        // The tombstone is kept (it wins over any stale copy of the record).
        assert.ok((await manifestHolders(dataDirs, "doomed")).length >= 2);
        const again = await fetch(`http://${e.addresses!.admin}/v1/objects/doomed`, {
          method: "DELETE",
        });
        assert.equal(again.status, 404, await again.text());
        assert.equal((await getBytes(a, "photos/cat.jpg")).status, 200, "others untouched");
      });

      let victimIndex = -1;
      let killedAt = 0;
      const acked = new Map<string, string>(); // id -> sha256
      await t.step(
        "kill -9 of a replica holder during Strong writes loses no acknowledged object",
        async () => {
          const failed: string[] = [];
          let killed = false;
          let afterKill = 0;
          let n = 0;
          const writer = async (lane: number) => {
            for (let i = 0; i < 14; i++) {
              const id = `load/${lane}/${i}`;
              const body = randomBytes(CHUNK + ((n++ * 77_777) % (3 * CHUNK))); // 2-4 chunks
              const r = await put(a, id, body, "?consistency=strong").catch((err) => ({
                status: 0,
                json: { error: String(err) } as PutReply & { error?: string },
              }));
              if (r.status === 201) {
                acked.set(id, sha(body));
                if (killed) afterKill++;
              } else failed.push(`${id}: ${r.status} ${r.json.error}`);
            }
          };
          const lanes = [writer(0), writer(1)];
          // Once some objects are in, kill a node that holds replicas of acknowledged chunks.
          await until("10 acknowledged writes", 30_000, () => Promise.resolve(acked.size >= 10));
          const rec = JSON.parse(
            (await a.get(`/v1/objects/${encodeURIComponent([...acked.keys()][0])}?manifest=1`))
              .body,
          ) as ManifestRecord;
          const victim = rec.replicas[0].map(nodeOf).find((i) => i !== 0)!;
          assert.ok(victim > 0, "a replica holder other than the writer");
          procs[victim].kill("SIGKILL");
          killedAt = performance.now();
          victimIndex = victim;
          await procs[victim].exited;
          killed = true;
          await Promise.all(lanes);
          const survivors = procs.filter((_, i) => i !== victim && i !== 0);
          console.log(
            `  killed ${procs[victim].name}; ${acked.size} acknowledged (${afterKill} after the ` +
              `kill), ${failed.length} refused${
                failed.length ? `: ${failed.slice(0, 3).join("; ")}` : ""
              }`,
          );
          assert.ok(afterKill > 0, "writes go on after the kill");
          // Every acknowledged object reads back intact from the survivors.
          let k = 0;
          for (const [id, digest] of acked) {
            const p = survivors[k++ % survivors.length];
            const g = await getBytes(p, id);
            assert.equal(
              g.status,
              200,
              `${id} from ${p.name}: ${new TextDecoder().decode(g.bytes)}`,
            );
            assert.equal(sha(g.bytes), digest, `${id} from ${p.name}`);
          }
          // ... and the kill hit acknowledged data: chunks of some of them were on the victim.
          let onVictim = 0;
          for (const id of acked.keys()) {
            const r = await survivors[0].get(`/v1/objects/${encodeURIComponent(id)}?manifest=1`);
            const m = JSON.parse(r.body) as ManifestRecord;
            if (m.replicas.some((reps) => reps.includes(ids[victim]))) onVictim++;
          }
          console.log(`  ${onVictim} acknowledged objects had chunks on ${procs[victim].name}`);
          assert.ok(onVictim > 0);
          const ma = (await a.get("/metrics")).body;
          assert.ok(metric(ma, 'mycelium_storage_puts_total{outcome="ok"}') >= acked.size);
          const mb = (await survivors[0].get("/metrics")).body;
          for (
            const name of [
              "mycelium_storage_chunks_stored",
              "mycelium_storage_bytes_stored",
              'mycelium_storage_gets_total{outcome="ok"}',
              "mycelium_storage_fetch_seconds_count",
              "mycelium_storage_chunk_writes_total",
            ]
          ) assert.ok(metric(mb, name) > 0, `${name} on ${survivors[0].name}`);
        },
      );

      await t.step(
        "re-replication: every chunk and manifest back on 3 live nodes once the victim is dead",
        async () => {
          const victim = victimIndex;
          assert.ok(victim > 0);
          const live = procs.filter((_, i) => i !== victim);
          const liveIdx = procs.map((_, i) => i).filter((i) => i !== victim);
          await until("the survivors declare the victim dead", 30_000, async () => {
            for (const p of live) {
              const m = await p.json<Array<{ node: string; state: string }>>("/v1/members");
              if (m.find((x) => x.node === ids[victim])?.state !== "dead") return false;
            }
            return true;
          });
          const deadAfterMs = performance.now() - killedAt;
          const objects = ["photos/cat.jpg", "empty", "secret", ...acked.keys()];
          const chunks = new Set<string>();
          for (const id of objects) {
            const r = await live[0].get(`/v1/objects/${encodeURIComponent(id)}?manifest=1`);
            assert.equal(r.status, 200, `${id}: ${r.body}`);
            for (const c of (JSON.parse(r.body) as ManifestRecord).manifest.chunks) chunks.add(c);
          }
          const liveDirs = liveIdx.map((i) => dataDirs[i]);
          let short: string[] = [];
          await until("3 live replicas of every chunk and manifest", 90_000, async () => {
            short = [];
            for (const c of chunks) {
              const n = (await holders(liveDirs, c)).length;
              if (n < 3) short.push(`chunk ${c.slice(0, 12)}: ${n}`);
            }
            for (const id of objects) {
              const n = (await manifestHolders(liveDirs, id)).length;
              if (n < 3) short.push(`manifest ${id}: ${n}`);
            }
            return short.length === 0;
          }).catch(() => assert.fail(`still under-replicated: ${short.slice(0, 10).join("; ")}`));
          const restoredMs = performance.now() - killedAt;
          console.log(
            `  ${chunks.size} chunks, ${objects.length} manifests: victim declared dead ` +
              `${(deadAfterMs / 1000).toFixed(1)} s after kill -9, 3 live replicas of all ` +
              `${(restoredMs / 1000).toFixed(1)} s after it`,
          );
          let copies = 0;
          let bytes = 0;
          for (const p of live) {
            const m = (await p.get("/metrics")).body;
            copies += metric(m, 'mycelium_storage_repairs_total{kind="chunk"}');
            bytes += metric(m, "mycelium_storage_repair_bytes_total");
            assert.ok(/^mycelium_storage_under_replicated_chunks \d+$/m.test(m));
          }
          assert.ok(copies > 0 && bytes > 0, `${copies} copies, ${bytes} bytes`);
          assert.ok(live.some((p) => p.logs.some((l) => l.includes('"storage_repair_finished"'))));
          // Every object still reads back intact; the deleted one stays deleted.
          let k = 0;
          for (const [id, digest] of acked) {
            const g = await getBytes(live[k++ % live.length], id);
            assert.equal(g.status, 200, id);
            assert.equal(sha(g.bytes), digest, id);
          }
          assert.equal(sha((await getBytes(live[1], "photos/cat.jpg")).bytes), sha(obj));
          for (const p of live) assert.equal((await getBytes(p, "doomed")).status, 404);
          for (const id of deleted) assert.deepEqual(await holders(liveDirs, id), []);
        },
      );
    } finally {
      for (const p of procs) p.kill("SIGKILL");
      await Promise.all(procs.map((p) => p.exited.catch(() => undefined)));
      await Deno.remove(dir, { recursive: true });
    }
  },
});
