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
  /** buckets[t]: entries sent t times, a max-heap on `seq` (newest at the root). */
  private buckets: Entry[][] = [];
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
    heapPush(this.buckets[0] ??= [], e);
  }

  /**
   * Takes items whose sizes fit in `budget` bytes, fewest transmits first and newest first
   * among equals, stopping at the first that does not fit; each counts one transmit, and
   * items that reach `limit` transmits leave the queue.
   */
  take(budget: number, limit: number): readonly GossipItem[] {
    if (this.byMember.size === 0) return NONE;
    const taken = this.scratch;
    taken.length = 0;
    let left = budget;
    outer: for (let t = 0; t < this.buckets.length; t++) {
      const bucket = this.buckets[t];
      if (!bucket) continue;
      while (bucket.length > 0) {
        const e = bucket[0];
        if (!e.live) {
          heapPop(bucket);
          continue;
        }
        if (e.size > left) break outer;
        heapPop(bucket);
        left -= e.size;
        taken.push(e);
      }
    }
    if (taken.length === 0) return NONE;
    const items: GossipItem[] = new Array(taken.length);
    for (let i = 0; i < taken.length; i++) {
      const e = taken[i];
      items[i] = e.item;
      e.transmits++;
      if (e.transmits >= limit) {
        e.live = false;
        if (this.byMember.get(e.member) === e) this.byMember.delete(e.member);
      } else {
        heapPush(this.buckets[e.transmits] ??= [], e);
      }
    }
    taken.length = 0;
    return items;
  }

  clear(): void {
    this.buckets = [];
    this.byMember.clear();
  }
}

function heapPush(h: Entry[], e: Entry): void {
  let i = h.length;
  h.push(e);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (h[parent].seq >= e.seq) break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = e;
}

function heapPop(h: Entry[]): void {
  const last = h.pop()!;
  const n = h.length;
  if (n === 0) return;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && h[r].seq > h[l].seq ? r : l;
    if (h[c].seq <= last.seq) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = last;
}
