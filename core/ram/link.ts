/**
 * The primary's sender towards one backup: the not-yet-sent payload (always merged into one
 * epoch, since unsent epochs merge), the epochs in flight (split into chunks, sent within a
 * byte window), the backup's acknowledged state, and its measured delivery rate.
 */
import type { NodeId } from "../ids.ts";
import { chunkCount, type Epoch, epochBytes, mergeEpochs } from "./epochs.ts";
import type { EpochChunk } from "./messages.ts";
import { PAGE_SIZE } from "./params.ts";

interface OutEpoch<C> {
  e: Epoch<C>;
  baseTerm: number;
  baseEpoch: number;
  chunks: number;
  /** Next chunk not yet sent. */
  next: number;
  sentAt: number[];
  /** Bytes delivered (chunk-acked) on this link when each chunk was sent; -1 after a resend. */
  deliveredAtSend: number[];
  chunkAcked: Uint8Array;
}

export interface LinkLimits {
  windowBytes: number;
  perChunk: number;
  leaseMs: number;
  leaseRenewMs: number;
}

/** Bucket length of the windowed-minimum round trip. */
const RTT_BUCKET_MS = 2500;

/** Weight of a new delivery-rate sample in the EWMA. */
const RATE_ALPHA = 0.25;

export class BackupLink<C> {
  /** Captured epochs not yet started on this link, merged into one. */
  pending: Epoch<C> | null = null;
  readonly inflight: OutEpoch<C>[] = [];
  /** The backup's state once everything started so far is applied. */
  baseTerm = 0;
  baseEpoch = 0;
  /** The backup's state is unknown or unusable: a full-image resync must come first. */
  needsResync: boolean;
  /**
   * False while the backup is only presumed to hold its start state: epochs queue but
   * nothing is sent until its first lease grant confirms the state (or shows it needs a
   * resync).
   */
  verified: boolean;
  /** The state the backup was assumed to hold when the link was made (-1: unknown). */
  readonly startTerm: number = -1;
  readonly startEpoch: number = -1;
  /** The newest epoch of the primary's term the backup acknowledged as applied. */
  acked = -1;
  /** Last time anything arrived from the backup (acks, grants). */
  lastHeard: number;
  /** False after a drop (or while resyncing) until epoch `clearAt` is acknowledged. */
  consistent: boolean;
  clearAt = -1;
  /** Payload bytes chunk-acked in total, and the EWMA delivery rate in bytes/ms (0: unknown). */
  delivered = 0;
  rate = 0;
  /** Payload bytes of deltas acknowledged as applied since the last tick. */
  appliedBytesSinceTick = 0;
  /**
   * Bottleneck bandwidth estimate, bytes/ms: the largest recent delivery-rate sample, halving
   * per second without a larger one; and the smallest lease round trip seen on this link.
   */
  maxRate = 0;
  private maxRateAt = 0;
  minRtt = Infinity;

  constructor(
    readonly node: NodeId,
    now: number,
    base: { term: number; epoch: number } | null,
    verified = true,
  ) {
    this.lastHeard = now;
    this.needsResync = base === null;
    this.verified = base === null || verified;
    this.consistent = base !== null && this.verified;
    if (base) {
      this.startTerm = base.term;
      this.startEpoch = base.epoch;
      this.baseTerm = base.term;
      this.baseEpoch = base.epoch;
      this.acked = base.epoch;
    }
  }

  /** A lease round trip on this link (small messages: propagation plus queueing). */
  onLeaseRtt(rtt: number, now: number): void {
    this.minRtt = Math.min(this.minRtt, rtt);
    // A windowed minimum (two 2.5 s buckets, as BBR's min_rtt filter): the propagation round
    // trip, free of queueing behind epoch data, that still follows a path that got slower.
    if (now - this.bucketStart >= RTT_BUCKET_MS) {
      this.prevBucketMin = this.bucketMin;
      this.bucketMin = rtt;
      this.bucketStart = now;
    } else this.bucketMin = Math.min(this.bucketMin, rtt);
  }

  private bucketStart = -Infinity;
  private bucketMin = Infinity;
  private prevBucketMin = Infinity;

