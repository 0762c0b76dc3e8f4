/**
 * Exponential backoff with jitter, and a reconnect loop built on it.
 *
 * `backoffDelay(attempt)` takes the capped exponential `cap = min(maxMs, baseMs * factor^attempt)`
 * and randomizes a `jitter` fraction of it:
 *
 *   delay = cap * (1 - jitter) + random() * cap * jitter,   so delay in [cap * (1 - jitter), cap]
 *
 * With the default jitter 0.5 this is "equal jitter" (AWS architecture blog, "Exponential
 * Backoff And Jitter"): never less than half the cap, so a retry storm is spread out without
 * ever retrying immediately. jitter = 1 gives "full jitter" (uniform in [0, cap]); jitter = 0
 * gives plain exponential backoff.
 */
import { ConfigError } from "../core/errors.ts";

export interface BackoffOptions {
  /** Delay cap for attempt 0, ms (default 100). */
  baseMs?: number;
  /** Largest delay, ms (default 30,000). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Randomized fraction of the delay, in [0, 1] (default 0.5: equal jitter). */
  jitter?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = {
  baseMs: 100,
  maxMs: 30_000,
  factor: 2,
  jitter: 0.5,
};

/** Fills defaults and validates; throws `ConfigError` naming the bad field. */
export function backoffOptions(opts: BackoffOptions = {}): Required<BackoffOptions> {
  const o = { ...DEFAULT_BACKOFF, ...stripUndefined(opts) };
  if (!(Number.isFinite(o.baseMs) && o.baseMs >= 0)) {
    throw new ConfigError(`must be a finite number >= 0, got ${o.baseMs}`, "backoff.baseMs");
  }
  if (!(Number.isFinite(o.maxMs) && o.maxMs >= o.baseMs)) {
    throw new ConfigError(
      `must be a finite number >= baseMs (${o.baseMs}), got ${o.maxMs}`,
      "backoff.maxMs",
    );
  }
  if (!(Number.isFinite(o.factor) && o.factor >= 1)) {
    throw new ConfigError(`must be a finite number >= 1, got ${o.factor}`, "backoff.factor");
  }
  if (!(o.jitter >= 0 && o.jitter <= 1)) {
    throw new ConfigError(`must be in [0, 1], got ${o.jitter}`, "backoff.jitter");
  }
  return o;
}

function stripUndefined(o: BackoffOptions): BackoffOptions {
  const out: BackoffOptions = {};
  for (const [k, v] of Object.entries(o)) {
    if (v !== undefined) (out as Record<string, number>)[k] = v;
  }
  return out;
}

/** The capped exponential before jitter: min(maxMs, baseMs * factor^attempt). */
export function backoffCap(attempt: number, opts: BackoffOptions = {}): number {
  const o = backoffOptions(opts);
  return capOf(attempt, o);
}

function capOf(attempt: number, o: Required<BackoffOptions>): number {
  if (Number.isNaN(attempt)) throw new RangeError("attempt must be a number, got NaN");
  const a = Math.max(0, Math.floor(attempt));
  const raw = o.baseMs * Math.pow(o.factor, a); // Infinity for huge attempts: capped below
  return Math.min(o.maxMs, raw);
}

/**
 * Delay before retry number `attempt` (0 for the first retry), in ms, in
 * [cap * (1 - jitter), cap] with cap = min(maxMs, baseMs * factor^attempt). `random` must return
 * values in [0, 1); values outside are clamped. Negative or fractional attempts are floored
 * to an integer >= 0.
 */
export function backoffDelay(
  attempt: number,
  opts: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const o = backoffOptions(opts);
  const cap = capOf(attempt, o);
  let r = random();
  if (!(r >= 0)) r = 0; // also NaN
  if (r > 1) r = 1;
  return cap * (1 - o.jitter) + r * cap * o.jitter;
}

export type SetTimer = (fn: () => void, ms: number) => unknown;
export type ClearTimer = (handle: unknown) => void;

/**
 * Keeps a connection up: calls `connect()`; when it rejects, retries after
 * `backoffDelay(attempt)` with attempt 0, 1, 2, ...; when it resolves (connected), the attempt
 * counter resets. When an established connection is later lost, the owner calls `failed()`
 * to schedule a reconnect (at attempt 0's delay, then growing). `stop()` cancels everything;
 * a connect that settles after `stop()` is ignored.
 *
 * At most one connect is in flight or scheduled at any time: `failed()` while one is
 * pending is a no-op. Timers are injectable so tests need no real time.
 *
 * Note: the counter resets on every successful connect, so a peer that accepts and then
 * drops at once is retried every ~baseMs; owners that care call `succeeded()` only once the
 * connection has proved useful (set `resetOnConnect: false`).
 */
export class Reconnector {
  private readonly o: Required<BackoffOptions>;
  private readonly resetOnConnect: boolean;
  private attemptNo = 0;
  private timer: unknown = null;
  private connecting = false;
  private running = false;
  private generation = 0;
  /** Number of connect() calls made. */
  connects = 0;
  /** The delay chosen for the currently scheduled retry (ms), or null. */
  scheduledDelay: number | null = null;
  /** Last connect() failure, for status pages. */
  lastError: unknown = undefined;

