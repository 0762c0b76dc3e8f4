import assert from "node:assert/strict";
import fc from "fast-check";
import YAML from "yaml";
import { ConfigError } from "../core/errors.ts";
import {
  applySet,
  bitrate,
  bytes,
  duration,
  loadScenarioFile,
  loadScenarioText,
  parseScenario,
} from "./scenario.ts";

// ---------------------------------------------------------------------------------------
// Helpers

const MINIMAL = "name: t\nduration: 10s\nnodes:\n  - { group: n, count: 3 }\n";

function configErrorOf(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.kind, "config");
    return e;
  }
  assert.fail("expected a ConfigError");
}

/** A valid scenario document, to be broken field by field. */
function base(): Record<string, unknown> {
  return { name: "t", duration: "10s", nodes: [{ group: "n", count: 3 }] };
}

/** Loading `doc` (as YAML text) fails with a ConfigError mentioning every part. */
function assertRejects(doc: unknown, ...parts: string[]): string {
  const text = typeof doc === "string" ? doc : YAML.stringify(doc);
  const e = configErrorOf(() => loadScenarioText(text, "test.yaml"));
  assert.ok(e.message.startsWith("test.yaml: "), e.message);
  for (const p of parts) {
    assert.ok(e.message.includes(p), `expected ${JSON.stringify(p)} in: ${e.message}`);
  }
  return e.message;
}

// ---------------------------------------------------------------------------------------
// Durations, rates and sizes

Deno.test("duration: units and plain numbers", () => {
  const cases: Array<[unknown, number]> = [
    ["500ms", 500],
    ["1.5s", 1500],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["0.25ms", 0.25],
    ["2 s", 2000],
    ["0s", 0],
    [250, 250],
    [0.5, 0.5],
  ];
  for (const [input, want] of cases) assert.equal(duration.parse(input), want, String(input));
  for (
    const bad of ["5", "5sec", "s", "1.s", ".5s", "", "1d", "1 m s", Infinity, NaN, null, true]
  ) {
    assert.ok(!duration.safeParse(bad).success, `${String(bad)} accepted`);
  }
});

Deno.test("duration: value x unit for every unit (property)", () => {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 100_000 }),
      fc.integer({ min: 0, max: 999 }),
      fc.constantFrom("ms", "s", "m", "h"),
      (whole, frac, unit) => {
        const text = `${whole}.${String(frac).padStart(3, "0")}`;
        const got = duration.parse(`${text}${unit}`);
        assert.equal(got, Number(text) * units[unit]);
        assert.equal(duration.parse(`${whole}${unit}`), whole * units[unit]);
      },
    ),
  );
});

Deno.test("bitrate: units with optional /s, and positive numbers", () => {
  const cases: Array<[unknown, number]> = [
    ["100Mbit", 1e8],
    ["1Gbit/s", 1e9],
    ["10kbit", 1e4],
    ["2.5Mbit/s", 2.5e6],
    ["500bit", 500],
    [1e6, 1e6],
  ];
  for (const [input, want] of cases) assert.equal(bitrate.parse(input), want, String(input));
  for (const bad of [0, -1, "1Tbit", "100mbit", "100 Mb", "Mbit", "-5Mbit"]) {
    assert.ok(!bitrate.safeParse(bad).success, `${String(bad)} accepted`);
  }
});

Deno.test("bytes: decimal and binary units, integer byte counts", () => {
  const cases: Array<[unknown, number]> = [
    ["64KiB", 65_536],
    ["1MB", 1e6],
    ["1.5KiB", 1536],
    ["2MiB", 2 * 1024 ** 2],
    ["1GiB", 1024 ** 3],
    ["3GB", 3e9],
    ["10B", 10],
    ["1KB", 1000],
    [0, 0],
    [100, 100],
  ];
  for (const [input, want] of cases) assert.equal(bytes.parse(input), want, String(input));
  for (const bad of [1.5, -1, "-1B", "1kb", "1 TB", "KiB"]) {
    assert.ok(!bytes.safeParse(bad).success, `${String(bad)} accepted`);
  }
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 10 ** 6 }),
      fc.constantFrom("B", "KB", "KiB", "MB", "MiB"),
      (n, u) => {
        const mult: Record<string, number> = { B: 1, KB: 1e3, KiB: 1024, MB: 1e6, MiB: 1024 ** 2 };
        assert.equal(bytes.parse(`${n}${u}`), n * mult[u]);
      },
    ),
  );
});

// ---------------------------------------------------------------------------------------
// Whole scenarios: defaults and errors with their paths

