/**
 * The real Host: monotonic clock, real timers, crypto randomness, a durable store, and a
 * `send` that goes through the node's transport. Protocol handlers run synchronously inside
 * timer callbacks and message deliveries; an exception from one is logged and counted,
 * never allowed to take the process down.
 */
import type { DurableStore, Host, Logger, Metrics } from "../core/host.ts";
import type { IdInterner, NodeId } from "../core/ids.ts";

export interface NodeHostOptions<M> {
  self: NodeId;
  ids: IdInterner;
  storage: DurableStore;
  log: Logger;
  metrics: Metrics;
  /** Delivers a message to a node id (the node resolves its address). */
  send: (to: NodeId, msg: M) => void;
  /** Delivers a message to a transport address (joins through seed addresses). */
  sendToAddress: (addr: string, msg: M) => void;
  /** Called when a timer fires. */
  onTimer: (key: string) => void;
}

/** Uniform doubles in [0, 1) from the OS CSPRNG, drawn in batches. */
class CryptoRandom {
  private readonly buf = new Uint32Array(256);
  private i = 256;
  next(): number {
    if (this.i >= this.buf.length) {
      crypto.getRandomValues(this.buf);
      this.i = 0;
    }
    const hi = this.buf[this.i++] >>> 5; // 27 bits
    if (this.i >= this.buf.length) {
      crypto.getRandomValues(this.buf);
      this.i = 0;
    }
    const lo = this.buf[this.i++] >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

export class NodeHost<M> implements Host<M> {
  readonly self: NodeId;
  readonly ids: IdInterner;
  readonly storage: DurableStore;
  readonly log: Logger;
  readonly metrics: Metrics;
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly rand = new CryptoRandom();
  private readonly origin = performance.now();
  private closed = false;

  constructor(private readonly opts: NodeHostOptions<M>) {
    this.self = opts.self;
    this.ids = opts.ids;
    this.storage = opts.storage;
    this.log = opts.log;
    this.metrics = opts.metrics;
  }

  /** Milliseconds since the host started, from the monotonic clock. */
  now(): number {
    return performance.now() - this.origin;
  }

  random(): number {
    return this.rand.next();
  }

  send(to: NodeId, msg: M): void {
    if (!this.closed) this.guard("send", () => this.opts.send(to, msg));
  }

  sendToAddress(addr: string, msg: M): void {
    if (!this.closed) this.guard("send", () => this.opts.sendToAddress(addr, msg));
  }

  setTimer(key: string, delayMs: number): void {
    if (this.closed) return;
    const old = this.timers.get(key);
    if (old !== undefined) clearTimeout(old);
    const handle = setTimeout(() => {
      this.timers.delete(key);
      if (!this.closed) this.guard(`timer ${key}`, () => this.opts.onTimer(key));
    }, Math.max(0, delayMs));
    this.timers.set(key, handle);
  }

  cancelTimer(key: string): void {
    const handle = this.timers.get(key);
    if (handle !== undefined) {
      clearTimeout(handle);
      this.timers.delete(key);
    }
  }

  /** Runs a protocol handler; a throw is logged and counted, never propagated. */
  guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.metrics.inc("mycelium_handler_errors_total");
      this.log.log("error", "handler_error", { what, error: e });
    }
  }

  /** Cancels every timer; the host does nothing afterwards. */
  close(): void {
    this.closed = true;
    for (const h of this.timers.values()) clearTimeout(h);
    this.timers.clear();
  }

  get pendingTimers(): number {
    return this.timers.size;
  }
}
