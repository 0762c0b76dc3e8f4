/**
 * Wire codec of the object-storage protocol: FRAME_OBJECTS frames on the mutual-TLS streams.
 * Chunk bytes are never JSON: a frame body is
 *
 *   version:u8 (1) | headerLength:u16 BE | header: JSON (utf-8) | payload
 *
 * The header is validated with zod on decode. Requests carry a request id (`req`) chosen by
 * the sender; every reply echoes it. The payload is the chunk's bytes (`put-chunk`, `chunk`),
 * a manifest record as JSON (`put-manifest`, `manifest`), a JSON document (`have`, `holding`,
 * `unref`: repair and delete, see objects_repair.ts), or empty (everything else).
 * Decoded chunk bytes are views into the body (no copy).
 *
 * Anything malformed (truncated, garbage, wrong types or ranges, a payload where none
 * belongs, a manifest record that fails its schema) throws `DecodeError`; nothing else
 * escapes `decodeObjects`.
 */
import { z } from "zod";
import { formatZodError } from "../core/config_errors.ts";
import { DecodeError } from "../core/errors.ts";
import { isNodeId, type NodeId } from "../core/ids.ts";
import { hlcSchema } from "../core/spores/hlc.ts";
import { type Manifest, manifestSchema } from "../core/storage/chunks.ts";
import type { Version } from "../core/storage/consistency.ts";

export const FRAME_OBJECTS = 5;
export const OBJECTS_CODEC_VERSION = 1;
/** Bytes before the header: version and header length. */
const PREFIX_BYTES = 3;
/** Largest header accepted (and produced): an object id of 1024 characters fits. */
export const MAX_OBJECTS_HEADER_BYTES = 8192;
/** Frame bytes (type byte included) around a payload, at most. */
export const OBJECTS_FRAME_OVERHEAD = 1 + PREFIX_BYTES + MAX_OBJECTS_HEADER_BYTES;
/** Longest error text carried in an `error` reply. */
export const MAX_ERROR_CHARS = 512;
/** Most node ids a manifest record lists for one chunk. */
const MAX_HOLDERS = 32;

/** The largest chunk a frame of `maxFrameBytes` (type byte included) can carry. */
export function maxChunkBytes(maxFrameBytes: number): number {
  return Math.max(0, maxFrameBytes - OBJECTS_FRAME_OVERHEAD);
}

// ---- object ids and manifest records ----

/** Object ids: 1-1024 characters, no control characters. */
export const OBJECT_ID_RE = /^[^\p{Cc}]{1,1024}$/u;
export const objectIdSchema = z.string().regex(OBJECT_ID_RE, {
  error: "expected 1-1024 characters, no control characters",
});
const nodeId = z.string().refine(isNodeId, "expected a node id (32 hex characters)");
const chunkIdSchema = z.string().regex(/^[0-9a-f]{64}$/, "expected a sha256 hex digest");
const reqId = z.int().min(0).max(Number.MAX_SAFE_INTEGER);

export const versionSchema = z.strictObject({ hlc: hlcSchema, writer: nodeId });

/**
 * What replicas keep for an object: the core's manifest plus the version that orders
 * overwrites (hybrid logical clock, writer), the plaintext size (an encrypted object's
 * manifest counts ciphertext bytes) and, per chunk, the nodes it was sent to when written.
 */
export interface ManifestRecord {
  readonly manifest: Manifest;
  readonly version: Version;
  readonly plainSize: number;
  readonly replicas: readonly (readonly NodeId[])[];
  /**
   * A tombstone (DELETE): the object is gone as of `version`. It keeps the deleted record's
   * manifest (class: placed like the object was; chunks: whose references to drop).
   */
  readonly deleted?: true;
}