Deno.test("loadScenarioText: a minimal scenario gets the documented defaults", () => {
  const s = loadScenarioText(MINIMAL, "test.yaml");
  assert.equal(s.name, "t");
  assert.equal(s.duration, 10_000);
  assert.equal(s.seed, 1);
  assert.deepEqual(s.nodes, [{
    group: "n",
    count: 3,
    tier: "sclerotia",
    region: "default",
    start: { at: 0, spread: 0 },
  }]);
  assert.deepEqual(s.bootstrap, { mode: "seeds", seedNodes: 3 });
  assert.deepEqual(s.network.latency, { dist: "uniform", min: 0.2, max: 1 });
  assert.equal(s.network.queue, 1024 * 1024);
  assert.equal(s.network.bandwidth, undefined);
  assert.equal(s.protocol.membership.probeIntervalMs, 1000);
  assert.deepEqual(s.faults, []);
  assert.deepEqual(s.checks.map((c) => c.type), ["membership.converged", "membership.detection"]);
  assert.deepEqual(loadScenarioText(YAML.stringify(base()), "x"), s);
});

Deno.test("loadScenarioText: durations, rates and sizes inside a scenario", () => {
  const s = loadScenarioText(
    YAML.stringify({
      ...base(),
      network: {
        latency: { dist: "constant", value: "2ms" },
        bandwidth: "1Gbit/s",
        queue: "64KiB",
      },
      faults: [{ type: "partition", at: "1m", until: "90s", groups: ["n[0..0]", "n[1..2]"] }],
    }),
    "x",
  );
  assert.deepEqual(s.network.latency, { dist: "constant", value: 2 });
  assert.equal(s.network.bandwidth, 1e9);
  assert.equal(s.network.queue, 65_536);
  assert.equal(s.faults[0].at, 60_000);
  assert.ok(s.faults[0].type === "partition" && s.faults[0].until === 90_000);
});

Deno.test("loadScenarioText: errors carry the precise field path", () => {
  const b = base();
  assertRejects({ ...b, nodes: [{ group: "n", count: 0 }] }, "nodes[0].count");
  assertRejects(
    { ...b, nodes: [{ group: "n", count: 2 }, { group: "m", count: 1.5 }] },
    "nodes[1].count",
  );
  assertRejects({ ...b, nodes: [] }, "nodes", "at least one node group");
  assertRejects({ ...b, nodes: [{ group: "9n", count: 1 }] }, "nodes[0].group");
  assertRejects(
    {
      ...b,
      faults: [{ type: "crash", at: "1s", nodes: "n" }, { type: "explode", at: "2s", nodes: "n" }],
    },
    "faults[1].type",
  );
  assertRejects(
    { ...b, faults: [{ type: "crash", at: "1s", nodes: "n", bogus: 1 }] },
    "faults[0].bogus",
  );
  assertRejects(
    { ...b, faults: [{ type: "crash", at: "1s", nodes: "bad selector!" }] },
    "faults[0].nodes",
  );
  assertRejects(
    { ...b, faults: [{ type: "partition", at: "1s", groups: ["n[0..0]"] }] },
    "faults[0].groups",
    "at least 2 groups",
  );
  assertRejects(
    { ...b, network: { latency: { dist: "uniform", min: 5, max: 1 } } },
    "network.latency.max",
  );
  assertRejects(
    { ...b, network: { latency: { dist: "constant", value: "-1ms" } } },
    "network.latency.value",
  );
  assertRejects({ ...b, network: { loss: 1.5 } }, "network.loss");
  assertRejects({ ...b, network: { bandwidth: "fast" } }, "network.bandwidth");
  assertRejects(
    { ...b, faults: [{ type: "jam", at: "20s", until: "10s", between: ["n[0..0]", "n[1..2]"] }] },
    "faults[0].until",
  );
  assertRejects(
    { ...b, faults: [{ type: "degrade", at: "5s", until: "5s", nodes: "n-0" }] },
    "faults[0].until",
  );
  assertRejects({ ...b, bogus: true }, "bogus: unknown field");
  assertRejects(
    { ...b, protocol: { membership: { probeIntervalMs: -1 } } },
    "protocol.membership.probeIntervalMs",
  );
  assertRejects({ ...b, duration: 0 }, "duration", "must be positive");
  assertRejects({ ...b, duration: "ten seconds" }, "duration");
  assertRejects(
    { ...b, checks: [{ type: "membership.formation", within: "soon" }] },
    "checks[0].within",
  );
  assertRejects({ ...b, name: undefined }, "name");
});

Deno.test("loadScenarioText: duplicate group names, bad YAML, non-mapping documents", () => {
  assertRejects(
    {
      ...base(),
      nodes: [{ group: "a", count: 1 }, { group: "b", count: 1 }, { group: "a", count: 2 }],
    },
    'nodes[2].group: duplicate group name "a"',
  );
  assertRejects("name: [unclosed\n", "invalid YAML");
  assertRejects("name: a\nname: b\nduration: 1s\n", "invalid YAML");
  for (const doc of ["- a\n- b\n", "42\n", "just text\n", "", "null\n"]) {
    assertRejects(doc, "expected a YAML mapping");
  }
  const e = configErrorOf(() =>
    parseScenario({ ...base(), nodes: [{ group: "n", count: 0 }] }, "my.yaml")
  );
  assert.ok(e.message.startsWith("my.yaml: nodes[0].count"), e.message);
});

