/**
 * Trust-aware object storage in the spores simulator (DESIGN.md section 5, Storage; issue 6).
 *
 * - Objects are written by clients at `writes.rate` (Poisson), split into chunks of
 *   `config.chunkSize` (core/storage/chunks.ts `chunkCount`); a chunk is modelled by its id
 *   (sha256 of object id and index, as a content address would be) and size, not its bytes.
 * - Each chunk is placed with `placeReplicas` (weighted rendezvous hashing) over the member
 *   nodes the writer believes live, eligible for the object's class by tier and by trust from
 *   the newest certified Primary, on distinct failure domains (region, region/group or host).
 * - Copies travel through the network model (bandwidth, queues, partitions); a replica
 *   acknowledges once stored. Strong writes are acknowledged with a write quorum of replicas
 *   per chunk, Eventual ones with one (`writeOutcome`); acknowledged writes are recorded.
 * - Chunks are durable: a crashed node keeps them and serves them again after a restart.
 * - A node down for `detectionMs` is declared dead; every `repairEveryMs` the repair step
 *   (`planRepair`, bounded by `repairMaxCopiesPerStep`) copies chunks from live replicas to
 *   the nodes that restore their replica sets, and releases surplus replicas.
 * - Reads go to live replicas and verify checksums; corrupt replicas (bit rot events, found
 *   by reads or the periodic scrub) are dropped and repaired. Strong reads need a read quorum.
 * - Ground truth for the checks: a chunk is under-replicated while fewer distinct domains than
 *   min(rf, live eligible domains) hold a live, intact, eligible replica; each such episode's
 *   time to restore is measured from the failure that started it.
 *
 * Simplifications (documented): object manifests live in a directory the simulation keeps (a
 * CP metadata store in the design); objects are immutable (a write is a new object).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { NodeId } from "../../core/ids.ts";
import type { PrimaryView } from "../../core/spores/primary.ts";
import type { Tier } from "../../core/spores/types.ts";
import { chunkCount } from "../../core/storage/chunks.ts";
import { eligibleFor, STORAGE_CLASS_NAMES, type StorageClass } from "../../core/storage/classes.ts";
import {
  type Consistency,
  readOutcome,
  type ReadResponse,
  writeQuorum,
} from "../../core/storage/consistency.ts";
import { placeReplicas, type StorageNode } from "../../core/storage/placement.ts";
import { type ChunkPlacement, planRepair } from "../../core/storage/repair.ts";
import type { Rng } from "../rng.ts";
import type { StorageScenario } from "../scenario.ts";
import { latencyStats } from "../summary.ts";

export interface StorageSimNode {
  readonly index: number;
  readonly id: NodeId;
  readonly name: string;
  readonly group: string;
  readonly tier: Tier;
  readonly region: string;
  readonly up: boolean;
  readonly life: number;
  /** Active (joined) now. */
  readonly active: boolean;
  /** Was active at least once (a member that runs the storage service). */
  readonly everActive: boolean;
}

/** What the simulation offers the storage model. */
export interface StorageWorld {
  readonly nodes: readonly StorageSimNode[];
  now(): number;
  at(t: number, fn: () => void): void;
  /**
   * Sends `bytes` through the network model; `arrive` runs on arrival (never if dropped).
   * Returns the delay until arrival in ms, or -1 when the message was dropped.
   */
  transfer(from: number, to: number, bytes: number, arrive?: () => void): number;
  /** The newest certified Primary. */
  view(): PrimaryView;
  violation(check: string, detail: string): void;
  wants(check: string): boolean;
}

export interface StorageOptions {
  /** Place every chunk as if it were Public (breaks storage.class on purpose). */
  readonly ignoreClass?: boolean;
}

interface ObjectRec {
  readonly id: string;
  readonly size: number;
  readonly cls: StorageClass;
  readonly level: Consistency;
  readonly writer: number;
  readonly writerLife: number;
  readonly startedAt: number;
  readonly chunks: ChunkRec[];
  ackedAt: number | null;
  failed: boolean;
}

