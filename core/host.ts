/**
 * The Host contract (DESIGN.md section 2). Protocols in core/ never touch the clock, the
 * network, the disk, timers or global randomness: the environment (simulator or node)
 * provides all of it through this interface. Handlers are synchronous.
 */
import type { IdInterner, NodeId } from "./ids.ts";

export interface DurableStore {
  get(key: string): Uint8Array | undefined;
  /** Buffered until `sync()`; a crash may lose unsynced writes when the scenario says so. */
  put(key: string, value: Uint8Array): void;
  delete(key: string): void;
  /** Makes every earlier put durable (fsync in the node). */
  sync(): void;
}

export type LogLevel = "debug" | "info" | "warn" | "error";
export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
}

export interface Metrics {
  /** Adds `by` (default 1) to a counter, e.g. `mycelium_swim_probes_total`. */
  inc(name: string, by?: number, labels?: Record<string, string>): void;
  /** Sets a gauge. */
  set(name: string, value: number, labels?: Record<string, string>): void;
  /** Records one observation in a histogram. */
  observe(name: string, value: number, labels?: Record<string, string>): void;
}

export interface Host<M> {
  readonly self: NodeId;
  /** Shared id interner (see IdInterner). */
  readonly ids: IdInterner;
  /** Milliseconds on this node's clock: virtual (with offset/drift) in sim, monotonic in node. */
  now(): number;
  /** Uniform in [0, 1) from this node's own seeded stream in the simulator. */
  random(): number;
  send(to: NodeId, msg: M): void;
  /**
   * Sends to a transport address whose node id is not known yet (joining through seed
   * addresses). Only real runtimes have it; the simulator joins by node id.
   */
  sendToAddress?(addr: string, msg: M): void;
  /** Re-setting a key replaces the earlier timer with that key. */
  setTimer(key: string, delayMs: number): void;
  cancelTimer(key: string): void;
  readonly storage: DurableStore;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** The shape every protocol in core/ has. */
export interface Protocol<M> {
  start(host: Host<M>): void;
  onMessage(from: NodeId, msg: M): void;
  onTimer(key: string): void;
  stop(): void;
}

export const nullLogger: Logger = { log() {} };
export const nullMetrics: Metrics = { inc() {}, set() {}, observe() {} };

/** In-memory durable store; `crash(loseUnsynced)` models a power cut. */
export class MemoryStore implements DurableStore {
  private readonly synced = new Map<string, Uint8Array>();
  private readonly pending = new Map<string, Uint8Array | null>();

  get(key: string): Uint8Array | undefined {
    if (this.pending.has(key)) return this.pending.get(key) ?? undefined;
    return this.synced.get(key);
  }
  put(key: string, value: Uint8Array): void {
    this.pending.set(key, value.slice());
  }
  delete(key: string): void {
    this.pending.set(key, null);
  }
  sync(): void {
    for (const [k, v] of this.pending) {
      if (v === null) this.synced.delete(k);
      else this.synced.set(k, v);
    }
    this.pending.clear();
  }
  /** What survives a crash: synced writes, plus unsynced ones unless they are lost. */
  crash(loseUnsynced: boolean): void {
    if (!loseUnsynced) this.sync();
    this.pending.clear();
  }
}
