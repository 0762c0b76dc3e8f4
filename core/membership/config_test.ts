import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError } from "../errors.ts";
import {
  defaultSwimConfig,
  parseSwimConfig,
  retransmitLimit,
  scaledPushPullInterval,
  suspicionBounds,
  suspicionTimeout,
} from "./config.ts";

function configErrorOf(input: unknown, path?: string): ConfigError {
  try {
    parseSwimConfig(input, path);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.kind, "config");
    return e;
  }
  assert.fail(`expected ConfigError for ${JSON.stringify(input)}`);
}

// ---------------------------------------------------------------------------------------
// scaledPushPullInterval (memberlist pushPullScale)

Deno.test("scaledPushPullInterval: unchanged up to 32 nodes", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 32 }), fc.integer({ min: 1, max: 10 ** 6 }), (n, ms) => {
      assert.equal(scaledPushPullInterval(ms, n), ms);
    }),
  );
});

Deno.test("scaledPushPullInterval: matches memberlist's multipliers", () => {
  // memberlist: multiplier = ceil(log2(n) - log2(32)) + 1 above 32 nodes.
  const cases: Array<[number, number]> = [
    [33, 2],
    [64, 2],
    [65, 3],
    [128, 3],
    [1000, 6],
    [1024, 6],
    [1025, 7],
    [10_000, 10],
  ];
  for (const [n, mult] of cases) {
    assert.equal(scaledPushPullInterval(30_000, n), 30_000 * mult, `n=${n}`);
  }
});

Deno.test("scaledPushPullInterval: an integer multiple of the base, non-decreasing in n", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 10 ** 6 }),
      fc.integer({ min: 1, max: 10 ** 7 }),
      fc.integer({ min: 0, max: 10 ** 6 }),
      (ms, n, d) => {
        const a = scaledPushPullInterval(ms, n);
        const b = scaledPushPullInterval(ms, n + d);
        assert.ok(a <= b, `interval(${n}) = ${a} > interval(${n + d}) = ${b}`);
        assert.ok(Number.isInteger(a / ms) && a / ms >= 1);
        // Doubling the cluster adds at most one base interval.
        assert.ok(scaledPushPullInterval(ms, 2 * n) - a <= ms);
      },
    ),
  );
});

// ---------------------------------------------------------------------------------------
// retransmitLimit

Deno.test("retransmitLimit: mult x ceil(log10(n + 1)), at least mult", () => {
  const cases: Array<[number, number, number]> = [
    [4, 0, 4],
    [4, 1, 4],
    [4, 9, 4],
    [4, 10, 8],
    [4, 99, 8],
    [4, 100, 12],
    [4, 1000, 16],
    [4, 10_000, 20],
    [3, 10_020, 15],
  ];
  for (const [mult, n, want] of cases) {
    assert.equal(retransmitLimit(mult, n), want, `(${mult}, ${n})`);
  }
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 64 }),
      fc.integer({ min: 0, max: 10 ** 7 }),
      (mult, n) => {
        const l = retransmitLimit(mult, n);
        assert.ok(l >= mult);
        assert.equal(l % mult, 0);
        assert.equal(l, mult * Math.max(1, Math.ceil(Math.log10(n + 1))));
        assert.ok(retransmitLimit(mult, n + 1) >= l, "not monotone in n");
      },
    ),
  );
});

// ---------------------------------------------------------------------------------------
// suspicionBounds and suspicionTimeout (Lifeguard)

Deno.test("suspicionBounds: min = mult x max(1, log10 n) x interval, max = maxMult x min", () => {
  const cfg = { suspicionMult: 4, suspicionMaxTimeoutMult: 6, probeIntervalMs: 1000 };
  assert.deepEqual(suspicionBounds(cfg, 1), { min: 4000, max: 24000 });
  assert.deepEqual(suspicionBounds(cfg, 10), { min: 4000, max: 24000 });
  assert.deepEqual(suspicionBounds(cfg, 100), { min: 8000, max: 48000 });
  assert.deepEqual(suspicionBounds(cfg, 10_000), { min: 16000, max: 96000 });
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 64 }),
      fc.double({ min: 1, max: 100, noNaN: true }),
      fc.integer({ min: 1, max: 60_000 }),
      fc.integer({ min: 0, max: 10 ** 6 }),
      (suspicionMult, suspicionMaxTimeoutMult, probeIntervalMs, n) => {
        const cfg = { suspicionMult, suspicionMaxTimeoutMult, probeIntervalMs };
        const { min, max } = suspicionBounds(cfg, n);
        const scale = Math.max(1, Math.log10(Math.max(1, n)));
        assert.ok(Math.abs(min - suspicionMult * scale * probeIntervalMs) <= 1e-9 * min);
        assert.ok(min >= suspicionMult * probeIntervalMs);
        assert.ok(Math.abs(max - suspicionMaxTimeoutMult * min) <= 1e-9 * max);
        assert.ok(max >= min);
        assert.ok(suspicionBounds(cfg, n + 1).min >= min, "min not monotone in n");
      },
    ),
  );
});

const boundsArb = fc
  .tuple(fc.integer({ min: 0, max: 10 ** 6 }), fc.integer({ min: 0, max: 10 ** 6 }))
  .map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);

