import fc from "fast-check";
import { DecodeError, MyceliumError } from "../errors.ts";
import type { NodeId } from "../ids.ts";
import {
  decodeSwim,
  encodeSwim,
  gossipItemSize,
  gossipListSize,
  MAX_SWIM_MESSAGE_BYTES,
  MAX_U32,
  parseSwim,
  SWIM_WIRE_VERSION,
  swimEncodedSize,
  swimMessageSchema,
  swimOverheadSize,
  utf8Length,
  varintSize,
} from "./codec.ts";
import type { GossipItem, MemberState, SwimMessage } from "./messages.ts";

// Minimal assertions (no jsr dependency: the lock file and import map are shared).
function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}
function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) {
      return false;
    }
    return a.every((x, i) => x === b[i]);
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.every((k) => Object.hasOwn(rb, k) && deepEqual(ra[k], rb[k]));
}
function show(v: unknown): string {
  if (v instanceof Uint8Array) return `Uint8Array[${v.join(",")}]`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
function assertEquals(actual: unknown, expected: unknown, msg?: string): void {
  if (!deepEqual(actual, expected)) {
    throw new Error(
      `${msg ?? "values differ"}:\n  actual:   ${show(actual)}\n  expected: ${show(expected)}`,
    );
  }
}
// deno-lint-ignore no-explicit-any
function assertThrows<E extends Error>(fn: () => unknown, cls: new (...args: any[]) => E): E {
  try {
    fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw new Error(`expected ${cls.name}, got ${e}`);
  }
  throw new Error(`expected ${cls.name}, but nothing was thrown`);
}

// ---------------------------------------------------------------------------------------
// Arbitraries

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

const nodeIdArb: fc.Arbitrary<NodeId> = fc.oneof(
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => hex(b) as NodeId),
  fc.constantFrom("0".repeat(32), "f".repeat(32)).map((s) => s as NodeId),
);

const u32Arb = fc.oneof(
  fc.integer({ min: 0, max: 300 }),
  fc.integer({ min: 0, max: MAX_U32 }),
  fc.constantFrom(
    0,
    0x7f,
    0x80,
    0x3fff,
    0x4000,
    0x1fffff,
    0x200000,
    0xfffffff,
    0x10000000,
    MAX_U32,
  ),
);

const addrArb = fc.oneof(
  fc.constant(""),
  fc.constantFrom("10.0.0.1:7946", "[::1]:7946", "\uFEFFbom", "h\u00e9llo\u{1F344}", "\u0800"),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.string({ unit: "grapheme", maxLength: 10 }),
  fc.string({ unit: "binary-ascii", minLength: 60, maxLength: 200 }),
);

const aliveArb = fc.record({
  k: fc.constant("alive" as const),
  node: nodeIdArb,
  inc: u32Arb,
  addr: addrArb,
});
const suspectArb = fc.record({
  k: fc.constant("suspect" as const),
  node: nodeIdArb,
  inc: u32Arb,
  from: nodeIdArb,
});
const deadArb = fc.record({
  k: fc.constant("dead" as const),
  node: nodeIdArb,
  inc: u32Arb,
  from: nodeIdArb,
});
const gossipItemArb: fc.Arbitrary<GossipItem> = fc.oneof(aliveArb, suspectArb, deadArb);
const gossipListArb = fc.array(gossipItemArb, { maxLength: 8 });

const pingArb = fc.record({
  t: fc.constant("ping" as const),
  seq: u32Arb,
  target: nodeIdArb,
  gossip: gossipListArb,
});
const ackArb = fc.record({ t: fc.constant("ack" as const), seq: u32Arb, gossip: gossipListArb });
const nackArb = fc.record({ t: fc.constant("nack" as const), seq: u32Arb });
const pingReqArb = fc.record({
  t: fc.constant("pingreq" as const),
  seq: u32Arb,
  target: nodeIdArb,
  wantNack: fc.boolean(),
});
const gossipArb = fc.record({ t: fc.constant("gossip" as const), gossip: gossipListArb });
const pushPullEntryArb = fc.record({
  node: nodeIdArb,
  inc: u32Arb,
  state: fc.constantFrom<MemberState>(0, 1, 2, 3),
  addr: addrArb,
});
const pushPullArb = fc
  .record({
    join: fc.boolean(),
    reply: fc.boolean(),
    entries: fc.array(pushPullEntryArb, { maxLength: 12 }),
  })
  .map(({ join, reply, entries }): SwimMessage => ({
    t: "pushpull",
    join,
    reply,
    nodes: entries.map((e) => e.node),
    incs: entries.map((e) => e.inc),
    states: entries.map((e) => e.state),
    addrs: entries.map((e) => e.addr),
  }));

