/**
 * Compact binary codec for SWIM messages, plus zod schemas for every message and gossip item.
 *
 * Wire layout (all integers are unsigned LEB128 varints, at most 5 bytes, value <= 2^32-1,
 * minimal encoding; NodeIds are 16 raw bytes; strings are varint byte length + UTF-8;
 * booleans are one byte 0 or 1):
 *
 *   message  = version:u8 (= SWIM_WIRE_VERSION) type:u8 body
 *   type 1 ping     = seq:varint target:id16 gossip:list
 *   type 2 ack      = seq:varint gossip:list
 *   type 3 nack     = seq:varint
 *   type 4 pingreq  = seq:varint target:id16 wantNack:bool
 *   type 5 gossip   = gossip:list
 *   type 6 pushpull = join:bool reply:bool count:varint
 *                     count x (node:id16 inc:varint state:u8 addr:str)
 *   list     = count:varint count x item
 *   item     = kind:u8 node:id16 inc:varint (kind 0 alive: addr:str | 1 suspect, 2 dead: from:id16)
 *   state    = 0 alive | 1 suspect | 2 dead | 3 left (MemberState)
 *
 * The encoding is canonical: the decoder rejects non-minimal varints, so every byte string
 * it accepts is exactly `encodeSwim` of the decoded message.
 *
 * Decoding is defensive: any malformed input throws `DecodeError` with the byte offset, and
 * no allocation depends on a count that has not been checked against the remaining bytes.
 */
import { z } from "zod";
import { DecodeError, MyceliumError } from "../errors.ts";
import { isNodeId, NODE_ID_BYTES, type NodeId } from "../ids.ts";
import { formatZodError } from "../config_errors.ts";
import type { GossipItem, MemberState, SwimMessage, SwimMessageType } from "./messages.ts";

/** Major version of this wire format; a peer speaking another major version is rejected. */
export const SWIM_WIRE_VERSION = 1;
/** Largest encoded message accepted by the decoder or produced by the encoder (1 MiB). */
export const MAX_SWIM_MESSAGE_BYTES = 1 << 20;
/** Largest value of seq, inc and counts. */
export const MAX_U32 = 0xffffffff;

const TYPE_CODE: Record<SwimMessageType, number> = {
  ping: 1,
  ack: 2,
  nack: 3,
  pingreq: 4,
  gossip: 5,
  pushpull: 6,
};
const KIND_ALIVE = 0;
const KIND_SUSPECT = 1;
const KIND_DEAD = 2;

/** Smallest encoded gossip item: alive with inc < 128 and addr "" (kind + id + 1 + 1). */
const MIN_ITEM_BYTES = 1 + NODE_ID_BYTES + 1 + 1;
/** Smallest encoded push-pull entry: id + inc + state + empty addr. */
const MIN_PUSHPULL_ENTRY_BYTES = NODE_ID_BYTES + 1 + 1 + 1;

// ---------------------------------------------------------------------------------------
// Sizes (arithmetic, no encoding)

/** Bytes of the LEB128 varint of `v` (valid for 0 <= v <= 2^32-1). */
export function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/**
 * UTF-8 byte length of `s`. A lone surrogate counts 3 bytes (as U+FFFD would) although the
 * encoder rejects it.
 */
export function utf8Length(s: string): number {
  const len = s.length;
  let n = len;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 2; // two UTF-16 units -> four bytes
        i++;
      } else n += 2;
    } else n += 2;
  }
  return n;
}

function strSize(s: string): number {
  if (s.length === 0) return 1;
  const n = utf8Length(s);
  return varintSize(n) + n;
}

/** Exact number of bytes `item` adds to a message's gossip list. */
export function gossipItemSize(item: GossipItem): number {
  switch (item.k) {
    case "alive":
      return 1 + NODE_ID_BYTES + varintSize(item.inc) + strSize(item.addr);
    case "suspect":
    case "dead":
      return 1 + NODE_ID_BYTES + varintSize(item.inc) + NODE_ID_BYTES;
    default:
      throw new MyceliumError("encode", `unknown gossip item kind ${JSON.stringify(kindOf(item))}`);
  }
}

