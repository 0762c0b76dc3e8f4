import assert from "node:assert/strict";
import fc from "fast-check";
import { Engine } from "./engine.ts";
import { Rng } from "./rng.ts";

/** An engine whose kind-0 handler records (now, a, b, obj). */
function recorder() {
  const engine = new Engine();
  const log: [number, number, number, unknown][] = [];
  const kind = engine.register((a, b, obj) => log.push([engine.now, a, b, obj]));
  return { engine, log, kind };
}

Deno.test("engine: events run by time, ties in scheduling order", () => {
  const { engine, log, kind } = recorder();
  const times = [5, 1, 3, 1, 5, 0, 3, 1];
  times.forEach((t, i) => engine.schedule(t, kind, i, 0));
  assert.equal(engine.pending, times.length);
  assert.equal(engine.peekTime(), 0);
  assert.equal(engine.run(Infinity), times.length);
  assert.deepEqual(log.map((e) => e[1]), [5, 1, 3, 7, 2, 6, 0, 4]);
  assert.deepEqual(log.map((e) => e[0]), [0, 1, 1, 1, 3, 3, 5, 5]);
  assert.equal(engine.events, times.length);
  assert.equal(engine.pending, 0);
  assert.equal(engine.peekTime(), Infinity);
});

Deno.test("engine: an event scheduled for `now` runs after already-queued ties", () => {
  const engine = new Engine();
  const order: string[] = [];
  const tag = engine.register((a) => order.push(`tag${a}`));
  const spawn = engine.register(() => {
    order.push("spawn");
    engine.schedule(engine.now, tag, 99, 0);
  });
  engine.schedule(2, spawn, 0, 0);
  engine.schedule(2, tag, 1, 0);
  engine.schedule(2, tag, 2, 0);
  engine.run(10);
  assert.deepEqual(order, ["spawn", "tag1", "tag2", "tag99"]);
});

Deno.test("engine: a, b, obj are passed through (a, b as int32)", () => {
  const { engine, log, kind } = recorder();
  const obj = { x: 1 };
  engine.schedule(1, kind, -7, 2 ** 31, obj);
  engine.schedule(2, kind, 1.9, 3);
  engine.run(5);
  assert.equal(log[0][3], obj);
  assert.deepEqual(log.map((e) => [e[1], e[2]]), [[-7, -(2 ** 31)], [1, 3]]);
  assert.equal(log[1][3], undefined);
});

Deno.test("engine: run(until) is inclusive and advances now to until", () => {
  const { engine, log, kind } = recorder();
  for (const t of [1, 2, 2, 4, 7]) engine.schedule(t, kind, t, 0);
  assert.equal(engine.now, 0);
  assert.equal(engine.run(2), 3);
  assert.equal(engine.now, 2);
  assert.equal(engine.pending, 2);
  assert.equal(engine.run(3), 0);
  assert.equal(engine.now, 3);
  assert.equal(engine.run(2.5), 0); // until in the past: now never goes back
  assert.equal(engine.now, 3);
  assert.equal(engine.run(10), 2);
  assert.equal(engine.now, 10);
  assert.deepEqual(log.map((e) => e[0]), [1, 2, 2, 4, 7]);
  // Empty queue + Infinity: nothing to do, now stays finite.
  assert.equal(engine.run(Infinity), 0);
  assert.equal(engine.now, 10);
  assert.throws(() => engine.run(NaN), RangeError);
});

Deno.test("engine: maxEvents stops early without advancing now", () => {
  const { engine, kind } = recorder();
  for (const t of [1, 2, 3]) engine.schedule(t, kind, 0, 0);
  assert.equal(engine.run(100, 2), 2);
  assert.equal(engine.now, 2);
  assert.equal(engine.run(100, 0), 0);
  assert.equal(engine.now, 2);
  assert.equal(engine.run(100, 5), 1);
  assert.equal(engine.now, 100);
  assert.equal(engine.events, 3);
});

Deno.test("engine: scheduling in the past, at NaN/Infinity or an unknown kind throws", () => {
  const { engine, kind } = recorder();
  engine.schedule(5, kind, 0, 0);
  engine.run(5);
  assert.throws(() => engine.schedule(4.5, kind, 0, 0), (e: unknown) => {
    assert.ok(e instanceof RangeError);
    assert.match(e.message, /4\.5/);
    assert.match(e.message, /before now \(5\)/);
    return true;
  });
  assert.throws(() => engine.schedule(NaN, kind, 0, 0), /NaN/);
  assert.throws(() => engine.schedule(Infinity, kind, 0, 0), RangeError);
  assert.throws(() => engine.schedule(6, kind + 1, 0, 0), /kind 1 is not registered/);
  assert.throws(() => engine.schedule(6, -1, 0, 0), RangeError);
  engine.schedule(5, kind, 0, 0); // at == now is fine
  assert.equal(engine.pending, 1);
});

