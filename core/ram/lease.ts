/**
 * The primary's majority lease. A backup that grants a lease request promises not to vote
 * for another candidate for `leaseMs` from when it *received* the request; the primary
 * counts each grant from when it *sent* the request (never later than the receipt), so its
 * view of the lease always ends no later than the backups' promises, however slow the grant
 * was to come back. The primary holds the lease while a majority of the replica group
 * (itself included) granted within `leaseMs`.
 *
 * With clocks that drift apart by up to a fraction d, the primary counts a lease as
 * leaseMs * (1 - d) / (1 + d): its fast clock against a backup's slow one still ends first.
 */
import type { NodeId } from "../ids.ts";

/** Replicas needed for a majority of a group of `n`. */
export const majority = (n: number): number => Math.floor(n / 2) + 1;

export class PrimaryLease {
  /** Per backup: the send time of the newest request it granted. */
  private readonly grants = new Map<NodeId, number>();
  /** Send times of outstanding requests by sequence number. */
  private readonly sent = new Map<number, number>();
  private seq = 0;

  /** The lease as this primary counts it, ms. */
  readonly leaseMs: number;

  constructor(leaseMs: number, maxClockDrift = 0) {
    this.leaseMs = leaseMs * (1 - maxClockDrift) / (1 + maxClockDrift);
  }

  /** Records a request sent now; returns its sequence number. */
  request(now: number): number {
    const s = ++this.seq;
    this.sent.set(s, now);
    // Requests older than a lease can no longer extend it: forget them.
    for (const [k, t] of this.sent) {
      if (t > now - this.leaseMs) break;
      this.sent.delete(k);
    }
    return s;
  }

  /** Send time of request `seq`, if it can still count. */
  sentAt(seq: number): number | undefined {
    return this.sent.get(seq);
  }

  /** A grant whose promise started no earlier than `since` (this node's clock). */
  grant(from: NodeId, since: number): void {
    const prev = this.grants.get(from);
    if (prev === undefined || since > prev) this.grants.set(from, since);
  }

  forget(node: NodeId): void {
    this.grants.delete(node);
  }

  /**
   * When the lease ends for a group of `backups` plus this node: the (q-1)-th newest grant
   * plus leaseMs (the node itself always counts). +Infinity with no backups.
   */
  expiry(backups: readonly NodeId[]): number {
    const need = majority(backups.length + 1) - 1;
    if (need === 0) return Infinity;
    const times = backups.map((b) => this.grants.get(b) ?? -Infinity).sort((a, b) => b - a);
    return times[need - 1] + this.leaseMs;
  }
}
