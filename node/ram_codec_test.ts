/**
 * The RAM wire codec: decode(encode(m)) == m for every message kind (property), and
 * truncated, extended or garbage input fails with DecodeError, never anything else.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { DecodeError } from "../core/errors.ts";
import type { NodeId } from "../core/ids.ts";
import type { RamMessage } from "../core/ram/messages.ts";
import { PAGE_SIZE } from "../core/ram/params.ts";
import { decodeRam, encodeRam, MAX_RAM_HEADER_BYTES, ramChunkFrameBytes } from "./ram_codec.ts";

const nat = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const small = fc.integer({ min: 0, max: 1000 });
const vmId = fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/);
const nodeId = fc.stringMatching(/^[0-9a-f]{32}$/).map((s) => s as NodeId);
const nodes = fc.array(nodeId, { maxLength: 8 });

/** An epoch chunk: strictly ascending pages with (sparse) random page contents. */
const epochChunk = fc
  .record({
    vmId,
    term: nat,
    epoch: nat,
    baseTerm: nat,
    baseEpoch: nat,
    resync: fc.boolean(),
    chunks: fc.integer({ min: 1, max: 100 }),
    chunkFrac: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    pages: fc.uniqueArray(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 6 }),
    fill: fc.array(
      fc.tuple(
        fc.integer({ min: 0, max: PAGE_SIZE - 1 }),
        fc.integer({
          min: 0,
          max: 255,
        }),
      ),
      { maxLength: 8 },
    ),
  })
  .map(({ chunkFrac, pages, fill, ...r }): RamMessage<Uint8Array> => {
    const sorted = [...pages].sort((a, b) => a - b);
    return {
      t: "ram-epoch",
      ...r,
      chunk: Math.floor(chunkFrac * r.chunks),
      pages: sorted,
      contents: sorted.map((p, i) => {
        const c = new Uint8Array(PAGE_SIZE);
        c[0] = p & 0xff;
        c[PAGE_SIZE - 1] = i;
        for (const [at, v] of fill) c[(at + i * 97) % PAGE_SIZE] = v;
        return c;
      }),
    };
  });

const message: fc.Arbitrary<RamMessage<Uint8Array>> = fc.oneof(
  epochChunk,
  fc.record({
    t: fc.constant("ram-ack" as const),
    vmId,
    term: nat,
    appliedTerm: nat,
    epoch: nat,
    chunkEpoch: nat,
    chunkResync: fc.boolean(),
    chunk: fc.integer({ min: -1, max: 1_000_000 }),
  }),
  fc.record({
    t: fc.constant("ram-lease-req" as const),
    vmId,
    term: nat,
    seq: nat,
    backups: nodes,
  }),
  fc.record({
    t: fc.constant("ram-lease-grant" as const),
    vmId,
    term: nat,
    seq: nat,
    appliedTerm: nat,
    epoch: nat,
    valid: fc.boolean(),
  }),
  fc.record({
    t: fc.constant("ram-vote-req" as const),
    vmId,
    term: nat,
    pre: fc.boolean(),
    lastTerm: nat,
    lastEpoch: small,
  }),
  fc.record({
    t: fc.constant("ram-vote" as const),
    vmId,
    term: nat,
    pre: fc.boolean(),
    granted: fc.boolean(),
    voterTerm: nat,
    lastTerm: nat,
    lastEpoch: nat,
    valid: fc.boolean(),
  }),
  fc.record({
    t: fc.constant("ram-handover" as const),
    vmId,
    term: nat,
    lastTerm: nat,
    epoch: nat,
    backups: nodes,
    synced: nodes,
  }),
);

/** decode either succeeds or throws DecodeError: anything else fails the property. */
function decodeOrDecodeError(bytes: Uint8Array): RamMessage<Uint8Array> | DecodeError {
  try {
    return decodeRam(bytes);
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw e;
  }
}

Deno.test("ram codec: decode(encode(m)) == m for every message kind", () => {
  fc.assert(
    fc.property(message, (m) => {
      assert.deepStrictEqual(decodeRam(encodeRam(m)), { ...m }); // fc.record: null prototype
    }),
    { numRuns: 400 },
  );
});