interface ChunkRec {
  readonly id: string;
  readonly size: number;
  readonly obj: ObjectRec;
  /** Nodes that hold a copy on disk (durable across crashes). */
  readonly holders: Set<number>;
  /** Copies in flight (write or repair). */
  readonly pending: Set<number>;
  /** Holders whose copy is corrupt (ground truth; the system learns it by verifying). */
  readonly corrupt: Set<number>;
  /** Replicas that acknowledged the write to its writer. */
  readonly acks: Set<number>;
  /** Part of an acknowledged object: owed its replication factor. */
  tracked: boolean;
  underSince: number | null;
  /** No live, intact, eligible replica since then (nothing to copy from). */
  zeroSince: number | null;
  /** When a replica came back during the current episode (null: it never lost them all). */
  returnedAt: number | null;
}

export interface StorageSample {
  t: number;
  objects: number;
  chunks: number;
  underReplicated: number;
  unavailable: number;
  repairInFlight: number;
  copies: number;
  bytesCopied: number;
  writesFailed: number;
  readsOk: number;
  readsFailed: number;
}

const ACK_BYTES = 96;
const REQUEST_BYTES = 128;

function hexId(s: string): string {
  return bytesToHex(sha256(utf8ToBytes(s)));
}

export class StorageModel {
  readonly objects: ObjectRec[] = [];
  private readonly ackedObjects: ObjectRec[] = [];
  private readonly chunks: ChunkRec[] = [];
  /** Chunks each node holds on disk. */
  private readonly holdings: Array<Set<ChunkRec>>;
  private readonly declaredDead: Uint8Array;
  private readonly downSince: Float64Array;
  private readonly dirty = new Set<ChunkRec>();
  private readonly under = new Set<ChunkRec>();
  private readonly rf: number;
  private readonly domainOf: string[];
  private nodesCache: { key: string; list: StorageNode[] } | null = null;
  private targetCache = new Map<string, number>();
  private targetKey = "";
  private readonly classPick: Array<[StorageClass, number]>;
  /**
   * Restore times of closed under-replication episodes (ms): from the failure, or for an
   * outage (every replica down at once) from the return of the first replica.
   */
  readonly restoreMs: number[] = [];
  /** Restore times of the episodes that kept a live replica throughout (from the failure). */
  readonly fromFailureMs: number[] = [];
  /** How long chunks had no live replica at all (ms). */
  readonly outageMs: number[] = [];
  outageEpisodes = 0;
  readonly writeAckMs: number[] = [];
  readonly readMs: number[] = [];
  readonly counts = {
    writes: 0,
    acknowledged: 0,
    acknowledgedStrong: 0,
    failed: 0,
    strong: 0,
    eventual: 0,
    bytesWritten: 0,
    copies: 0,
    copiesFailed: 0,
    bytesCopied: 0,
    releases: 0,
    readsOk: 0,
    readsFailed: 0,
    checksumFailures: 0,
    scrubbed: 0,
    corrupted: 0,
    classViolations: 0,
    declaredDead: 0,
    lostSeen: 0,
  };
  readonly samples: StorageSample[] = [];
  private readonly wantClass: boolean;

  constructor(
    private readonly w: StorageWorld,
    private readonly cfg: StorageScenario,
    private readonly rng: Rng,
    private readonly opts: StorageOptions = {},
  ) {
    const n = w.nodes.length;
    this.holdings = Array.from({ length: n }, () => new Set());
    this.declaredDead = new Uint8Array(n);
    this.downSince = new Float64Array(n);
    this.rf = cfg.config.replicationFactor;
    this.domainOf = w.nodes.map((x) => {
      switch (cfg.config.failureDomain) {
        case "region":
          return x.region;
        case "zone":
          return `${x.region}/${x.group}`;
        case "host":
          return `${x.region}/${x.group}/${x.name}`;
      }
    });
    const total = Object.values(cfg.writes.classes).reduce((s, v) => s + (v ?? 0), 0);
    let acc = 0;
    this.classPick = STORAGE_CLASS_NAMES.filter((c) => (cfg.writes.classes[c] ?? 0) > 0).map(
      (c) => [c, acc += cfg.writes.classes[c]! / total],
    );
    this.wantClass = w.wants("storage.class");
  }

  // ---- nodes ----

  private believedLive(i: number): boolean {
    const x = this.w.nodes[i];
    return x.everActive && this.declaredDead[i] === 0;
  }