  constructor(
    private readonly connect: () => Promise<void>,
    opts: BackoffOptions & { resetOnConnect?: boolean } = {},
    private readonly random: () => number = Math.random,
    private readonly setTimer: SetTimer = (fn, ms) => setTimeout(fn, ms),
    private readonly clearTimer: ClearTimer = (h) => clearTimeout(h as number),
  ) {
    this.o = backoffOptions({
      baseMs: opts.baseMs,
      maxMs: opts.maxMs,
      factor: opts.factor,
      jitter: opts.jitter,
    });
    this.resetOnConnect = opts.resetOnConnect ?? true;
  }

  /** The attempt number the next scheduled retry uses. */
  get attempt(): number {
    return this.attemptNo;
  }
  get isRunning(): boolean {
    return this.running;
  }
  /** True while a connect() is in flight. */
  get isConnecting(): boolean {
    return this.connecting;
  }
  /** True while a retry is scheduled. */
  get isScheduled(): boolean {
    return this.timer !== null;
  }

  /** Starts connecting now. No-op if already running. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.generation++;
    this.attemptNo = 0;
    this.run();
  }

  private run(): void {
    if (!this.running || this.connecting) return;
    this.connecting = true;
    this.connects++;
    const gen = this.generation;
    let p: Promise<void>;
    try {
      p = Promise.resolve(this.connect());
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      () => {
        if (gen !== this.generation) return;
        this.connecting = false;
        if (this.resetOnConnect) this.succeeded();
      },
      (e) => {
        if (gen !== this.generation) return;
        this.connecting = false;
        this.lastError = e;
        this.failed();
      },
    );
  }

  /** The connection is healthy: the next failure starts again from attempt 0. */
  succeeded(): void {
    this.attemptNo = 0;
  }

  /**
   * A connect failed or an established connection was lost: schedule a retry after
   * `backoffDelay(attempt)` and bump the attempt. No-op when stopped, connecting or already
   * scheduled.
   */
  failed(): void {
    if (!this.running || this.connecting || this.timer !== null) return;
    const delay = backoffDelay(this.attemptNo, this.o, this.random);
    this.attemptNo++;
    this.scheduledDelay = delay;
    const gen = this.generation;
    this.timer = this.setTimer(() => {
      if (gen !== this.generation) return;
      this.timer = null;
      this.scheduledDelay = null;
      this.run();
    }, delay);
  }

  /** Cancels the scheduled retry and ignores any connect still in flight. Idempotent. */
  stop(): void {
    this.running = false;
    this.generation++;
    this.connecting = false;
    this.scheduledDelay = null;
    if (this.timer !== null) {
      this.clearTimer(this.timer);
      this.timer = null;
    }
  }
}
