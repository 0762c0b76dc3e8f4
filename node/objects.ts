/**
 * Object storage on a real node (DESIGN.md section 5, Storage): objects split into
 * content-addressed chunks (core/storage/chunks.ts), each chunk replicated on
 * `storage.replicationFactor` live nodes chosen by weighted rendezvous hashing
 * (core/storage/placement.ts) over the members this node sees alive, one per failure domain,
 * among the nodes eligible for the object's class (core/storage/classes.ts); acknowledged
 * after a write quorum of replicas fsync'd every chunk and the manifest
 * (core/storage/consistency.ts: Strong floor(rf/2)+1, Eventual 1).
 *
 * Wire: FRAME_OBJECTS frames on the mutual-TLS streams (objects_codec.ts): put-chunk (ack
 * after fsync), get-chunk, put-manifest, get-manifest, each with a request id, a timeout and
 * a per-peer window of bytes in flight. Malformed frames are dropped and counted.
 *
 * Placement inputs (see node/README.md, "Object storage"):
 * - candidates: this node and the members SWIM reports alive (suspect members are read
 *   from, never written to);
 * - tier: announced by each member with its address (`node.tier`);
 * - failure domain: the member's `storage.labels` at the `storage.failureDomain` level when
 *   it announced them, else its node id (every node its own domain);
 * - trust 1.0 and weight 1 for every node: the node has no trust table yet, so class
 *   eligibility is decided by tier alone (Critical: Sclerotia only; Hyphae never hold data).
 *
 * Writes: a chunk goes to its rf placement targets at once; a target that fails (unreachable,
 * timeout, error) is replaced by the next node in rendezvous order, so a replica holder that
 * dies mid-write costs no acknowledgement. The manifest is written last, to the rf
 * placement targets of the key "object:<id>" (computable from the id alone), and records
 * for every chunk the nodes it was sent to. Overwrites are ordered by version (hybrid
 * logical clock, writer).
 *
 * Reads: the manifest from its placement targets (Strong: the newest of a read quorum;
 * Eventual: the first found), asking up to 32 other members (in rendezvous order) before
 * answering "not found" (or when the targets have not answered enough after `hedgeMs`);
 * then the chunks, a window of them at once, each from one replica at a time (this node
 * first when it holds it, then the recorded holders rotated per chunk so reads spread over
 * the replicas, then anyone else), the next replica asked at once on a failure and after
 * `hedgeMs` without an answer; the first answer whose sha256 matches the chunk id wins.
 * Chunks are immutable (content-addressed), so one verified copy is enough at every
 * consistency level. A corrupt local copy is quarantined, counted, and rewritten from the
 * good copy (read repair).
 *
 * Failures and deletes (objects_repair.ts): repair scans (periodic, and soon after a member
 * dies) re-replicate manifests and chunks to rf live nodes; DELETE writes a tombstone (a newer
 * record marked deleted, which wins over stale copies) and drops the object's references to
 * its chunks on every live member, a chunk going with its last reference (objects_store.ts).
 */
import type { Logger, Metrics } from "../core/host.ts";
import { DecodeError, MyceliumError } from "../core/errors.ts";
import type { NodeId } from "../core/ids.ts";
import { type Hlc, HLC_ZERO, hlcReceive, hlcTick } from "../core/spores/hlc.ts";
import type { Tier } from "../core/spores/types.ts";
import {
  type Chunk,
  type Manifest,
  splitObject,
  type SplitOptions,
} from "../core/storage/chunks.ts";
import {
  eligibleFor,
  ineligibility,
  requiresEncryption,
  STORAGE_CLASS_NAMES,
  type StorageClass,
} from "../core/storage/classes.ts";
import {
  compareVersions,
  type Consistency,
  readOutcome,
  readQuorum,
  type ReadResponse,
  writeQuorum,
} from "../core/storage/consistency.ts";
import {
  failureDomain,
  placeReplicas,
  rankNodes,
  type StorageNode,
} from "../core/storage/placement.ts";
import { allocFrame } from "./framing.ts";
import {
  decodeObjects,
  encodeObjects,
  FRAME_OBJECTS,
  type HaveAnswer,
  type HaveQuery,
  isRequest,
  type ManifestRecord,
  maxChunkBytes,
  type ObjectsMessage,
  type ObjectsReply,
  type ObjectsRequest,
} from "./objects_codec.ts";
import { batches, ObjectsRepair } from "./objects_repair.ts";
import type { StorageSection } from "./objects_config.ts";
import { decryptObject, deriveObjectKey, encryptObject } from "./objects_crypto.ts";
import {
  BoundedSemaphore,
  type ChunkRead,
  ChunkStore,
  ManifestStore,
  sha256Hex,
} from "./objects_store.ts";
import { join } from "node:path";

export { FRAME_OBJECTS } from "./objects_codec.ts";

/** Members asked for a manifest beyond its placement targets (the best-ranked first). */
const MAX_EXTRA_MANIFEST_PROBES = 32;
/** How long a request waits for the stream to a peer to come up before it fails. */
const CONNECT_WAIT_MS = 1500;

export interface StorageLabels {
  readonly region?: string;
  readonly zone?: string;
  readonly host?: string;
}

/** A member as object storage sees it. */
export interface StoragePeer {
  readonly id: NodeId;
  /** Alive members are placement candidates; suspect ones are only read from. */
  readonly state: "alive" | "suspect";
  readonly tier: Tier;
  readonly labels: StorageLabels;
}

export interface NodeObjectsParts {
  self: NodeId;
  tier: Tier;
  config: StorageSection;
  /** Chunks go to <dataDir>/chunks, manifests to <dataDir>/manifests. */
  dataDir: string;
  /** The network's isolation key: the object encryption key is derived from it. */
  isolationKey: Uint8Array;
  /** The streams' largest frame (type byte included). */
  maxFrameBytes: number;
  metrics: Metrics;
  log: Logger;
  /** Sends a frame made with `allocFrame` to a peer; false when not connected to it now. */
  sendFrame: (to: NodeId, frame: Uint8Array) => boolean;
  /** The other members, alive or suspect, with their announced tier and labels. */
  peers: () => StoragePeer[];
}

/** A request error with the HTTP status the API answers with. */
export class ObjectsError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "ObjectsError";
  }
}

export interface PutOptions {
  class?: StorageClass;
  consistency?: Consistency;
}

export interface PutResult {
  id: string;
  size: number;
  /** Number of chunks. */
  chunks: number;
  chunkSize: number;
  class: StorageClass;
  consistency: Consistency;
  encrypted: boolean;
  version: { hlc: Hlc; writer: string };
  /** Per chunk (object order), the nodes it was sent to. */
  replicas: string[][];
  /** Per chunk, the distinct nodes that had fsync'd it when the write was acknowledged. */
  stored: number[];
  /** The nodes the manifest was sent to. */
  manifestReplicas: string[];
}

