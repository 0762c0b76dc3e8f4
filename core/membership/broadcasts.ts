/**
 * Transmit-limited broadcast queue (memberlist's TransmitLimitedQueue): each gossip item is
 * sent at most `limit` times; items sent fewer times go first, newest first among equals; a
 * newer item about the same member replaces the older one.
 */
import type { GossipItem } from "./messages.ts";

interface Entry {
  readonly item: GossipItem;
  readonly member: number;
  /** Encoded size, computed once at enqueue. */
  readonly size: number;
  /** Enqueue order: higher is newer. */
  readonly seq: number;
  transmits: number;
  live: boolean;
}

const NONE: readonly GossipItem[] = [];

export class BroadcastQueue {
  /** buckets[t] holds entries sent t times, newest at the end once sorted. */
  private buckets: Entry[][] = [];
  /** unsorted[t]: an entry older than the bucket's last one was appended to bucket t. */
  private unsorted: boolean[] = [];
  private seq = 0;
  private readonly byMember = new Map<number, Entry>();
  private readonly scratch: Entry[] = [];

  /** Number of live items queued. */
  get size(): number {
    return this.byMember.size;
  }

  enqueue(member: number, item: GossipItem, size: number): void {
    const old = this.byMember.get(member);
    if (old) old.live = false;
    const e: Entry = { item, member, size, seq: this.seq++, transmits: 0, live: true };
    this.byMember.set(member, e);
    (this.buckets[0] ??= []).push(e);
  }

  /**
   * Takes items whose sizes fit in `budget` bytes, counting one transmit each; items that
   * reach `limit` transmits leave the queue.
   */
  take(budget: number, limit: number): readonly GossipItem[] {
    if (this.byMember.size === 0) return NONE;
    const taken = this.scratch;
    taken.length = 0;
    let left = budget;
    outer: for (let t = 0; t < this.buckets.length; t++) {
      const bucket = this.buckets[t];
      if (!bucket) continue;
      if (this.unsorted[t]) {
        bucket.sort(bySeq);
        this.unsorted[t] = false;
      }
      while (bucket.length > 0) {
        const e = bucket[bucket.length - 1];
        if (!e.live) {
          bucket.pop();
          continue;
        }
        if (e.size > left) break outer;
        bucket.pop();
        left -= e.size;
        taken.push(e);
      }
    }
    if (taken.length === 0) return NONE;
    const items: GossipItem[] = new Array(taken.length);
    // Re-file in reverse (oldest first) so the newest ends up last in its new bucket; a bucket
    // that receives an entry older than its last is sorted before its next use.
    for (let i = taken.length - 1; i >= 0; i--) {
      const e = taken[i];
      items[i] = e.item;
      e.transmits++;
      if (e.transmits >= limit) {
        e.live = false;
        if (this.byMember.get(e.member) === e) this.byMember.delete(e.member);
      } else {
        const b = (this.buckets[e.transmits] ??= []);
        if (b.length > 0 && b[b.length - 1].seq > e.seq) this.unsorted[e.transmits] = true;
        b.push(e);
      }
    }
    taken.length = 0;
    return items;
  }

  clear(): void {
    this.buckets = [];
    this.unsorted = [];
    this.byMember.clear();
  }
}

const bySeq = (a: Entry, b: Entry) => a.seq - b.seq;