const swimMessageArb: fc.Arbitrary<SwimMessage> = fc.oneof(
  pingArb,
  ackArb,
  nackArb,
  pingReqArb,
  gossipArb,
  pushPullArb,
);

// ---------------------------------------------------------------------------------------
// Helpers

/** Decoding either yields a schema-valid message that re-encodes canonically, or DecodeError. */
function decodesCleanly(bytes: Uint8Array): void {
  let msg: SwimMessage;
  try {
    msg = decodeSwim(bytes);
  } catch (e) {
    assert(e instanceof DecodeError, `expected DecodeError, got ${e}`);
    assert(!e.message.startsWith("unexpected decoder failure"), e.message);
    assert(e.offset >= 0 && e.offset <= bytes.length, `offset ${e.offset} out of range`);
    return;
  }
  const r = swimMessageSchema.safeParse(msg);
  assert(r.success, `decoded message fails schema: ${r.error?.message}`);
  assertEquals(encodeSwim(msg), bytes, "decoding accepted a non-canonical encoding");
  assertEquals(parseSwim(bytes), msg);
}

const bytesOf = (...xs: number[]) => new Uint8Array(xs);
const ID_A = "00112233445566778899aabbccddeeff" as NodeId;
const ID_B = "ffeeddccbbaa99887766554433221100" as NodeId;
const ID_A_BYTES = [
  0x00,
  0x11,
  0x22,
  0x33,
  0x44,
  0x55,
  0x66,
  0x77,
  0x88,
  0x99,
  0xaa,
  0xbb,
  0xcc,
  0xdd,
  0xee,
  0xff,
];

function decodeErrorOf(bytes: Uint8Array): DecodeError {
  return assertThrows(() => decodeSwim(bytes), DecodeError);
}

// ---------------------------------------------------------------------------------------
// Properties

Deno.test("codec: decode(encode(m)) deep-equals m", () => {
  fc.assert(
    fc.property(swimMessageArb, (m) => {
      assertEquals(decodeSwim(encodeSwim(m)), m);
      assertEquals(parseSwim(encodeSwim(m)), m);
    }),
    { numRuns: 1000 },
  );
});

Deno.test("codec: swimEncodedSize(m) === encode(m).length", () => {
  fc.assert(
    fc.property(swimMessageArb, (m) => {
      assertEquals(swimEncodedSize(m), encodeSwim(m).length);
    }),
    { numRuns: 1000 },
  );
});

Deno.test("codec: gossipItemSize is the exact bytes an item adds", () => {
  fc.assert(
    fc.property(gossipListArb, u32Arb, nodeIdArb, (gossip, seq, target) => {
      const items = gossip.reduce((n, it) => n + gossipItemSize(it), 0);
      assertEquals(gossipListSize(gossip), varintSize(gossip.length) + items);
      const ping: SwimMessage = { t: "ping", seq, target, gossip };
      const ack: SwimMessage = { t: "ack", seq, gossip };
      const g: SwimMessage = { t: "gossip", gossip };
      assertEquals(encodeSwim(ping).length, swimOverheadSize("ping", seq, gossip.length) + items);
      assertEquals(encodeSwim(ack).length, swimOverheadSize("ack", seq, gossip.length) + items);
      assertEquals(encodeSwim(g).length, swimOverheadSize("gossip", seq, gossip.length) + items);
    }),
    { numRuns: 300 },
  );
});

Deno.test("codec: utf8Length matches TextEncoder for well-formed strings", () => {
  const enc = new TextEncoder();
  fc.assert(
    fc.property(addrArb, (s) => assertEquals(utf8Length(s), enc.encode(s).length)),
    { numRuns: 500 },
  );
});

