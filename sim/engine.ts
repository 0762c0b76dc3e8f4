/**
 * Discrete-event engine core (DESIGN.md section 3): a virtual clock in ms, an event queue
 * ordered by (time, insertion sequence), handlers registered by small integer kind, and a
 * rolling trace hash over every processed event for the determinism contract.
 *
 * Events carry (kind, a, b, obj): `a` and `b` are int32 (values are coerced with ToInt32, as
 * in an Int32Array), `obj` is any JS value (kept by reference, not hashed).
 */
import { EventHeap } from "./heap.ts";

export type Handler = (a: number, b: number, obj: unknown) => void;

// Scratch views for reading the bits of a float64.
const F64 = new Float64Array(1);
const I32 = new Int32Array(F64.buffer);

/** Lane 1 step: xor-multiply-xorshift (bijective in h for a fixed word). */
function lane1(h: number, w: number): number {
  h = Math.imul(h ^ w, 0x9e3779b1);
  return h ^ (h >>> 15);
}

/** Lane 2 step: add-multiply-xorshift with different constants. */
function lane2(h: number, w: number): number {
  h = Math.imul((h + w) | 0, 0x85ebca77);
  return h ^ (h >>> 13);
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

function hex8(x: number): string {
  return (x >>> 0).toString(16).padStart(8, "0");
}

export class Engine {
  private readonly heap = new EventHeap();
  private readonly handlers: Handler[] = [];
  /** Rolling trace hash, two int32 lanes (typed storage keeps them unboxed). */
  private readonly h = new Int32Array([0x243f6a88, 0x13198a2e]);
  private _now = 0;
  private _events = 0;
  private _halted = false;
  private running = false;

  /** Virtual ms: time of the event being processed, or of the last one / last `run` bound. */
  get now(): number {
    return this._now;
  }

  /** True if the most recent `run` was stopped by `halt()` (reset when `run` starts). */
  get halted(): boolean {
    return this._halted;
  }

  /** Number of queued events. */
  get pending(): number {
    return this.heap.size;
  }

  /** Total events processed by this engine. */
  get events(): number {
    return this._events;
  }

  /** Time of the next queued event, or Infinity if none. */
  peekTime(): number {
    return this.heap.peekTime();
  }

  /** Registers a handler; returns its kind id (0, 1, 2, ... in registration order). */
  register(handler: Handler): number {
    if (typeof handler !== "function") throw new TypeError("Engine.register needs a function");
    this.handlers.push(handler);
    return this.handlers.length - 1;
  }

  /**
   * Queues an event at virtual time `at` (ms). Throws RangeError if `at` is NaN, earlier than
   * `now`, or infinite, or if `kind` is not a registered id. Equal times run in scheduling
   * order.
   */
  schedule(at: number, kind: number, a: number, b: number, obj: unknown = undefined): void {
    if (!(at >= this._now) || at === Infinity) this.badTime(at);
    if (!(kind >= 0 && kind < this.handlers.length && (kind | 0) === kind)) this.badKind(kind);
    this.heap.push(at + 0, kind, a, b, obj); // + 0 folds -0 into 0 for the hash
  }

  private badTime(at: number): never {
    throw new RangeError(
      `Engine.schedule: time ${at} is ${
        Number.isNaN(at) ? "NaN" : at === Infinity ? "infinite" : `before now (${this._now})`
      }`,
    );
  }

  private badKind(kind: number): never {
    throw new RangeError(
      `Engine.schedule: kind ${kind} is not registered (${this.handlers.length} handlers)`,
    );
  }

  /**
   * Processes queued events with time <= `until` in (time, sequence) order, at most
   * `maxEvents` of them, and returns how many were processed. If it stops because no queued
   * event is <= `until` (not because of `maxEvents` or `halt()`), `now` advances to `until`
   * (unless `until` is Infinity or earlier than `now`). Not re-entrant.
   */
  run(until: number, maxEvents = Infinity): number {
    if (Number.isNaN(until)) throw new RangeError("Engine.run: until is NaN");
    if (!(maxEvents >= 0)) throw new RangeError(`Engine.run: maxEvents ${maxEvents} is invalid`);
    if (this.running) throw new Error("Engine.run is not re-entrant");
    this.running = true;
    this._halted = false;
    const heap = this.heap;
    const handlers = this.handlers;
    const h = this.h;
    let count = 0;
    try {
      for (;;) {
        if (count >= maxEvents || this._halted) break;
        const t = heap.peekTime();
        if (t > until || t === Infinity) {
          if (until !== Infinity && until > this._now) this._now = until;
          break;
        }
        const s = heap.pop();
        const kind = heap.kinds[s];
        const a = heap.as[s];
        const b = heap.bs[s];
        const objs = heap.objs;
        const obj = objs[s];
        objs[s] = undefined;
        this._now = t;
        this._events++;
        count++;
        F64[0] = t;
        const tl = I32[0], th = I32[1];
        let h1 = h[0], h2 = h[1];
        h1 = lane1(lane1(lane1(lane1(lane1(h1, tl), th), kind), a), b);
        h2 = lane2(lane2(lane2(lane2(lane2(h2, tl), th), kind), a), b);
        h[0] = h1;
        h[1] = h2;
        handlers[kind](a, b, obj);
      }
    } finally {
      this.running = false;
    }
    return count;
  }

  /** Stops the current `run` after the event being processed. */
  halt(): void {
    this._halted = true;
  }

  /**
   * Folds an extra value into the trace hash (e.g. a message type code). Int32 values are
   * folded as one word; any other number by its float64 bits.
   */
  mix(x: number): void {
    const h = this.h;
    if ((x | 0) === x) {
      h[0] = lane1(h[0], x);
      h[1] = lane2(h[1], x);
    } else {
      F64[0] = x;
      const lo = I32[0], hi = I32[1];
      h[0] = lane1(lane1(lane1(h[0], 0x7ff1), lo), hi);
      h[1] = lane2(lane2(lane2(h[1], 0x7ff1), lo), hi);
    }
  }

  /** The trace hash so far as 16 hex chars (does not change the rolling state). */
  traceHash(): string {
    const h1 = this.h[0], h2 = this.h[1];
    const x = fmix32(h1 ^ Math.imul(fmix32(h2), 0x27d4eb2f));
    const y = fmix32(h2 ^ Math.imul(x, 0x165667b1) ^ 0x1b873593);
    return hex8(x) + hex8(y);
  }
}

/** What a simulator reports while it runs (its progress line). */
export interface RunProgress {
  virtualMs: number;
  durationMs: number;
  events: number;
}

/**
 * Runs `engine` to `durationMs` in slices of `sliceEvents`, reporting progress after each,
 * until the end, `stopAt` events, or `stop()` says so (a violation, a height reached).
 */
export function runSliced(
  engine: Engine,
  o: {
    durationMs: number;
    stopAt: number;
    sliceEvents: number;
    stop: () => boolean;
    onProgress?: (p: RunProgress) => void;
  },
): void {
  while (!o.stop() && engine.events < o.stopAt) {
    const budget = Math.min(o.sliceEvents, o.stopAt - engine.events);
    const done = engine.run(o.durationMs, budget);
    o.onProgress?.({ virtualMs: engine.now, durationMs: o.durationMs, events: engine.events });
    if (done < budget || engine.peekTime() > o.durationMs) break;
  }
}

/** Adds the time since `upSince` to every running node's `upMs` (the end of a run). */
export function closeUptime(
  nodes: Iterable<{ up: boolean; upMs: number; upSince: number }>,
  now: number,
): void {
  for (const n of nodes) {
    if (n.up) {
      n.upMs += now - n.upSince;
      n.upSince = now;
    }
  }
}
