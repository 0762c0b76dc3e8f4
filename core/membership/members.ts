/**
 * Compact member table indexed by interned node index: one byte of state and a 32-bit
 * incarnation per member, in typed arrays, so 10,000 nodes can each hold a full view of
 * 10,000 members (about 1 GB in all) in one simulator process.
 */
import { MemberState } from "./messages.ts";

export const UNKNOWN = 255;

export class MemberTable {
  state: Uint8Array;
  inc: Uint32Array;
  /** Probe order: indices of known members (self excluded), in a random order. */
  private order: Int32Array;
  private orderLen = 0;
  private cursor = 0;
  /** Members currently alive or suspect (self excluded). */
  live = 0;
  /** Members known in any state (self excluded). */
  known = 0;
  /** Members currently dead (not left). */
  dead = 0;
  /** Sparse extras: addresses (node runtime only) and time of death for gossip-to-the-dead. */
  readonly addr = new Map<number, string>();
  readonly diedAt = new Map<number, number>();

  constructor(capacity: number) {
    const cap = Math.max(8, capacity);
    this.state = new Uint8Array(cap).fill(UNKNOWN);
    this.inc = new Uint32Array(cap);
    this.order = new Int32Array(cap);
  }

  private grow(min: number): void {
    const cap = Math.max(min + 1, Math.ceil(this.state.length * 1.5));
    const s = new Uint8Array(cap).fill(UNKNOWN);
    s.set(this.state);
    const inc = new Uint32Array(cap);
    inc.set(this.inc);
    const order = new Int32Array(cap);
    order.set(this.order);
    this.state = s;
    this.inc = inc;
    this.order = order;
  }

  get(idx: number): number {
    return idx < this.state.length ? this.state[idx] : UNKNOWN;
  }

  /**
   * Adds a member not yet known, at a random position of the probe order (so new members
   * are not all probed last), as memberlist does.
   */
  add(idx: number, randomSlot: number): void {
    if (idx >= this.state.length) this.grow(idx);
    const pos = Math.floor(randomSlot * (this.orderLen + 1));
    this.order[this.orderLen] = this.order[pos];
    this.order[pos] = idx;
    this.orderLen++;
    this.known++;
  }

  /**
   * Loads members not yet known, all alive, in one pass (a snapshot). The probe order is a
   * random affine permutation (rotation and a stride coprime to the count): cheap, and
   * different per node so probes are not synchronised; it is reshuffled after the first pass.
   */
  loadAlive(
    members: Int32Array,
    incs: readonly number[],
    skip: number,
    random: () => number,
  ): number[] {
    const fresh: number[] = [];
    for (let i = 0; i < members.length; i++) {
      const idx = members[i];
      if (idx === skip || this.get(idx) !== UNKNOWN) continue;
      if (idx >= this.state.length) this.grow(idx);
      this.state[idx] = MemberState.Alive;
      this.inc[idx] = incs[i];
      fresh.push(idx);
    }
    const n = fresh.length;
    if (n === 0) return fresh;
    let stride = 1 + Math.floor(random() * n);
    while (gcd(stride, n) !== 1) stride++;
    const offset = Math.floor(random() * n);
    const base = this.orderLen;
    for (let i = 0; i < n; i++) this.order[base + i] = fresh[(offset + i * stride) % n];
    this.orderLen += n;
    this.known += n;
    this.live += n;
    return fresh;
  }

  /** Sets a known member's state and incarnation, keeping the live count. */
  set(idx: number, state: number, inc: number): void {
    const old = this.state[idx];
    const wasLive = old === MemberState.Alive || old === MemberState.Suspect;
    const isLive = state === MemberState.Alive || state === MemberState.Suspect;
    if (wasLive && !isLive) this.live--;
    else if (!wasLive && isLive) this.live++;
    if (old === MemberState.Dead) this.dead--;
    if (state === MemberState.Dead) this.dead++;
    this.state[idx] = state;
    this.inc[idx] = inc;
  }

  /** Next member to probe (alive or suspect), reshuffling after each full pass. */
  nextProbeTarget(random: () => number): number {
    if (this.live === 0) return -1;
    // Up to the rest of this pass plus one whole reshuffled pass: a live member is found
    // whenever one exists, however many dead ones sit in the order.
    for (let tries = 0; tries < 2 * this.orderLen + 1; tries++) {
      if (this.cursor >= this.orderLen) {
        this.cursor = 0;
        this.shuffle(random);
      }
      const idx = this.order[this.cursor++];
      const s = this.state[idx];
      if (s === MemberState.Alive || s === MemberState.Suspect) return idx;
    }
    return -1;
  }

  private shuffle(random: () => number): void {
    const o = this.order;
    for (let i = this.orderLen - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = o[i];
      o[i] = o[j];
      o[j] = t;
    }
  }

  /**
   * Up to k distinct random members accepted by `ok`, by rejection sampling over the order
   * array (bounded at 3 x size draws, like memberlist's kRandomNodes).
   */
  randomMembers(k: number, random: () => number, ok: (idx: number) => boolean): number[] {
    const out: number[] = [];
    const n = this.orderLen;
    if (n === 0 || k <= 0) return out;
    for (let i = 0; i < 3 * n && out.length < k; i++) {
      const idx = this.order[Math.floor(random() * n)];
      if (!ok(idx) || out.includes(idx)) continue;
      out.push(idx);
    }
    return out;
  }

  /** Indices of all known members (self excluded), in probe order. */
  members(): Int32Array {
    return this.order.subarray(0, this.orderLen);
  }
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
