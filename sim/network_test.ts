import assert from "node:assert/strict";
import fc from "fast-check";
import {
  DropReason,
  dropReasonName,
  latencySampler,
  type LinkRule,
  type NetworkConfig,
  NetworkModel,
} from "./network.ts";
import { Rng } from "./rng.ts";
import { latencySchema, scenarioSchema } from "./scenario.ts";

// ---------------------------------------------------------------------------------------
// Helpers

/** The `network` section of a minimal scenario, parsed (defaults applied). */
function netConfig(network: Record<string, unknown>): NetworkConfig {
  return scenarioSchema.parse({
    name: "t",
    duration: 1000,
    nodes: [{ group: "n", count: 4 }],
    network,
  })
    .network;
}

const CONST5 = { latency: { dist: "constant", value: 5 } };

function model(n: number, network: Record<string, unknown> = CONST5, regions?: string[]) {
  return new NetworkModel(netConfig(network), regions ?? Array(n).fill("default"));
}

const mask = (n: number, on: number[]) => {
  const m = new Uint8Array(n);
  for (const i of on) m[i] = 1;
  return m;
};

function rule(r: Partial<LinkRule> & Pick<LinkRule, "kind">): LinkRule {
  return { loss: 0, addLatency: 0, affected: 0, ...r };
}

// ---------------------------------------------------------------------------------------
// Link faults

Deno.test("network: a partition drops exactly the cross-group messages", () => {
  // Nodes 4 and 5 are not listed: they form the implicit rest group (-1).
  const groupOf = Int32Array.from([0, 0, 1, 1, -1, -1]);
  const net = model(6);
  const r = rule({ kind: "partition", groupOf, loss: 1 });
  net.addRule(r);
  const rng = Rng.fromSeed(1);
  let cross = 0;
  for (let x = 0; x < 6; x++) {
    for (let y = 0; y < 6; y++) {
      if (x === y) continue;
      const d = net.route(x, y, 100, 0, rng);
      if (groupOf[x] !== groupOf[y]) {
        cross++;
        assert.equal(d, -DropReason.Partition, `${x}->${y}`);
        assert.ok(net.partitioned(x, y));
      } else {
        assert.equal(d, 5, `${x}->${y}`);
        assert.ok(!net.partitioned(x, y));
      }
    }
  }
  assert.equal(cross, 24);
  assert.equal(r.affected, cross);
  assert.equal(net.drops[DropReason.Partition], cross);
  assert.equal(net.drops.reduce((s, v) => s + v, 0), cross);
});

Deno.test("network: a one-way cut drops from->to only", () => {
  const net = model(4);
  const r = rule({ kind: "oneway", a: mask(4, [0]), b: mask(4, [1, 2]), loss: 1 });
  net.addRule(r);
  const rng = Rng.fromSeed(2);
  assert.equal(net.route(0, 1, 10, 0, rng), -DropReason.OneWay);
  assert.equal(net.route(0, 2, 10, 0, rng), -DropReason.OneWay);
  assert.equal(net.route(1, 0, 10, 0, rng), 5);
  assert.equal(net.route(2, 0, 10, 0, rng), 5);
  assert.equal(net.route(0, 3, 10, 0, rng), 5);
  assert.equal(net.route(1, 2, 10, 0, rng), 5);
  assert.equal(r.affected, 2);
  assert.equal(net.drops[DropReason.OneWay], 2);
  assert.ok(!net.partitioned(0, 1), "a one-way cut is not a partition");
});

Deno.test("network: a jam with loss 1 drops both directions between its sides only", () => {
  const net = model(4);
  const r = rule({ kind: "jam", a: mask(4, [0]), b: mask(4, [1]), loss: 1 });
  net.addRule(r);
  const rng = Rng.fromSeed(3);
  assert.equal(net.route(0, 1, 10, 0, rng), -DropReason.Jam);
  assert.equal(net.route(1, 0, 10, 0, rng), -DropReason.Jam);
  assert.equal(net.route(0, 2, 10, 0, rng), 5);
  assert.equal(net.route(2, 1, 10, 0, rng), 5);
  assert.equal(net.route(2, 3, 10, 0, rng), 5);
  assert.equal(r.affected, 2);
  assert.equal(net.drops[DropReason.Jam], 2);
  // A jam with loss 0 never drops.
  const quiet = model(4);
  quiet.addRule(rule({ kind: "jam", a: mask(4, [0]), b: mask(4, [1]), loss: 0 }));
  for (let i = 0; i < 50; i++) assert.equal(quiet.route(0, 1, 10, 0, rng), 5);
});

