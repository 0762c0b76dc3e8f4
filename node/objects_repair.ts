/**
 * Re-replication of object storage on a real node (DESIGN.md section 5, Storage: "re-replication
 * after failure"), and the propagation of deletes (tombstones).
 *
 * A repair scan runs every `storage.repair.intervalMs`, and `storage.repair.afterDeathMs` after
 * SWIM declares a member dead or left (deaths in between share one scan, so a flapping member
 * causes one scan, not one per flap). A scan walks the manifests this node holds:
 *
 * 1. Manifests. For each record, the live eligible nodes in rendezvous order for its key
 *    ("object:<id>", the writer's placement) are asked, the first rf + `extraProbes` of them,
 *    which version they hold (`have`). A newer version found elsewhere (an overwrite, or a
 *    tombstone) is fetched and stored here first. The holders of the newest version are the
 *    replicas; the target set and the copies come from `planRepair` (core/storage/repair.ts),
 *    which keeps every live holder and adds the best-ranked missing nodes. The coordinator of
 *    the object is the first node in rendezvous order holding the newest version
 *    (`decideManifest`): every holder computes the same one from the same answers, and only
 *    it copies (`put-manifest`). Tombstones are manifests: they are re-replicated the same way,
 *    and since manifest stores keep the newest version, a tombstone always wins over a stale
 *    live record (repair never resurrects a deleted object).
 * 2. Chunks (coordinator, live objects only). For each chunk the candidates, the first
 *    rf + `extraProbes` live eligible nodes in rendezvous order for the chunk id plus the
 *    nodes the manifest records it was sent to, are asked whether they hold it (`have`, which
 *    also records the object's reference to the chunk on each holder: objects_store.ts).
 *    Holders are found by asking, not assumed from placement: a write may have replaced a
 *    failed target by the next node, an earlier repair may have copied it elsewhere, and a
 *    node that restarted with its data dir still holds its chunks. `planRepair` (bounded by
 *    `repairMaxCopiesPerStep`, most at-risk chunks first) gives the copies; the coordinator
 *    runs them, at most `maxConcurrentCopies` at once: bytes from its own disk when it holds
 *    the chunk, else fetched (and verified) from the first live holder in placement order,
 *    then `put-chunk` to each new target. Extra replicas are never released here.
 * 3. Tombstones this node coordinates: members that came back alive since the last scan are
 *    told to drop the deleted object's chunk references (`unref`), so a holder that was down
 *    during the DELETE frees its copies too.
 *
 * Nothing is copied while it is unclear: a failed probe counts its node as not holding (a
 * copy to a node that holds it already is idempotent), a manifest whose newest version cannot
 * be fetched waits for the next scan.
 */
import type { Logger, Metrics } from "../core/host.ts";
import type { NodeId } from "../core/ids.ts";
import { compareStrings } from "../core/spores/types.ts";
import type { StorageClass } from "../core/storage/classes.ts";
import { compareVersions, type Version } from "../core/storage/consistency.ts";
import { placeReplicas, type StorageNode } from "../core/storage/placement.ts";
import { type ChunkPlacement, planRepair } from "../core/storage/repair.ts";
import type { HaveAnswer, HaveQuery, ManifestRecord } from "./objects_codec.ts";
import { MAX_QUERY_ITEMS } from "./objects_codec.ts";
import type { StorageSection } from "./objects_config.ts";

/** What a node answered about one manifest: its version (null: none, or no answer). */
export interface ManifestView {
  readonly version: Version;
  readonly deleted: boolean;
}

export interface ManifestDecision {
  /** The newest version any node answered with (null: nobody holds the object). */
  readonly newest: ManifestView | null;
  /** The nodes holding the newest version, in rendezvous order. */
  readonly holders: readonly NodeId[];
  /** The node that copies: the first holder in rendezvous order. */
  readonly coordinator: NodeId | null;
  /** Where the coordinator copies the newest record. */
  readonly copyTo: readonly NodeId[];
}

