/**
 * The object-storage wire codec: decode(encode(m)) == m for every message kind (property),
 * chunk bytes travel raw, and truncated, extended or garbage input fails with DecodeError,
 * never anything else. Also the pure helpers around it: the encryption format, the
 * announced address with tier and labels, failure domains, and that chunk ids computed with
 * node:crypto are the core's.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { DecodeError } from "../core/errors.ts";
import type { NodeId } from "../core/ids.ts";
import { chunkId, splitObject } from "../core/storage/chunks.ts";
import { STORAGE_CLASS_NAMES, type StorageClass } from "../core/storage/classes.ts";
import { announce, splitAnnounced } from "./node.ts";
import { domainOf, manifestKey, splitNative } from "./objects.ts";
import {
  decodeObjects,
  encodeObjects,
  type ManifestRecord,
  MAX_OBJECTS_HEADER_BYTES,
  maxChunkBytes,
  OBJECTS_FRAME_OVERHEAD,
  type ObjectsMessage,
  parseManifestRecord,
} from "./objects_codec.ts";
import {
  decryptObject,
  deriveObjectKey,
  ENCRYPTION_OVERHEAD,
  encryptObject,
} from "./objects_crypto.ts";
import { sha256Hex } from "./objects_store.ts";

const req = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const nodeId = fc.stringMatching(/^[0-9a-f]{32}$/).map((s) => s as NodeId);
const objectId = fc.string({ minLength: 1, maxLength: 64, unit: "grapheme" })
  .filter((s) => /^[^\p{Cc}]{1,1024}$/u.test(s));
const bytes = fc.uint8Array({ minLength: 1, maxLength: 3000 });
const text = fc.string({ maxLength: 200 });
const cls = fc.constantFrom(...STORAGE_CLASS_NAMES);

const record: fc.Arbitrary<ManifestRecord> = fc
  .record({
    objectId,
    chunkSize: fc.integer({ min: 1, max: 1 << 22 }),
    n: fc.integer({ min: 0, max: 6 }),
    tail: fc.integer({ min: 0, max: 1 << 22 }),
    cls,
    consistency: fc.constantFrom("strong" as const, "eventual" as const),
    ids: fc.array(hex64, { minLength: 6, maxLength: 6 }),
    ms: fc.integer({ min: 0, max: 2 ** 45 }),
    c: fc.integer({ min: 0, max: 1000 }),
    writer: nodeId,
    holders: fc.array(fc.array(nodeId, { maxLength: 4 }), { minLength: 6, maxLength: 6 }),
    shrink: fc.integer({ min: 0, max: 100 }),
  })
  .map((r) => {
    const encrypted = r.cls === "Critical" || r.cls === "Sensitive";
    // n full chunks but the last, which holds 1..chunkSize bytes.
    const size = r.n === 0 ? 0 : (r.n - 1) * r.chunkSize + 1 + (r.tail % r.chunkSize);
    return {
      manifest: {
        objectId: r.objectId,
        size,
        chunkSize: r.chunkSize,
        chunks: r.ids.slice(0, r.n),
        class: r.cls as StorageClass,
        consistency: r.consistency,
        encrypted,
      },
      version: { hlc: { ms: r.ms, c: r.c }, writer: r.writer },
      plainSize: encrypted ? Math.max(0, size - r.shrink) : size,
      replicas: r.holders.slice(0, r.n),
    };
  });

const message: fc.Arbitrary<ObjectsMessage> = fc.oneof(
  fc.record({ t: fc.constant("put-chunk" as const), req, chunk: hex64, bytes }),
  fc.record({ t: fc.constant("put-chunk" as const), req, chunk: hex64, bytes, object: objectId }),
  fc.record({
    t: fc.constant("have" as const),
    req,
    query: fc.record({
      manifests: fc.array(objectId, { maxLength: 4 }),
      refs: fc.array(
        fc.record({ object: objectId, chunks: fc.array(hex64, { maxLength: 4 }) }),
        { maxLength: 3 },
      ),
    }),
  }),
  fc.record({
    t: fc.constant("holding" as const),
    req,
    answer: fc.record({
      manifests: fc.array(
        fc.option(
          fc.record({
            version: fc.record({
              hlc: fc.record({
                ms: fc.integer({ min: 0, max: 2 ** 45 }),
                c: fc.integer({ min: 0, max: 1000 }),
              }),
              writer: nodeId,
            }),
            deleted: fc.boolean(),
          }),
          { nil: null },
        ),
        { maxLength: 4 },
      ),
      refs: fc.array(fc.stringMatching(/^[01]{0,8}$/), { maxLength: 4 }),
    }),
  }),
  fc.record({
    t: fc.constant("unref" as const),
    req,
    unref: fc.record({ object: objectId, chunks: fc.array(hex64, { maxLength: 4 }) }),
  }),
  fc.record({
    t: fc.constant("put-manifest" as const),
    req,
    record: record.map((r) => ({ ...r, deleted: true as const })),
  }),
  fc.record({ t: fc.constant("get-chunk" as const), req, chunk: hex64 }),
  fc.record({ t: fc.constant("put-manifest" as const), req, record }),
  fc.record({ t: fc.constant("get-manifest" as const), req, objectId }),
  fc.record({ t: fc.constant("ok" as const), req }),
  fc.record({ t: fc.constant("chunk" as const), req, chunk: hex64, bytes }),
  fc.record({ t: fc.constant("manifest" as const), req, record }),
  fc.record({ t: fc.constant("not-found" as const), req }),
  fc.record({ t: fc.constant("not-found" as const), req, detail: text }),
  fc.record({ t: fc.constant("error" as const), req, error: text, busy: fc.boolean() }),
).map((m) => structuredClone(m) as ObjectsMessage); // fc.record: null prototypes

function decodeOrDecodeError(b: Uint8Array): ObjectsMessage | DecodeError {
  try {
    return decodeObjects(b);
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw e;
  }
}

Deno.test("objects codec: decode(encode(m)) == m for every message kind", () => {
  fc.assert(
    fc.property(message, (m) => {
      assert.deepStrictEqual(decodeObjects(encodeObjects(m)), m);
    }),
    { numRuns: 500 },
  );
});

Deno.test("objects codec: chunk bytes travel raw after a small header", () => {
  const chunk = new Uint8Array(1 << 20).fill(9);
  const id = sha256Hex(chunk);
  const body = encodeObjects({ t: "put-chunk", req: 7, chunk: id, bytes: chunk });
  const header = (body[1] << 8) | body[2];
  assert.ok(header < 128, `header of ${header} B`);
  assert.equal(body.length, 3 + header + chunk.length);
  const m = decodeObjects(body);
  assert.ok(m.t === "put-chunk" && m.bytes.buffer === body.buffer, "a view, not a copy");
  // A 4 MiB chunk fits the default 8 MiB frame; the overhead bounds the largest header.
  assert.equal(maxChunkBytes(8 * 2 ** 20), 8 * 2 ** 20 - OBJECTS_FRAME_OVERHEAD);
  assert.ok(maxChunkBytes(4 * 2 ** 20) < 4 * 2 ** 20);
  const longId = "é".repeat(1024);
  const h = encodeObjects({ t: "get-manifest", req: Number.MAX_SAFE_INTEGER, objectId: longId });
  assert.ok(h.length <= 3 + MAX_OBJECTS_HEADER_BYTES);
});

Deno.test("objects codec: every truncation of a valid body fails with DecodeError", () => {
  fc.assert(
    fc.property(message, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (m, f) => {
      const body = encodeObjects(m);
      const cut = Math.floor(f * body.length);
      const r = decodeOrDecodeError(body.subarray(0, cut));
      // Cutting a chunk's payload short leaves a valid (shorter) chunk: the receiver checks
      // it against its id. Everything else must fail.
      if (!(r instanceof DecodeError)) {
        assert.ok(r.t === "put-chunk" || r.t === "chunk", `a ${cut}/${body.length} prefix`);
        assert.ok(cut > body.length - (m as { bytes: Uint8Array }).bytes.length);
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("objects codec: trailing and flipped bytes never escape as other errors", () => {
  fc.assert(
    fc.property(
      message,
      fc.uint8Array({ minLength: 1, maxLength: 16 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
      (m, extra, flips) => {
        const body = encodeObjects(m);
        const longer = new Uint8Array(body.length + extra.length);
        longer.set(body);
        longer.set(extra, body.length);
        const r = decodeOrDecodeError(longer);
        if (m.t !== "put-chunk" && m.t !== "chunk") {
          assert.ok(r instanceof DecodeError, `trailing bytes accepted after ${m.t}`);
        }
        const flipped = body.slice();
        for (const [at, x] of flips) flipped[at % flipped.length] ^= x;
        decodeOrDecodeError(flipped); // a DecodeError or a (different) valid message
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("objects codec: garbage and invalid headers fail with DecodeError", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 5000 }), (b) => {
      decodeOrDecodeError(b);
      const framed = new Uint8Array(b.length + 3);
      framed.set([1, b.length >>> 8, b.length & 0xff]);
      framed.set(b, 3);
      decodeOrDecodeError(framed);
    }),
    { numRuns: 500 },
  );
  const id = "ab".repeat(32);
  const rec = {
    manifest: {
      objectId: "x",
      size: 3,
      chunkSize: 2,
      chunks: [id, id],
      class: "Standard",
      consistency: "strong",
      encrypted: false,
    },
    version: { hlc: { ms: 1, c: 0 }, writer: "c".repeat(32) },
    plainSize: 3,
    replicas: [[], []],
  };
  const json = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  const cases: Array<[string, Uint8Array]> = [
    ["empty", new Uint8Array(0)],
    ["version 2", new Uint8Array([2, 0, 2, 0x7b, 0x7d])],
    ["header too long", new Uint8Array([1, 0xff, 0xff])],
    ["not utf-8", new Uint8Array([1, 0, 2, 0xff, 0xfe])],
    ["not an object", new TextEncoder().encode("\x01\x00\x04null")],
    ["unknown type", withHeader({ t: "delete", req: 1 })],
    ["negative req", withHeader({ t: "ok", req: -1 })],
    ["bad chunk id", withHeader({ t: "get-chunk", req: 1, chunk: "xyz" })],
    ["unknown field", withHeader({ t: "ok", req: 1, colour: "red" })],
    ["control char id", withHeader({ t: "get-manifest", req: 1, objectId: "a\u0000b" })],
    ["empty chunk", withHeader({ t: "put-chunk", req: 1, chunk: id })],
    ["payload on ok", withHeader({ t: "ok", req: 1 }, new Uint8Array(1))],
    ["record not JSON", withHeader({ t: "manifest", req: 1 }, new Uint8Array([0x7b]))],
    [
      "record chunk count",
      withHeader(
        { t: "manifest", req: 1 },
        json({ ...rec, manifest: { ...rec.manifest, size: 9 } }),
      ),
    ],
    ["record replicas", withHeader({ t: "manifest", req: 1 }, json({ ...rec, replicas: [[]] }))],
    [
      "Critical unencrypted",
      withHeader(
        { t: "put-manifest", req: 1 },
        json({ ...rec, manifest: { ...rec.manifest, class: "Critical" } }),
      ),
    ],
    ["plain size", withHeader({ t: "manifest", req: 1 }, json({ ...rec, plainSize: 2 }))],
  ];
  for (const [what, b] of cases) assert.throws(() => decodeObjects(b), DecodeError, what);
  assert.equal(parseManifestRecord(rec).plainSize, 3);
  assert.throws(
    () => parseManifestRecord({ ...rec, replicas: [["zz"], []] }),
    /replicas\[0\]\[0\]/,
  );
});

function withHeader(h: object, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const head = new TextEncoder().encode(JSON.stringify(h));
  const out = new Uint8Array(3 + head.length + payload.length);
  out.set([1, head.length >>> 8, head.length & 0xff]);
  out.set(head, 3);
  out.set(payload, 3 + head.length);
  return out;
}

Deno.test("objects: splitNative (native sha256) equals the core's splitObject", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 5000 }),
      fc.integer({ min: 1, max: 700 }),
      cls,
      (b, chunkSize, c) => {
        const opts = {
          objectId: "o",
          class: c,
          consistency: "strong" as const,
          encrypted: c === "Critical" || c === "Sensitive",
          chunkSize,
        };
        const ours = splitNative(b, opts);
        const core = splitObject(b, opts);
        assert.deepEqual(ours.manifest, core.manifest);
        assert.deepEqual(ours.chunks, core.chunks);
        for (const x of ours.chunks) assert.equal(x.id, chunkId(x.bytes));
      },
    ),
    { numRuns: 100 },
  );
  // The core's validation applies.
  const base = { objectId: "o", consistency: "strong" as const, encrypted: false };
  assert.throws(() => splitNative(new Uint8Array(1), { ...base, class: "Critical" }), /encrypted/);
  assert.throws(
    () => splitNative(new Uint8Array(1), { ...base, class: "Public", chunkSize: 0 }),
    /chunkSize/,
  );
});

Deno.test("objects: AES-256-GCM round trip; tampering, another id or class fail", () => {
  const key = deriveObjectKey(new Uint8Array(32).fill(1));
  assert.equal(key.length, 32);
  assert.notDeepEqual(key, deriveObjectKey(new Uint8Array(32).fill(2)));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), objectId, (plain, id) => {
      const blob = encryptObject(key, id, "Critical", plain);
      assert.equal(blob.length, plain.length + ENCRYPTION_OVERHEAD);
      assert.deepEqual(decryptObject(key, id, "Critical", blob), plain);
      assert.throws(() => decryptObject(key, id, "Sensitive", blob));
      assert.throws(() => decryptObject(key, id + "x", "Critical", blob));
      const bad = blob.slice();
      bad[bad.length >> 1] ^= 1;
      assert.throws(() => decryptObject(key, id, "Critical", bad));
    }),
    { numRuns: 100 },
  );
  // Two encryptions of one plaintext differ (random IV): equal objects do not share chunks.
  const p = new Uint8Array(100);
  assert.notDeepEqual(
    encryptObject(key, "o", "Sensitive", p),
    encryptObject(key, "o", "Sensitive", p),
  );
});

Deno.test("objects: announced address carries tier and labels", () => {
  assert.deepEqual(splitAnnounced("1.2.3.4:1#1.2.3.4:2"), {
    gossip: "1.2.3.4:1",
    streams: "1.2.3.4:2",
  });
  assert.deepEqual(splitAnnounced("1.2.3.4:1"), { gossip: "1.2.3.4:1", streams: undefined });
  const a = announce("g:1", "s:2", "rhizomorph", {});
  assert.equal(a, "g:1#s:2#rhizomorph");
  assert.deepEqual(splitAnnounced(a), { gossip: "g:1", streams: "s:2", tier: "rhizomorph" });
  const b = announce("g:1", "s:2", "hypha", { region: "eu", host: "h7" });
  assert.deepEqual(splitAnnounced(b).labels, { region: "eu", host: "h7" });
  assert.equal(splitAnnounced("g#s#emperor").tier, undefined);
  assert.deepEqual(splitAnnounced("g#s#sclerotia#bad label//").labels, {});
});

Deno.test("objects: failure domains from labels, else the node id", () => {
  const id = "f".repeat(32);
  assert.equal(domainOf(id, {}, "host"), id);
  assert.equal(domainOf(id, {}, "region"), id);
  assert.equal(domainOf(id, { host: "h1" }, "host"), "h1");
  assert.equal(domainOf(id, { region: "eu", zone: "a", host: "h1" }, "host"), "eu/a/h1");
  assert.equal(domainOf(id, { region: "eu", zone: "a" }, "zone"), "eu/a");
  assert.equal(domainOf(id, { region: "eu", zone: "a" }, "host"), `eu/a/${id}`);
  assert.equal(domainOf(id, { region: "eu" }, "zone"), id); // no zone: its own domain
  assert.equal(domainOf(id, { region: "eu" }, "region"), "eu");
  assert.equal(manifestKey("a/b"), "object:a/b");
});

Deno.test("objects codec: whitespace after a JSON payload is trailing bytes too", () => {
  // Found by the property above: JSON.parse takes trailing whitespace.
  for (const m of [{ t: "holding", req: 0, answer: { manifests: [], refs: [] } }] as const) {
    const body = encodeObjects(m as ObjectsMessage);
    for (const ws of [0x09, 0x0a, 0x0d, 0x20]) {
      const longer = new Uint8Array(body.length + 1);
      longer.set(body);
      longer[body.length] = ws;
      assert.throws(() => decodeObjects(longer), DecodeError);
    }
    assert.deepEqual(decodeObjects(body), m);
  }
});