/** Bytes of a gossip list (count + items). */
export function gossipListSize(items: readonly GossipItem[]): number {
  let n = varintSize(items.length);
  for (let i = 0; i < items.length; i++) n += gossipItemSize(items[i]);
  return n;
}

/** Bytes a message with `count` gossip items needs beyond the items themselves. */
export function swimOverheadSize(t: "ping" | "ack" | "gossip", seq: number, count: number): number {
  const head = 2 + varintSize(count);
  if (t === "gossip") return head;
  return head + varintSize(seq) + (t === "ping" ? NODE_ID_BYTES : 0);
}

/**
 * Exact length of `encodeSwim(msg)`, computed without encoding (cheap; the simulator accounts
 * wire bytes with it). It does not validate the message: if `encodeSwim` would throw, the
 * value is meaningless.
 */
export function swimEncodedSize(msg: SwimMessage): number {
  switch (msg.t) {
    case "ping":
      return 2 + varintSize(msg.seq) + NODE_ID_BYTES + gossipListSize(msg.gossip);
    case "ack":
      return 2 + varintSize(msg.seq) + gossipListSize(msg.gossip);
    case "nack":
      return 2 + varintSize(msg.seq);
    case "pingreq":
      return 2 + varintSize(msg.seq) + NODE_ID_BYTES + 1;
    case "gossip":
      return 2 + gossipListSize(msg.gossip);
    case "pushpull": {
      const count = msg.nodes.length;
      let n = 2 + 2 + varintSize(count) + count * (NODE_ID_BYTES + 1);
      const { incs, addrs } = msg;
      for (let i = 0; i < count; i++) n += varintSize(incs[i]) + strSize(addrs[i]);
      return n;
    }
    default:
      throw new MyceliumError("encode", `unknown SWIM message type ${JSON.stringify(typeOf(msg))}`);
  }
}

function kindOf(item: unknown): unknown {
  return (item as { k?: unknown }).k;
}
function typeOf(msg: unknown): unknown {
  return (msg as { t?: unknown }).t;
}

// ---------------------------------------------------------------------------------------
// Encoding

const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[48 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[97 + i] = 10 + i;

class Writer {
  readonly buf: Uint8Array;
  pos = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }

  bool(v: boolean, what: string): void {
    if (typeof v !== "boolean") throw encodeError(what, `must be a boolean, got ${show(v)}`);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  varint(v: number, what: string): void {
    if (!Number.isInteger(v) || v < 0 || v > MAX_U32) {
      throw encodeError(what, `must be an integer in [0, ${MAX_U32}], got ${show(v)}`);
    }
    const buf = this.buf;
    while (v >= 0x80) {
      buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    buf[this.pos++] = v;
  }

  nodeId(id: NodeId, what: string): void {
    if (typeof id !== "string" || id.length !== NODE_ID_BYTES * 2) throw badId(id, what);
    const buf = this.buf;
    for (let i = 0; i < NODE_ID_BYTES; i++) {
      const hi = id.charCodeAt(2 * i);
      const lo = id.charCodeAt(2 * i + 1);
      const h = hi < 128 ? HEX_VALUE[hi] : -1;
      const l = lo < 128 ? HEX_VALUE[lo] : -1;
      if (h < 0 || l < 0) throw badId(id, what);
      buf[this.pos++] = (h << 4) | l;
    }
  }

  str(s: string, what: string): void {
    if (typeof s !== "string") throw encodeError(what, `must be a string, got ${show(s)}`);
    this.varint(utf8Length(s), what);
    const buf = this.buf;
    const len = s.length;
    for (let i = 0; i < len; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        buf[this.pos++] = c;
      } else if (c < 0x800) {
        buf[this.pos++] = 0xc0 | (c >> 6);
        buf[this.pos++] = 0x80 | (c & 0x3f);
      } else if (c >= 0xd800 && c <= 0xdfff) {
        const d = s.charCodeAt(i + 1); // NaN past the end
        if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) {
          throw encodeError(what, `contains a lone UTF-16 surrogate at index ${i}`);
        }
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        buf[this.pos++] = 0xf0 | (c >> 18);
        buf[this.pos++] = 0x80 | ((c >> 12) & 0x3f);
        buf[this.pos++] = 0x80 | ((c >> 6) & 0x3f);
        buf[this.pos++] = 0x80 | (c & 0x3f);
      } else {
        buf[this.pos++] = 0xe0 | (c >> 12);
        buf[this.pos++] = 0x80 | ((c >> 6) & 0x3f);
        buf[this.pos++] = 0x80 | (c & 0x3f);
      }
    }
  }

  items(items: readonly GossipItem[], what: string): void {
    if (!Array.isArray(items)) throw encodeError(what, "must be an array");
    this.varint(items.length, `${what}.length`);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      const w = `${what}[${i}]`;
      switch (item.k) {
        case "alive":
          this.u8(KIND_ALIVE);
          this.nodeId(item.node, `${w}.node`);
          this.varint(item.inc, `${w}.inc`);
          this.str(item.addr, `${w}.addr`);
          break;
        case "suspect":
        case "dead":
          this.u8(item.k === "suspect" ? KIND_SUSPECT : KIND_DEAD);
          this.nodeId(item.node, `${w}.node`);
          this.varint(item.inc, `${w}.inc`);
          this.nodeId(item.from, `${w}.from`);
          break;
        default:
          throw encodeError(`${w}.k`, `unknown gossip item kind ${show(kindOf(item))}`);
      }
    }
  }
}