Deno.test("codec: the schema accepts every generated message", () => {
  fc.assert(
    fc.property(swimMessageArb, (m) => {
      const r = swimMessageSchema.safeParse(m);
      assert(r.success, r.error?.message);
    }),
    { numRuns: 300 },
  );
});

Deno.test("codec: every truncation of a valid encoding throws DecodeError", () => {
  fc.assert(
    fc.property(swimMessageArb, (m) => {
      const bytes = encodeSwim(m);
      for (let len = 0; len < bytes.length; len++) {
        const e = decodeErrorOf(bytes.subarray(0, len));
        assert(e.offset <= len, `offset ${e.offset} beyond truncated length ${len}`);
      }
    }),
    { numRuns: 200 },
  );
});

Deno.test("codec: trailing bytes after a valid encoding throw DecodeError", () => {
  fc.assert(
    fc.property(swimMessageArb, fc.uint8Array({ minLength: 1, maxLength: 8 }), (m, extra) => {
      const bytes = encodeSwim(m);
      const longer = new Uint8Array(bytes.length + extra.length);
      longer.set(bytes);
      longer.set(extra, bytes.length);
      const e = decodeErrorOf(longer);
      assertEquals(e.offset, bytes.length);
      assert(e.message.includes("trailing"), e.message);
    }),
    { numRuns: 200 },
  );
});

Deno.test("codec: random bytes decode to a valid message or throw DecodeError", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => decodesCleanly(bytes)),
    { numRuns: 2000 },
  );
  // With a valid header, so the fuzzing reaches the message bodies.
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 7 }),
      fc.uint8Array({ maxLength: 300 }),
      (type, body) => {
        const bytes = new Uint8Array(body.length + 2);
        bytes[0] = SWIM_WIRE_VERSION;
        bytes[1] = type;
        bytes.set(body, 2);
        decodesCleanly(bytes);
      },
    ),
    { numRuns: 3000 },
  );
});

Deno.test("codec: single-byte mutations of valid encodings decode or throw DecodeError", () => {
  fc.assert(
    fc.property(
      swimMessageArb,
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      (m, where, value) => {
        const bytes = encodeSwim(m).slice();
        bytes[where % bytes.length] = value;
        decodesCleanly(bytes);
      },
    ),
    { numRuns: 3000 },
  );
});

Deno.test("codec: mutations restricted to small/boundary byte values", () => {
  // Bytes like 0, 1, 2, 3, 0x7f, 0x80 hit kind/state/boolean/varint edges far more often.
  fc.assert(
    fc.property(
      swimMessageArb,
      fc.array(fc.tuple(fc.nat(), fc.constantFrom(0, 1, 2, 3, 4, 6, 7, 0x0f, 0x7f, 0x80, 0xff)), {
        minLength: 1,
        maxLength: 3,
      }),
      (m, edits) => {
        const bytes = encodeSwim(m).slice();
        for (const [where, value] of edits) bytes[where % bytes.length] = value;
        decodesCleanly(bytes);
      },
    ),
    { numRuns: 2000 },
  );
});

// ---------------------------------------------------------------------------------------
// Examples: layout

Deno.test("codec: golden layout of each message type", () => {
  const alive: GossipItem = { k: "alive", node: ID_A, inc: 300, addr: "ab" };
  const suspect: GossipItem = { k: "suspect", node: ID_A, inc: 1, from: ID_B };
  assertEquals(
    encodeSwim({ t: "ping", seq: 1, target: ID_A, gossip: [alive] }),
    bytesOf(1, 1, 1, ...ID_A_BYTES, 1, 0, ...ID_A_BYTES, 0xac, 0x02, 2, 0x61, 0x62),
  );
  const suspectBytes = encodeSwim({ t: "ack", seq: 128, gossip: [suspect] });
  assertEquals(suspectBytes.subarray(0, 6), bytesOf(1, 2, 0x80, 0x01, 1, 1));
  assertEquals(suspectBytes.length, 6 + 16 + 1 + 16);
  assertEquals(
    encodeSwim({ t: "nack", seq: MAX_U32 }),
    bytesOf(1, 3, 0xff, 0xff, 0xff, 0xff, 0x0f),
  );
  assertEquals(
    encodeSwim({ t: "pingreq", seq: 0, target: ID_A, wantNack: true }),
    bytesOf(1, 4, 0, ...ID_A_BYTES, 1),
  );
  assertEquals(encodeSwim({ t: "gossip", gossip: [] }), bytesOf(1, 5, 0));
  assertEquals(
    encodeSwim({
      t: "pushpull",
      join: true,
      reply: false,
      nodes: [ID_A],
      incs: [5],
      states: [3],
      addrs: ["é"],
    }),
    bytesOf(1, 6, 1, 0, 1, ...ID_A_BYTES, 5, 3, 2, 0xc3, 0xa9),
  );
});