Deno.test("network: a slow link adds its latency both ways, and slow rules stack", () => {
  const net = model(4);
  const r = rule({ kind: "slow", a: mask(4, [0, 1]), b: mask(4, [2]), addLatency: 7 });
  net.addRule(r);
  const rng = Rng.fromSeed(4);
  assert.equal(net.route(0, 2, 10, 0, rng), 12);
  assert.equal(net.route(2, 1, 10, 0, rng), 12);
  assert.equal(net.route(0, 1, 10, 0, rng), 5, "within one side: not slowed");
  assert.equal(net.route(3, 2, 10, 0, rng), 5);
  assert.equal(r.affected, 2);
  const r2 = rule({ kind: "slow", a: mask(4, [0]), b: mask(4, [2]), addLatency: 100 });
  net.addRule(r2);
  assert.equal(net.route(2, 0, 10, 0, rng), 112);
  net.removeRule(r, 0);
  assert.equal(net.route(2, 0, 10, 0, rng), 105);
  net.removeRule(r2, 0);
  assert.equal(net.route(2, 0, 10, 0, rng), 5);
  assert.equal(net.drops.reduce((s, v) => s + v, 0), 0);
});

Deno.test("network: degrade applies to the node's inbound, outbound or both", () => {
  const rng = Rng.fromSeed(5);
  const expect = { in: [5, 15], out: [15, 5], both: [15, 15] } as const;
  for (const direction of ["in", "out", "both"] as const) {
    const net = model(4);
    const r = rule({ kind: "degrade", a: mask(4, [0]), addLatency: 10, direction });
    net.addRule(r);
    assert.deepEqual(
      [net.route(0, 1, 10, 0, rng), net.route(1, 0, 10, 0, rng)],
      expect[direction],
      direction,
    );
    assert.equal(net.route(2, 3, 10, 0, rng), 5, `${direction}: other nodes untouched`);
    assert.equal(r.affected, direction === "both" ? 2 : 1);
  }
  const lossy = model(4);
  lossy.addRule(rule({ kind: "degrade", a: mask(4, [0]), loss: 1, direction: "out" }));
  assert.equal(lossy.route(0, 1, 10, 0, rng), -DropReason.Degrade);
  assert.equal(lossy.route(1, 0, 10, 0, rng), 5);
  assert.equal(lossy.drops[DropReason.Degrade], 1);
});

Deno.test("network: partitioned() holds during a partition and for the grace after it heals", () => {
  const net = model(4);
  const r = rule({ kind: "partition", groupOf: Int32Array.from([0, 0, 1, 1]), loss: 1 });
  net.addRule(r);
  assert.ok(net.partitioned(0, 2, 10, 0));
  assert.ok(net.partitioned(3, 1, 10, 0));
  assert.ok(!net.partitioned(0, 1, 10, 1000));
  net.removeRule(r, 100);
  assert.equal(net.rules.length, 0);
  assert.equal(net.route(0, 2, 10, 100, Rng.fromSeed(6)), 5, "healed: delivered again");
  assert.ok(net.partitioned(0, 2, 100, 50));
  assert.ok(net.partitioned(0, 2, 150, 50));
  assert.ok(!net.partitioned(0, 2, 151, 50));
  assert.ok(net.partitioned(0, 2, 100, 0), "at the heal itself");
  assert.ok(!net.partitioned(0, 2, 101, 0));
  assert.ok(!net.partitioned(0, 1, 120, 50), "same side: never partitioned");
  assert.ok(!net.partitioned(0, 2, 5000, 1000));
  // A one-way cut is not a partition, during or after.
  const other = model(4);
  const cut = rule({ kind: "oneway", a: mask(4, [0]), b: mask(4, [2]), loss: 1 });
  other.addRule(cut);
  assert.ok(!other.partitioned(0, 2, 10, 1000));
  other.removeRule(cut, 200);
  assert.ok(!other.partitioned(0, 2, 200, 1000));
});

// ---------------------------------------------------------------------------------------
// Bandwidth and queueing