function show(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}
function encodeError(what: string, message: string): MyceliumError {
  return new MyceliumError("encode", message, { input: what });
}
function badId(id: unknown, what: string): MyceliumError {
  return encodeError(what, `must be a node id (32 lowercase hex characters), got ${show(id)}`);
}

/**
 * Encodes a SWIM message. Throws `MyceliumError` kind "encode" for values the wire cannot
 * carry: integers outside [0, 2^32-1], malformed node ids, strings with lone surrogates,
 * push-pull arrays of different lengths, state values outside MemberState, or a message
 * larger than MAX_SWIM_MESSAGE_BYTES.
 */
export function encodeSwim(msg: SwimMessage): Uint8Array {
  if (msg.t === "pushpull") {
    const n = msg.nodes.length;
    if (msg.incs.length !== n || msg.states.length !== n || msg.addrs.length !== n) {
      throw encodeError(
        "pushpull",
        `parallel arrays differ in length: nodes ${n}, incs ${msg.incs.length}, ` +
          `states ${msg.states.length}, addrs ${msg.addrs.length}`,
      );
    }
  }
  const size = swimEncodedSize(msg);
  if (size > MAX_SWIM_MESSAGE_BYTES) {
    throw encodeError(
      msg.t,
      `encoded message of ${size} bytes exceeds MAX_SWIM_MESSAGE_BYTES (${MAX_SWIM_MESSAGE_BYTES})`,
    );
  }
  const w = new Writer(size);
  w.u8(SWIM_WIRE_VERSION);
  w.u8(TYPE_CODE[msg.t]);
  switch (msg.t) {
    case "ping":
      w.varint(msg.seq, "ping.seq");
      w.nodeId(msg.target, "ping.target");
      w.items(msg.gossip, "ping.gossip");
      break;
    case "ack":
      w.varint(msg.seq, "ack.seq");
      w.items(msg.gossip, "ack.gossip");
      break;
    case "nack":
      w.varint(msg.seq, "nack.seq");
      break;
    case "pingreq":
      w.varint(msg.seq, "pingreq.seq");
      w.nodeId(msg.target, "pingreq.target");
      w.bool(msg.wantNack, "pingreq.wantNack");
      break;
    case "gossip":
      w.items(msg.gossip, "gossip.gossip");
      break;
    case "pushpull": {
      w.bool(msg.join, "pushpull.join");
      w.bool(msg.reply, "pushpull.reply");
      const { nodes, incs, states, addrs } = msg;
      w.varint(nodes.length, "pushpull.nodes.length");
      for (let i = 0; i < nodes.length; i++) {
        w.nodeId(nodes[i], `pushpull.nodes[${i}]`);
        w.varint(incs[i], `pushpull.incs[${i}]`);
        const s = states[i];
        if (s !== 0 && s !== 1 && s !== 2 && s !== 3) {
          throw encodeError(`pushpull.states[${i}]`, `must be a MemberState 0..3, got ${show(s)}`);
        }
        w.u8(s);
        w.str(addrs[i], `pushpull.addrs[${i}]`);
      }
      break;
    }
  }
  if (w.pos !== size) {
    throw new MyceliumError(
      "internal",
      `swimEncodedSize(${msg.t}) = ${size} but ${w.pos} bytes were written`,
    );
  }
  return w.buf;
}

