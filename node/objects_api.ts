/**
 * The object storage admin API (see node/README.md, "Object storage"):
 *   PUT /v1/objects/{id}              body: the object's bytes; class and consistency from
 *                                     ?class= / ?consistency= or the X-Mycelium-Class /
 *                                     X-Mycelium-Consistency headers; 201 with
 *                                     {id, size, chunks, replicas, ...}
 *   GET /v1/objects/{id}              the bytes (application/octet-stream); 404 if absent
 *   GET /v1/objects/{id}?manifest=1   the manifest record (JSON)
 *   DELETE /v1/objects/{id}           writes a tombstone and frees the object's chunks;
 *                                     200 {id, deleted, version, ...}; 404 if absent
 * `{id}` is everything after /v1/objects/, percent-decoded (it may contain '/').
 * Input errors answer 400 with `{"error": "field: problem"}`.
 */
import { z } from "zod";
import { storageClassSchema } from "../core/storage/classes.ts";
import { consistencySchema } from "../core/storage/consistency.ts";
import { type NodeObjects, ObjectsError } from "./objects.ts";
import { OBJECT_ID_RE } from "./objects_codec.ts";

export const OBJECTS_PREFIX = "/v1/objects/";

export interface BinaryReply {
  status: number;
  /** A JSON body ... */
  json?: unknown;
  /** ... or raw bytes. */
  bytes?: Uint8Array;
  headers?: Record<string, string>;
}

type Headers = Record<string, string | string[] | undefined>;

const QUERY = {
  PUT: new Set(["class", "consistency"]),
  GET: new Set(["manifest", "consistency"]),
  DELETE: new Set(["consistency"]),
} as const;

function header(h: Headers, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A query parameter or header value validated by `schema`; errors name where it came from. */
function option<T>(
  url: URL,
  headers: Headers,
  query: string,
  head: string,
  schema: z.ZodType<T>,
): T | undefined {
  const q = url.searchParams.get(query);
  const h = header(headers, head);
  if (q !== null && h !== undefined && q !== h) {
    throw new ObjectsError(400, `${query}: the query says ${q} but the ${head} header ${h}`);
  }
  const raw = q ?? h;
  if (raw === undefined) return undefined;
  const r = schema.safeParse(raw);
  if (!r.success) {
    const expected = (schema as unknown as { options?: string[] }).options;
    throw new ObjectsError(
      400,
      `${q !== null ? query : head}: ${JSON.stringify(raw)} is not valid` +
        (expected ? ` (expected one of ${expected.join(", ")})` : ""),
    );
  }
  return r.data;
}

/** Handles `/v1/objects/...`. */
export async function objectsApi(
  objects: NodeObjects,
  method: string,
  url: URL,
  headers: Headers,
  body: Uint8Array,
): Promise<BinaryReply> {
  try {
    return await route(objects, method, url, headers, body);
  } catch (e) {
    if (e instanceof ObjectsError) return { status: e.status, json: { error: e.message } };
    throw e;
  }
}

async function route(
  objects: NodeObjects,
  method: string,
  url: URL,
  headers: Headers,
  body: Uint8Array,
): Promise<BinaryReply> {
  if (!url.pathname.startsWith(OBJECTS_PREFIX)) {
    throw new ObjectsError(404, `no such endpoint ${url.pathname} (expected /v1/objects/{id})`);
  }
  if (method !== "GET" && method !== "PUT" && method !== "DELETE") {
    throw new ObjectsError(
      405,
      `method ${method} not allowed on /v1/objects/{id} (GET, PUT, DELETE)`,
    );
  }
  let id: string;
  try {
    id = decodeURIComponent(url.pathname.slice(OBJECTS_PREFIX.length));
  } catch {
    throw new ObjectsError(400, "id: not valid percent-encoding");
  }
  if (!OBJECT_ID_RE.test(id)) {
    throw new ObjectsError(
      400,
      `id: expected 1-1024 characters without control characters, got ${id.length}`,
    );
  }
  for (const k of url.searchParams.keys()) {
    if (!QUERY[method].has(k)) {
      throw new ObjectsError(
        400,
        `${k}: unknown query parameter for ${method} (known: ${[...QUERY[method]].join(", ")})`,
      );
    }
  }
  const consistency = option(
    url,
    headers,
    "consistency",
    "x-mycelium-consistency",
    consistencySchema,
  );
  if (method === "PUT") {
    const cls = option(url, headers, "class", "x-mycelium-class", storageClassSchema);
    const r = await objects.put(id, body, { class: cls, consistency });
    return { status: 201, json: r };
  }
  if (method === "DELETE") {
    return { status: 200, json: await objects.delete(id, consistency) };
  }
  const manifest = url.searchParams.get("manifest");
  if (manifest !== null && manifest !== "1" && manifest !== "0") {
    throw new ObjectsError(400, `manifest: expected 1 or 0, got ${JSON.stringify(manifest)}`);
  }
  if (manifest === "1") {
    const record = await objects.findManifest(id, consistency);
    return { status: 200, json: record };
  }
  const { record, data } = await objects.get(id, consistency);
  const m = record.manifest;
  const v = record.version;
  return {
    status: 200,
    bytes: data,
    headers: {
      "content-type": "application/octet-stream",
      "x-mycelium-class": m.class,
      "x-mycelium-consistency": m.consistency,
      "x-mycelium-encrypted": String(m.encrypted),
      "x-mycelium-chunks": String(m.chunks.length),
      "x-mycelium-version": `${v.hlc.ms}.${v.hlc.c}@${v.writer}`,
    },
  };
}
