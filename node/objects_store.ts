/**
 * The node's object storage on disk (DESIGN.md section 5, Storage).
 *
 * Chunks: one file per chunk, `<root>/<first 2 hex of the id>/<chunk id>`. A write goes to a
 * temporary file in the same directory, is fsync'd, renamed over the final name, and the
 * directory is fsync'd (the new name is durable too; a new prefix directory is fsync'd into
 * the root first). So after `put` resolves the chunk survives `kill -9` and power loss, and a
 * crash mid-write leaves at most a temporary file, removed at the next start. Reads verify
 * the bytes against the id (sha256); a corrupt file is moved to `<root>/corrupt/` (kept for
 * inspection, counted) and the chunk is reported as corrupt, i.e. missing here.
 *
 * References: a chunk is content-addressed, so several objects may share it, and its holders
 * need not hold those objects' manifests (chunks and manifests are placed by different keys).
 * So each holder keeps, next to the chunk, one empty marker file per object that references
 * it, `<chunk id>.r.<refKey(object id)>`, made durable with the chunk (same directory fsync).
 * A DELETE drops its object's reference (`unref`); the chunk file goes with its last
 * reference. A chunk without any marker (written without one) is never deleted that way.
 *
 * Manifests: one file per object, `<root>/<2 hex>/<sha256(object id)>.json`, written the
 * same way; a write keeps whichever of the stored and the offered record has the newer
 * version (hybrid logical clock, then writer), so replicas converge whatever the order the
 * writes arrive in. A manifest file that does not parse is treated as missing and counted.
 */