// ---------------------------------------------------------------------------------------
// Decoding

const HEX_BYTE: string[] = [];
for (let i = 0; i < 256; i++) HEX_BYTE.push(i.toString(16).padStart(2, "0"));

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  need(n: number, what: string): void {
    if (this.bytes.length - this.pos < n) {
      throw new DecodeError(
        `truncated: ${what} needs ${n} byte${n === 1 ? "" : "s"}, ${this.remaining} remain`,
        this.pos,
      );
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++];
  }

  bool(what: string): boolean {
    const at = this.pos;
    const b = this.u8(what);
    if (b > 1) throw new DecodeError(`${what}: boolean byte must be 0 or 1, got ${b}`, at);
    return b === 1;
  }

  varint(what: string): number {
    const start = this.pos;
    const bytes = this.bytes;
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= bytes.length) {
        throw new DecodeError(`truncated: varint ${what} is incomplete`, this.pos);
      }
      const b = bytes[this.pos++];
      if (i === 4 && b > 0x0f) {
        throw new DecodeError(
          `varint ${what} is longer than 5 bytes or exceeds ${MAX_U32}`,
          start,
        );
      }
      value += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (b === 0 && i > 0) {
          throw new DecodeError(`varint ${what} is not minimally encoded`, start);
        }
        return value;
      }
      mul *= 0x80;
    }
    // Unreachable: the fifth byte is <= 0x0f, so it has no continuation bit.
    throw new DecodeError(`varint ${what} is longer than 5 bytes`, start);
  }

  /** A count of entries of at least `minEntryBytes` each, checked against what remains. */
  count(minEntryBytes: number, what: string): number {
    const at = this.pos;
    const n = this.varint(`${what} count`);
    if (n * minEntryBytes > this.remaining) {
      throw new DecodeError(
        `${what} count ${n} needs at least ${n * minEntryBytes} bytes, ${this.remaining} remain`,
        at,
      );
    }
    return n;
  }

  nodeId(what: string): NodeId {
    this.need(NODE_ID_BYTES, what);
    const bytes = this.bytes;
    let s = "";
    for (let i = 0; i < NODE_ID_BYTES; i++) s += HEX_BYTE[bytes[this.pos++]];
    return s as NodeId;
  }

  str(what: string): string {
    const len = this.varint(`${what} length`);
    if (len === 0) return "";
    this.need(len, what);
    const start = this.pos;
    const bytes = this.bytes;
    this.pos += len;
    if (len <= 64) {
      let ascii = "";
      let i = start;
      for (; i < start + len; i++) {
        const b = bytes[i];
        if (b >= 0x80) break;
        ascii += String.fromCharCode(b);
      }
      if (i === start + len) return ascii;
    }
    try {
      return utf8Decoder.decode(bytes.subarray(start, start + len));
    } catch (e) {
      throw new DecodeError(`${what}: invalid UTF-8`, start, e);
    }
  }

  items(what: string): GossipItem[] {
    const n = this.count(MIN_ITEM_BYTES, what);
    const out: GossipItem[] = [];
    for (let i = 0; i < n; i++) {
      const at = this.pos;
      const w = `${what}[${i}]`;
      const kind = this.u8(`${w}.k`);
      switch (kind) {
        case KIND_ALIVE: {
          const node = this.nodeId(`${w}.node`);
          const inc = this.varint(`${w}.inc`);
          const addr = this.str(`${w}.addr`);
          out.push({ k: "alive", node, inc, addr });
          break;
        }
        case KIND_SUSPECT:
        case KIND_DEAD: {
          const node = this.nodeId(`${w}.node`);
          const inc = this.varint(`${w}.inc`);
          const from = this.nodeId(`${w}.from`);
          out.push({ k: kind === KIND_SUSPECT ? "suspect" : "dead", node, inc, from });
          break;
        }
        default:
          throw new DecodeError(`${w}: unknown gossip item kind ${kind}`, at);
      }
    }
    return out;
  }
}