export interface DeleteResult {
  id: string;
  deleted: true;
  /** The tombstone's version. */
  version: { hlc: Hlc; writer: string };
  /** The nodes the tombstone was sent to. */
  manifestReplicas: string[];
  /** Chunks of the deleted object. */
  chunks: number;
}

/** The outcome of one request to a peer. */
type Outcome =
  | ObjectsReply
  | { t: "timeout" }
  | { t: "unreachable" }
  | { t: "stopped" };

interface Pending {
  peer: NodeId;
  done: (o: Outcome) => void;
}

/** Bytes in flight to one peer, and the requests waiting for room. */
class PeerWindow {
  inflight = 0;
  private readonly waiters: Array<{ bytes: number; go: () => void }> = [];
  constructor(private readonly limit: number) {}

  private fits(bytes: number): boolean {
    return this.inflight === 0 || this.inflight + bytes <= this.limit;
  }

  /** False when no room came within `timeoutMs`. */
  acquire(bytes: number, timeoutMs: number): Promise<boolean> {
    if (this.waiters.length === 0 && this.fits(bytes)) {
      this.inflight += bytes;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const w = {
        bytes,
        go: () => {
          clearTimeout(timer);
          this.inflight += bytes;
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  release(bytes: number): void {
    this.inflight -= bytes;
    while (this.waiters.length > 0 && this.fits(this.waiters[0].bytes)) this.waiters.shift()!.go();
  }
}

/**
 * The core's `splitObject` (core/storage/chunks.ts) with chunk ids from node:crypto's native
 * sha256 instead of the core's pure-JS one: the same chunks and manifest (checked against the
 * core on random input in objects_codec_test.ts). The core's hash was the write path's largest
 * CPU cost (bench:objects --profile), at ~230 MB/s against ~1.5 GB/s natively. The options
 * are validated by the core itself (chunk size, encryption of Critical and Sensitive).
 */
export function splitNative(
  data: Uint8Array,
  opts: SplitOptions,
): { manifest: Manifest; chunks: Chunk[] } {
  const empty = splitObject(new Uint8Array(0), opts).manifest; // validates the options
  const chunks: Chunk[] = [];
  for (let off = 0, index = 0; off < data.length; off += empty.chunkSize, index++) {
    const bytes = data.subarray(off, Math.min(off + empty.chunkSize, data.length));
    chunks.push({ id: sha256Hex(bytes), index, bytes });
  }
  return { manifest: { ...empty, size: data.length, chunks: chunks.map((c) => c.id) }, chunks };
}

/** `manifestKey(id)`: the placement key of an object's manifest. */
export function manifestKey(objectId: string): string {
  return `object:${objectId}`;
}

/**
 * A node's failure domain: its labels at `level` when it announced every label that level
 * needs (a missing host label is its node id), else its node id.
 */
export function domainOf(
  id: string,
  labels: StorageLabels,
  level: "region" | "zone" | "host",
): string {
  const { region, zone } = labels;
  const host = labels.host ?? id;
  if (level === "region") return region ? failureDomain({ region, zone: "", host }, level) : id;
  if (level === "zone") {
    return region && zone ? failureDomain({ region, zone, host }, level) : id;
  }
  if (!region && !zone) return labels.host ?? id;
  return failureDomain({ region: region ?? "", zone: zone ?? "", host }, level);
}

/**
 * Runs `work` over `items` with at most `width` at once; the first failure stops new ones
 * from starting and is rethrown once the running ones finish.
 */
async function runWindow<T>(
  items: readonly T[],
  width: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { e: unknown } | null = null;
  const lane = async () => {
    while (failure === null && next < items.length) {
      const i = next++;
      try {
        await work(items[i], i);
      } catch (e) {
        failure ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  if (failure) throw (failure as { e: unknown }).e;
}

interface Replication {
  /** Resolves once `need` replicas stored it (ok) or that became impossible (not ok). */
  quorum: Promise<{ ok: boolean; stored: NodeId[]; errors: string[] }>;
  /** Resolves when no write is running any more: the nodes that stored it. */
  settled: Promise<NodeId[]>;
  /** Nodes written to so far (targets, then replacements). */
  sentTo: NodeId[];
  stored: NodeId[];
}

/**
 * Writes one item to `rf` of `candidates` (in order), replacing each failed target by the
 * next candidate, until rf stored it or the candidates run out.
 */
function replicate(
  candidates: readonly NodeId[],
  rf: number,
  need: number,
  write: (node: NodeId) => Promise<string | null>,
): Replication {
  const stored: NodeId[] = [];
  const errors: string[] = [];
  const sentTo: NodeId[] = [];
  let next = 0;
  let running = 0;
  let quorumDone = false;
  const q = Promise.withResolvers<{ ok: boolean; stored: NodeId[]; errors: string[] }>();
  const s = Promise.withResolvers<NodeId[]>();
  const finishQuorum = (ok: boolean) => {
    if (quorumDone) return;
    quorumDone = true;
    q.resolve({ ok, stored: [...stored], errors: [...errors] });
  };
  const launch = () => {
    while (running + stored.length < rf && next < candidates.length) {
      const node = candidates[next++];
      sentTo.push(node);
      running++;
      write(node).then((error) => {
        running--;
        if (error === null) stored.push(node);
        else errors.push(`${node.slice(0, 8)}: ${error}`);
        if (stored.length >= need) finishQuorum(true);
        launch();
      }, (e) => {
        running--;
        errors.push(`${node.slice(0, 8)}: ${(e as Error).message}`);
        launch();
      });
    }
    if (running === 0) {
      finishQuorum(stored.length >= need);
      s.resolve([...stored]);
    }
  };
  launch();
  return { quorum: q.promise, settled: s.promise, sentTo, stored };
}

export class NodeObjects {
  readonly chunks: ChunkStore;
  readonly manifests: ManifestStore;
  private readonly key: Uint8Array;
  private readonly pending = new Map<number, Pending>();
  private nextReq = 1;
  private readonly windows = new Map<NodeId, PeerWindow>();
  private readonly disk: BoundedSemaphore;
  private readonly reads: BoundedSemaphore;
  private hlc: Hlc = HLC_ZERO;
  private readonly dropLogs = new Map<string, { at: number; suppressed: number }>();
  private readonly background = new Set<Promise<unknown>>();
  /** Peers a request found unreachable, until heard from again (see `request`). */
  private readonly down = new Set<NodeId>();
  private stopped = false;
  /** Largest chunk a frame can carry. */
  readonly maxChunk: number;
  /** The chunk size this node writes: storage.chunkSize, shrunk to fit a frame. */
  readonly chunkSize: number;
  /** Re-replication scans (objects_repair.ts); started by `startRepair`. */
  readonly repair: ObjectsRepair;

  constructor(private readonly p: NodeObjectsParts) {
    this.chunks = new ChunkStore(join(p.dataDir, "chunks"));
    this.manifests = new ManifestStore(join(p.dataDir, "manifests"));
    this.key = deriveObjectKey(p.isolationKey);
    this.disk = new BoundedSemaphore(p.config.maxConcurrentDiskWrites, p.config.maxQueuedDiskOps);
    this.reads = new BoundedSemaphore(p.config.maxConcurrentDiskReads, p.config.maxQueuedDiskOps);
    this.maxChunk = maxChunkBytes(p.maxFrameBytes);
    this.chunkSize = Math.min(p.config.chunkSize, Math.floor(this.maxChunk / 4096) * 4096);
    const m = p.metrics;
    for (
      const n of [
        "mycelium_storage_chunk_writes_total",
        "mycelium_storage_chunk_reads_total",
        "mycelium_storage_corrupt_chunks_total",
      ]
    ) m.inc(n, 0);
    for (const outcome of ["ok", "failed"]) {
      m.inc("mycelium_storage_puts_total", 0, { outcome });
    }
    for (const outcome of ["ok", "not_found", "failed"]) {
      m.inc("mycelium_storage_gets_total", 0, { outcome });
      m.inc("mycelium_storage_deletes_total", 0, { outcome });
    }
    this.repair = new ObjectsRepair({
      self: p.self,
      config: p.config,
      metrics: p.metrics,
      log: p.log,
      liveNodes: () => this.storageNodes(false),
      manifests: () => this.manifests.list(),
      storeManifest: async (record) => {
        this.hlc = hlcReceive(this.hlc, clampHlc(record.version.hlc), Date.now());
        await this.manifests.put(record);
      },
      have: (node, query) => this.haveFrom(node, query),
      getManifest: async (node, objectId) => {
        const r = await this.getManifestFrom(node, objectId);
        return r.kind === "found" ? r.record : null;
      },
      putManifest: (node, record) => this.putManifestTo(node, record),
      getChunk: async (node, id, want) => (await this.getChunkFrom(node, id, want)).bytes,
      putChunk: (node, id, bytes, object) => this.putChunkTo(node, id, bytes, object),
      releaseChunks: async (record, only) => {
        await this.releaseChunks(record, only);
      },
      isStopped: () => this.stopped,
    });
  }

  /** Starts the periodic repair scans (storage.repair). */
  startRepair(): void {
    this.repair.start();
  }

  /** SWIM saw a member change state: a death schedules a repair scan. */
  memberChanged(id: NodeId, state: "alive" | "suspect" | "dead" | "left"): void {
    this.repair.memberChanged(id, state);
  }

  /** Opens the stores (removing temporary files a crash left) and counts what is stored. */
  async open(): Promise<void> {
    const c = await this.chunks.open();
    const m = await this.manifests.open();
    this.p.log.log("info", "storage_opened", {
      chunks: this.chunks.count,
      bytes: this.chunks.bytes,
      manifests: this.manifests.count,
      removedTempFiles: c.removedTemp + m.removedTemp,
      chunkSize: this.chunkSize,
      replicationFactor: this.p.config.replicationFactor,
    });
    if (this.chunkSize < this.p.config.chunkSize) {
      this.p.log.log(this.chunkSize > 0 ? "warn" : "error", "storage_chunk_shrunk", {
        configured: this.p.config.chunkSize,
        chunkSize: this.chunkSize,
        reason: `a chunk travels in one stream frame of at most streams.maxFrameBytes ` +
          `(${this.p.maxFrameBytes}) bytes`,
      });
    }
    this.refreshGauges();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.repair.stop();
    for (const p of [...this.pending.values()]) p.done({ t: "stopped" });
    this.pending.clear();
  }

  /** Waits for background replica writes (tests, graceful stop). */
  async drain(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  summary() {
    return {
      chunks: this.chunks.count,
      bytes: this.chunks.bytes,
      manifests: this.manifests.count,
      pendingRequests: this.pending.size,
      repairScans: this.repair.scans,
    };
  }

  refreshGauges(): void {
    const m = this.p.metrics;
    m.set("mycelium_storage_chunks_stored", this.chunks.count);
    m.set("mycelium_storage_bytes_stored", this.chunks.bytes);
    m.set("mycelium_storage_manifests_stored", this.manifests.count);
    m.set("mycelium_storage_pending_requests", this.pending.size);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.background.add(p);
    p.finally(() => this.background.delete(p)).catch(() => {});
    return p;
  }

  // ---- placement ----

  /** Self and the members as placement nodes (trust 1.0, weight 1: see the module comment). */
  private storageNodes(includeSuspect: boolean): StorageNode[] {
    const level = this.p.config.failureDomain;
    const self: StorageNode = {
      id: this.p.self,
      tier: this.p.tier,
      trust: 1,
      weight: 1,
      domain: domainOf(this.p.self, this.p.config.labels, level),
    };
    const out = [self];
    for (const peer of this.p.peers()) {
      if (peer.id === this.p.self) continue;
      if (peer.state !== "alive" && !includeSuspect) continue;
      out.push({
        id: peer.id,
        tier: peer.tier,
        trust: 1,
        weight: 1,
        domain: domainOf(peer.id, peer.labels, level),
      });
    }
    return out;
  }

  /** Every eligible node in placement order for `key` (one per domain, then the rest). */
  private placementOrder(key: string, cls: StorageClass, nodes: StorageNode[]): NodeId[] {
    return placeReplicas(key, cls, nodes, { replicationFactor: nodes.length });
  }

  // ---- write ----

  async put(objectId: string, data: Uint8Array, opts: PutOptions = {}): Promise<PutResult> {
    const t0 = performance.now();
    const cfg = this.p.config;
    const cls = opts.class ?? cfg.defaultClass;
    const level = opts.consistency ?? cfg.defaultConsistency;
    try {
      const r = await this.putNow(objectId, data, cls, level);
      this.p.metrics.inc("mycelium_storage_puts_total", 1, { outcome: "ok" });
      this.p.metrics.inc("mycelium_storage_put_bytes_total", data.length);
      this.p.metrics.observe("mycelium_storage_put_seconds", (performance.now() - t0) / 1000);
      return r;
    } catch (e) {
      this.p.metrics.inc("mycelium_storage_puts_total", 1, { outcome: "failed" });
      this.p.log.log("warn", "storage_put_failed", { object: objectId, error: e });
      throw e;
    }
  }

  private async putNow(
    objectId: string,
    data: Uint8Array,
    cls: StorageClass,
    level: Consistency,
  ): Promise<PutResult> {
    const cfg = this.p.config;
    if (this.stopped) throw new ObjectsError(503, "the node is stopping");
    if (data.length > cfg.maxObjectBytes) {
      throw new ObjectsError(413, `body: ${data.length} bytes over storage.maxObjectBytes`);
    }
    if (this.chunkSize < 1) {
      throw new ObjectsError(
        503,
        `streams.maxFrameBytes (${this.p.maxFrameBytes}) is too small for object chunks`,
      );
    }
    const encrypted = requiresEncryption(cls);
    const body = encrypted ? encryptObject(this.key, objectId, cls, data) : data;
    let split: { manifest: Manifest; chunks: Chunk[] };
    try {
      split = splitNative(body, {
        objectId,
        class: cls,
        consistency: level,
        encrypted,
        chunkSize: this.chunkSize,
      });
    } catch (e) {
      throw new ObjectsError(400, (e as Error).message);
    }
    const { manifest, chunks } = split;
    const rf = cfg.replicationFactor;
    const need = writeQuorum(level, rf);
    const nodes = this.storageNodes(false);
    const eligible = nodes.filter((n) => eligibleFor(cls, n));
    const domains = new Set(eligible.map((n) => n.domain)).size;
    if (domains < need) {
      const why = nodes.filter((n) => !eligibleFor(cls, n)).map((n) =>
        `${n.id.slice(0, 8)}: ${ineligibility(cls, n)}`
      );
      throw new ObjectsError(
        503,
        `class: ${cls} objects need ${need} live eligible nodes on distinct failure domains ` +
          `for a ${level} write, ${domains} available` + (why.length ? ` (${why.join("; ")})` : ""),
      );
    }

    // Distinct chunks (a repeated chunk is written once), each to its placement targets.
    const byId = new Map<
      string,
      { bytes: Uint8Array; indexes: number[]; r: Replication | null }
    >();
    for (const c of chunks) {
      const e = byId.get(c.id);
      if (e) e.indexes.push(c.index);
      else byId.set(c.id, { bytes: c.bytes, indexes: [c.index], r: null });
    }
    const sentTo: NodeId[][] = new Array(chunks.length);
    await runWindow([...byId], cfg.writeWindowChunks, async ([id, c]) => {
      const order = this.placementOrder(id, cls, nodes);
      const r = c.r = replicate(
        order,
        rf,
        need,
        (node) => this.putChunkTo(node, id, c.bytes, objectId),
      );
      for (const i of c.indexes) sentTo[i] = r.sentTo;
      this.track(r.settled);
      const q = await r.quorum;
      if (!q.ok) {
        throw new ObjectsError(
          503,
          `chunk ${c.indexes[0]} (${id.slice(0, 12)}): stored on ${q.stored.length} of the ` +
            `${need} replicas a ${level} write needs (${q.errors.join("; ") || "no candidates"})`,
        );
      }
    });

    this.hlc = hlcTick(this.hlc, Date.now());
    const record: ManifestRecord = {
      manifest,
      version: { hlc: this.hlc, writer: this.p.self },
      plainSize: data.length,
      replicas: sentTo.map((s) => [...s]),
    };
    const morder = this.placementOrder(manifestKey(objectId), cls, nodes);
    const mr = replicate(morder, rf, need, (node) => this.putManifestTo(node, record));
    this.track(mr.settled);
    const mq = await mr.quorum;
    if (!mq.ok) {
      throw new ObjectsError(
        503,
        `manifest: stored on ${mq.stored.length} of the ${need} replicas a ${level} write ` +
          `needs (${mq.errors.join("; ")})`,
      );
    }
    const storedAtAck: number[] = new Array(chunks.length).fill(0);
    for (const c of byId.values()) for (const i of c.indexes) storedAtAck[i] = c.r!.stored.length;
    return {
      id: objectId,
      size: data.length,
      chunks: chunks.length,
      chunkSize: manifest.chunkSize,
      class: cls,
      consistency: level,
      encrypted,
      version: record.version,
      replicas: record.replicas.map((r) => [...r]),
      stored: storedAtAck,
      manifestReplicas: [...mr.sentTo],
    };
  }

  /**
   * Stores a chunk on `node`, referenced by `object`; null when it acknowledged (fsync'd),
   * else why not.
   */
  private async putChunkTo(
    node: NodeId,
    id: string,
    bytes: Uint8Array,
    object: string,
  ): Promise<string | null> {
    if (node === this.p.self) {
      const r = await this.storeChunk(id, bytes, true, object);
      return r === null ? null : r.error;
    }
    const o = await this.request(
      node,
      { t: "put-chunk", chunk: id, bytes, object },
      bytes.length,
    );
    if (o.t === "ok") return null;
    return this.failure("put_chunk", o);
  }

  private async putManifestTo(node: NodeId, record: ManifestRecord): Promise<string | null> {
    if (node === this.p.self) {
      try {
        await this.manifests.put(record);
        return null;
      } catch (e) {
        return this.failure("put_manifest", { t: "error", req: 0, error: errText(e), busy: false });
      }
    }
    const o = await this.request(node, { t: "put-manifest", record }, 4096);
    if (o.t === "ok") return null;
    return this.failure("put_manifest", o);
  }

  /** Counts a failed request; returns its description. */
  private failure(op: string, o: Outcome): string {
    let reason: string = o.t;
    let text: string = o.t;
    if (o.t === "error") {
      reason = o.busy ? "busy" : "error";
      text = o.error;
    } else if (o.t === "not-found") {
      reason = "not_found";
      text = `not found${o.detail ? ` (${o.detail})` : ""}`;
    } else if (o.t !== "timeout" && o.t !== "unreachable" && o.t !== "stopped") {
      reason = "unexpected";
      text = `unexpected reply ${o.t}`;
    }
    this.p.metrics.inc("mycelium_storage_failures_total", 1, { op, reason });
    return text;
  }

  /** Stores a chunk here (bounded disk concurrency); null, or the error to report. */
  private async storeChunk(
    id: string,
    bytes: Uint8Array,
    verified: boolean,
    object?: string,
  ): Promise<{ error: string; busy: boolean } | null> {
    if (!verified && sha256Hex(bytes) !== id) {
      return { error: "checksum mismatch: the bytes do not hash to the chunk id", busy: false };
    }
    const slot = this.disk.acquire();
    if (slot === null) return { error: "disk write queue full", busy: true };
    const release = await slot;
    try {
      const r = await this.chunks.put(id, bytes, true, object);
      this.p.metrics.inc("mycelium_storage_chunk_writes_total", 1);
      if (r === "written") this.p.metrics.inc("mycelium_storage_written_bytes_total", bytes.length);
      return null;
    } catch (e) {
      this.p.log.log("error", "storage_chunk_write_failed", { chunk: id, error: e });
      return { error: `write failed: ${errText(e)}`, busy: false };
    } finally {
      release();
    }
  }

  // ---- read ----

  /** The object's record and bytes (plaintext); ObjectsError 404 when no node has it. */
  async get(
    objectId: string,
    consistency?: Consistency,
  ): Promise<{ record: ManifestRecord; data: Uint8Array }> {
    const t0 = performance.now();
    try {
      const record = await this.findManifest(objectId, consistency);
      const body = await this.fetchObject(record);
      let data = body;
      const m = record.manifest;
      if (m.encrypted) {
        try {
          data = decryptObject(this.key, objectId, m.class, body);
        } catch (e) {
          throw new ObjectsError(502, `decryption failed: ${errText(e)}`);
        }
      }
      this.p.metrics.inc("mycelium_storage_gets_total", 1, { outcome: "ok" });
      this.p.metrics.inc("mycelium_storage_get_bytes_total", data.length);
      this.p.metrics.observe("mycelium_storage_get_seconds", (performance.now() - t0) / 1000);
      return { record, data };
    } catch (e) {
      const notFound = e instanceof ObjectsError && e.status === 404;
      this.p.metrics.inc("mycelium_storage_gets_total", 1, {
        outcome: notFound ? "not_found" : "failed",
      });
      if (!notFound) this.p.log.log("warn", "storage_get_failed", { object: objectId, error: e });
      throw e;
    }
  }

  /**
   * The newest manifest record of the object. First the manifest's placement targets for
   * every class (the reader does not know the class), then every other live member.
   * Strong: the newest among at least a read quorum of answers; Eventual: the first found.
   */
  async findManifest(objectId: string, consistency?: Consistency): Promise<ManifestRecord> {
    const r = await this.findRecord(objectId, consistency);
    if (r.deleted) throw new ObjectsError(404, `no object ${objectId} (deleted)`);
    return r;
  }

  /** `findManifest`, tombstones included (the newest record may be one). */
  private async findRecord(objectId: string, consistency?: Consistency): Promise<ManifestRecord> {
    const level = consistency ?? this.p.config.defaultConsistency;
    const rf = this.p.config.replicationFactor;
    const need = readQuorum(level, rf);
    const nodes = this.storageNodes(true);
    const key = manifestKey(objectId);
    const up = this.aliveSet();
    const alive = nodes.filter((n) => up.has(n.id));
    const first: NodeId[] = [];
    for (const cls of STORAGE_CLASS_NAMES) {
      for (const id of placeReplicas(key, cls, alive, { replicationFactor: rf })) {
        if (!first.includes(id)) first.push(id);
      }
    }
    const rest = rankNodes(key, nodes.filter((n) => !first.includes(n.id)))
      .slice(0, MAX_EXTRA_MANIFEST_PROBES)
      .map((r) => r.node.id);

    const responses: ReadResponse[] = [];
    const found = new Map<NodeId, ManifestRecord>();
    const errors: string[] = [];
    let outstanding = 0;
    let wake: (() => void) | null = null;
    const ask = (ids: NodeId[]) => {
      for (const node of ids) {
        outstanding++;
        this.getManifestFrom(node, objectId).then((r) => {
          outstanding--;
          if (r.kind === "found") {
            found.set(node, r.record);
            responses.push({ replica: node, version: r.record.version, verified: true });
          } else if (r.kind === "missing") {
            responses.push({ replica: node, version: null, verified: true });
          } else errors.push(`${node.slice(0, 8)}: ${r.error}`);
          wake?.();
        });
      }
    };
    const settle = (done: () => boolean) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (done() || outstanding === 0) {
            wake = null;
            resolve();
          }
        };
        wake = check;
        check();
      });
    const enough = () =>
      level === "eventual" ? found.size > 0 : found.size > 0 && responses.length >= need;
    const newest = (): ManifestRecord | null => {
      const o = readOutcome(level, rf, responses);
      if (o.ok && o.newest.version !== null) return found.get(o.newest.replica)!;
      // Fewer answers than a quorum, or the quorum's newest is "none": the newest found.
      let best: ManifestRecord | null = null;
      for (const r of found.values()) {
        if (!best || compareVersions(r.version, best.version) > 0) best = r;
      }
      return best;
    };

    ask(first);
    // The rest are asked when the first ones did not do (or after hedgeMs without enough).
    let hedge: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      settle(enough),
      new Promise<void>((r) => hedge = setTimeout(r, Math.max(1, this.p.config.hedgeMs))),
    ]);
    clearTimeout(hedge);
    if (!enough()) {
      ask(rest);
      await settle(enough);
    }
    const best = newest();
    if (best) {
      this.hlc = hlcReceive(this.hlc, clampHlc(best.version.hlc), Date.now());
      return best;
    }
    if (responses.length < need || responses.length === 0) {
      throw new ObjectsError(
        503,
        `manifest of ${objectId}: ${responses.length} of the ${need} answers a ${level} read ` +
          `needs (${errors.join("; ") || "no members"})`,
      );
    }
    throw new ObjectsError(404, `no object ${objectId}`);
  }

  // ---- delete ----

  /**
   * Deletes an object: a tombstone (the newest record with a newer version and `deleted`)
   * goes to the manifest's placement targets, acknowledged by a write quorum of the object's
   * consistency (or `consistency`); then every live member (and this node) drops the object's
   * references to its chunks, deleting the chunks no other object references
   * (objects_store.ts). ObjectsError 404 when there is no such object (or it is deleted).
   */
  async delete(objectId: string, consistency?: Consistency): Promise<DeleteResult> {
    try {
      const r = await this.deleteNow(objectId, consistency);
      this.p.metrics.inc("mycelium_storage_deletes_total", 1, { outcome: "ok" });
      return r;
    } catch (e) {
      const notFound = e instanceof ObjectsError && e.status === 404;
      this.p.metrics.inc("mycelium_storage_deletes_total", 1, {
        outcome: notFound ? "not_found" : "failed",
      });
      if (!notFound) {
        this.p.log.log("warn", "storage_delete_failed", { object: objectId, error: e });
      }
      throw e;
    }
  }

  private async deleteNow(objectId: string, consistency?: Consistency): Promise<DeleteResult> {
    if (this.stopped) throw new ObjectsError(503, "the node is stopping");
    const record = await this.findRecord(objectId, consistency);
    if (record.deleted) throw new ObjectsError(404, `no object ${objectId} (deleted)`);
    const level = consistency ?? record.manifest.consistency;
    const rf = this.p.config.replicationFactor;
    const need = writeQuorum(level, rf);
    this.hlc = hlcTick(this.hlc, Date.now());
    const tomb: ManifestRecord = {
      ...record,
      version: { hlc: this.hlc, writer: this.p.self },
      deleted: true,
    };
    const nodes = this.storageNodes(false);
    const morder = this.placementOrder(manifestKey(objectId), record.manifest.class, nodes);
    const mr = replicate(morder, rf, need, (node) => this.putManifestTo(node, tomb));
    this.track(mr.settled);
    const mq = await mr.quorum;
    if (!mq.ok) {
      throw new ObjectsError(
        503,
        `tombstone: stored on ${mq.stored.length} of the ${need} replicas a ${level} delete ` +
          `needs (${mq.errors.join("; ")})`,
      );
    }
    const released = await this.releaseChunks(record);
    this.p.log.log("info", "storage_object_deleted", {
      object: objectId,
      chunks: new Set(record.manifest.chunks).size,
      chunksDeletedHere: released.deletedHere,
      membersAsked: released.asked,
      membersFailed: released.failed,
    });
    return {
      id: objectId,
      deleted: true,
      version: tomb.version,
      manifestReplicas: [...mr.sentTo],
      chunks: record.manifest.chunks.length,
    };
  }

  /**
   * Drops `record`'s object's references to its chunks on this node and every live member
   * (or only on `only`), in batches; a chunk left without references is deleted by its
   * holder. Best effort: a member that does not answer keeps its copies (a leak, never a
   * loss; the tombstone's coordinator asks again when it comes back, objects_repair.ts).
   */
  async releaseChunks(
    record: ManifestRecord,
    only?: ReadonlySet<NodeId>,
  ): Promise<{ asked: number; failed: number; deletedHere: number }> {
    const object = record.manifest.objectId;
    const chunks = [...new Set(record.manifest.chunks)];
    const out = { asked: 0, failed: 0, deletedHere: 0 };
    if (chunks.length === 0) return out;
    const targets = only ? [...only] : [...this.aliveSet()];
    await runWindow(targets, 4, async (node) => {
      out.asked++;
      for (const b of batches(chunks, 2048)) {
        if (node === this.p.self) {
          for (const c of b) {
            if ((await this.chunks.unref(c, object)) === "deleted") out.deletedHere++;
          }
          continue;
        }
        const o = await this.request(node, { t: "unref", unref: { object, chunks: b } }, 4096);
        if (o.t !== "ok") {
          out.failed++;
          this.p.log.log("warn", "storage_unref_failed", {
            object,
            peer: node,
            error: this.failure("unref", o),
          });
          return;
        }
      }
    });
    return out;
  }

  // ---- repair queries ----

  /** The answer to a `have` query from this node's stores (see objects_repair.ts). */
  private async localHave(q: HaveQuery): Promise<HaveAnswer> {
    const manifests: Array<{ version: ManifestRecord["version"]; deleted: boolean } | null> = [];
    for (const id of q.manifests) {
      const r = await this.manifests.get(id);
      manifests.push(
        r.ok ? { version: r.record.version, deleted: r.record.deleted === true } : null,
      );
    }
    const refs: string[] = [];
    for (const g of q.refs) {
      let bits = "";
      for (const c of g.chunks) bits += (await this.chunks.holds(c, g.object)) ? "1" : "0";
      refs.push(bits);
    }
    return { manifests, refs };
  }

  private async haveFrom(node: NodeId, query: HaveQuery): Promise<HaveAnswer | null> {
    if (node === this.p.self) return await this.localHave(query);
    const weight = 1024 + JSON.stringify(query).length;
    const o = await this.request(node, { t: "have", query }, weight);
    if (o.t !== "holding") {
      this.failure("have", o);
      return null;
    }
    const a = o.answer;
    const ok = a.manifests.length === query.manifests.length &&
      a.refs.length === query.refs.length &&
      a.refs.every((bits, i) => bits.length === query.refs[i].chunks.length);
    if (!ok) {
      this.p.metrics.inc("mycelium_storage_failures_total", 1, { op: "have", reason: "bad" });
      return null;
    }
    return a;
  }

  private aliveSet(): Set<NodeId> {
    const out = new Set<NodeId>([this.p.self]);
    for (const p of this.p.peers()) if (p.state === "alive") out.add(p.id);
    return out;
  }

  private async getManifestFrom(
    node: NodeId,
    objectId: string,
  ): Promise<
    { kind: "found"; record: ManifestRecord } | { kind: "missing" } | {
      kind: "error";
      error: string;
    }
  > {
    if (node === this.p.self) {
      try {
        const r = await this.manifests.get(objectId);
        return r.ok ? { kind: "found", record: r.record } : { kind: "missing" };
      } catch (e) {
        return { kind: "error", error: errText(e) };
      }
    }
    const o = await this.request(node, { t: "get-manifest", objectId }, 4096);
    if (o.t === "manifest") {
      if (o.record.manifest.objectId === objectId) return { kind: "found", record: o.record };
      this.p.metrics.inc("mycelium_storage_failures_total", 1, {
        op: "get_manifest",
        reason: "bad",
      });
      return { kind: "error", error: "answered with another object's manifest" };
    }
    if (o.t === "not-found") return { kind: "missing" };
    return { kind: "error", error: this.failure("get_manifest", o) };
  }

  /** Fetches and verifies every chunk; the stored (maybe encrypted) object's bytes. */
  private async fetchObject(record: ManifestRecord): Promise<Uint8Array> {
    const m = record.manifest;
    const out = new Uint8Array(m.size);
    const byId = new Map<string, number[]>();
    m.chunks.forEach((id, i) => {
      const e = byId.get(id);
      if (e) e.push(i);
      else byId.set(id, [i]);
    });
    const nodes = this.storageNodes(true);
    const alive = this.aliveSet();
    await runWindow([...byId], this.p.config.readWindowChunks, async ([id, indexes], k) => {
      const i0 = indexes[0];
      const want = Math.min(m.chunkSize, m.size - i0 * m.chunkSize);
      const sources = this.chunkSources(id, record.replicas[i0], k, m.class, nodes, alive);
      const r = await this.fetchChunk(id, want, sources);
      if (!r.bytes) {
        throw new ObjectsError(
          503,
          `chunk ${i0} (${id.slice(0, 12)}): no replica returned it intact (${
            r.errors.join("; ") || "no sources"
          })`,
        );
      }
      for (const i of indexes) out.set(r.bytes, i * m.chunkSize);
      if (r.repairLocal) {
        this.track(this.storeChunk(id, r.bytes, true)).then((e) => {
          if (!e) this.p.log.log("info", "storage_chunk_repaired", { chunk: id });
        });
      }
    });
    return out;
  }

  /**
   * Where to fetch a chunk from, in order: this node, the recorded holders (rotated by
   * `k` so consecutive chunks start at different replicas), the chunk's current placement,
   * then every other member.
   */
  private chunkSources(
    id: string,
    recorded: readonly NodeId[],
    k: number,
    cls: StorageClass,
    nodes: StorageNode[],
    alive: ReadonlySet<NodeId>,
  ): NodeId[] {
    const out: NodeId[] = [this.p.self];
    const add = (n: NodeId) => {
      if (!out.includes(n)) out.push(n);
    };
    const known = new Set(nodes.map((n) => n.id));
    const holders = recorded.filter((n) => n !== this.p.self && known.has(n));
    const up = holders.filter((n) => alive.has(n) && !this.down.has(n));
    const rot = up.length > 0 ? k % up.length : 0;
    for (const n of [...up.slice(rot), ...up.slice(0, rot)]) add(n);
    for (const n of holders) if (!this.down.has(n)) add(n); // then suspect holders
    const eligible = nodes.filter((n) => eligibleFor(cls, n));
    for (const n of placeReplicas(id, cls, eligible, { replicationFactor: eligible.length })) {
      if (!this.down.has(n)) add(n);
    }
    for (const n of nodes) if (!this.down.has(n.id)) add(n.id);
    for (const n of holders) add(n); // unreachable ones last
    for (const n of nodes) add(n.id);
    return out;
  }

  /** The first verified copy from `sources` (see the module comment). */
  private fetchChunk(
    id: string,
    want: number,
    sources: readonly NodeId[],
  ): Promise<{ bytes: Uint8Array | null; errors: string[]; repairLocal: boolean }> {
    return new Promise((resolve) => {
      const errors: string[] = [];
      let next = 0;
      let running = 0;
      let done = false;
      let repairLocal = false;
      const hedgeMs = this.p.config.hedgeMs;
      const launch = () => {
        if (done) return;
        if (next >= sources.length) {
          if (running === 0) {
            done = true;
            resolve({ bytes: null, errors, repairLocal: false });
          }
          return;
        }
        const node = sources[next++];
        running++;
        let hedge: ReturnType<typeof setTimeout> | undefined = node !== this.p.self && hedgeMs > 0
          ? setTimeout(() => {
            hedge = undefined;
            launch();
          }, hedgeMs)
          : undefined;
        this.getChunkFrom(node, id, want).then((r) => {
          running--;
          if (hedge !== undefined) clearTimeout(hedge);
          const hedged = hedge === undefined && node !== this.p.self && hedgeMs > 0;
          if (done) return;
          if (r.bytes) {
            done = true;
            resolve({ bytes: r.bytes, errors, repairLocal });
            return;
          }
          if (node === this.p.self) {
            if (r.corrupt) repairLocal = true;
            if (r.corrupt) errors.push(`${node.slice(0, 8)} (here): ${r.error}`);
          } else errors.push(`${node.slice(0, 8)}: ${r.error}`);
          // The hedge already started the next source; otherwise start it now.
          if (!hedged || running === 0) launch();
        });
      };
      launch();
    });
  }

  private async getChunkFrom(
    node: NodeId,
    id: string,
    want: number,
  ): Promise<{ bytes: Uint8Array | null; error: string; corrupt: boolean }> {
    const t0 = performance.now();
    if (node === this.p.self) {
      const r = await this.readLocal(id);
      if (r.ok && r.bytes.length !== want) {
        return { bytes: null, error: `${r.bytes.length} bytes, expected ${want}`, corrupt: false };
      }
      if (r.ok) return { bytes: r.bytes, error: "", corrupt: false };
      return { bytes: null, error: r.detail, corrupt: r.kind === "corrupt" };
    }
    const o = await this.request(node, { t: "get-chunk", chunk: id }, want);
    if (o.t === "chunk") {
      let error = "";
      if (o.chunk !== id) error = "answered for another chunk";
      else if (o.bytes.length !== want) error = `${o.bytes.length} bytes, expected ${want}`;
      else if (sha256Hex(o.bytes) !== id) error = "checksum mismatch";
      if (error === "") {
        this.p.metrics.observe("mycelium_storage_fetch_seconds", (performance.now() - t0) / 1000);
        return { bytes: o.bytes, error, corrupt: false };
      }
      this.p.metrics.inc("mycelium_storage_failures_total", 1, { op: "get_chunk", reason: "bad" });
      return { bytes: null, error, corrupt: false };
    }
    return { bytes: null, error: this.failure("get_chunk", o), corrupt: false };
  }

  /** A chunk from this node's disk, verified (bounded read concurrency). */
  private async readLocal(id: string): Promise<ChunkRead> {
    const slot = this.reads.acquire();
    if (slot === null) return { ok: false, kind: "busy", detail: "disk read queue full" };
    const release = await slot;
    let r: ChunkRead;
    try {
      r = await this.chunks.get(id);
    } finally {
      release();
    }
    this.p.metrics.inc("mycelium_storage_chunk_reads_total", 1);
    if (!r.ok && r.kind === "corrupt") {
      this.p.metrics.inc("mycelium_storage_corrupt_chunks_total", 1);
      this.p.log.log("warn", "storage_chunk_corrupt", { chunk: id, detail: r.detail });
    }
    return r;
  }

  // ---- wire ----

  /** One request to a peer, within the peer's window and the request timeout. */
  private async request(
    peer: NodeId,
    msg: DistributiveOmit<ObjectsRequest, "req">,
    weight: number,
  ): Promise<Outcome> {
    if (this.stopped) return { t: "stopped" };
    const timeoutMs = this.p.config.requestTimeoutMs;
    const deadline = performance.now() + timeoutMs;
    const win = this.window(peer);
    if (!(await win.acquire(weight, timeoutMs))) return { t: "timeout" };
    const req = this.nextReq++;
    let frame: Uint8Array;
    try {
      frame = this.frame({ ...msg, req } as ObjectsMessage);
    } catch (e) {
      win.release(weight);
      return { t: "error", req, error: errText(e), busy: false };
    }
    return new Promise<Outcome>((resolve) => {
      const done = (o: Outcome) => {
        if (!this.pending.has(req)) return;
        clearTimeout(timer);
        this.pending.delete(req);
        win.release(weight);
        resolve(o);
      };
      const timer = setTimeout(
        () => done({ t: "timeout" }),
        Math.max(1, deadline - performance.now()),
      );
      this.pending.set(req, { peer, done });
      // A stream opens on first use, and reconnects after a drop: while it is not up, try
      // again every 25 ms for up to CONNECT_WAIT_MS (within the request's deadline). A peer
      // found unreachable that way fails at once until it is heard from or a send succeeds.
      const giveUp = Math.min(deadline, performance.now() + CONNECT_WAIT_MS);
      const attempt = () => {
        if (!this.pending.has(req)) return;
        let sent = false;
        try {
          sent = this.p.sendFrame(peer, frame);
        } catch (e) {
          this.p.log.log("error", "storage_send_failed", { peer, error: e });
          return done({ t: "unreachable" });
        }
        if (sent) {
          this.down.delete(peer);
          return;
        }
        if (this.stopped || this.down.has(peer) || performance.now() + 25 > giveUp) {
          this.down.add(peer);
          return done({ t: "unreachable" });
        }
        setTimeout(attempt, 25);
      };
      attempt();
    });
  }

  private window(peer: NodeId): PeerWindow {
    let w = this.windows.get(peer);
    if (!w) {
      w = new PeerWindow(this.p.config.peerWindowBytes);
      this.windows.set(peer, w);
    }
    return w;
  }

  private frame(msg: ObjectsMessage): Uint8Array {
    let frame: Uint8Array = new Uint8Array(0);
    encodeObjects(msg, (n) => {
      if (n + 1 > this.p.maxFrameBytes) {
        throw new RangeError(`a ${msg.t} frame of ${n + 1} bytes over streams.maxFrameBytes`);
      }
      const f = allocFrame(FRAME_OBJECTS, n);
      frame = f.frame;
      return f.body;
    });
    return frame;
  }

  /**
   * The peer's stream to us closed (it replies over that stream): requests awaiting its
   * answers fail now rather than at their timeout (a replacement replica or the next source
   * takes over at once). A late answer is then dropped as for an unknown request.
   */
  peerGone(peer: NodeId): void {
    let failed = 0;
    for (const p of [...this.pending.values()]) {
      if (p.peer !== peer) continue;
      p.done({ t: "unreachable" });
      failed++;
    }
    if (failed > 0) this.p.log.log("info", "storage_peer_gone", { peer, failedRequests: failed });
  }

  /** A FRAME_OBJECTS frame from a peer (its identity from its TLS certificate). */
  onFrame(from: NodeId, body: Uint8Array): void {
    this.down.delete(from);
    let msg: ObjectsMessage;
    try {
      msg = decodeObjects(body);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      return this.drop(from, "decode", e.message);
    }
    if (isRequest(msg)) {
      this.serve(from, msg).then(
        (reply) => this.reply(from, reply),
        (e) => {
          this.p.log.log("error", "storage_request_failed", { peer: from, t: msg.t, error: e });
          this.reply(from, { t: "error", req: msg.req, error: errText(e), busy: false });
        },
      );
      return;
    }
    const p = this.pending.get(msg.req);
    if (!p) return this.drop(from, "unknown-request", `${msg.t} for request ${msg.req}`);
    if (p.peer !== from) return this.drop(from, "wrong-peer", `${msg.t} for request ${msg.req}`);
    p.done(msg);
  }

  private reply(to: NodeId, msg: ObjectsReply): void {
    if (this.stopped) return;
    let frame: Uint8Array;
    try {
      frame = this.frame(msg);
    } catch (e) {
      frame = this.frame({ t: "error", req: msg.req, error: errText(e), busy: false });
    }
    let sent = false;
    try {
      sent = this.p.sendFrame(to, frame);
    } catch (e) {
      this.p.log.log("error", "storage_send_failed", { peer: to, error: e });
    }
    if (!sent) this.p.metrics.inc("mycelium_storage_unsent_total");
  }

  private async serve(from: NodeId, msg: ObjectsRequest): Promise<ObjectsReply> {
    const req = msg.req;
    switch (msg.t) {
      case "put-chunk": {
        const e = await this.storeChunk(msg.chunk, msg.bytes, false, msg.object);
        return e === null ? { t: "ok", req } : { t: "error", req, ...e };
      }
      case "get-chunk": {
        const r = await this.readLocal(msg.chunk);
        if (r.ok) return { t: "chunk", req, chunk: msg.chunk, bytes: r.bytes };
        if (r.kind === "busy") return { t: "error", req, error: r.detail, busy: true };
        return { t: "not-found", req, detail: r.kind === "corrupt" ? r.detail : undefined };
      }
      case "put-manifest": {
        this.hlc = hlcReceive(this.hlc, clampHlc(msg.record.version.hlc), Date.now());
        await this.manifests.put(msg.record);
        return { t: "ok", req };
      }
      case "get-manifest": {
        const r = await this.manifests.get(msg.objectId);
        if (r.ok) return { t: "manifest", req, record: r.record };
        if (r.kind === "corrupt") {
          this.p.log.log("warn", "storage_manifest_corrupt", {
            object: msg.objectId,
            peer: from,
            detail: r.detail,
          });
        }
        return { t: "not-found", req, detail: r.kind === "corrupt" ? r.detail : undefined };
      }
      case "have":
        return { t: "holding", req, answer: await this.localHave(msg.query) };
      case "unref":
        for (const c of msg.unref.chunks) await this.chunks.unref(c, msg.unref.object);
        return { t: "ok", req };
    }
  }

  /** Counts every dropped frame; logs at most one line per reason and second. */
  private drop(from: NodeId, reason: string, detail: string): void {
    this.p.metrics.inc("mycelium_storage_dropped_frames_total", 1, { reason });
    const now = performance.now();
    const last = this.dropLogs.get(reason);
    if (last && now - last.at < 1000) {
      last.suppressed++;
      return;
    }
    this.p.log.log(reason === "unknown-request" ? "debug" : "warn", "storage_frame_dropped", {
      from,
      reason,
      detail,
      suppressed: last?.suppressed ?? 0,
    });
    this.dropLogs.set(reason, { at: now, suppressed: 0 });
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Remote clock readings more than a minute ahead are not followed (skew bound). */
function clampHlc(h: Hlc): Hlc {
  const limit = Date.now() + 60_000;
  return h.ms > limit ? { ms: limit, c: 0 } : h;
}

function errText(e: unknown): string {
  if (e instanceof MyceliumError || e instanceof Error) return e.message;
  return String(e);
}