  private physicallyLive(i: number): boolean {
    return this.w.nodes[i].up;
  }

  /** Member storage nodes (Sclerotia and Rhizomorphs) with trust from the newest Primary. */
  private storageNodes(): StorageNode[] {
    const v = this.w.view();
    let dead = 0;
    for (let i = 0; i < this.declaredDead.length; i++) {
      dead = (dead * 31 + this.declaredDead[i]) | 0;
    }
    let active = 0;
    for (const x of this.w.nodes) if (x.everActive) active++;
    const key = `${v.height}/${dead}/${active}`;
    if (this.nodesCache?.key === key) return this.nodesCache.list;
    const list: StorageNode[] = [];
    for (const x of this.w.nodes) {
      if (x.tier === "hypha" || !x.everActive) continue;
      const tier = v.members.get(x.id);
      if (tier === undefined) continue;
      list.push({
        id: x.id,
        tier,
        trust: v.trust.get(x.id) ?? 0,
        weight: tier === "sclerotia" ? this.cfg.weights.sclerotia : this.cfg.weights.rhizomorph,
        domain: this.domainOf[x.index],
        excluded: v.excluded.has(x.id),
      });
    }
    this.nodesCache = { key, list };
    return list;
  }

  private indexOf = new Map<NodeId, number>();
  private idx(id: NodeId): number {
    if (this.indexOf.size === 0) this.w.nodes.forEach((x) => this.indexOf.set(x.id, x.index));
    return this.indexOf.get(id)!;
  }

  private eligible(cls: StorageClass, i: number): boolean {
    const v = this.w.view();
    const x = this.w.nodes[i];
    const tier = v.members.get(x.id);
    if (tier === undefined) return false;
    return eligibleFor(cls, {
      tier,
      trust: v.trust.get(x.id) ?? 0,
      excluded: v.excluded.has(x.id),
    });
  }

  /** min(rf, distinct domains of up, eligible member nodes) for a class (ground truth). */
  private target(cls: StorageClass): number {
    const v = this.w.view();
    let up = 0;
    for (const x of this.w.nodes) if (x.up && x.everActive) up = (up * 31 + x.index) | 0;
    const key = `${v.height}/${up}`;
    if (key !== this.targetKey) {
      this.targetKey = key;
      this.targetCache = new Map();
    }
    let t = this.targetCache.get(cls);
    if (t === undefined) {
      const domains = new Set<string>();
      for (const x of this.w.nodes) {
        if (x.up && x.everActive && x.tier !== "hypha" && this.eligible(cls, x.index)) {
          domains.add(this.domainOf[x.index]);
        }
      }
      this.targetCache.set(cls, t = Math.min(this.rf, domains.size));
    }
    return t;
  }

  /** Distinct domains holding a live, intact, eligible replica. */
  private liveDomains(c: ChunkRec): number {
    const d = new Set<string>();
    for (const h of c.holders) {
      if (this.physicallyLive(h) && !c.corrupt.has(h) && this.eligible(c.obj.cls, h)) {
        d.add(this.domainOf[h]);
      }
    }
    return d.size;
  }

  /**
   * Updates the chunk's under-replication episode (ground truth). An episode in which every
   * replica was down at once is an outage: nothing can be copied until a holder returns with
   * its disk, so its repair time is measured from that return (`restoreMs`), and the outage
   * itself is recorded apart (`outageMs`).
   */
  private evaluate(c: ChunkRec): void {
    if (!c.tracked) return;
    const now = this.w.now();
    const live = this.liveDomains(c);
    if (live === 0 && c.zeroSince === null) c.zeroSince = now;
    else if (live > 0 && c.zeroSince !== null) {
      this.outageMs.push(now - c.zeroSince);
      c.zeroSince = null;
      c.returnedAt = now;
    }
    const ok = live >= this.target(c.obj.cls);
    if (ok) {
      if (c.underSince !== null) {
        if (c.returnedAt !== null) {
          this.restoreMs.push(now - c.returnedAt);
          this.outageEpisodes++;
        } else {
          this.restoreMs.push(now - c.underSince);
          this.fromFailureMs.push(now - c.underSince);
        }
        c.underSince = null;
      }
      c.returnedAt = null;
      this.under.delete(c);
    } else if (c.underSince === null && (c.pending.size === 0 || this.under.has(c))) {
      c.underSince = now;
      c.returnedAt = null;
      this.under.add(c);
    }
  }