Deno.test("network: serialisation delay and FIFO uplink queue; overflow dropped as queue", () => {
  // 1 Mbit/s = 125 bytes/ms: 1250 bytes take 10 ms; the queue holds 2500 bytes = 20 ms.
  const net = model(4, {
    latency: { dist: "constant", value: 0 },
    bandwidth: "1Mbit",
    queue: 2500,
  });
  const rng = Rng.fromSeed(7);
  assert.equal(net.route(0, 1, 1250, 0, rng), 10);
  assert.equal(net.route(0, 2, 1250, 0, rng), 20);
  // Waits 20 ms, exactly what the queue drains: accepted.
  assert.equal(net.route(0, 3, 1250, 0, rng), 30);
  // Would wait 30 ms: dropped, and it does not occupy the uplink.
  assert.equal(net.route(0, 1, 1, 0, rng), -DropReason.Queue);
  assert.equal(net.drops[DropReason.Queue], 1);
  assert.equal(dropReasonName[DropReason.Queue], "queue");
  // Other nodes' uplinks are independent.
  assert.equal(net.route(1, 0, 1250, 0, rng), 10);
  // Once drained, no queueing delay.
  assert.equal(net.route(0, 1, 1250, 30, rng), 10);
  assert.equal(net.route(0, 1, 125, 100, rng), 1);
});

Deno.test("network: departures follow a FIFO uplink model exactly", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          gap: fc.integer({ min: 0, max: 50 }),
          size: fc.integer({ min: 1, max: 5000 }),
        }),
        {
          minLength: 1,
          maxLength: 40,
        },
      ),
      fc.constantFrom(1e5, 1e6, 8e6),
      fc.integer({ min: 0, max: 20 }),
      (sends, bps, lat) => {
        const net = model(2, {
          latency: { dist: "constant", value: lat },
          bandwidth: bps,
          queue: "1GB",
        });
        const rng = Rng.fromSeed(8);
        const bytesPerMs = bps / 8000;
        let now = 0, free = 0, lastArrival = -Infinity;
        for (const s of sends) {
          now += s.gap;
          const depart = Math.max(now, free) + s.size / bytesPerMs;
          free = depart;
          const d = net.route(0, 1, s.size, now, rng);
          assert.ok(
            Math.abs(now + d - (depart + lat)) < 1e-6,
            `arrival ${now + d} != ${depart + lat}`,
          );
          assert.ok(now + d >= lastArrival, "reordered on a FIFO uplink with constant latency");
          lastArrival = now + d;
        }
      },
    ),
    { numRuns: 50 },
  );
});

// ---------------------------------------------------------------------------------------
// Loss, jitter, reordering, duplication

Deno.test("network: the loss rate matches the configured probability", () => {
  fc.assert(
    fc.property(fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(), (p, seed) => {
      const net = model(2, { ...CONST5, loss: p });
      const rng = Rng.fromSeed(seed);
      const N = 2000;
      let dropped = 0;
      for (let i = 0; i < N; i++) {
        const d = net.route(0, 1, 10, 0, rng);
        if (d < 0) {
          assert.equal(d, -DropReason.Loss);
          dropped++;
        } else assert.equal(d, 5);
      }
      if (p === 0) assert.equal(dropped, 0);
      if (p === 1) assert.equal(dropped, N);
      const tol = 5 * Math.sqrt((p * (1 - p)) / N) + 1e-9;
      assert.ok(Math.abs(dropped / N - p) <= tol, `dropped ${dropped / N}, expected ${p}`);
      assert.equal(net.drops[DropReason.Loss], dropped);
    }),
    { numRuns: 30 },
  );
});

Deno.test("network: jitter, reordering and duplicates", () => {
  const rng = Rng.fromSeed(9);
  const jit = model(2, { ...CONST5, jitter: 3 });
  for (let i = 0; i < 200; i++) {
    const d = jit.route(0, 1, 10, 0, rng);
    assert.ok(d >= 5 && d < 8, `${d}`);
    const r = jit.resample(rng);
    assert.ok(r >= 5 && r < 8, `${r}`);
    assert.equal(jit.duplicate(rng), false);
  }
  const held = model(2, { ...CONST5, reorder: 1, reorderDelay: "50ms", duplicate: 1 });
  assert.equal(held.route(0, 1, 10, 0, rng), 55);
  assert.equal(held.duplicate(rng), true);
  assert.equal(held.resample(rng), 5);
});

Deno.test("network: the same seed gives the same routing", () => {
  const run = () => {
    const net = model(4, {
      latency: { dist: "lognormal", median: 1, sigma: 0.5 },
      jitter: 1,
      loss: 0.2,
      reorder: 0.1,
    });
    const rng = Rng.fromSeed(42);
    return Array.from({ length: 100 }, (_, i) => net.route(i % 4, (i + 1) % 4, 100, i, rng));
  };
  assert.deepEqual(run(), run());
});

// ---------------------------------------------------------------------------------------
// Latency distributions and regions