Deno.test("ram codec: page contents travel as raw bytes, not JSON", () => {
  const c = new Uint8Array(PAGE_SIZE).fill(7);
  const body = encodeRam({
    t: "ram-epoch",
    vmId: "vm",
    term: 1,
    epoch: 2,
    baseTerm: 1,
    baseEpoch: 1,
    resync: false,
    chunk: 0,
    chunks: 1,
    pages: [3, 9],
    contents: [c, c],
  });
  // prefix + header + 2 x (index + page): the header is small, the payload is binary.
  const header = (body[1] << 8) | body[2];
  assert.ok(header < 200, `header of ${header} B`);
  assert.equal(body.length, 3 + header + 2 * (4 + PAGE_SIZE));
  assert.ok(body.length <= ramChunkFrameBytes(2));
});

Deno.test("ram codec: every truncation of a valid body fails with DecodeError", () => {
  fc.assert(
    fc.property(message, fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (m, f) => {
      const body = encodeRam(m);
      const cut = Math.floor(f * body.length);
      const r = decodeOrDecodeError(body.subarray(0, cut));
      assert.ok(r instanceof DecodeError, `a ${cut}/${body.length}-byte prefix decoded`);
    }),
    { numRuns: 300 },
  );
});

Deno.test("ram codec: trailing bytes and flipped bytes never escape as other errors", () => {
  fc.assert(
    fc.property(
      message,
      fc.uint8Array({ minLength: 1, maxLength: 16 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
      (m, extra, flips) => {
        const body = encodeRam(m);
        const longer = new Uint8Array(body.length + extra.length);
        longer.set(body);
        longer.set(extra, body.length);
        assert.ok(decodeOrDecodeError(longer) instanceof DecodeError, "trailing bytes accepted");
        const flipped = body.slice();
        for (const [at, x] of flips) flipped[at % flipped.length] ^= x;
        decodeOrDecodeError(flipped); // a DecodeError or a (different) valid message
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("ram codec: random garbage fails with DecodeError", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => {
      decodeOrDecodeError(bytes);
      // With a valid prefix, the header is garbage JSON or fails the schema.
      const framed = new Uint8Array(bytes.length + 3);
      framed.set([1, bytes.length >>> 8, bytes.length & 0xff]);
      framed.set(bytes, 3);
      decodeOrDecodeError(framed);
    }),
    { numRuns: 500 },
  );
  const cases: Array<[string, Uint8Array]> = [
    ["empty", new Uint8Array(0)],
    ["version 2", new Uint8Array([2, 0, 2, 0x7b, 0x7d])],
    ["header too long", new Uint8Array([1, 0xff, 0xff])],
    ["not utf-8", new Uint8Array([1, 0, 2, 0xff, 0xfe])],
    ["not an object", new TextEncoder().encode("\x01\x00\x04null")],
    ["unknown type", withHeader({ t: "ram-nope", vmId: "v" })],
    [
      "negative term",
      withHeader({ t: "ram-vote-req", vmId: "v", term: -1, pre: false, lastTerm: 0, lastEpoch: 0 }),
    ],
    [
      "bad vm id",
      withHeader({
        t: "ram-vote-req",
        vmId: "a b",
        term: 1,
        pre: false,
        lastTerm: 0,
        lastEpoch: 0,
      }),
    ],
    ["chunk >= chunks", withHeader({ ...epochHeader(), chunk: 2, chunks: 2 })],
    ["payload short", withHeader({ ...epochHeader(), n: 1 }, new Uint8Array(PAGE_SIZE))],
    ["pages descending", withHeader({ ...epochHeader(), n: 2 }, descendingPayload())],
  ];
  for (const [what, bytes] of cases) {
    assert.throws(() => decodeRam(bytes), DecodeError, what);
  }
  assert.ok(MAX_RAM_HEADER_BYTES >= 1024);
});

function epochHeader() {
  return {
    t: "ram-epoch",
    vmId: "v",
    term: 1,
    epoch: 1,
    baseTerm: 1,
    baseEpoch: 0,
    resync: false,
    chunk: 0,
    chunks: 1,
    n: 0,
  };
}

function descendingPayload(): Uint8Array {
  const p = new Uint8Array(8 + 2 * PAGE_SIZE);
  new DataView(p.buffer).setUint32(0, 5);
  new DataView(p.buffer).setUint32(4, 4);
  return p;
}

function withHeader(h: object, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const head = new TextEncoder().encode(JSON.stringify(h));
  const out = new Uint8Array(3 + head.length + payload.length);
  out.set([1, head.length >>> 8, head.length & 0xff]);
  out.set(head, 3);
  out.set(payload, 3 + head.length);
  return out;
}