export const manifestRecordSchema = z.strictObject({
  manifest: manifestSchema,
  version: versionSchema,
  plainSize: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  replicas: z.array(z.array(nodeId).max(MAX_HOLDERS)),
  deleted: z.literal(true).optional(),
}).superRefine((r, ctx) => {
  if (r.replicas.length !== r.manifest.chunks.length) {
    ctx.addIssue({
      code: "custom",
      path: ["replicas"],
      message: `${r.replicas.length} entries for ${r.manifest.chunks.length} chunks`,
    });
  }
  if (!r.manifest.encrypted && r.plainSize !== r.manifest.size) {
    ctx.addIssue({
      code: "custom",
      path: ["plainSize"],
      message: `${r.plainSize} differs from the size ${r.manifest.size} of a plaintext object`,
    });
  }
});

/** Validates a decoded record; throws DecodeError naming the field. */
export function parseManifestRecord(doc: unknown, path = "record"): ManifestRecord {
  const r = manifestRecordSchema.safeParse(doc);
  if (!r.success) throw new DecodeError(formatZodError(r.error, path), 0);
  return r.data as ManifestRecord;
}

// ---- messages ----

/**
 * `have`: which of `chunks` the peer holds (each group asserts a reference from `object` to
 * its chunks on the holder, see objects_store.ts) and the version of each object in
 * `manifests` it holds. `holding` answers it: per group a string of '0'/'1' per chunk, per
 * manifest its version and whether it is a tombstone (null: none here).
 */
export interface HaveQuery {
  readonly manifests: readonly string[];
  readonly refs: readonly { readonly object: string; readonly chunks: readonly string[] }[];
}
export interface HaveAnswer {
  readonly manifests: readonly ({ readonly version: Version; readonly deleted: boolean } | null)[];
  readonly refs: readonly string[];
}
/** `unref`: drop `object`'s references to `chunks`; a chunk left unreferenced is deleted. */
export interface Unref {
  readonly object: string;
  readonly chunks: readonly string[];
}

export type ObjectsMessage =
  | { t: "put-chunk"; req: number; chunk: string; bytes: Uint8Array; object?: string }
  | { t: "have"; req: number; query: HaveQuery }
  | { t: "unref"; req: number; unref: Unref }
  | { t: "holding"; req: number; answer: HaveAnswer }
  | { t: "get-chunk"; req: number; chunk: string }
  | { t: "put-manifest"; req: number; record: ManifestRecord }
  | { t: "get-manifest"; req: number; objectId: string }
  | { t: "ok"; req: number }
  | { t: "chunk"; req: number; chunk: string; bytes: Uint8Array }
  | { t: "manifest"; req: number; record: ManifestRecord }
  | { t: "not-found"; req: number; detail?: string }
  | { t: "error"; req: number; error: string; busy: boolean };

export type ObjectsRequest = Extract<
  ObjectsMessage,
  { t: "put-chunk" | "get-chunk" | "put-manifest" | "get-manifest" | "have" | "unref" }
>;
export type ObjectsReply = Exclude<ObjectsMessage, ObjectsRequest>;

const REQUESTS = new Set([
  "put-chunk",
  "get-chunk",
  "put-manifest",
  "get-manifest",
  "have",
  "unref",
]);
export function isRequest(m: ObjectsMessage): m is ObjectsRequest {
  return REQUESTS.has(m.t);
}

/** Most entries (chunks, manifests) one `have` or `unref` carries. */
export const MAX_QUERY_ITEMS = 4096;
const haveQuerySchema = z.strictObject({
  manifests: z.array(objectIdSchema).max(MAX_QUERY_ITEMS),
  refs: z.array(z.strictObject({
    object: objectIdSchema,
    chunks: z.array(chunkIdSchema).max(MAX_QUERY_ITEMS),
  })).max(MAX_QUERY_ITEMS),
});
const haveAnswerSchema = z.strictObject({
  manifests: z.array(z.strictObject({ version: versionSchema, deleted: z.boolean() }).nullable())
    .max(MAX_QUERY_ITEMS),
  refs: z.array(z.string().regex(/^[01]*$/).max(MAX_QUERY_ITEMS)).max(MAX_QUERY_ITEMS),
});
const unrefSchema = z.strictObject({
  object: objectIdSchema,
  chunks: z.array(chunkIdSchema).max(MAX_QUERY_ITEMS),
});

