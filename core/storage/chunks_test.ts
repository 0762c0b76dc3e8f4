import assert from "node:assert/strict";
import fc from "fast-check";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { DecodeError, MyceliumError } from "../errors.ts";
import {
  chunkCount,
  chunkId,
  DEFAULT_CHUNK_SIZE,
  distinctChunks,
  parseManifest,
  reassemble,
  splitObject,
  verifyChunk,
} from "./chunks.ts";

const opts = {
  objectId: "obj",
  class: "Standard" as const,
  consistency: "strong" as const,
  encrypted: false,
};

Deno.test("split then reassemble gives the object back; chunks are full but the last", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 200 }),
      fc.integer({ min: 1, max: 40 }),
      (data, chunkSize) => {
        const { manifest, chunks } = splitObject(data, { ...opts, chunkSize });
        assert.equal(manifest.size, data.length);
        assert.equal(chunks.length, chunkCount(data.length, chunkSize));
        assert.equal(manifest.chunks.length, chunks.length);
        chunks.forEach((c, i) => {
          assert.equal(c.index, i);
          assert.equal(c.id, bytesToHex(sha256(c.bytes)));
          if (i < chunks.length - 1) assert.equal(c.bytes.length, chunkSize);
          else assert.ok(c.bytes.length >= 1 && c.bytes.length <= chunkSize);
        });
        const store = new Map(chunks.map((c) => [c.id, c.bytes]));
        const r = reassemble(manifest, (id) => store.get(id));
        assert.ok(r.ok);
        assert.deepEqual(r.data, data);
        assert.deepEqual(parseManifest(JSON.parse(JSON.stringify(manifest))), manifest);
      },
    ),
  );
});

Deno.test("a corrupted chunk is detected and named by index and id", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 100 }),
      fc.integer({ min: 1, max: 16 }),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      (data, chunkSize, pick, flip) => {
        const { manifest, chunks } = splitObject(data, { ...opts, chunkSize });
        const bad = pick % chunks.length;
        const byteAt = pick % chunks[bad].bytes.length;
        const r = reassemble(manifest, (_id, index) => {
          const b = chunks[index].bytes.slice();
          if (index === bad) b[byteAt] ^= flip;
          return b;
        });
        assert.ok(!r.ok);
        // Identical chunks elsewhere are fine: only the tampered index is named.
        assert.deepEqual(r.problems.map((p) => [p.kind, p.index, p.chunk]), [[
          "corrupt",
          bad,
          chunks[bad].id,
        ]]);
      },
    ),
  );
});

Deno.test("missing and wrong-length chunks are named too, all of them", () => {
  const data = new Uint8Array(10).map((_, i) => i);
  const { manifest, chunks } = splitObject(data, { ...opts, chunkSize: 4 });
  const r = reassemble(
    manifest,
    (_id, index) =>
      index === 0 ? undefined : index === 1 ? chunks[1].bytes.subarray(0, 3) : chunks[index].bytes,
  );
  assert.ok(!r.ok);
  assert.deepEqual(r.problems.map((p) => [p.kind, p.index]), [["missing", 0], ["corrupt", 1]]);
  assert.match(r.problems[1].detail, /3 bytes, expected 4/);
  assert.ok(verifyChunk(chunks[2].id, chunks[2].bytes));
  assert.ok(!verifyChunk(chunks[2].id, chunks[1].bytes));
});

Deno.test("the default chunk size is 4 MiB and identical chunks share one id", () => {
  const data = new Uint8Array(2 * DEFAULT_CHUNK_SIZE + 1);
  const { manifest, chunks } = splitObject(data, opts);
  assert.equal(DEFAULT_CHUNK_SIZE, 4 * 1024 * 1024);
  assert.equal(manifest.chunkSize, DEFAULT_CHUNK_SIZE);
  assert.deepEqual(chunks.map((c) => c.bytes.length), [DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE, 1]);
  assert.equal(chunks[0].id, chunks[1].id);
  assert.equal(distinctChunks(manifest).length, 2);
  assert.equal(chunks[0].bytes.buffer, data.buffer, "chunks are views, not copies");
  assert.equal(chunkId(new Uint8Array()), bytesToHex(sha256(new Uint8Array())));
  const empty = splitObject(new Uint8Array(), opts);
  assert.deepEqual(empty.manifest.chunks, []);
  assert.ok(reassemble(empty.manifest, () => undefined).ok);
});

Deno.test("Critical and Sensitive objects must be encrypted; bad chunk sizes are refused", () => {
  for (const cls of ["Critical", "Sensitive"] as const) {
    assert.throws(
      () => splitObject(new Uint8Array(3), { ...opts, class: cls }),
      (e: unknown) => e instanceof MyceliumError && e.kind === "protocol",
    );
    assert.equal(
      splitObject(new Uint8Array(3), { ...opts, class: cls, encrypted: true }).manifest.encrypted,
      true,
    );
  }
  for (const chunkSize of [0, 1.5, 2 ** 40]) {
    assert.throws(
      () => splitObject(new Uint8Array(3), { ...opts, chunkSize }),
      (e: unknown) => e instanceof MyceliumError && e.kind === "config" && e.input === "chunkSize",
    );
  }
});

Deno.test("parseManifest names what is wrong", () => {
  const { manifest } = splitObject(new Uint8Array(10), { ...opts, chunkSize: 4 });
  const doc = JSON.parse(JSON.stringify(manifest));
  const bad: Array<[unknown, RegExp]> = [
    [{ ...doc, chunks: doc.chunks.slice(1) }, /manifest\.chunks: 2 chunks for 10 bytes/],
    [{ ...doc, class: "Critical" }, /manifest\.encrypted: Critical objects are stored encrypted/],
    [{ ...doc, class: "Secret" }, /manifest\.class/],
    [{ ...doc, chunks: ["xyz", ...doc.chunks.slice(1)] }, /manifest\.chunks\[0\]/],
    [{ ...doc, extra: 1 }, /manifest\.extra: unknown field/],
  ];
  for (const [d, re] of bad) {
    assert.throws(
      () => parseManifest(d),
      (e: unknown) => e instanceof DecodeError && re.test(e.message),
    );
  }
});
