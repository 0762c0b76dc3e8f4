/**
 * Wire codec of distributed RAM messages (core/ram/messages.ts) in FRAME_RAM frames on the
 * mutual-TLS streams. Page contents are never JSON: a frame body is
 *
 *   version:u8 (1) | headerLength:u16 BE | header: JSON (utf-8) | payload
 *
 * The header is the message without its pages (validated with zod on decode). An epoch
 * chunk's header carries the page count `n`, and the payload is n page indices (u32 BE,
 * strictly ascending, as the primary cuts them) followed by the n pages' 4 KiB contents;
 * every other message has an empty payload. Decoded contents are views into the body (no
 * copy): the replicator copies them into the image when it applies the epoch.
 *
 * Anything malformed (truncated, garbage, wrong types or ranges, a payload of the wrong
 * length) throws `DecodeError`; nothing else escapes `decodeRam`.
 */
import { z } from "zod";
import { formatZodError } from "../core/config_errors.ts";
import { DecodeError } from "../core/errors.ts";
import { isNodeId } from "../core/ids.ts";
import type { EpochChunk, RamMessage } from "../core/ram/messages.ts";
import { PAGE_SIZE } from "../core/ram/params.ts";

export const RAM_CODEC_VERSION = 1;
/** Bytes before the header: version and header length. */
const PREFIX_BYTES = 3;
/** Largest header accepted (and produced): ids, numbers and up to 64 node ids. */
export const MAX_RAM_HEADER_BYTES = 4096;
/** Most node ids a lease request or handover may list. */
const MAX_NODE_LIST = 64;
const INDEX_BYTES = 4;

/** Frame body bytes of an epoch chunk of `pages` pages (the header at its largest). */
export function ramChunkFrameBytes(pages: number): number {
  return PREFIX_BYTES + MAX_RAM_HEADER_BYTES + pages * (INDEX_BYTES + PAGE_SIZE);
}

/** The most pages one chunk may carry in a frame of `maxFrameBytes` (type byte included). */
export function maxChunkPages(maxFrameBytes: number): number {
  const room = maxFrameBytes - 1 - PREFIX_BYTES - MAX_RAM_HEADER_BYTES;
  return Math.max(0, Math.floor(room / (INDEX_BYTES + PAGE_SIZE)));
}

// ---- header schemas ----

export const VM_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;
const vmId = z.string().regex(VM_ID_RE, "expected a VM id (1-64 letters, digits, '.', '_', '-')");
const nodeId = z.string().refine(isNodeId, "expected a node id (32 hex characters)");
const count = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const nodeList = z.array(nodeId).max(MAX_NODE_LIST);

const epochHeader = z.strictObject({
  t: z.literal("ram-epoch"),
  vmId,
  term: count,
  epoch: count,
  baseTerm: count,
  baseEpoch: count,
  resync: z.boolean(),
  chunk: count,
  chunks: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
  n: count,
}).refine((h) => h.chunk < h.chunks, { error: "chunk must be < chunks", path: ["chunk"] });

const headerSchema = z.discriminatedUnion("t", [
  epochHeader,
  z.strictObject({
    t: z.literal("ram-ack"),
    vmId,
    term: count,
    appliedTerm: count,
    epoch: count,
    chunkEpoch: count,
    chunkResync: z.boolean(),
    chunk: z.int().min(-1).max(Number.MAX_SAFE_INTEGER),
  }),
  z.strictObject({
    t: z.literal("ram-lease-req"),
    vmId,
    term: count,
    seq: count,
    backups: nodeList,
  }),
  z.strictObject({
    t: z.literal("ram-lease-grant"),
    vmId,
    term: count,
    seq: count,
    appliedTerm: count,
    epoch: count,
    valid: z.boolean(),
  }),
  z.strictObject({
    t: z.literal("ram-vote-req"),
    vmId,
    term: count,
    pre: z.boolean(),
    lastTerm: count,
    lastEpoch: count,
  }),
  z.strictObject({
    t: z.literal("ram-vote"),
    vmId,
    term: count,
    pre: z.boolean(),
    granted: z.boolean(),
    voterTerm: count,
    lastTerm: count,
    lastEpoch: count,
    valid: z.boolean(),
  }),
  z.strictObject({
    t: z.literal("ram-handover"),
    vmId,
    term: count,
    lastTerm: count,
    epoch: count,
    backups: nodeList,
    synced: nodeList,
  }),
]);

// A message kind added to core/ram/messages.ts without a header schema fails type checking.
type Unschemed = Exclude<RamMessage["t"], z.infer<typeof headerSchema>["t"]>;
const everyKindHasASchema: [Unschemed] extends [never] ? true : Unschemed = true;
void everyKindHasASchema;

// ---- encode ----

const utf8 = new TextEncoder();