const detail = z.string().max(MAX_ERROR_CHARS);
const headerSchema = z.discriminatedUnion("t", [
  z.strictObject({
    t: z.literal("put-chunk"),
    req: reqId,
    chunk: chunkIdSchema,
    object: objectIdSchema.optional(),
  }),
  z.strictObject({ t: z.literal("have"), req: reqId }),
  z.strictObject({ t: z.literal("unref"), req: reqId }),
  z.strictObject({ t: z.literal("holding"), req: reqId }),
  z.strictObject({ t: z.literal("get-chunk"), req: reqId, chunk: chunkIdSchema }),
  z.strictObject({ t: z.literal("put-manifest"), req: reqId }),
  z.strictObject({ t: z.literal("get-manifest"), req: reqId, objectId: objectIdSchema }),
  z.strictObject({ t: z.literal("ok"), req: reqId }),
  z.strictObject({ t: z.literal("chunk"), req: reqId, chunk: chunkIdSchema }),
  z.strictObject({ t: z.literal("manifest"), req: reqId }),
  z.strictObject({ t: z.literal("not-found"), req: reqId, detail: detail.optional() }),
  z.strictObject({ t: z.literal("error"), req: reqId, error: detail, busy: z.boolean() }),
]);
type Header = z.infer<typeof headerSchema>;

// A message kind without a header schema fails type checking.
type Unschemed = Exclude<ObjectsMessage["t"], Header["t"]>;
const everyKindHasASchema: [Unschemed] extends [never] ? true : Unschemed = true;
void everyKindHasASchema;

const CHUNK_PAYLOAD = new Set(["put-chunk", "chunk"]);
const RECORD_PAYLOAD = new Set(["put-manifest", "manifest"]);
/** Kinds whose payload is a JSON document: the field it decodes to and its schema. */
const JSON_PAYLOAD: Record<string, { field: string; schema: z.ZodType }> = {
  have: { field: "query", schema: haveQuerySchema },
  unref: { field: "unref", schema: unrefSchema },
  holding: { field: "answer", schema: haveAnswerSchema },
};

// ---- encode ----

const utf8 = new TextEncoder();

/** Returns a zeroed buffer of `length` bytes to encode a body into (e.g. an `allocFrame`). */
export type BodyAllocator = (length: number) => Uint8Array;
const newBody: BodyAllocator = (length) => new Uint8Array(length);

/**
 * The frame body of `msg`, written into a buffer from `alloc` (so chunk bytes are copied once,
 * straight into what the socket sends). Throws `RangeError` for a header over
 * MAX_OBJECTS_HEADER_BYTES or an error text that is too long (bugs of the caller).
 */
export function encodeObjects(msg: ObjectsMessage, alloc = newBody): Uint8Array {
  let payload: Uint8Array | null = null;
  let head: object;
  switch (msg.t) {
    case "put-chunk":
    case "chunk": {
      const { bytes, ...rest } = msg;
      payload = bytes;
      head = rest;
      break;
    }
    case "put-manifest":
    case "manifest": {
      const { record, ...rest } = msg;
      payload = utf8.encode(JSON.stringify(record));
      head = rest;
      break;
    }
    case "have": {
      const { query, ...rest } = msg;
      payload = utf8.encode(JSON.stringify(query));
      head = rest;
      break;
    }
    case "unref": {
      const { unref, ...rest } = msg;
      payload = utf8.encode(JSON.stringify(unref));
      head = rest;
      break;
    }
    case "holding": {
      const { answer, ...rest } = msg;
      payload = utf8.encode(JSON.stringify(answer));
      head = rest;
      break;
    }
    case "error":
      if (msg.error.length > MAX_ERROR_CHARS) {
        head = { ...msg, error: msg.error.slice(0, MAX_ERROR_CHARS) };
      } else head = msg;
      break;
    case "not-found":
      head = msg.detail !== undefined && msg.detail.length > MAX_ERROR_CHARS
        ? { ...msg, detail: msg.detail.slice(0, MAX_ERROR_CHARS) }
        : msg;
      break;
    default:
      head = msg;
  }
  const h = utf8.encode(JSON.stringify(head));
  if (h.length > MAX_OBJECTS_HEADER_BYTES) {
    throw new RangeError(`objects header of ${h.length} B over ${MAX_OBJECTS_HEADER_BYTES}`);
  }
  const out = alloc(PREFIX_BYTES + h.length + (payload?.length ?? 0));
  out[0] = OBJECTS_CODEC_VERSION;
  out[1] = h.length >>> 8;
  out[2] = h.length & 0xff;
  out.set(h, PREFIX_BYTES);
  if (payload) out.set(payload, PREFIX_BYTES + h.length);
  return out;
}