Deno.test("codec: NodeIds are 16 raw bytes and round-trip in lowercase hex", () => {
  const bytes = encodeSwim({ t: "pingreq", seq: 7, target: ID_B, wantNack: false });
  assertEquals(bytes.length, 2 + 1 + 16 + 1);
  const m = decodeSwim(bytes);
  assertEquals(m, { t: "pingreq", seq: 7, target: ID_B, wantNack: false });
});

Deno.test("codec: decodes from a subarray view with a non-zero byteOffset", () => {
  const inner = encodeSwim({ t: "nack", seq: 99 });
  const outer = new Uint8Array(inner.length + 10);
  outer.set(inner, 5);
  assertEquals(decodeSwim(outer.subarray(5, 5 + inner.length)), { t: "nack", seq: 99 });
});

Deno.test("codec: a leading BOM in an addr survives the round trip", () => {
  const m: SwimMessage = {
    t: "gossip",
    gossip: [{ k: "alive", node: ID_A, inc: 0, addr: "\uFEFF\uFEFFx" }],
  };
  assertEquals(decodeSwim(encodeSwim(m)), m);
});

// ---------------------------------------------------------------------------------------
// Examples: decode errors

Deno.test("codec: wrong major version is a DecodeError naming the version", () => {
  const e = decodeErrorOf(bytesOf(2, 3, 0));
  assert(e.message.includes("version 2"), e.message);
  assertEquals(e.offset, 0);
  assertEquals(e.kind, "decode");
  decodeErrorOf(bytesOf(0, 3, 0));
});

Deno.test("codec: unknown message type", () => {
  const e = decodeErrorOf(bytesOf(1, 99, 0));
  assert(e.message.includes("unknown SWIM message type 99"), e.message);
  assertEquals(e.offset, 1);
  decodeErrorOf(bytesOf(1, 0));
});

Deno.test("codec: empty and header-only input", () => {
  assertEquals(decodeErrorOf(bytesOf()).offset, 0);
  assertEquals(decodeErrorOf(bytesOf(1)).offset, 1);
  assertEquals(decodeErrorOf(bytesOf(1, 3)).offset, 2);
});

Deno.test("codec: counts that exceed the remaining bytes are rejected before allocating", () => {
  // gossip with 2^32-1 items and nothing after the count
  const e = decodeErrorOf(bytesOf(1, 5, 0xff, 0xff, 0xff, 0xff, 0x0f));
  assert(e.message.includes("count 4294967295"), e.message);
  assertEquals(e.offset, 2);
  // push-pull with 2 entries but room for at most 1
  const one = encodeSwim({
    t: "pushpull",
    join: false,
    reply: true,
    nodes: [ID_A],
    incs: [0],
    states: [0],
    addrs: [""],
  });
  const two = one.slice();
  two[4] = 2;
  const e2 = decodeErrorOf(two);
  assert(e2.message.includes("pushpull.nodes count 2"), e2.message);
  // ping claiming one item with a single byte left
  decodeErrorOf(bytesOf(1, 1, 0, ...ID_A_BYTES, 1, 0));
});