  private store(c: ChunkRec, i: number): void {
    if (this.wantClass && !this.eligible(c.obj.cls, i)) {
      this.counts.classViolations++;
      const x = this.w.nodes[i];
      this.w.violation(
        "storage.class",
        `a ${c.obj.cls} replica of ${c.id.slice(0, 12)} (${c.obj.id}) was stored on ${x.name} ` +
          `(${x.tier}, trust ${this.w.view().trust.get(x.id) ?? "none"})`,
      );
    }
    c.holders.add(i);
    c.corrupt.delete(i);
    this.holdings[i].add(c);
  }

  private unstore(c: ChunkRec, i: number): void {
    c.holders.delete(i);
    c.corrupt.delete(i);
    this.holdings[i].delete(c);
  }

  /** A node went down (crash). */
  onCrash(i: number): void {
    const now = this.w.now();
    this.downSince[i] = now;
    for (const c of this.holdings[i]) this.evaluate(c);
    const life = this.w.nodes[i].life;
    this.w.at(now + this.cfg.detectionMs, () => {
      const x = this.w.nodes[i];
      if (!x.up && x.life === life && this.declaredDead[i] === 0) {
        this.declaredDead[i] = 1;
        this.counts.declaredDead++;
        for (const c of this.holdings[i]) if (c.tracked) this.dirty.add(c);
      }
    });
  }

  /** A node came back: its disk's chunks count again (surplus replicas are released). */
  onRestart(i: number): void {
    this.declaredDead[i] = 0;
    for (const c of this.holdings[i]) {
      this.evaluate(c);
      if (c.tracked) this.dirty.add(c);
    }
  }

  /** The newest Primary changed (trust, exclusions, members): re-check every replica. */
  onViewChange(): void {
    for (const c of this.chunks) {
      if (!c.tracked) continue;
      this.evaluate(c);
      for (const h of c.holders) {
        if (!this.eligible(c.obj.cls, h)) {
          this.dirty.add(c);
          break;
        }
      }
    }
  }

  // ---- writes ----

  private pickClass(): StorageClass {
    const u = this.rng.next();
    for (const [c, p] of this.classPick) if (u < p) return c;
    return this.classPick[this.classPick.length - 1][0];
  }

  /** One client write from a random active node among `writers`. */
  write(writers: readonly number[]): void {
    const live = writers.filter((i) => this.w.nodes[i].up && this.w.nodes[i].active);
    if (live.length === 0) return;
    const writer = live[Math.floor(this.rng.next() * live.length)];
    const { min, max } = this.cfg.writes.size;
    const size = min + Math.floor(this.rng.next() * (max - min + 1));
    const cls = this.pickClass();
    const level: Consistency = this.rng.next() < this.cfg.writes.strong ? "strong" : "eventual";
    const now = this.w.now();
    const obj: ObjectRec = {
      id: `obj-${this.objects.length}`,
      size,
      cls,
      level,
      writer,
      writerLife: this.w.nodes[writer].life,
      startedAt: now,
      chunks: [],
      ackedAt: null,
      failed: false,
    };
    this.objects.push(obj);
    this.counts.writes++;
    this.counts[level]++;
    const chunkSize = this.cfg.config.chunkSize;
    const n = Math.max(1, chunkCount(size, chunkSize));
    for (let k = 0; k < n; k++) {
      const bytes = Math.max(1, Math.min(chunkSize, size - k * chunkSize));
      const c: ChunkRec = {
        id: hexId(`${obj.id}/${k}`),
        size: bytes,
        obj,
        holders: new Set(),
        pending: new Set(),
        corrupt: new Set(),
        acks: new Set(),
        tracked: false,
        underSince: null,
        zeroSince: null,
        returnedAt: null,
      };
      obj.chunks.push(c);
      this.chunks.push(c);
    }
    const nodes = this.storageNodes().filter((s) => this.believedLive(this.idx(s.id)));
    const need = writeQuorum(level, this.rf);
    const placeAs = this.opts.ignoreClass ? "Public" : cls;
    const targets = obj.chunks.map((c) =>
      placeReplicas(c.id, placeAs, nodes, { replicationFactor: this.rf }).map((id) => this.idx(id))
    );
    if (targets.some((t) => t.length < need)) {
      obj.failed = true;
      this.counts.failed++;
      return;
    }
    obj.chunks.forEach((c, k) => {
      for (const t of targets[k]) {
        c.pending.add(t);
        this.counts.bytesWritten += c.size;
        const sent = this.w.transfer(writer, t, c.size, () => {
          c.pending.delete(t);
          if (!this.w.nodes[t].up) return;
          this.store(c, t);
          this.w.transfer(t, writer, ACK_BYTES, () => {
            const wr = this.w.nodes[writer];
            if (!wr.up || wr.life !== obj.writerLife) return;
            c.acks.add(t);
            this.checkAck(obj);
          });
        });
        if (sent < 0) c.pending.delete(t);
      }
    });
    this.w.at(now + this.cfg.writeTimeoutMs, () => {
      for (const c of obj.chunks) c.pending.clear();
      if (obj.ackedAt === null && !obj.failed) {
        obj.failed = true;
        this.counts.failed++;
      }
      if (obj.ackedAt !== null) { for (const c of obj.chunks) this.evaluate(c); }
    });
  }