Deno.test("suspicionTimeout: within [min, max] and non-increasing in confirmations", () => {
  fc.assert(
    fc.property(boundsArb, fc.integer({ min: -2, max: 20 }), fc.nat(30), ([min, max], k, c) => {
      const t = suspicionTimeout(min, max, k, c);
      assert.ok(t >= min && t <= max, `${t} outside [${min}, ${max}]`);
      assert.ok(suspicionTimeout(min, max, k, c + 1) <= t, "grew with a confirmation");
    }),
  );
});

Deno.test("suspicionTimeout: max with no confirmations, min from k confirmations on", () => {
  fc.assert(
    fc.property(boundsArb, fc.integer({ min: 1, max: 20 }), fc.nat(10), ([min, max], k, extra) => {
      assert.equal(suspicionTimeout(min, max, k, 0), max);
      assert.equal(suspicionTimeout(min, max, k, k + extra), min);
      assert.equal(suspicionTimeout(min, max, 0, extra), min);
      assert.equal(suspicionTimeout(min, max, -k, extra), min);
    }),
  );
  // Non-integer bounds (suspicionBounds gives those for n not a power of 10).
  const { min, max } = suspicionBounds(defaultSwimConfig, 50);
  assert.equal(suspicionTimeout(min, max, 3, 3), min);
  assert.equal(suspicionTimeout(min, max, 3, 0), Math.floor(max));
});

Deno.test("suspicionTimeout: Lifeguard's logarithmic decay (memberlist values)", () => {
  // memberlist remainingSuspicionTime: max - log(c + 1) / log(k + 1) x (max - min), floored
  // to a millisecond. min 2 s, max 30 s, k 3.
  assert.equal(suspicionTimeout(2000, 30_000, 3, 1), 16_000);
  assert.equal(
    suspicionTimeout(2000, 30_000, 3, 2),
    Math.floor(30_000 - (Math.log(3) / Math.log(4)) * 28_000),
  );
  assert.equal(suspicionTimeout(2000, 30_000, 3, 2), 7810);
});

// ---------------------------------------------------------------------------------------
// parseSwimConfig

Deno.test("parseSwimConfig: defaults are memberlist's LAN profile", () => {
  const c = parseSwimConfig({});
  assert.deepEqual(c, defaultSwimConfig);
  assert.deepEqual(parseSwimConfig(undefined), defaultSwimConfig);
  assert.equal(c.probeIntervalMs, 1000);
  assert.equal(c.probeTimeoutMs, 500);
  assert.equal(c.indirectChecks, 3);
  assert.equal(c.gossipIntervalMs, 200);
  assert.equal(c.gossipNodes, 3);
  assert.equal(c.retransmitMult, 4);
  assert.equal(c.suspicionMult, 4);
  assert.equal(c.pushPullIntervalMs, 30_000);
  assert.equal(c.maxPacketBytes, 1400);
  assert.equal(c.probing, true);
  assert.equal(c.gossiping, true);
});

Deno.test("parseSwimConfig: given values are kept, the rest defaulted", () => {
  const c = parseSwimConfig({ probeIntervalMs: 250, gossipNodes: 5, pushPullIntervalMs: 0 });
  assert.deepEqual(c, {
    ...defaultSwimConfig,
    probeIntervalMs: 250,
    gossipNodes: 5,
    pushPullIntervalMs: 0,
  });
});

Deno.test("parseSwimConfig: invalid values name the field", () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ probeIntervalMs: -1 }, "membership.probeIntervalMs"],
    [{ probeIntervalMs: 0 }, "membership.probeIntervalMs"],
    [{ probeTimeoutMs: "500" }, "membership.probeTimeoutMs"],
    [{ indirectChecks: 1.5 }, "membership.indirectChecks"],
    [{ gossipNodes: 0 }, "membership.gossipNodes"],
    [{ retransmitMult: 65 }, "membership.retransmitMult"],
    [{ suspicionMaxTimeoutMult: 0.5 }, "membership.suspicionMaxTimeoutMult"],
    [{ pushPullIntervalMs: -5 }, "membership.pushPullIntervalMs"],
    [{ pushPullIntervalMs: Infinity }, "membership.pushPullIntervalMs"],
    [{ maxPacketBytes: 100 }, "membership.maxPacketBytes"],
    [{ probing: "yes" }, "membership.probing"],
  ];
  for (const [input, path] of cases) {
    const e = configErrorOf(input);
    assert.ok(e.message.includes(path), `${JSON.stringify(input)}: ${e.message}`);
  }
  // The root path is the caller's.
  const e = configErrorOf({ gossipNodes: 0 }, "protocol.membership");
  assert.ok(e.message.includes("protocol.membership.gossipNodes"), e.message);
});

Deno.test("parseSwimConfig: unknown fields are rejected by name", () => {
  const e = configErrorOf({ probeInterval: 1000 });
  assert.ok(e.message.includes("membership.probeInterval: unknown field"), e.message);
  assert.ok(configErrorOf("fast").message.includes("membership"));
  assert.ok(configErrorOf([1]).message.includes("membership"));
});