Deno.test("codec: varints longer than 5 bytes, over 2^32-1, or non-minimal", () => {
  let e = decodeErrorOf(bytesOf(1, 3, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01));
  assert(e.message.includes("longer than 5 bytes"), e.message);
  assertEquals(e.offset, 2);
  e = decodeErrorOf(bytesOf(1, 3, 0xff, 0xff, 0xff, 0xff, 0x10)); // 2^32
  assert(e.message.includes("exceeds"), e.message);
  e = decodeErrorOf(bytesOf(1, 3, 0x80, 0x00));
  assert(e.message.includes("not minimally encoded"), e.message);
  e = decodeErrorOf(bytesOf(1, 3, 0x80));
  assert(e.message.includes("truncated"), e.message);
  assertEquals(decodeSwim(bytesOf(1, 3, 0x00)), { t: "nack", seq: 0 });
});

Deno.test("codec: booleans other than 0/1", () => {
  const e = decodeErrorOf(bytesOf(1, 4, 0, ...ID_A_BYTES, 2));
  assert(e.message.includes("pingreq.wantNack"), e.message);
  assertEquals(e.offset, 19);
  decodeErrorOf(bytesOf(1, 6, 0, 0xff, 0));
});

Deno.test("codec: unknown gossip item kind and member state", () => {
  let e = decodeErrorOf(bytesOf(1, 5, 1, 3, ...ID_A_BYTES, 0, ...ID_A_BYTES));
  assert(e.message.includes("unknown gossip item kind 3"), e.message);
  assertEquals(e.offset, 3);
  e = decodeErrorOf(bytesOf(1, 6, 0, 0, 1, ...ID_A_BYTES, 0, 4, 0));
  assert(e.message.includes("unknown member state 4"), e.message);
  assertEquals(e.offset, 22);
});