const dur = fc.double({ min: 0, max: 1e6, noNaN: true });
const positiveDur = fc.double({ min: 1e-3, max: 1e6, noNaN: true });
const latencyArb = fc.oneof(
  dur.map((value) => ({ dist: "constant" as const, value })),
  fc.tuple(dur, dur).map(([a, b]) => ({
    dist: "uniform" as const,
    min: Math.min(a, b),
    max: Math.max(a, b),
  })),
  fc.tuple(dur, dur).map(([mean, sd]) => ({ dist: "normal" as const, mean, sd })),
  fc.tuple(positiveDur, fc.double({ min: 0, max: 10, noNaN: true })).map(([median, sigma]) => ({
    dist: "lognormal" as const,
    median,
    sigma,
  })),
  fc.tuple(positiveDur, fc.double({ min: 0.5, max: 10, noNaN: true })).map(([scale, shape]) => ({
    dist: "pareto" as const,
    scale,
    shape,
  })),
);

Deno.test("latencySampler: finite, non-negative samples within each distribution's support", () => {
  fc.assert(
    fc.property(latencyArb, fc.nat(), (input, seed) => {
      const l = latencySchema.parse(input);
      const sample = latencySampler(l);
      const rng = Rng.fromSeed(seed);
      for (let i = 0; i < 200; i++) {
        const v = sample(rng);
        assert.ok(Number.isFinite(v) && v >= 0, `${JSON.stringify(l)} gave ${v}`);
        if (l.dist === "constant") assert.equal(v, l.value);
        if (l.dist === "uniform") assert.ok(v >= l.min && v <= l.max);
        if (l.dist === "pareto") assert.ok(v >= l.scale);
      }
    }),
    { numRuns: 100 },
  );
});

Deno.test("latencySampler: lognormal median and uniform mean are about right", () => {
  const rng = Rng.fromSeed(10);
  const ln = latencySampler(latencySchema.parse({ dist: "lognormal", median: "2ms", sigma: 0.4 }));
  const xs = Array.from({ length: 4001 }, () => ln(rng)).sort((a, b) => a - b);
  assert.ok(Math.abs(xs[2000] - 2) < 0.1, `median ${xs[2000]}`);
  const un = latencySampler(latencySchema.parse({ dist: "uniform", min: 1, max: 3 }));
  let sum = 0;
  for (let i = 0; i < 4000; i++) sum += un(rng);
  assert.ok(Math.abs(sum / 4000 - 2) < 0.05, `mean ${sum / 4000}`);
});

Deno.test({
  name: "latencySampler: every latency the schema accepts samples finite",
  // Regression: a tiny pareto shape or a huge lognormal sigma used to overflow a sample to
  // Infinity and crash the run mid-way; the schema now bounds them and samples are capped.
  fn() {
    const rng = Rng.fromSeed(1);
    for (
      const input of [{ dist: "pareto", scale: 1, shape: 0.01 }, {
        dist: "lognormal",
        median: 1,
        sigma: 200,
      }]
    ) {
      const r = latencySchema.safeParse(input);
      if (!r.success) continue; // rejected up front: fine
      const sample = latencySampler(r.data);
      for (let i = 0; i < 20_000; i++) {
        const v = sample(rng);
        assert.ok(Number.isFinite(v), `${JSON.stringify(input)} sampled ${v}`);
      }
    }
  },
});

Deno.test("network: region matrix adds base latency, symmetric when given one way", () => {
  const regions = ["eu", "eu", "us", "ap"];
  const net = model(4, {
    ...CONST5,
    regions: { eu: { us: 40, ap: "100ms" }, us: { ap: 70 }, ap: { eu: 90 } },
  }, regions);
  const rng = Rng.fromSeed(11);
  const d = (x: number, y: number) => net.route(x, y, 10, 0, rng);
  assert.equal(d(0, 1), 5, "same region: no base latency");
  assert.equal(d(0, 2), 45);
  assert.equal(d(2, 1), 45, "us->eu taken from eu->us");
  assert.equal(d(2, 3), 75);
  assert.equal(d(3, 2), 75, "ap->us taken from us->ap");
  assert.equal(d(0, 3), 105, "eu->ap as given");
  assert.equal(d(3, 1), 95, "ap->eu as given (both directions given: not symmetric)");
  // Regions that name no node are ignored; one region means no base latency.
  const single = model(2, { ...CONST5, regions: { mars: { venus: 1000 } } });
  assert.equal(single.route(0, 1, 10, 0, rng), 5);
});