/**
 * Pure: given the live nodes, the manifest's placement key and class, and every node's answer
 * (a missing entry or null: does not hold it), the newest version, its holders, the one
 * coordinator and the nodes to copy to. Independent of who computes it and of the order of
 * the answers, so every holder that saw the same answers picks the same coordinator.
 */
export function decideManifest(
  key: string,
  cls: StorageClass,
  nodes: readonly StorageNode[],
  answers: ReadonlyMap<NodeId, ManifestView | null>,
  rf: number,
): ManifestDecision {
  let newest: ManifestView | null = null;
  for (const a of answers.values()) {
    if (a && (!newest || compareVersions(a.version, newest.version) > 0)) newest = a;
  }
  if (!newest) return { newest: null, holders: [], coordinator: null, copyTo: [] };
  const order = placeReplicas(key, cls, nodes, { replicationFactor: nodes.length });
  const rank = new Map(order.map((id, i) => [id, i]));
  const live = new Set(nodes.map((n) => n.id));
  const holders = [...answers].filter(([id, a]) =>
    a !== null && live.has(id) && compareVersions(a.version, newest!.version) === 0
  ).map(([id]) => id).sort((a, b) =>
    (rank.get(a) ?? Infinity) - (rank.get(b) ?? Infinity) || compareStrings(a, b)
  );
  const plan = planRepair([{ chunk: key, class: cls, replicas: holders }], nodes, live, {
    replicationFactor: rf,
    maxCopies: rf,
  });
  const copyTo = plan.repairs.flatMap((r) => r.copies.map((c) => c.to));
  return { newest, holders, coordinator: holders[0] ?? null, copyTo };
}

/**
 * Pure: `items` in order, in groups of at most `maxItems` items and `maxWeight` total weight
 * (an item heavier than `maxWeight` goes alone); no group is empty.
 */