  private checkAck(obj: ObjectRec): void {
    if (obj.ackedAt !== null || obj.failed) return;
    const need = writeQuorum(obj.level, this.rf);
    if (!obj.chunks.every((c) => c.acks.size >= need)) return;
    obj.ackedAt = this.w.now();
    this.counts.acknowledged++;
    if (obj.level === "strong") this.counts.acknowledgedStrong++;
    this.writeAckMs.push(obj.ackedAt - obj.startedAt);
    this.ackedObjects.push(obj);
    for (const c of obj.chunks) {
      c.tracked = true;
      this.dirty.add(c);
    }
  }

  // ---- repair ----

  private copyTimeoutMs(): number {
    return Math.max(this.cfg.writeTimeoutMs, this.cfg.repairEveryMs);
  }

  /** One re-replication step. */
  repairStep(): void {
    if (!this.cfg.repair || this.dirty.size === 0) return;
    const nodes = this.storageNodes();
    const live = new Set<NodeId>();
    for (const s of nodes) if (this.believedLive(this.idx(s.id))) live.add(s.id);
    const byId = new Map<string, ChunkRec>();
    const placements: ChunkPlacement[] = [];
    for (const c of this.dirty) {
      if (c.pending.size > 0) continue;
      byId.set(c.id, c);
      const replicas: NodeId[] = [];
      for (const h of c.holders) replicas.push(this.w.nodes[h].id);
      placements.push({ chunk: c.id, class: c.obj.cls, replicas });
    }
    if (placements.length === 0) return;
    const plan = planRepair(placements, nodes, live, {
      replicationFactor: this.rf,
      maxCopies: this.cfg.config.repairMaxCopiesPerStep,
    });
    const busy = new Set<string>(plan.deferred);
    for (const id of plan.lost) busy.add(id);
    for (const r of plan.repairs) {
      const c = byId.get(r.chunk)!;
      if (r.copies.length > 0) busy.add(r.chunk);
      for (const cp of r.copies) this.copy(c, this.idx(cp.from), this.idx(cp.to));
      for (const x of r.release) {
        this.unstore(c, this.idx(x));
        this.counts.releases++;
      }
      if (r.release.length > 0) this.evaluate(c);
    }
    this.counts.lostSeen = plan.lost.length;
    for (const [id, c] of byId) if (!busy.has(id)) this.dirty.delete(c);
  }