  /** The propagation round trip over the last 2.5-5 s (Infinity before the first sample). */
  get recentMinRtt(): number {
    return Math.min(this.bucketMin, this.prevBucketMin);
  }

  /**
   * The window in force: the configured one, capped at the bandwidth-delay product plus a
   * queueing allowance. Lease requests share the link with epoch payload: a deeper queue
   * would delay the grants past the lease and fence the primary for want of bandwidth. The
   * allowance is half the slack a grant has (lease - renewal period - round trip).
   */
  window(lim: LinkLimits): number {
    const chunk = lim.perChunk * PAGE_SIZE;
    // Until the link is measured, start small (as TCP does): two chunks.
    if (this.maxRate === 0 || this.minRtt === Infinity) return Math.min(lim.windowBytes, 2 * chunk);
    const allowance = Math.max(0, (lim.leaseMs - lim.leaseRenewMs - this.minRtt) / 2);
    const cap = this.maxRate * (this.minRtt + allowance);
    return Math.min(lim.windowBytes, Math.max(chunk, cap));
  }

  /** Queues a delta; merges into the queued payload if there is one. */
  enqueue(e: Epoch<C>): void {
    if (this.needsResync) return; // the coming resync covers it
    this.pending = this.pending ? mergeEpochs(this.pending, e) : e;
  }

  /** Starts a full-image resync: everything queued or in flight is superseded. */
  startResync(full: Epoch<C>, perChunk: number): void {
    this.pending = null;
    this.inflight.length = 0;
    this.needsResync = false;
    this.consistent = false;
    this.clearAt = full.epoch;
    this.start(full, perChunk);
  }

  get resyncing(): boolean {
    return this.inflight.some((o) => o.e.resync);
  }

  /** Unacknowledged delta payload (queued or in flight): what counts toward b. */
  get outstandingBytes(): number {
    let n = this.pending ? epochBytes(this.pending) : 0;
    for (const o of this.inflight) if (!o.e.resync) n += epochBytes(o.e);
    return n;
  }

  /**
   * Bytes the window is charged with: fully sent epochs count whole until applied (so a
   * backup waiting on a lost chunk does not pile up more and more staged epochs), the
   * epoch being sent counts its chunks in flight (so an epoch bigger than the window still
   * goes, chunk by chunk).
   */
  windowUsed(perChunk: number): number {
    let n = 0;
    for (const o of this.inflight) {
      if (o.next === o.chunks) n += epochBytes(o.e);
      else {
        for (let i = 0; i < o.next; i++) if (!o.chunkAcked[i]) n += this.chunkBytes(o, i, perChunk);
      }
    }
    return n;
  }

  private start(e: Epoch<C>, perChunk: number): OutEpoch<C> {
    const chunks = chunkCount(e.pages.length, perChunk);
    const o: OutEpoch<C> = {
      e,
      baseTerm: this.baseTerm,
      baseEpoch: this.baseEpoch,
      chunks,
      next: 0,
      sentAt: [],
      deliveredAtSend: [],
      chunkAcked: new Uint8Array(chunks),
    };
    this.baseTerm = e.term;
    this.baseEpoch = e.epoch;
    this.inflight.push(o);
    return o;
  }

  private chunkMsg(vmId: string, o: OutEpoch<C>, i: number, perChunk: number): EpochChunk<C> {
    const from = i * perChunk;
    const to = Math.min(o.e.pages.length, from + perChunk);
    return {
      t: "ram-epoch",
      vmId,
      term: o.e.term,
      epoch: o.e.epoch,
      baseTerm: o.baseTerm,
      baseEpoch: o.baseEpoch,
      resync: o.e.resync,
      chunk: i,
      chunks: o.chunks,
      pages: o.e.pages.slice(from, to),
      contents: o.e.contents.slice(from, to),
    };
  }

  private chunkBytes(o: OutEpoch<C>, i: number, perChunk: number): number {
    return Math.min(perChunk, o.e.pages.length - i * perChunk) * PAGE_SIZE;
  }