Deno.test("codec: invalid UTF-8 in addr", () => {
  const prefix = [1, 5, 1, 0, ...ID_A_BYTES, 0];
  for (
    const bad of [
      [1, 0xff],
      [2, 0xc0, 0x80], // overlong NUL
      [3, 0xed, 0xa0, 0x80], // encoded surrogate
      [1, 0xc3], // truncated sequence
      [4, 0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
    ]
  ) {
    const e = decodeErrorOf(bytesOf(...prefix, ...bad));
    assert(e.message.includes("invalid UTF-8"), e.message);
    assertEquals(e.offset, prefix.length + 1);
  }
});

Deno.test("codec: oversized input is rejected without looking at it", () => {
  const big = new Uint8Array(MAX_SWIM_MESSAGE_BYTES + 1);
  big[0] = 1;
  const e = decodeErrorOf(big);
  assert(e.message.includes("exceeds MAX_SWIM_MESSAGE_BYTES"), e.message);
});

Deno.test("codec: non-Uint8Array input is a DecodeError", () => {
  assertThrows(() => decodeSwim("hello" as unknown as Uint8Array), DecodeError);
  assertThrows(() => decodeSwim(null as unknown as Uint8Array), DecodeError);
});

// ---------------------------------------------------------------------------------------
// Examples: encode errors

function encodeErrorOf(m: unknown): MyceliumError {
  const e = assertThrows(() => encodeSwim(m as SwimMessage), MyceliumError);
  assertEquals(e.kind, "encode");
  return e;
}

Deno.test("codec: encode rejects integers outside [0, 2^32-1]", () => {
  for (const seq of [-1, 1.5, 2 ** 32, NaN, Infinity]) {
    const e = encodeErrorOf({ t: "nack", seq });
    assert(e.message.startsWith("nack.seq:"), e.message);
  }
  const e = encodeErrorOf({
    t: "gossip",
    gossip: [{ k: "dead", node: ID_A, inc: 2 ** 40, from: ID_A }],
  });
  assert(e.message.startsWith("gossip.gossip[0].inc:"), e.message);
  assertEquals(encodeSwim({ t: "nack", seq: MAX_U32 }).length, 7);
});

Deno.test("codec: encode rejects malformed node ids, lone surrogates, bad states", () => {
  for (const target of ["", "ABCDEF" + "0".repeat(26), "g".repeat(32), "0".repeat(31)]) {
    const e = encodeErrorOf({ t: "pingreq", seq: 0, target, wantNack: false });
    assert(e.message.startsWith("pingreq.target:"), e.message);
  }
  const e = encodeErrorOf({
    t: "gossip",
    gossip: [{ k: "alive", node: ID_A, inc: 0, addr: "a\uD800b" }],
  });
  assert(e.message.includes("lone UTF-16 surrogate"), e.message);
  encodeErrorOf({ t: "gossip", gossip: [{ k: "alive", node: ID_A, inc: 0, addr: "\uDC00" }] });
  encodeErrorOf({
    t: "pushpull",
    join: false,
    reply: false,
    nodes: [ID_A],
    incs: [0],
    states: [4],
    addrs: [""],
  });
});

Deno.test("codec: encode rejects push-pull arrays of different lengths", () => {
  const e = encodeErrorOf({
    t: "pushpull",
    join: false,
    reply: false,
    nodes: [ID_A, ID_B],
    incs: [0],
    states: [0, 0],
    addrs: ["", ""],
  });
  assert(e.message.includes("incs 1"), e.message);
});

Deno.test("codec: encode rejects messages over MAX_SWIM_MESSAGE_BYTES", () => {
  const e = encodeErrorOf({
    t: "gossip",
    gossip: [{ k: "alive", node: ID_A, inc: 0, addr: "x".repeat(MAX_SWIM_MESSAGE_BYTES) }],
  });
  assert(e.message.includes("exceeds MAX_SWIM_MESSAGE_BYTES"), e.message);
});

Deno.test("codec: a 10,000-member push-pull fits and round-trips", () => {
  const n = 10_000;
  const nodes: NodeId[] = [];
  for (let i = 0; i < n; i++) nodes.push(i.toString(16).padStart(32, "0") as NodeId);
  const m: SwimMessage = {
    t: "pushpull",
    join: false,
    reply: false,
    nodes,
    incs: nodes.map((_, i) => i),
    states: nodes.map((_, i) => (i % 4) as MemberState),
    addrs: nodes.map((_, i) => `10.0.${i >> 8}.${i & 255}:7946`),
  };
  const bytes = encodeSwim(m);
  assertEquals(bytes.length, swimEncodedSize(m));
  assert(bytes.length < MAX_SWIM_MESSAGE_BYTES);
  assertEquals(parseSwim(bytes), m);
});

// ---------------------------------------------------------------------------------------
// Schemas

Deno.test("schema: rejects bad node ids, ranges and push-pull length mismatch with paths", () => {
  const bad = swimMessageSchema.safeParse({
    t: "ping",
    seq: -1,
    target: "XYZ",
    gossip: [{ k: "alive", node: ID_A, inc: 1.5, addr: "" }, { k: "nope" }],
  });
  assert(!bad.success);
  const paths = bad.error.issues.map((i) => i.path.join("."));
  assert(paths.includes("seq"), paths.join(","));
  assert(paths.includes("target"), paths.join(","));
  assert(paths.includes("gossip.0.inc"), paths.join(","));
  assert(paths.includes("gossip.1.k"), paths.join(","));

  const pp = swimMessageSchema.safeParse({
    t: "pushpull",
    join: false,
    reply: false,
    nodes: [ID_A],
    incs: [],
    states: [0, 4],
    addrs: [""],
  });
  assert(!pp.success);
  const ppPaths = pp.error.issues.map((i) => i.path.join("."));
  assert(ppPaths.includes("states.1"), ppPaths.join(","));

  const pp2 = swimMessageSchema.safeParse({
    t: "pushpull",
    join: false,
    reply: false,
    nodes: [ID_A],
    incs: [],
    states: [0],
    addrs: [""],
  });
  assert(!pp2.success);
  assertEquals(pp2.error.issues.map((i) => i.path.join(".")), ["incs"]);

  assert(!swimMessageSchema.safeParse({ t: "bogus" }).success);
  assert(!swimMessageSchema.safeParse({ t: "nack", seq: 2 ** 32 }).success);
  assert(swimMessageSchema.safeParse({ t: "nack", seq: MAX_U32 }).success);
});

Deno.test("schema: output type is a SwimMessage", () => {
  const r = swimMessageSchema.parse({ t: "nack", seq: 1 });
  const m: SwimMessage = r; // compile-time check
  assertEquals(m, { t: "nack", seq: 1 });
});