export function batches<T>(
  items: readonly T[],
  maxItems: number,
  maxWeight = Infinity,
  weight: (t: T) => number = () => 0,
): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let w = 0;
  for (const t of items) {
    const tw = weight(t);
    if (cur.length > 0 && (cur.length >= maxItems || w + tw > maxWeight)) {
      out.push(cur);
      cur = [];
      w = 0;
    }
    cur.push(t);
    w += tw;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** Bytes of `have` payload per query, about (a frame carries it). */
const QUERY_BYTES = 256 * 1024;

/** What the scanner needs from NodeObjects (objects.ts). */
export interface RepairHost {
  readonly self: NodeId;
  readonly config: StorageSection;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Self and the members SWIM reports alive, as placement nodes. */
  liveNodes(): StorageNode[];
  /** Every record stored here. */
  manifests(): AsyncIterable<ManifestRecord>;
  storeManifest(record: ManifestRecord): Promise<void>;
  /** A `have` query to `node` (this node answers itself); null when it did not answer. */
  have(node: NodeId, query: HaveQuery): Promise<HaveAnswer | null>;
  getManifest(node: NodeId, objectId: string): Promise<ManifestRecord | null>;
  putManifest(node: NodeId, record: ManifestRecord): Promise<string | null>;
  /** Verified bytes of a chunk of `want` bytes from `node` (or this node); null on failure. */
  getChunk(node: NodeId, id: string, want: number): Promise<Uint8Array | null>;
  putChunk(node: NodeId, id: string, bytes: Uint8Array, object: string): Promise<string | null>;
  /** Drops `object`'s references to the record's chunks on the live members. */
  releaseChunks(record: ManifestRecord, only?: ReadonlySet<NodeId>): Promise<void>;
  isStopped(): boolean;
}

export interface ScanResult {
  readonly manifests: number;
  readonly coordinated: number;
  readonly manifestCopies: number;
  readonly chunksChecked: number;
  readonly underReplicated: number;
  readonly chunkCopies: number;
  readonly copyFailures: number;
  readonly bytes: number;
  readonly lost: number;
  readonly deferred: number;
}

interface ChunkMeta {
  readonly object: string;
  readonly want: number;
  readonly candidates: NodeId[];
}

/** Runs `work` over `items`, at most `width` at once (failures are the work's business). */
async function pool<T>(items: readonly T[], width: number, work: (t: T) => Promise<void>) {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
}

export class ObjectsRepair {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private soon: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<ScanResult> | null = null;
  private next: Promise<ScanResult> | null = null;
  private stopped = false;
  /** Members that came back alive since the last scan (tombstones are re-announced to them). */
  private returned = new Set<NodeId>();
  scans = 0;

  constructor(private readonly h: RepairHost) {
    const m = h.metrics;
    for (const kind of ["chunk", "manifest"]) m.inc("mycelium_storage_repairs_total", 0, { kind });
    m.inc("mycelium_storage_repair_bytes_total", 0);
    m.inc("mycelium_storage_repair_failures_total", 0);
    m.inc("mycelium_storage_repair_scans_total", 0);
    m.set("mycelium_storage_under_replicated_chunks", 0);
  }

  /** Starts the periodic scans (when `storage.repair.enabled`). */
  start(): void {
    if (!this.h.config.repair.enabled || this.stopped) return;
    this.arm();
  }

  private arm(): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.scan("interval").catch(() => {}).finally(() => this.arm());
    }, this.h.config.repair.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.soon);
  }

  /** SWIM changed a member's state: a scan soon after a death (or a leave). */
  memberChanged(id: NodeId, state: "alive" | "suspect" | "dead" | "left"): void {
    if (state === "alive") this.returned.add(id);
    if (state !== "dead" && state !== "left") return;
    if (!this.h.config.repair.enabled || this.stopped || this.soon !== undefined) return;
    this.h.log.log("info", "storage_repair_scheduled", {
      member: id,
      state,
      inMs: this.h.config.repair.afterDeathMs,
    });
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.scan(`member ${state}`).catch(() => {});
    }, this.h.config.repair.afterDeathMs);
  }

  /** One scan now (a running one is followed by another, which this resolves with). */
  scan(reason = "requested"): Promise<ScanResult> {
    if (this.running) {
      this.next ??= this.running.catch(() => {}).then(() => {
        this.next = null;
        return this.scan(reason);
      });
      return this.next;
    }
    const run = this.scanNow(reason).catch((e) => {
      this.h.log.log("error", "storage_repair_failed", { reason, error: e });
      throw e;
    }).finally(() => {
      this.running = null;
    });
    this.running = run;
    return run;
  }

  private async scanNow(reason: string): Promise<ScanResult> {
    const h = this.h;
    const t0 = performance.now();
    const cfg = h.config;
    const rf = cfg.replicationFactor;
    const probes = rf + cfg.repair.extraProbes;
    const nodes = h.liveNodes();
    const live = new Set(nodes.map((n) => n.id));
    const returned = [...this.returned].filter((id) => live.has(id) && id !== h.self);
    this.returned.clear();
    // Periodic scans that find nothing to do log at debug level only.
    const level = reason === "interval" ? "debug" : "info";
    h.log.log(level, "storage_repair_started", { reason, liveNodes: nodes.length });
    h.metrics.inc("mycelium_storage_repair_scans_total", 1);
    const res = {
      manifests: 0,
      coordinated: 0,
      manifestCopies: 0,
      chunksChecked: 0,
      underReplicated: 0,
      chunkCopies: 0,
      copyFailures: 0,
      bytes: 0,
      lost: 0,
      deferred: 0,
    };

    // ---- 1. manifests ----
    const records: ManifestRecord[] = [];
    for await (const r of h.manifests()) records.push(r);
    res.manifests = records.length;
    const askManifests = new Map<NodeId, string[]>();
    const orderOf = (key: string, cls: StorageClass) =>
      placeReplicas(key, cls, nodes, { replicationFactor: nodes.length });
    for (const r of records) {
      const id = r.manifest.objectId;
      for (const n of orderOf(`object:${id}`, r.manifest.class).slice(0, probes)) {
        if (n === h.self) continue;
        const l = askManifests.get(n) ?? [];
        l.push(id);
        askManifests.set(n, l);
      }
    }
    const views = new Map<string, Map<NodeId, ManifestView | null>>();
    await this.ask(
      askManifests,
      (id) => id.length * 3 + 3,
      (objects) => ({ manifests: objects, refs: [] }),
      (n, q, a) => {
        q.manifests.forEach((id, i) => {
          let m = views.get(id);
          if (!m) views.set(id, m = new Map());
          m.set(n, a?.manifests[i] ?? null);
        });
      },
    );

    const coordinated: ManifestRecord[] = [];
    for (let r of records) {
      if (h.isStopped()) break;
      const id = r.manifest.objectId;
      const key = `object:${id}`;
      const answers = new Map(views.get(id) ?? []);
      answers.set(h.self, { version: r.version, deleted: r.deleted === true });
      let d = decideManifest(key, r.manifest.class, nodes, answers, rf);
      if (d.newest && compareVersions(d.newest.version, r.version) > 0) {
        // A newer version elsewhere (overwrite or tombstone): adopt it first.
        const newer = await this.fetchNewest(id, d.holders, d.newest.version);
        if (!newer) continue;
        await h.storeManifest(newer);
        h.log.log("info", "storage_repair_adopted", {
          object: id,
          deleted: newer.deleted === true,
          writer: newer.version.writer,
        });
        if (newer.deleted && !r.deleted) await h.releaseChunks(r);
        r = newer;
        answers.set(h.self, { version: r.version, deleted: r.deleted === true });
        d = decideManifest(key, r.manifest.class, nodes, answers, rf);
      }
      if (d.coordinator !== h.self) continue;
      res.coordinated++;
      for (const to of d.copyTo) {
        const err = await h.putManifest(to, r);
        if (err === null) {
          res.manifestCopies++;
          h.metrics.inc("mycelium_storage_repairs_total", 1, { kind: "manifest" });
        } else {
          res.copyFailures++;
          h.metrics.inc("mycelium_storage_repair_failures_total", 1);
          h.log.log("warn", "storage_repair_copy_failed", { object: id, to, error: err });
        }
      }
      if (r.deleted && returned.length > 0) await h.releaseChunks(r, new Set(returned));
      if (!r.deleted) coordinated.push(r);
    }

    // ---- 2. chunks of the objects this node coordinates ----
    const meta = new Map<string, ChunkMeta>();
    const placements: ChunkPlacement[] = [];
    const askChunks = new Map<NodeId, Map<string, string[]>>(); // node -> object -> chunks
    const holders = new Map<string, Set<NodeId>>();
    for (const r of coordinated) {
      const m = r.manifest;
      m.chunks.forEach((c, i) => {
        if (meta.has(c)) return;
        const want = Math.min(m.chunkSize, m.size - i * m.chunkSize);
        const candidates = orderOf(c, m.class).slice(0, probes);
        for (const n of r.replicas[i] ?? []) {
          if (live.has(n) && !candidates.includes(n)) candidates.push(n);
        }
        if (!candidates.includes(h.self)) candidates.push(h.self);
        meta.set(c, { object: m.objectId, want, candidates });
        holders.set(c, new Set());
        placements.push({ chunk: c, class: m.class, replicas: [] });
        for (const n of candidates) {
          let byObject = askChunks.get(n);
          if (!byObject) askChunks.set(n, byObject = new Map());
          const l = byObject.get(m.objectId) ?? [];
          l.push(c);
          byObject.set(m.objectId, l);
        }
      });
    }
    res.chunksChecked = placements.length;
    const groups = new Map<NodeId, Array<{ object: string; chunks: string[] }>>();
    for (const [n, byObject] of askChunks) {
      const out: Array<{ object: string; chunks: string[] }> = [];
      for (const [object, chunks] of byObject) {
        for (const b of batches(chunks, 512)) out.push({ object, chunks: b });
      }
      groups.set(n, out);
    }
    const groupBytes = (g: { object: string; chunks: string[] }) =>
      g.object.length * 3 + 16 + g.chunks.length * 67;
    await this.ask(groups, groupBytes, (refs) => ({ manifests: [], refs }), (n, q, a) => {
      if (!a || a.refs.length !== q.refs.length) return;
      q.refs.forEach((g, i) => {
        const bits = a.refs[i];
        if (bits.length !== g.chunks.length) return;
        g.chunks.forEach((c, k) => {
          if (bits[k] === "1") holders.get(c)?.add(n);
        });
      });
    });
    const current = placements.map((p) => ({ ...p, replicas: [...holders.get(p.chunk)!] }));
    const plan = planRepair(current, nodes, live, {
      replicationFactor: rf,
      maxCopies: cfg.repairMaxCopiesPerStep,
    });
    res.lost = plan.lost.length;
    res.deferred = plan.deferred.length;
    res.underReplicated = plan.repairs.filter((r) => r.copies.length > 0).length +
      plan.deferred.filter((c) => !plan.repairs.some((r) => r.chunk === c)).length;
    h.metrics.set("mycelium_storage_under_replicated_chunks", res.underReplicated + res.lost);
    if (plan.lost.length > 0) {
      h.log.log("warn", "storage_repair_lost", {
        chunks: plan.lost.length,
        first: plan.lost.slice(0, 5),
      });
    }
    const work = plan.repairs.filter((r) => r.copies.length > 0);
    await pool(work, cfg.repair.maxConcurrentCopies, async (r) => {
      if (h.isStopped()) return;
      const mc = meta.get(r.chunk)!;
      const have = holders.get(r.chunk)!;
      // The source: this node when it holds the chunk, else the live holders in target order.
      const sources = have.has(h.self) ? [h.self] : [
        ...r.target.filter((n) => have.has(n)),
        ...[...have].filter((n) => !r.target.includes(n)),
      ];
      let bytes: Uint8Array | null = null;
      for (const s of sources) {
        bytes = await h.getChunk(s, r.chunk, mc.want);
        if (bytes) break;
      }
      if (!bytes) {
        res.copyFailures += r.copies.length;
        h.metrics.inc("mycelium_storage_repair_failures_total", r.copies.length);
        h.log.log("warn", "storage_repair_copy_failed", {
          chunk: r.chunk,
          error: `no holder returned it (${sources.join(", ")})`,
        });
        return;
      }
      for (const c of r.copies) {
        const err = await h.putChunk(c.to, r.chunk, bytes, mc.object);
        if (err === null) {
          res.chunkCopies++;
          res.bytes += bytes.length;
          h.metrics.inc("mycelium_storage_repairs_total", 1, { kind: "chunk" });
          h.metrics.inc("mycelium_storage_repair_bytes_total", bytes.length);
        } else {
          res.copyFailures++;
          h.metrics.inc("mycelium_storage_repair_failures_total", 1);
          h.log.log("warn", "storage_repair_copy_failed", {
            chunk: r.chunk,
            to: c.to,
            error: err,
          });
        }
      }
    });
    this.scans++;
    const ms = Math.round(performance.now() - t0);
    const busy = res.manifestCopies + res.chunkCopies + res.copyFailures + res.lost > 0;
    h.log.log(busy ? "info" : level, "storage_repair_finished", { reason, ms, ...res });
    return res;
  }

  /** The record of version `v` from one of `from`. */
  private async fetchNewest(
    objectId: string,
    from: readonly NodeId[],
    v: Version,
  ): Promise<ManifestRecord | null> {
    for (const n of from) {
      if (n === this.h.self) continue;
      const r = await this.h.getManifest(n, objectId);
      if (r && compareVersions(r.version, v) >= 0) return r;
    }
    return null;
  }

  /**
   * Sends `have` queries (items per node, batched) to every node at once, a few nodes at a
   * time; `got` sees each query with its answer (null: no answer).
   */
  private async ask<T>(
    per: ReadonlyMap<NodeId, T[]>,
    size: (t: T) => number,
    query: (items: T[]) => HaveQuery,
    got: (node: NodeId, q: HaveQuery, a: HaveAnswer | null) => void,
  ): Promise<void> {
    const jobs: Array<{ node: NodeId; q: HaveQuery }> = [];
    for (const [node, items] of per) {
      for (const b of batches(items, MAX_QUERY_ITEMS, QUERY_BYTES, size)) {
        jobs.push({ node, q: query(b) });
      }
    }
    await pool(jobs, 4, async ({ node, q }) => {
      got(node, q, await this.h.have(node, q));
    });
  }
}