  private copy(c: ChunkRec, from: number, to: number): void {
    c.pending.add(to);
    this.counts.copies++;
    const fail = () => {
      if (!c.pending.delete(to)) return;
      this.counts.copiesFailed++;
      this.dirty.add(c);
      this.evaluate(c);
    };
    const life = this.w.nodes[to].life;
    const ok = this.physicallyLive(from) && !c.corrupt.has(from) &&
      this.w.transfer(from, to, c.size, () => {
          if (!c.pending.has(to)) return;
          const x = this.w.nodes[to];
          if (!x.up || x.life !== life) return fail();
          c.pending.delete(to);
          this.counts.bytesCopied += c.size;
          this.store(c, to);
          this.dirty.add(c); // completes the target and releases surplus next step
          this.evaluate(c);
        }) >= 0;
    if (!ok && c.corrupt.has(from) && this.physicallyLive(from)) this.detectCorrupt(c, from);
    this.w.at(this.w.now() + this.copyTimeoutMs(), fail);
  }

  private detectCorrupt(c: ChunkRec, i: number): void {
    this.counts.checksumFailures++;
    this.unstore(c, i);
    if (c.tracked) this.dirty.add(c);
    this.evaluate(c);
  }

  // ---- reads, bit rot, scrub ----

  /**
   * A client read of a random acknowledged object from a random active node: per chunk, live
   * replicas in random order until one verified copy answers (Strong: a read quorum of them);
   * a replica failing verification is dropped and repaired. Latency: the slowest chunk.
   */
  read(readers: readonly number[]): void {
    const live = readers.filter((i) => this.w.nodes[i].up && this.w.nodes[i].active);
    if (this.ackedObjects.length === 0 || live.length === 0) return;
    const obj = this.ackedObjects[Math.floor(this.rng.next() * this.ackedObjects.length)];
    const reader = live[Math.floor(this.rng.next() * live.length)];
    const need = obj.level === "strong" ? writeQuorum("strong", this.rf) : 1;
    let worst = 0;
    for (const c of obj.chunks) {
      const responses: ReadResponse[] = [];
      const order = this.rng.shuffle([...c.holders].sort((a, b) => a - b));
      for (const h of order) {
        if (responses.length >= need) break;
        if (!this.physicallyLive(h)) continue;
        const req = this.w.transfer(reader, h, REQUEST_BYTES);
        if (req < 0) continue;
        if (c.corrupt.has(h)) {
          this.detectCorrupt(c, h);
          continue;
        }
        const back = this.w.transfer(h, reader, c.size);
        if (back < 0) continue;
        worst = Math.max(worst, req + back);
        responses.push({ replica: this.w.nodes[h].id, version: null, verified: true });
      }
      if (!readOutcome(obj.level, this.rf, responses).ok) {
        this.counts.readsFailed++;
        return;
      }
    }
    this.counts.readsOk++;
    this.readMs.push(worst);
  }

  /** Bit rot on node i: each chunk it holds is corrupted with probability `fraction`. */
  corrupt(i: number, fraction: number): number {
    let n = 0;
    for (const c of this.holdings[i]) {
      if (this.rng.next() < fraction) {
        c.corrupt.add(i);
        n++;
        this.evaluate(c);
      }
    }
    this.counts.corrupted += n;
    return n;
  }

  /** Each up node verifies the checksums of what it holds. */
  scrub(): void {
    for (let i = 0; i < this.holdings.length; i++) {
      if (!this.physicallyLive(i)) continue;
      for (const c of [...this.holdings[i]]) {
        if (c.corrupt.has(i)) {
          this.counts.scrubbed++;
          this.detectCorrupt(c, i);
        }
      }
    }
  }

  // ---- observation ----

  sample(t: number): void {
    let unavailable = 0;
    let inflight = 0;
    let tracked = 0;
    for (const c of this.chunks) {
      inflight += c.pending.size;
      if (!c.tracked) continue;
      tracked++;
      if (this.liveDomains(c) === 0) unavailable++;
    }
    this.samples.push({
      t,
      objects: this.counts.acknowledged,
      chunks: tracked,
      underReplicated: this.under.size,
      unavailable,
      repairInFlight: inflight,
      copies: this.counts.copies,
      bytesCopied: this.counts.bytesCopied,
      writesFailed: this.counts.failed,
      readsOk: this.counts.readsOk,
      readsFailed: this.counts.readsFailed,
    });
  }

  /**
   * Under-replication episodes still open that could be repaired (some replica is live), with
   * how long they have been repairable (ms).
   */
  openEpisodes(now: number): number[] {
    return [...this.under].filter((c) => c.underSince !== null && c.zeroSince === null).map((c) =>
      now - (c.returnedAt ?? c.underSince!)
    );
  }