/** Returns a zeroed buffer of `length` bytes to encode a body into. */
export type BodyAllocator = (length: number) => Uint8Array;
const newBody: BodyAllocator = (length) => new Uint8Array(length);

/**
 * The frame body of `msg`, written into a buffer from `alloc` (e.g. the body of a frame made
 * with `allocFrame`, so the pages are copied once, straight into what the socket sends).
 * Throws `RangeError` for a page content that is not exactly one page or a header over
 * MAX_RAM_HEADER_BYTES (bugs of the caller, not wire input).
 */
export function encodeRam(msg: RamMessage<Uint8Array>, alloc = newBody): Uint8Array {
  if (msg.t !== "ram-epoch") return withPayload(header(msg), 0, alloc);
  const { pages, contents, ...rest } = msg;
  const n = pages.length;
  if (contents.length !== n) {
    throw new RangeError(`ram-epoch: ${n} pages but ${contents.length} contents`);
  }
  const head = header({ ...rest, n });
  const out = withPayload(head, n * (INDEX_BYTES + PAGE_SIZE), alloc);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let at = PREFIX_BYTES + head.length;
  for (let i = 0; i < n; i++, at += INDEX_BYTES) view.setUint32(at, pages[i]);
  for (let i = 0; i < n; i++, at += PAGE_SIZE) {
    const c = contents[i];
    if (c.length !== PAGE_SIZE) throw new RangeError(`ram-epoch: content ${i} is ${c.length} B`);
    out.set(c, at);
  }
  return out;
}

function header(h: object): Uint8Array {
  const bytes = utf8.encode(JSON.stringify(h));
  if (bytes.length > MAX_RAM_HEADER_BYTES) {
    throw new RangeError(`RAM header of ${bytes.length} B over ${MAX_RAM_HEADER_BYTES}`);
  }
  return bytes;
}

function withPayload(head: Uint8Array, payload: number, alloc: BodyAllocator): Uint8Array {
  const out = alloc(PREFIX_BYTES + head.length + payload);
  out[0] = RAM_CODEC_VERSION;
  out[1] = head.length >>> 8;
  out[2] = head.length & 0xff;
  out.set(head, PREFIX_BYTES);
  return out;
}

// ---- decode ----

const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Decodes one frame body; throws `DecodeError` on anything malformed. */
export function decodeRam(body: Uint8Array): RamMessage<Uint8Array> {
  if (body.length < PREFIX_BYTES) throw new DecodeError("RAM frame shorter than its prefix", 0);
  if (body[0] !== RAM_CODEC_VERSION) {
    throw new DecodeError(`unknown RAM codec version ${body[0]}`, 0);
  }
  const hlen = (body[1] << 8) | body[2];
  if (hlen > MAX_RAM_HEADER_BYTES) throw new DecodeError(`RAM header of ${hlen} B too long`, 1);
  const payloadAt = PREFIX_BYTES + hlen;
  if (body.length < payloadAt) throw new DecodeError("RAM header truncated", body.length);
  let raw: unknown;
  try {
    raw = JSON.parse(utf8Strict.decode(body.subarray(PREFIX_BYTES, payloadAt)));
  } catch (e) {
    throw new DecodeError(`RAM header is not JSON: ${(e as Error).message}`, PREFIX_BYTES, e);
  }
  const r = headerSchema.safeParse(raw);
  if (!r.success) {
    throw new DecodeError(`bad RAM header: ${formatZodError(r.error, "")}`, PREFIX_BYTES, r.error);
  }
  const h = r.data;
  if (h.t !== "ram-epoch") {
    if (body.length !== payloadAt) {
      throw new DecodeError(
        `${h.t} carries ${body.length - payloadAt} unexpected bytes`,
        payloadAt,
      );
    }
    return h as RamMessage<Uint8Array>;
  }
  return decodeChunk(h, body, payloadAt);
}

function decodeChunk(
  h: z.infer<typeof epochHeader>,
  body: Uint8Array,
  at: number,
): EpochChunk<Uint8Array> {
  const { n, ...rest } = h;
  const need = n * (INDEX_BYTES + PAGE_SIZE);
  if (body.length - at !== need) {
    throw new DecodeError(
      `ram-epoch of ${n} pages needs ${need} payload bytes, got ${body.length - at}`,
      at,
    );
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const pages = new Array<number>(n);
  let prev = -1;
  for (let i = 0; i < n; i++, at += INDEX_BYTES) {
    const p = view.getUint32(at);
    if (p <= prev) throw new DecodeError("ram-epoch page indices not strictly ascending", at);
    pages[i] = prev = p;
  }
  const contents = new Array<Uint8Array>(n);
  for (let i = 0; i < n; i++, at += PAGE_SIZE) contents[i] = body.subarray(at, at + PAGE_SIZE);
  return { ...rest, pages, contents };
}