Deno.test("engine: halt stops after the current event; the next run resumes", () => {
  const engine = new Engine();
  const seen: number[] = [];
  const k = engine.register((a) => {
    seen.push(a);
    if (a === 2) engine.halt();
  });
  for (let i = 1; i <= 5; i++) engine.schedule(i, k, i, 0);
  assert.equal(engine.run(100), 2);
  assert.equal(engine.halted, true);
  assert.equal(engine.now, 2); // not advanced to until
  assert.deepEqual(seen, [1, 2]);
  assert.equal(engine.run(100), 3);
  assert.equal(engine.halted, false);
  assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  assert.equal(engine.now, 100);
});

Deno.test("engine: run is not re-entrant, and a throwing handler leaves it usable", () => {
  const engine = new Engine();
  const nested = engine.register(() => engine.run(10));
  const boom = engine.register(() => {
    throw new Error("boom");
  });
  const ok = engine.register(() => {});
  engine.schedule(1, nested, 0, 0);
  assert.throws(() => engine.run(10), /not re-entrant/);
  engine.schedule(2, boom, 0, 0);
  engine.schedule(3, ok, 0, 0);
  assert.throws(() => engine.run(10), /boom/);
  assert.equal(engine.run(10), 1);
  assert.equal(engine.events, 3);
});

type Ev = [at: number, kind: number, a: number, b: number];

/** Runs a schedule where kind 1 re-schedules itself once, and returns the trace hash. */
function hashOf(evs: Ev[], mixes: number[] = []): string {
  const engine = new Engine();
  engine.register(() => {});
  const k1 = engine.register((a, b) => {
    if (b > 0) engine.schedule(engine.now + 0.5, 1, a + 1, b - 1);
  });
  assert.equal(k1, 1);
  for (const [at, kind, a, b] of evs) engine.schedule(at, kind, a, b);
  engine.run(Infinity);
  for (const m of mixes) engine.mix(m);
  return engine.traceHash();
}

Deno.test("engine: trace hash is stable for identical schedules and sensitive to changes", () => {
  const base: Ev[] = [[1, 0, 10, 20], [1, 1, 3, 2], [2.25, 0, -5, 7], [2.25, 0, 6, 7], [
    9,
    1,
    0,
    0,
  ]];
  const h = hashOf(base);
  assert.match(h, /^[0-9a-f]{16}$/);
  assert.equal(hashOf(base.map((e) => [...e] as Ev)), h);

  const perturbed: Ev[][] = [
    base.map((e, i) => (i === 2 ? [e[0], e[1], e[2], e[3] + 1] : e)), // one b differs
    base.map((e, i) => (i === 2 ? [e[0], e[1], e[2] + 1, e[3]] : e)), // one a differs
    base.map((e, i) => (i === 4 ? [9 + 1e-9, e[1], e[2], e[3]] : e)), // one time differs
    base.map((e, i) => (i === 4 ? [e[0], 0, e[2], e[3]] : e)), // one kind differs
    [base[0], base[1], base[3], base[2], base[4]], // two same-time events swapped
    base.slice(0, 4), // one event missing
    [...base, [20, 0, 0, 0]], // one extra event
  ];
  for (const p of perturbed) assert.notEqual(hashOf(p), h, JSON.stringify(p));

  // mix() folds in extra values, order-sensitively.
  assert.equal(hashOf(base, [3, 0.5]), hashOf(base, [3, 0.5]));
  assert.notEqual(hashOf(base, [3]), h);
  assert.notEqual(hashOf(base, [3, 4]), hashOf(base, [4, 3]));
  assert.notEqual(hashOf(base, [0.5]), hashOf(base, [0]));
});

Deno.test("engine: trace hash of random schedules is reproducible (property)", () => {
  const evArb = fc.tuple(
    fc.integer({ min: 0, max: 20 }),
    fc.constantFrom(0, 1),
    fc.integer({ min: -5, max: 5 }),
    fc.integer({ min: 0, max: 3 }),
  );
  fc.assert(
    fc.property(fc.array(evArb, { minLength: 1, maxLength: 50 }), (evs) => {
      const h = hashOf(evs);
      assert.equal(hashOf(evs), h);
      const changed = evs.map((e, i): Ev => (i === 0 ? [e[0], e[1], e[2] + 100, e[3]] : e));
      assert.notEqual(hashOf(changed), h);
    }),
    { numRuns: 200 },
  );
});

Deno.test("engine: a seeded PHOLD-like run gives the same hash twice, another seed differs", () => {
  const run = (seed: number) => {
    const engine = new Engine();
    const rng = Rng.fromSeed(seed).derive("phold");
    const k = engine.register(() => engine.schedule(engine.now + rng.exp(1), k, rng.int(100), 0));
    for (let i = 0; i < 100; i++) engine.schedule(rng.exp(1), k, i, 0);
    engine.run(Infinity, 20_000);
    return [engine.traceHash(), engine.now] as const;
  };
  assert.deepEqual(run(1), run(1));
  assert.notEqual(run(1)[0], run(2)[0]);
});