function decodeBody(r: Reader): SwimMessage {
  const version = r.u8("version");
  if (version !== SWIM_WIRE_VERSION) {
    throw new DecodeError(
      `unsupported SWIM wire version ${version} (this node speaks version ${SWIM_WIRE_VERSION})`,
      0,
    );
  }
  const type = r.u8("message type");
  switch (type) {
    case TYPE_CODE.ping: {
      const seq = r.varint("ping.seq");
      const target = r.nodeId("ping.target");
      const gossip = r.items("ping.gossip");
      return { t: "ping", seq, target, gossip };
    }
    case TYPE_CODE.ack: {
      const seq = r.varint("ack.seq");
      const gossip = r.items("ack.gossip");
      return { t: "ack", seq, gossip };
    }
    case TYPE_CODE.nack:
      return { t: "nack", seq: r.varint("nack.seq") };
    case TYPE_CODE.pingreq: {
      const seq = r.varint("pingreq.seq");
      const target = r.nodeId("pingreq.target");
      const wantNack = r.bool("pingreq.wantNack");
      return { t: "pingreq", seq, target, wantNack };
    }
    case TYPE_CODE.gossip:
      return { t: "gossip", gossip: r.items("gossip.gossip") };
    case TYPE_CODE.pushpull: {
      const join = r.bool("pushpull.join");
      const reply = r.bool("pushpull.reply");
      const n = r.count(MIN_PUSHPULL_ENTRY_BYTES, "pushpull.nodes");
      const nodes: NodeId[] = [];
      const incs: number[] = [];
      const states: MemberState[] = [];
      const addrs: string[] = [];
      for (let i = 0; i < n; i++) {
        nodes.push(r.nodeId(`pushpull.nodes[${i}]`));
        incs.push(r.varint(`pushpull.incs[${i}]`));
        const at = r.pos;
        const s = r.u8(`pushpull.states[${i}]`);
        if (s > 3) throw new DecodeError(`pushpull.states[${i}]: unknown member state ${s}`, at);
        states.push(s as MemberState);
        addrs.push(r.str(`pushpull.addrs[${i}]`));
      }
      return { t: "pushpull", join, reply, nodes, incs, states, addrs };
    }
    default:
      throw new DecodeError(`unknown SWIM message type ${type}`, 1);
  }
}

/**
 * Decodes one SWIM message. Any malformed input (wrong version, truncation, trailing bytes,
 * unknown type/kind/state, bad boolean, overlong or non-minimal varint, count larger than the
 * remaining bytes allow, invalid UTF-8, input over MAX_SWIM_MESSAGE_BYTES) throws
 * `DecodeError`; no other exception escapes. The result always satisfies `swimMessageSchema`.
 */
export function decodeSwim(bytes: Uint8Array): SwimMessage {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError("input is not a Uint8Array", 0);
  if (bytes.length > MAX_SWIM_MESSAGE_BYTES) {
    throw new DecodeError(
      `message of ${bytes.length} bytes exceeds MAX_SWIM_MESSAGE_BYTES (${MAX_SWIM_MESSAGE_BYTES})`,
      MAX_SWIM_MESSAGE_BYTES,
    );
  }
  const r = new Reader(bytes);
  let msg: SwimMessage;
  try {
    msg = decodeBody(r);
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    // Defence in depth: a decoder bug must still surface as a DecodeError.
    throw new DecodeError(`unexpected decoder failure: ${String(e)}`, r.pos, e);
  }
  if (r.pos !== bytes.length) {
    throw new DecodeError(
      `${bytes.length - r.pos} trailing byte${
        bytes.length - r.pos === 1 ? "" : "s"
      } after a ${msg.t} message`,
      r.pos,
    );
  }
  return msg;
}

// ---------------------------------------------------------------------------------------
// Schemas

