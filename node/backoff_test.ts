import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError } from "../core/errors.ts";
import {
  backoffCap,
  backoffDelay,
  type BackoffOptions,
  DEFAULT_BACKOFF,
  Reconnector,
} from "./backoff.ts";

const optsArb = fc
  .record({
    baseMs: fc.integer({ min: 1, max: 5_000 }),
    extra: fc.integer({ min: 0, max: 100_000 }),
    factor: fc.double({ min: 1, max: 4, noNaN: true }),
    jitter: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map(({ baseMs, extra, factor, jitter }): Required<BackoffOptions> => ({
    baseMs,
    maxMs: baseMs + extra,
    factor,
    jitter,
  }));
const randomArb = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

Deno.test("delay lies in [cap*(1-jitter), cap] for every attempt (property)", () => {
  fc.assert(
    fc.property(optsArb, fc.integer({ min: 0, max: 2_000 }), randomArb, (o, attempt, r) => {
      const cap = Math.min(o.maxMs, o.baseMs * Math.pow(o.factor, attempt));
      assert.equal(backoffCap(attempt, o), cap);
      if (attempt === 0) assert.equal(cap, o.baseMs); // attempt 0: in [base*(1-jitter), base]
      const d = backoffDelay(attempt, o, () => r);
      const eps = 1e-9 * cap;
      assert.ok(d >= cap * (1 - o.jitter) - eps, `delay ${d} below ${cap * (1 - o.jitter)}`);
      assert.ok(d <= cap + eps, `delay ${d} above cap ${cap}`);
      assert.ok(d <= o.maxMs + eps, `delay ${d} above maxMs ${o.maxMs}`);
      assert.ok(Number.isFinite(d) && d >= 0);
    }),
    { numRuns: 3000 },
  );
});

Deno.test("the cap is non-decreasing in the attempt and reaches maxMs (property)", () => {
  fc.assert(
    fc.property(optsArb, (o) => {
      let prev = 0;
      for (let a = 0; a < 200; a++) {
        const cap = backoffCap(a, o);
        assert.ok(cap >= prev, `cap decreased at attempt ${a}`);
        assert.ok(cap <= o.maxMs);
        prev = cap;
      }
      if (o.factor >= 1.1) assert.equal(prev, o.maxMs);
    }),
    { numRuns: 300 },
  );
});

Deno.test("attempt 0 is around base; defaults are equal jitter", () => {
  assert.deepEqual(DEFAULT_BACKOFF, { baseMs: 100, maxMs: 30_000, factor: 2, jitter: 0.5 });
  assert.equal(backoffDelay(0, {}, () => 0), 50);
  assert.equal(backoffDelay(0, {}, () => 0.999999) <= 100, true);
  assert.equal(backoffDelay(3, {}, () => 0), 400);
  assert.equal(backoffDelay(3, {}, () => 0.5), 600);
  assert.equal(backoffDelay(1_000_000, {}, () => 0.5), 22_500);
  assert.equal(backoffDelay(Infinity, {}, () => 0), 15_000);
  // full jitter and no jitter
  assert.equal(backoffDelay(2, { jitter: 1 }, () => 0), 0);
  assert.equal(backoffDelay(2, { jitter: 0 }, () => 0.7), 400);
  // out-of-range random values are clamped; negative/fractional attempts floored
  assert.equal(backoffDelay(0, {}, () => -3), 50);
  assert.equal(backoffDelay(0, {}, () => NaN), 50);
  assert.equal(backoffDelay(0, {}, () => 7), 100);
  assert.equal(backoffDelay(-5, {}, () => 0), 50);
  assert.equal(backoffDelay(1.9, {}, () => 0), 100);
});

Deno.test("bad options throw ConfigError naming the field", () => {
  const bad: Array<[BackoffOptions, string]> = [
    [{ baseMs: -1 }, "backoff.baseMs"],
    [{ baseMs: 100, maxMs: 50 }, "backoff.maxMs"],
    [{ factor: 0.5 }, "backoff.factor"],
    [{ jitter: 1.5 }, "backoff.jitter"],
    [{ jitter: NaN }, "backoff.jitter"],
  ];
  for (const [o, field] of bad) {
    assert.throws(
      () => backoffDelay(0, o, () => 0),
      (e) => e instanceof ConfigError && e.input === field,
    );
  }
  assert.throws(() => backoffDelay(NaN, {}, () => 0), RangeError);
});

// ---------------------------------------------------------------------------------------
// Reconnector with a fake timer

class FakeTimers {
  now = 0;
  private next = 1;
  readonly pending = new Map<number, { at: number; fn: () => void }>();
  set = (fn: () => void, ms: number): unknown => {
    const id = this.next++;
    this.pending.set(id, { at: this.now + ms, fn });
    return id;
  };
  clear = (h: unknown): void => {
    this.pending.delete(h as number);
  };
  /** Fires the earliest timer; returns its delay from the previous time. */
  fire(): number {
    let best: [number, { at: number; fn: () => void }] | null = null;
    for (const e of this.pending) if (!best || e[1].at < best[1].at) best = e;
    assert.ok(best, "no timer pending");
    this.pending.delete(best[0]);
    const dt = best[1].at - this.now;
    this.now = best[1].at;
    best[1].fn();
    return dt;
  }
}

const flush = () => new Promise<void>((r) => setTimeout(r, 0));

Deno.test("Reconnector: retries with growing delays, resets on success, reconnects after loss", async () => {
  const timers = new FakeTimers();
  const outcomes: boolean[] = [false, false, false, true, false, true];
  let calls = 0;
  const rc = new Reconnector(
    () => {
      const ok = outcomes[calls++];
      return ok ? Promise.resolve() : Promise.reject(new Error(`refused ${calls}`));
    },
    { baseMs: 100, maxMs: 1_000, jitter: 0 },
    () => 0.5,
    timers.set,
    timers.clear,
  );
  rc.start();
  assert.equal(calls, 1); // first connect is immediate
  await flush();
  assert.ok(rc.isScheduled);
  assert.equal(rc.scheduledDelay, 100);
  const delays: number[] = [];
  for (let i = 0; i < 3; i++) {
    delays.push(timers.fire());
    await flush();
  }
  assert.deepEqual(delays, [100, 200, 400]);
  assert.equal(calls, 4); // 4th connect succeeded
  assert.equal(rc.attempt, 0);
  assert.equal(timers.pending.size, 0);
  assert.equal((rc.lastError as Error).message, "refused 3");

  // Established connection lost: reconnect from attempt 0.
  rc.failed();
  rc.failed(); // already scheduled: no-op
  assert.equal(timers.pending.size, 1);
  assert.equal(timers.fire(), 100);
  await flush(); // 5th connect fails
  assert.equal(timers.fire(), 200);
  await flush(); // 6th succeeds
  assert.equal(calls, 6);
  assert.equal(rc.attempt, 0);

  rc.failed();
  rc.stop();
  assert.equal(timers.pending.size, 0);
  rc.failed(); // stopped: no-op
  assert.equal(timers.pending.size, 0);
  assert.equal(rc.connects, 6);
});

Deno.test("Reconnector: delays never exceed maxMs; stop ignores a connect in flight", async () => {
  const timers = new FakeTimers();
  let calls = 0;
  const rc = new Reconnector(
    () => {
      calls++;
      return Promise.reject(new Error("down"));
    },
    { baseMs: 10, maxMs: 300, factor: 3, jitter: 0.5 },
    () => 0.999,
    timers.set,
    timers.clear,
  );
  rc.start();
  rc.start(); // already running
  await flush();
  for (let i = 0; i < 20; i++) {
    const d = timers.fire();
    assert.ok(d <= 300, `delay ${d}`);
    await flush();
  }
  assert.equal(calls, 21);
  rc.stop();

  // A connect that settles after stop() schedules nothing.
  let release!: () => void;
  const rc2 = new Reconnector(
    () => new Promise<void>((_, reject) => (release = () => reject(new Error("late")))),
    {},
    () => 0,
    timers.set,
    timers.clear,
  );
  rc2.start();
  assert.ok(rc2.isConnecting);
  rc2.stop();
  release();
  await flush();
  assert.equal(rc2.isScheduled, false);
  assert.equal(timers.pending.size, 0);
});

Deno.test("Reconnector: a connect that throws synchronously counts as a failure", async () => {
  const timers = new FakeTimers();
  const rc = new Reconnector(
    () => {
      throw new Error("sync");
    },
    {},
    () => 0,
    timers.set,
    timers.clear,
  );
  rc.start();
  await flush();
  assert.ok(rc.isScheduled);
  assert.equal(rc.scheduledDelay, 50);
  rc.stop();
});

Deno.test("Reconnector: resetOnConnect false keeps growing until succeeded()", async () => {
  const timers = new FakeTimers();
  const rc = new Reconnector(
    () => Promise.resolve(),
    { resetOnConnect: false, jitter: 0 },
    () => 0,
    timers.set,
    timers.clear,
  );
  rc.start();
  await flush();
  rc.failed(); // connected, then dropped at once
  assert.equal(timers.fire(), 100);
  await flush();
  rc.failed();
  assert.equal(timers.fire(), 200);
  await flush();
  rc.succeeded();
  rc.failed();
  assert.equal(timers.fire(), 100);
  rc.stop();
});
