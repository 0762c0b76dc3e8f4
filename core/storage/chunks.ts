/**
 * Content-addressed chunks (DESIGN.md section 5, Storage). An object is split into chunks of
 * `chunkSize` bytes (4 MiB by default; the last may be shorter); a chunk's id is the sha256
 * of its bytes (hex), so any replica's copy can be checked against its id. The manifest
 * lists the chunk ids in order with the object's size, class and consistency level.
 *
 * Encryption: objects of classes that require it (Critical, Sensitive) are encrypted by the
 * caller before they are split, so chunk ids address ciphertext and reveal nothing about the
 * plaintext; `encrypted` in the manifest records that the caller did so (and splitting
 * refuses a plaintext object of such a class).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { z } from "zod";
import { formatZodError } from "../config_errors.ts";
import { DecodeError, MyceliumError } from "../errors.ts";
import { requiresEncryption, type StorageClass, storageClassSchema } from "./classes.ts";
import { type Consistency, consistencySchema } from "./consistency.ts";

export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;

export function chunkId(bytes: Uint8Array): string {
  return bytesToHex(sha256(bytes));
}

/** The bytes match the content address. */
export function verifyChunk(id: string, bytes: Uint8Array): boolean {
  return chunkId(bytes) === id;
}

export interface Manifest {
  readonly objectId: string;
  /** Object size in bytes. */
  readonly size: number;
  readonly chunkSize: number;
  /** Chunk ids in object order (identical chunks repeat their id). */
  readonly chunks: readonly string[];
  readonly class: StorageClass;
  readonly consistency: Consistency;
  readonly encrypted: boolean;
}

export interface Chunk {
  readonly id: string;
  readonly index: number;
  /** A view into the object's bytes (no copy). */
  readonly bytes: Uint8Array;
}

export interface SplitOptions {
  readonly objectId: string;
  readonly class: StorageClass;
  readonly consistency: Consistency;
  /** The caller encrypted `data` (required for Critical and Sensitive). */
  readonly encrypted: boolean;
  readonly chunkSize?: number;
}

/** Number of chunks of an object of `size` bytes. */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

/**
 * Splits an object into chunks and its manifest. Throws a `config` MyceliumError for a bad
 * chunk size and a `protocol` one for an unencrypted object of a class that requires
 * encryption.
 */
export function splitObject(
  data: Uint8Array,
  opts: SplitOptions,
): { manifest: Manifest; chunks: Chunk[] } {
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new MyceliumError("config", `must be an integer in [1, ${MAX_CHUNK_SIZE}]`, {
      input: "chunkSize",
    });
  }
  if (requiresEncryption(opts.class) && !opts.encrypted) {
    throw new MyceliumError("protocol", `${opts.class} objects must be encrypted before storage`, {
      input: opts.objectId,
    });
  }
  const chunks: Chunk[] = [];
  for (let off = 0, index = 0; off < data.length; off += chunkSize, index++) {
    const bytes = data.subarray(off, Math.min(off + chunkSize, data.length));
    chunks.push({ id: chunkId(bytes), index, bytes });
  }
  const manifest: Manifest = {
    objectId: opts.objectId,
    size: data.length,
    chunkSize,
    chunks: chunks.map((c) => c.id),
    class: opts.class,
    consistency: opts.consistency,
    encrypted: opts.encrypted,
  };
  return { manifest, chunks };
}

/** Distinct chunk ids of a manifest, in first-use order. */
export function distinctChunks(m: Manifest): string[] {
  return [...new Set(m.chunks)];
}

export interface ChunkProblem {
  readonly kind: "missing" | "corrupt";
  readonly index: number;
  readonly chunk: string;
  readonly detail: string;
}

export type Reassembly =
  | { readonly ok: true; readonly data: Uint8Array }
  | { readonly ok: false; readonly problems: readonly ChunkProblem[] };

/**
 * Rebuilds an object from its chunks, verifying each against its id and its expected length.
 * `getChunk` returns the bytes a replica gave for a chunk (undefined: none could). Every
 * missing or corrupt chunk is named, not just the first.
 */
export function reassemble(
  m: Manifest,
  getChunk: (id: string, index: number) => Uint8Array | undefined,
): Reassembly {
  const data = new Uint8Array(m.size);
  const problems: ChunkProblem[] = [];
  m.chunks.forEach((id, index) => {
    const bytes = getChunk(id, index);
    const off = index * m.chunkSize;
    const want = Math.min(m.chunkSize, m.size - off);
    if (bytes === undefined) {
      problems.push({ kind: "missing", index, chunk: id, detail: "no replica returned it" });
    } else if (bytes.length !== want) {
      problems.push({
        kind: "corrupt",
        index,
        chunk: id,
        detail: `${bytes.length} bytes, expected ${want}`,
      });
    } else if (!verifyChunk(id, bytes)) {
      problems.push({ kind: "corrupt", index, chunk: id, detail: "checksum mismatch" });
    } else data.set(bytes, off);
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, data };
}

const chunkIdSchema = z.string().regex(/^[0-9a-f]{64}$/, "expected a sha256 hex digest");

export const manifestSchema = z.strictObject({
  objectId: z.string().min(1).max(1024),
  size: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  chunkSize: z.int().min(1).max(MAX_CHUNK_SIZE),
  chunks: z.array(chunkIdSchema).max(10_000_000),
  class: storageClassSchema,
  consistency: consistencySchema,
  encrypted: z.boolean(),
}).superRefine((m, ctx) => {
  const n = chunkCount(m.size, m.chunkSize);
  if (m.chunks.length !== n) {
    ctx.addIssue({
      code: "custom",
      path: ["chunks"],
      message: `${m.chunks.length} chunks for ${m.size} bytes in ${m.chunkSize}-byte chunks`,
      params: { expected: `${n} chunks` },
    });
  }
  if (requiresEncryption(m.class) && !m.encrypted) {
    ctx.addIssue({
      code: "custom",
      path: ["encrypted"],
      message: `${m.class} objects are stored encrypted`,
      params: { expected: "true" },
    });
  }
});

/** Validates a decoded manifest; throws DecodeError naming the field. */
export function parseManifest(doc: unknown, path = "manifest"): Manifest {
  const r = manifestSchema.safeParse(doc);
  if (!r.success) throw new DecodeError(formatZodError(r.error, path), 0);
  return r.data;
}