// ---- decode ----

const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Decodes one frame body; throws `DecodeError` on anything malformed. */
export function decodeObjects(body: Uint8Array): ObjectsMessage {
  if (body.length < PREFIX_BYTES) {
    throw new DecodeError("objects frame shorter than its prefix", 0);
  }
  if (body[0] !== OBJECTS_CODEC_VERSION) {
    throw new DecodeError(`unknown objects codec version ${body[0]}`, 0);
  }
  const hlen = (body[1] << 8) | body[2];
  if (hlen > MAX_OBJECTS_HEADER_BYTES) {
    throw new DecodeError(`objects header of ${hlen} B too long`, 1);
  }
  const payloadAt = PREFIX_BYTES + hlen;
  if (body.length < payloadAt) throw new DecodeError("objects header truncated", body.length);
  let raw: unknown;
  try {
    raw = JSON.parse(utf8Strict.decode(body.subarray(PREFIX_BYTES, payloadAt)));
  } catch (e) {
    throw new DecodeError(`objects header is not JSON: ${(e as Error).message}`, PREFIX_BYTES, e);
  }
  const r = headerSchema.safeParse(raw);
  if (!r.success) {
    throw new DecodeError(
      `bad objects header: ${formatZodError(r.error, "")}`,
      PREFIX_BYTES,
      r.error,
    );
  }
  const h: Header = r.data;
  const payload = body.subarray(payloadAt);
  if (CHUNK_PAYLOAD.has(h.t)) {
    if (payload.length === 0) throw new DecodeError(`${h.t} without chunk bytes`, payloadAt);
    return { ...h, bytes: payload } as ObjectsMessage;
  }
  if (RECORD_PAYLOAD.has(h.t)) {
    const doc = parseObjectPayload(payload, `${h.t} record`, payloadAt);
    const rec = manifestRecordSchema.safeParse(doc);
    if (!rec.success) {
      throw new DecodeError(
        `bad ${h.t} record: ${formatZodError(rec.error, "record")}`,
        payloadAt,
        rec.error,
      );
    }
    return { ...h, record: rec.data } as ObjectsMessage;
  }
  const json = JSON_PAYLOAD[h.t];
  if (json) {
    const doc = parseObjectPayload(payload, `${h.t} payload`, payloadAt);
    const v = json.schema.safeParse(doc);
    if (!v.success) {
      throw new DecodeError(
        `bad ${h.t} payload: ${formatZodError(v.error, json.field)}`,
        payloadAt,
        v.error,
      );
    }
    return { ...h, [json.field]: v.data } as ObjectsMessage;
  }
  if (payload.length !== 0) {
    throw new DecodeError(`${h.t} carries ${payload.length} unexpected bytes`, payloadAt);
  }
  return h as ObjectsMessage;
}

/**
 * A JSON object payload exactly as the encoder writes it (compact, `{` to `}`): JSON.parse
 * alone would take trailing whitespace, and a body with bytes after its message is malformed.
 */
function parseObjectPayload(payload: Uint8Array, what: string, at: number): unknown {
  if (payload.length < 2 || payload[0] !== 0x7b || payload[payload.length - 1] !== 0x7d) {
    throw new DecodeError(`${what} is not a compact JSON object`, at);
  }
  try {
    return JSON.parse(utf8Strict.decode(payload));
  } catch (e) {
    throw new DecodeError(`${what} is not JSON: ${(e as Error).message}`, at, e);
  }
}