// ---------------------------------------------------------------------------------------
// --set overrides

Deno.test("applySet: nested paths, array indices and YAML-typed values", () => {
  const doc = base();
  applySet(doc, "nodes[0].count=5");
  applySet(doc, "duration=2s");
  applySet(doc, "protocol.membership.probing=false");
  applySet(doc, "protocol.membership.gossipNodes=4");
  applySet(doc, "network.latency={dist: constant, value: 3}");
  applySet(doc, "faults[0].type=crash");
  applySet(doc, "faults[0].at=1s");
  applySet(doc, "faults[0].nodes=[n-0, n-1]");
  applySet(doc, "description=a=b");
  applySet(doc, " seed =7");
  assert.deepEqual(doc, {
    name: "t",
    duration: "2s",
    nodes: [{ group: "n", count: 5 }],
    protocol: { membership: { probing: false, gossipNodes: 4 } },
    network: { latency: { dist: "constant", value: 3 } },
    faults: [{ type: "crash", at: "1s", nodes: ["n-0", "n-1"] }],
    description: "a=b",
    seed: 7,
  });
  const s = parseScenario(doc);
  assert.equal(s.duration, 2000);
  assert.equal(s.nodes[0].count, 5);
  assert.equal(s.protocol.membership.probing, false);
  assert.equal(s.protocol.membership.probeIntervalMs, 1000, "siblings keep their defaults");
  assert.equal(s.faults[0].at, 1000);
});

Deno.test("applySet: sets given to loadScenarioText apply before validation", () => {
  const s = loadScenarioText(MINIMAL, "x", ["nodes[0].count=7", "seed=9", "network.loss=0.5"]);
  assert.equal(s.nodes[0].count, 7);
  assert.equal(s.seed, 9);
  assert.equal(s.network.loss, 0.5);
  const e = configErrorOf(() => loadScenarioText(MINIMAL, "x", ["nodes[0].count=0"]));
  assert.ok(e.message.includes("nodes[0].count"), e.message);
});

Deno.test("applySet: malformed assignments are rejected", () => {
  const cases: Array<[string, string]> = [
    ["noequals", "expected path=value"],
    ["=5", "expected path=value"],
    ["a..b=1", "bad path"],
    ["a[x]=1", "bad path"],
    ["a[1]b=1", "bad path"],
    ["[0]=1", "bad path"],
    ["nodes[0].count.x=1", "is not an object"],
    ["name.first=1", "is not an object"],
  ];
  for (const [assignment, part] of cases) {
    const e = configErrorOf(() => applySet(base(), assignment));
    assert.ok(e.message.startsWith("--set: "), e.message);
    assert.ok(e.message.includes(part), `${assignment}: ${e.message}`);
  }
});

Deno.test("applySet: any integer count set through --set round-trips (property)", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200_000 }),
      fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      (count, seed) => {
        const s = loadScenarioText(MINIMAL, "x", [`nodes[0].count=${count}`, `seed=${seed}`]);
        assert.equal(s.nodes[0].count, count);
        assert.equal(s.seed, seed);
      },
    ),
    { numRuns: 50 },
  );
});

Deno.test("applySet: prototype paths are rejected and pollute nothing", () => {
  for (const a of ["__proto__.polluted=1", "constructor.prototype.polluted=1", "__proto__=1"]) {
    try {
      const e = configErrorOf(() => loadScenarioText(MINIMAL, "x", [a]));
      assert.ok(/__proto__|constructor/.test(e.message), `${a}: ${e.message}`);
      assert.equal(
        ({} as Record<string, unknown>).polluted,
        undefined,
        `${a} polluted Object.prototype`,
      );
    } finally {
      // deno-lint-ignore no-explicit-any
      delete (Object.prototype as any).polluted;
    }
  }
});

// ---------------------------------------------------------------------------------------
// The shipped scenarios

Deno.test("every scenarios/*.yaml parses", async () => {
  const dir = new URL("../scenarios/", import.meta.url);
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".yaml")) files.push(e.name);
  }
  assert.ok(files.length >= 3, `found only ${files.length} scenario files`);
  for (const f of files.sort()) {
    const s = await loadScenarioFile(new URL(f, dir).pathname);
    assert.ok(s.name.length > 0 && s.duration > 0 && s.nodes.length > 0, f);
  }
  const e = await loadScenarioFile("/nonexistent/x.yaml").then(() => null, (e) => e);
  assert.ok(e instanceof ConfigError && e.message.includes("cannot read scenario file"), String(e));
});