import crypto from "node:crypto";
import { mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { compareVersions } from "../core/storage/consistency.ts";
import { type ManifestRecord, parseManifestRecord } from "./objects_codec.ts";

/** sha256 of `bytes`, hex (the content address of a chunk). Native: ~1.5 GB/s. */
export function sha256Hex(bytes: Uint8Array): string {
  return crypto.createHash("sha256").update(bytes).digest("hex");
}

const CHUNK_ID_RE = /^[0-9a-f]{64}$/;
const TMP_PREFIX = ".tmp-";
/** A reference marker: `<chunk id>.r.<refKey(object id)>`, an empty file. */
const REF_INFIX = ".r.";
const REF_RE = /^([0-9a-f]{64})\.r\.([0-9a-f]{32})$/;

/** The key of an object's reference markers: 128 bits of sha256(object id). */
export function refKey(objectId: string): string {
  return sha256Hex(new TextEncoder().encode(objectId)).slice(0, 32);
}

function isMissing(e: unknown): boolean {
  return (e as { code?: string })?.code === "ENOENT";
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes `bytes` to `dir/name` durably: temp file, fsync, rename, fsync of `dir`.
 * `dir` must exist (and be durable itself).
 */
async function writeDurably(dir: string, name: string, bytes: Uint8Array): Promise<void> {
  const tmp = join(dir, `${TMP_PREFIX}${name}-${crypto.randomBytes(6).toString("hex")}`);
  const fh = await open(tmp, "wx", 0o600);
  try {
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(dir, name));
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fsyncPath(dir);
}

/** Creates the 2-hex prefix directories on first use, each fsync'd into its parent. */
class PrefixDirs {
  private readonly made = new Map<string, Promise<void>>();
  constructor(private readonly root: string) {}

  dir(prefix: string): Promise<string> {
    let p = this.made.get(prefix);
    if (!p) {
      const path = join(this.root, prefix);
      p = (async () => {
        let existed = true;
        try {
          await stat(path);
        } catch (e) {
          if (!isMissing(e)) throw e;
          existed = false;
        }
        if (!existed) {
          await mkdir(path, { recursive: true });
          await fsyncPath(this.root);
        }
      })();
      this.made.set(prefix, p);
      p.catch(() => this.made.delete(prefix));
    }
    return p.then(() => join(this.root, prefix));
  }
}

export type ChunkRead =
  | { readonly ok: true; readonly bytes: Uint8Array }
  | { readonly ok: false; readonly kind: "missing" | "corrupt" | "busy"; readonly detail: string };

export class ChunkStore {
  private readonly dirs: PrefixDirs;
  /** Operations that change a chunk's files (put, ref, unref) run one at a time per chunk. */
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Per chunk, the reference keys (`refKey(object id)`) of its marker files. */
  private readonly refs = new Map<string, Set<string>>();
  /** Chunk files and their bytes on disk (as scanned at start, then kept up to date). */
  count = 0;
  bytes = 0;
  corruptFound = 0;

  constructor(readonly root: string) {
    this.dirs = new PrefixDirs(root);
  }

  path(id: string): string {
    return join(this.root, id.slice(0, 2), id);
  }

  private refPath(id: string, key: string): string {
    return join(this.root, id.slice(0, 2), `${id}${REF_INFIX}${key}`);
  }

  /** Creates the root, removes temporary files a crash left behind, counts the chunks. */
  async open(): Promise<{ removedTemp: number }> {
    await mkdir(join(this.root, "corrupt"), { recursive: true });
    let removedTemp = 0;
    this.count = 0;
    this.bytes = 0;
    this.refs.clear();
    for (const d of await readdir(this.root, { withFileTypes: true })) {
      if (!d.isDirectory() || !/^[0-9a-f]{2}$/.test(d.name)) continue;
      const dir = join(this.root, d.name);
      for (const f of await readdir(dir)) {
        const p = join(dir, f);
        const ref = REF_RE.exec(f);
        if (f.startsWith(TMP_PREFIX)) {
          await unlink(p).catch(() => {});
          removedTemp++;
        } else if (CHUNK_ID_RE.test(f)) {
          this.count++;
          this.bytes += (await stat(p)).size;
        } else if (ref) this.refSet(ref[1]).add(ref[2]);
      }
    }
    return { removedTemp };
  }

  private refSet(id: string): Set<string> {
    let s = this.refs.get(id);
    if (!s) {
      s = new Set();
      this.refs.set(id, s);
    }
    return s;
  }

  /** Runs `op` after every earlier operation on chunk `id` finished. */
  private serial<T>(id: string, op: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(op);
    this.locks.set(id, run);
    run.finally(() => {
      if (this.locks.get(id) === run) this.locks.delete(id);
    }).catch(() => {});
    return run;
  }

  /** The objects (as `refKey`s) that reference the chunk here. */
  refsOf(id: string): ReadonlySet<string> {
    return this.refs.get(id) ?? new Set();
  }

  /**
   * Stores a chunk durably; resolves once it is fsync'd (or already held intact). Rejects
   * with a RangeError when the bytes do not match the id (nothing is written).
   * `verified`: the caller has just checked the bytes against the id. `object`: the object
   * that references the chunk (its marker file is made durable with the chunk).
   */
  put(
    id: string,
    bytes: Uint8Array,
    verified = false,
    object?: string,
  ): Promise<"written" | "present"> {
    if (!CHUNK_ID_RE.test(id)) return Promise.reject(new RangeError(`not a chunk id: ${id}`));
    if (!verified && sha256Hex(bytes) !== id) {
      return Promise.reject(new RangeError(`chunk bytes do not match the id ${id}`));
    }
    // Concurrent writes of one chunk (a repeated chunk, two writers) run one after the other:
    // the first writes, the next find it present.
    return this.serial(id, () => this.putNow(id, bytes, object));
  }

  private async putNow(
    id: string,
    bytes: Uint8Array,
    object: string | undefined,
  ): Promise<"written" | "present"> {
    const existing = await this.read(id);
    const dir = await this.dirs.dir(id.slice(0, 2));
    if (object !== undefined) await this.addRefFile(id, refKey(object));
    if (existing.ok) {
      // Written earlier (fsync'd before its rename); make sure the name is durable too.
      await fsyncPath(dir);
      return "present";
    }
    await writeDurably(dir, id, bytes); // fsyncs the directory: the marker's name too
    this.count++;
    this.bytes += bytes.length;
    return "written";
  }

  /** Creates the marker file of a reference (not fsync'd: the caller fsyncs the directory). */
  private async addRefFile(id: string, key: string): Promise<boolean> {
    const set = this.refSet(id);
    if (set.has(key)) return false;
    const fh = await open(this.refPath(id, key), "w", 0o600);
    await fh.close();
    set.add(key);
    return true;
  }

  /**
   * Whether the chunk is stored here (its file exists; not verified). When it is and
   * `object` is given, records (durably) that `object` references it.
   */
  holds(id: string, object?: string): Promise<boolean> {
    if (!CHUNK_ID_RE.test(id)) return Promise.resolve(false);
    return this.serial(id, async () => {
      if (!(await this.has(id))) return false;
      if (object !== undefined && await this.addRefFile(id, refKey(object))) {
        await fsyncPath(join(this.root, id.slice(0, 2)));
      }
      return true;
    });
  }

  /**
   * Drops `object`'s reference to the chunk; deletes the chunk when that was its last one.
   * A chunk `object` does not reference here is kept whatever its other references (a chunk
   * written without any, e.g. before references existed, is never deleted this way).
   */
  unref(id: string, object: string): Promise<"deleted" | "kept" | "not-referenced"> {
    if (!CHUNK_ID_RE.test(id)) return Promise.resolve("not-referenced");
    return this.serial(id, async () => {
      const key = refKey(object);
      const set = this.refs.get(id);
      if (!set?.has(key)) return "not-referenced" as const;
      await unlink(this.refPath(id, key)).catch((e) => {
        if (!isMissing(e)) throw e;
      });
      set.delete(key);
      let outcome: "deleted" | "kept" = "kept";
      if (set.size === 0) {
        this.refs.delete(id);
        try {
          const size = (await stat(this.path(id))).size;
          await unlink(this.path(id));
          this.count = Math.max(0, this.count - 1);
          this.bytes = Math.max(0, this.bytes - size);
        } catch (e) {
          if (!isMissing(e)) throw e;
        }
        outcome = "deleted";
      }
      await fsyncPath(join(this.root, id.slice(0, 2)));
      return outcome;
    });
  }

  /** True when a file for the chunk exists (not verified). */
  async has(id: string): Promise<boolean> {
    try {
      await stat(this.path(id));
      return true;
    } catch {
      return false;
    }
  }

  /** The chunk's bytes, verified against its id; a corrupt file is quarantined. */
  async get(id: string): Promise<ChunkRead> {
    return await this.read(id);
  }

  private async read(id: string): Promise<ChunkRead> {
    if (!CHUNK_ID_RE.test(id)) return { ok: false, kind: "missing", detail: "not a chunk id" };
    let bytes: Uint8Array;
    try {
      const buf = await readFile(this.path(id));
      bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength); // not a Buffer
    } catch (e) {
      if (isMissing(e)) return { ok: false, kind: "missing", detail: "not stored here" };
      throw e;
    }
    if (sha256Hex(bytes) === id) return { ok: true, bytes };
    await this.quarantine(id, bytes.length);
    return {
      ok: false,
      kind: "corrupt",
      detail: `checksum mismatch (${bytes.length} bytes on disk); moved aside`,
    };
  }

  private async quarantine(id: string, size: number): Promise<void> {
    this.corruptFound++;
    const to = join(this.root, "corrupt", `${id}.${Date.now()}`);
    try {
      await rename(this.path(id), to);
      this.count = Math.max(0, this.count - 1);
      this.bytes = Math.max(0, this.bytes - size);
    } catch (e) {
      if (!isMissing(e)) throw e; // another reader moved it first
    }
  }
}

export type ManifestRead =
  | { readonly ok: true; readonly record: ManifestRecord }
  | { readonly ok: false; readonly kind: "missing" | "corrupt"; readonly detail: string };

export class ManifestStore {
  private readonly dirs: PrefixDirs;
  /** Writes to one object run one after the other (read, compare versions, write). */
  private readonly locks = new Map<string, Promise<unknown>>();
  count = 0;
  corruptFound = 0;

  constructor(readonly root: string) {
    this.dirs = new PrefixDirs(root);
  }

  static fileName(objectId: string): string {
    return `${sha256Hex(new TextEncoder().encode(objectId))}.json`;
  }

  private path(objectId: string): string {
    const name = ManifestStore.fileName(objectId);
    return join(this.root, name.slice(0, 2), name);
  }

  async open(): Promise<{ removedTemp: number }> {
    await mkdir(this.root, { recursive: true });
    let removedTemp = 0;
    this.count = 0;
    for (const d of await readdir(this.root, { withFileTypes: true })) {
      if (!d.isDirectory()) continue;
      const dir = join(this.root, d.name);
      for (const f of await readdir(dir)) {
        if (f.startsWith(TMP_PREFIX)) {
          await unlink(join(dir, f)).catch(() => {});
          removedTemp++;
        } else if (f.endsWith(".json")) this.count++;
      }
    }
    return { removedTemp };
  }

  async get(objectId: string): Promise<ManifestRead> {
    let text: string;
    try {
      text = await readFile(this.path(objectId), "utf8");
    } catch (e) {
      if (isMissing(e)) return { ok: false, kind: "missing", detail: "no manifest here" };
      throw e;
    }
    try {
      const record = parseManifestRecord(JSON.parse(text));
      if (record.manifest.objectId !== objectId) throw new Error("for another object id");
      return { ok: true, record };
    } catch (e) {
      this.corruptFound++;
      return { ok: false, kind: "corrupt", detail: `unreadable manifest: ${(e as Error).message}` };
    }
  }

  /** Every readable record stored here (unreadable files are skipped and counted). */
  async *list(): AsyncGenerator<ManifestRecord> {
    let dirs;
    try {
      dirs = await readdir(this.root, { withFileTypes: true });
    } catch (e) {
      if (isMissing(e)) return;
      throw e;
    }
    for (const d of dirs) {
      if (!d.isDirectory()) continue;
      let files: string[];
      try {
        files = await readdir(join(this.root, d.name));
      } catch (e) {
        if (isMissing(e)) continue;
        throw e;
      }
      for (const f of files) {
        if (!f.endsWith(".json") || f.startsWith(TMP_PREFIX)) continue;
        let text: string;
        try {
          text = await readFile(join(this.root, d.name, f), "utf8");
        } catch (e) {
          if (isMissing(e)) continue;
          throw e;
        }
        let record: ManifestRecord;
        try {
          record = parseManifestRecord(JSON.parse(text));
        } catch {
          this.corruptFound++;
          continue;
        }
        yield record;
      }
    }
  }

  /**
   * Stores the record durably unless a newer (or the same) version is stored already.
   * Resolves with what the store holds now: "written" or "kept" (the stored one is newer).
   */
  put(record: ManifestRecord): Promise<"written" | "kept"> {
    const id = record.manifest.objectId;
    const prev = this.locks.get(id) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(() => this.putNow(record));
    this.locks.set(id, run);
    run.finally(() => {
      if (this.locks.get(id) === run) this.locks.delete(id);
    }).catch(() => {});
    return run;
  }

  private async putNow(record: ManifestRecord): Promise<"written" | "kept"> {
    const id = record.manifest.objectId;
    const cur = await this.get(id);
    if (cur.ok && compareVersions(cur.record.version, record.version) >= 0) return "kept";
    const name = ManifestStore.fileName(id);
    const dir = await this.dirs.dir(name.slice(0, 2));
    await writeDurably(dir, name, new TextEncoder().encode(JSON.stringify(record)));
    if (!cur.ok) this.count++;
    return "written";
  }
}

/** A counting semaphore with a bounded queue: `acquire` fails fast when the queue is full. */
export class BoundedSemaphore {
  private active = 0;
  private readonly queue: Array<() => void> = [];
  constructor(private readonly limit: number, private readonly maxQueued: number) {}

  get busy(): number {
    return this.active + this.queue.length;
  }

  /** Null when the queue is full; else resolves with a release function. */
  acquire(): Promise<() => void> | null {
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    if (this.queue.length >= this.maxQueued) return null;
    return new Promise((resolve) => this.queue.push(() => resolve(this.releaser())));
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    };
  }
}