function isWellFormedUtf16(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c > 0xdbff) return false;
    const d = s.charCodeAt(i + 1);
    if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
    i++;
  }
  return true;
}

export const nodeIdSchema = z
  .custom<NodeId>(isNodeId, { error: "expected a node id: 32 lowercase hex characters" })
  .describe("node id: hex of the first 16 bytes of sha256(public key)");

export const u32Schema = z
  .number({ error: `expected an integer in [0, ${MAX_U32}]` })
  .int({ error: `expected an integer in [0, ${MAX_U32}]` })
  .min(0, { error: `expected an integer in [0, ${MAX_U32}]` })
  .max(MAX_U32, { error: `expected an integer in [0, ${MAX_U32}]` });

export const addrSchema = z
  .string({ error: "expected a string" })
  .refine(isWellFormedUtf16, { error: "expected well-formed text (no lone UTF-16 surrogates)" })
  .describe("opaque transport address ('' in the simulator)");

export const memberStateSchema = z
  .literal([0, 1, 2, 3], { error: "expected a member state: 0 alive, 1 suspect, 2 dead, 3 left" });

export const aliveItemSchema = z.object({
  k: z.literal("alive"),
  node: nodeIdSchema,
  inc: u32Schema,
  addr: addrSchema,
});
export const suspectItemSchema = z.object({
  k: z.literal("suspect"),
  node: nodeIdSchema,
  inc: u32Schema,
  from: nodeIdSchema,
});
export const deadItemSchema = z.object({
  k: z.literal("dead"),
  node: nodeIdSchema,
  inc: u32Schema,
  from: nodeIdSchema,
});
export const gossipItemSchema = z.discriminatedUnion(
  "k",
  [aliveItemSchema, suspectItemSchema, deadItemSchema],
  { error: 'expected a gossip item kind "alive", "suspect" or "dead"' },
);

const gossipListSchema = z.array(gossipItemSchema, { error: "expected an array of gossip items" });

export const pingSchema = z.object({
  t: z.literal("ping"),
  seq: u32Schema,
  target: nodeIdSchema,
  gossip: gossipListSchema,
});
export const ackSchema = z.object({
  t: z.literal("ack"),
  seq: u32Schema,
  gossip: gossipListSchema,
});
export const nackSchema = z.object({ t: z.literal("nack"), seq: u32Schema });
export const pingReqSchema = z.object({
  t: z.literal("pingreq"),
  seq: u32Schema,
  target: nodeIdSchema,
  wantNack: z.boolean({ error: "expected a boolean" }),
});
export const gossipSchema = z.object({ t: z.literal("gossip"), gossip: gossipListSchema });
export const pushPullSchema = z
  .object({
    t: z.literal("pushpull"),
    join: z.boolean({ error: "expected a boolean" }),
    reply: z.boolean({ error: "expected a boolean" }),
    nodes: z.array(nodeIdSchema),
    incs: z.array(u32Schema),
    states: z.array(memberStateSchema),
    addrs: z.array(addrSchema),
  })
  .superRefine((m, ctx) => {
    const n = m.nodes.length;
    for (const key of ["incs", "states", "addrs"] as const) {
      if (m[key].length !== n) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `has ${m[key].length} entries but nodes has ${n}`,
          params: { expected: `the same length as nodes (${n})` },
        });
      }
    }
  });

export const swimMessageSchema = z.discriminatedUnion(
  "t",
  [pingSchema, ackSchema, nackSchema, pingReqSchema, gossipSchema, pushPullSchema],
  {
    error: 'expected a SWIM message type "ping", "ack", "nack", "pingreq", "gossip" or "pushpull"',
  },
);

/**
 * Decodes and validates a SWIM message: `decodeSwim` followed by `swimMessageSchema`.
 * Throws `DecodeError` for either failure (schema failures name the issue paths).
 */
export function parseSwim(bytes: Uint8Array): SwimMessage {
  const msg = decodeSwim(bytes);
  const r = swimMessageSchema.safeParse(msg);
  if (!r.success) {
    throw new DecodeError(
      `decoded message fails validation: ${formatZodError(r.error, "swim")}`,
      bytes.length,
      r.error,
    );
  }
  return r.data;
}