  /** Chunks of acknowledged objects with no live replica now. */
  unavailableChunks(): number {
    let n = 0;
    for (const c of this.under) if (c.zeroSince !== null) n++;
    return n;
  }

  chunksHeld(i: number): number {
    return this.holdings[i].size;
  }

  /** Acknowledged Strong objects with a chunk that no live node holds intact, and unreadable. */
  strongLosses(): { lost: string[]; unreadable: string[] } {
    const lost: string[] = [];
    const unreadable: string[] = [];
    for (const o of this.objects) {
      if (o.ackedAt === null || o.level !== "strong") continue;
      let isLost = false;
      let isUnreadable = false;
      for (const c of o.chunks) {
        const responses: ReadResponse[] = [];
        for (const h of c.holders) {
          if (this.physicallyLive(h) && !c.corrupt.has(h)) {
            responses.push({ replica: this.w.nodes[h].id, version: null, verified: true });
          }
        }
        if (responses.length === 0) isLost = true;
        else if (!readOutcome("strong", this.rf, responses).ok) isUnreadable = true;
      }
      if (isLost) lost.push(o.id);
      else if (isUnreadable) unreadable.push(o.id);
    }
    return { lost, unreadable };
  }

  /** Live replicas on nodes no longer eligible for their class (end of run). */
  ineligibleReplicas(): string[] {
    const out: string[] = [];
    for (const c of this.chunks) {
      if (!c.tracked) continue;
      for (const h of c.holders) {
        if (this.physicallyLive(h) && !this.eligible(c.obj.cls, h)) {
          out.push(`${c.obj.cls} ${c.id.slice(0, 12)} on ${this.w.nodes[h].name}`);
        }
      }
    }
    return out;
  }

  metrics() {
    const restore = latencyStats(this.restoreMs);
    const outage = latencyStats(this.outageMs);
    const round = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);
    const open = this.openEpisodes(this.w.now());
    let tracked = 0;
    let replicas = 0;
    for (const c of this.chunks) {
      if (!c.tracked) continue;
      tracked++;
      replicas += c.holders.size;
    }
    const { lost, unreadable } = this.strongLosses();
    const ack = latencyStats(this.writeAckMs);
    const rd = latencyStats(this.readMs);
    return {
      objects: {
        written: this.counts.writes,
        acknowledged: this.counts.acknowledged,
        acknowledgedStrong: this.counts.acknowledgedStrong,
        failed: this.counts.failed,
        strong: this.counts.strong,
        eventual: this.counts.eventual,
      },
      chunks: tracked,
      replicas,
      replicationFactor: this.rf,
      bytesWritten: this.counts.bytesWritten,
      writeAck: { count: ack.count, p50Ms: round(ack.p50Ms), p99Ms: round(ack.p99Ms) },
      repair: {
        copies: this.counts.copies,
        copiesFailed: this.counts.copiesFailed,
        bytesCopied: this.counts.bytesCopied,
        releases: this.counts.releases,
        declaredDead: this.counts.declaredDead,
      },
      restore: {
        episodes: restore.count + open.length,
        restored: restore.count,
        open: open.length,
        p50Ms: round(restore.p50Ms),
        p99Ms: round(restore.p99Ms),
        maxMs: round(restore.maxMs),
        /** Episodes in which every replica was down at once (timed from a replica's return). */
        outages: this.outageEpisodes,
        outageP50Ms: round(outage.p50Ms),
        outageMaxMs: round(outage.maxMs),
        unavailableAtEnd: this.unavailableChunks(),
      },
      reads: {
        ok: this.counts.readsOk,
        failed: this.counts.readsFailed,
        checksumFailures: this.counts.checksumFailures,
        p50Ms: round(rd.p50Ms),
        p99Ms: round(rd.p99Ms),
      },
      corrupted: this.counts.corrupted,
      scrubbed: this.counts.scrubbed,
      underReplicatedEnd: this.under.size,
      lostStrongObjects: lost.length,
      unreadableStrongObjects: unreadable.length,
      classViolations: this.counts.classViolations,
    };
  }
}