  /**
   * Sends chunks while the window allows. A new epoch starts only once every earlier one is
   * fully sent, so the queued payload keeps merging while the link is busy.
   */
  pump(vmId: string, lim: LinkLimits, now: number, send: (m: EpochChunk<C>) => void): void {
    if (this.needsResync || !this.verified) return;
    const window = this.window(lim);
    let used = this.windowUsed(lim.perChunk);
    for (;;) {
      let o = this.inflight.find((x) => x.next < x.chunks);
      // Like a TCP byte window: send while below it (the last chunk may overshoot it).
      if (used >= window) return;
      if (!o) {
        if (!this.pending) return;
        o = this.start(this.pending, lim.perChunk);
        this.pending = null;
      }
      const bytes = this.chunkBytes(o, o.next, lim.perChunk);
      const i = o.next++;
      o.sentAt[i] = now;
      o.deliveredAtSend[i] = this.delivered;
      // Once the epoch is fully sent it is charged whole.
      used = o.next === o.chunks ? this.windowUsed(lim.perChunk) : used + bytes;
      send(this.chunkMsg(vmId, o, i, lim.perChunk));
    }
  }

  /** A chunk reached the backup: frees window and samples the delivery rate. */
  onChunkAck(epoch: number, resync: boolean, chunk: number, now: number, perChunk: number): void {
    const o = this.inflight.find((x) => x.e.epoch === epoch && x.e.resync === resync);
    if (!o || chunk < 0 || chunk >= o.next || o.chunkAcked[chunk]) return;
    o.chunkAcked[chunk] = 1;
    const bytes = this.chunkBytes(o, chunk, perChunk);
    this.delivered += bytes;
    const d0 = o.deliveredAtSend[chunk];
    const dt = now - o.sentAt[chunk];
    // Delivery-rate sample (bytes delivered since this chunk left, over its round trip);
    // resent chunks are ambiguous and skipped.
    if (d0 >= 0 && dt > 0) {
      const sample = (this.delivered - d0) / dt;
      this.rate = this.rate === 0 ? sample : this.rate + RATE_ALPHA * (sample - this.rate);
      const decayed = this.maxRate * Math.pow(0.5, (now - this.maxRateAt) / 1000);
      this.maxRate = Math.max(sample, decayed);
      this.maxRateAt = now;
    }
  }

  /**
   * The backup applied everything up to `epoch` (of the primary's term): forgets those epochs.
   * Returns the delta payload bytes newly acknowledged.
   */
  onApplied(epoch: number): number {
    if (epoch <= this.acked) return 0;
    this.acked = epoch;
    let bytes = 0;
    while (this.inflight.length > 0 && this.inflight[0].e.epoch <= epoch) {
      const o = this.inflight.shift()!;
      if (!o.e.resync) bytes += epochBytes(o.e);
    }
    if (!this.consistent && epoch >= this.clearAt && !this.resyncing) this.consistent = true;
    this.appliedBytesSinceTick += bytes;
    return bytes;
  }

  /** Resends chunks sent at or before `before` and still not acknowledged. */
  retransmit(
    vmId: string,
    before: number,
    now: number,
    perChunk: number,
    send: (m: EpochChunk<C>) => void,
  ): number {
    let n = 0;
    for (const o of this.inflight) {
      for (let i = 0; i < o.next; i++) {
        if (o.chunkAcked[i] || o.sentAt[i] > before) continue;
        o.sentAt[i] = now;
        o.deliveredAtSend[i] = -1;
        send(this.chunkMsg(vmId, o, i, perChunk));
        n++;
      }
    }
    return n;
  }

  /** Drops the queued (unsent) payload; returns its pages so they can be re-marked dirty. */
  dropPending(): readonly number[] {
    const p = this.pending;
    this.pending = null;
    return p ? p.pages : [];
  }

  /** The backup's state is confirmed (`onChain`) or refuted (a resync follows). */
  verify(onChain: boolean): void {
    this.verified = true;
    if (onChain) this.consistent = true;
    else this.reset();
  }

  /** Forgets everything sent: the backup's state is unknown, a resync follows. */
  reset(): void {
    this.verified = true;
    this.acked = -1;
    this.pending = null;
    this.inflight.length = 0;
    this.needsResync = true;
    this.consistent = false;
  }
}
