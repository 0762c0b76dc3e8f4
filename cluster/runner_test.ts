/** The real cluster runner: what it refuses, and a short real run with the simulator's shape. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadScenarioFile, parseScenario } from "../sim/scenario.ts";
import { runScript } from "../sim/testing.ts";
import { leftovers, netnsUnavailable } from "./netns.ts";
import { relayReasons, unsupportedFeatures } from "./runner.ts";

const CLI = new URL("./cli.ts", import.meta.url).pathname;
const SIM_CLI = new URL("../sim/cli.ts", import.meta.url).pathname;

const cli = runScript;

Deno.test("unsupportedFeatures names what the cluster cannot do, with and without netns", () => {
  const s = parseScenario({
    name: "x",
    duration: "10s",
    nodes: [{ group: "n", count: 40 }],
    bootstrap: { mode: "snapshot" },
    network: { loss: 0.1, bandwidth: "1Mbit", latency: { dist: "constant", value: "5ms" } },
    faults: [
      { type: "partition", at: "1s", groups: ["n[0..1]", "n[2..3]"] },
      { type: "clock", at: "1s", nodes: "n-1", offset: "1s" },
      { type: "crash", at: "2s", nodes: "n-1" },
      { type: "oneway", at: "1s", from: "n-0", to: "n-1" },
      { type: "jam", at: "1s", between: ["n-0", "n-1"] },
      { type: "degrade", at: "1s", nodes: "n-2", loss: 0.2 },
      { type: "degrade", at: "1s", nodes: "n-2", addLatency: "5ms" },
      { type: "slow", at: "1s", between: ["n-0", "n-1"], addLatency: "5ms" },
    ],
  });
  const reasons = unsupportedFeatures(s).join("\n");
  for (
    const field of [
      "network.latency",
      "network.loss",
      "network.bandwidth",
      "faults[0]",
      "faults[1]",
      "bootstrap.mode",
      "nodes",
    ]
  ) {
    assert.match(reasons, new RegExp(field.replace(/[.[\]]/g, "\\$&")), field);
  }
  assert.doesNotMatch(reasons, /faults\[2\]/); // crash faults are real
  assert.match(reasons, /network\.latency: needs the delaying relay/);
  assert.match(reasons, /faults\[7\]: needs the delaying relay/);
  // In network namespaces: partitions, one-way cuts, jams, lossy degrades, loss and bandwidth
  // are nftables/tc rules, latency and slow links the delaying relay; clocks stay impossible.
  const ns = unsupportedFeatures(s, { netns: true }).join("\n");
  for (const field of ["faults[1]", "bootstrap.mode"]) {
    assert.match(ns, new RegExp(field.replace(/[.[\]]/g, "\\$&")), field);
  }
  for (
    const field of [
      "network.latency",
      "network.loss",
      "network.bandwidth",
      "faults[0]",
      "faults[3]",
    ]
  ) {
    assert.doesNotMatch(ns, new RegExp(field.replace(/[.[\]]/g, "\\$&")), field);
  }
  assert.doesNotMatch(ns, /faults\[(2|4|5|6|7)\]/);
  assert.deepEqual(relayReasons(s), ["network.latency", "faults[6].addLatency", "faults[7]"]);
  assert.deepEqual(
    unsupportedFeatures(
      parseScenario({ name: "ok", duration: "5s", nodes: [{ group: "n", count: 3 }] }),
    ),
    [],
  );
});

Deno.test("cluster run rejects an unsupported scenario up front (exit 2, reasons named)", async () => {
  const r = await cli(CLI, [
    "run",
    "scenarios/partition-3x3.yaml",
    "--no-netns",
    "--out",
    await Deno.makeTempDir(),
  ]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /faults\[0\]: a partition fault needs per-node network namespaces/);
  assert.doesNotMatch(r.stderr, /running/);
});

Deno.test({
  name:
    "cluster run: 5 real nodes, kill -9 and restart, a leave; same summary shape as the simulator",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const sets = [
        "duration=25s",
        "faults[0].at=6s",
        "faults[0].restartAfter=8s",
        "workload.leaves[0].at=20s",
      ];
      const setArgs = sets.flatMap((s) => ["--set", s]);
      const real = await cli(CLI, [
        "run",
        "scenarios/cluster-5.yaml",
        "--out",
        join(dir, "real"),
        ...setArgs,
      ]);
      assert.equal(real.code, 0, real.stdout + real.stderr);
      const sim = await cli(SIM_CLI, [
        "run",
        "scenarios/cluster-5.yaml",
        "--out",
        join(dir, "sim"),
        "--quiet",
        ...setArgs,
      ]);
      assert.equal(sim.code, 0, sim.stderr);
      const a = JSON.parse(await Deno.readTextFile(join(dir, "real", "summary.json")));
      const b = JSON.parse(await Deno.readTextFile(join(dir, "sim", "summary.json")));
      assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
      assert.deepEqual(
        Object.keys(a.metrics.membership).sort(),
        Object.keys(b.metrics.membership).sort(),
      );
      assert.deepEqual(
        a.checks.map((c: { name: string }) => c.name),
        b.checks.map((c: { name: string }) => c.name),
      );
      assert.ok(a.checks.every((c: { ok: boolean }) => c.ok), JSON.stringify(a.checks));
      assert.equal(a.metrics.membership.detection.count, 1);
      for (const n of [0, 1, 2, 3]) await Deno.stat(join(dir, "real", "metrics", `node-${n}.prom`));
      const log3 = await Deno.readTextFile(join(dir, "real", "logs", "node-3.log"));
      assert.match(log3, /# life 2/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const nsWhy = netnsUnavailable();

Deno.test({
  name: "cluster run --netns: the 3|3 split for real — both sides serve, converged after the heal" +
    (nsWhy ? ` (skipped: needs root and ip/nft/tc — ${nsWhy})` : ""),
  ignore: nsWhy !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const r = await cli(CLI, [
        "run",
        "scenarios/partition-3x3.yaml",
        "--netns",
        "--out",
        dir,
        "--set",
        "duration=45s",
        "--set",
        "faults[0].at=8s",
        "--set",
        "faults[0].until=22s",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /in network namespaces/);
      const a = JSON.parse(await Deno.readTextFile(join(dir, "summary.json")));
      assert.ok(a.checks.every((c: { ok: boolean }) => c.ok), JSON.stringify(a.checks));
      for (
        const name of [
          "membership.sides-serving",
          "membership.converged",
          "faults.fired",
        ]
      ) {
        assert.ok(a.checks.some((c: { name: string }) => c.name === name), name);
      }
      // The split really dropped packets (its nft counters), and nodes declared the other side
      // failed only as partition fallout, never as false positives.
      assert.ok(a.faults[0].fired > 0, JSON.stringify(a.faults));
      assert.equal(a.metrics.membership.falsePositives, 0);
      assert.ok(a.metrics.membership.partitionDeclarations > 0);
      // Nothing of the run's lab is left behind.
      const prefix = /namespaces (myc[0-9a-f]{5})-n0/.exec(r.stderr)?.[1];
      assert.ok(prefix, r.stderr);
      assert.deepEqual(await leftovers(prefix), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "cluster run --netns: WAN latency through the delaying relay — regions, a slowed link, " +
    "kill -9 and restart" + (nsWhy ? ` (skipped: needs root and ip/nft/tc — ${nsWhy})` : ""),
  ignore: nsWhy !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const sets = [
        "duration=40s",
        "faults[0].at=6s",
        "faults[0].until=16s",
        "faults[1].at=8s",
        "faults[1].restartAfter=20s",
        "checks[4].within=20s",
      ];
      const r = await cli(CLI, [
        "run",
        "scenarios/cluster-wan.yaml",
        "--netns",
        "--out",
        dir,
        ...sets.flatMap((s) => ["--set", s]),
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const a = JSON.parse(await Deno.readTextFile(join(dir, "summary.json")));
      assert.ok(a.checks.every((c: { ok: boolean }) => c.ok), JSON.stringify(a.checks));
      const relay = a.metrics.membership.counters;
      // Gossip went through the relay (and nothing reached it from outside the lab), and the
      // slowed link delayed packets: its firings are the packets the relay held longer.
      assert.ok(relay["relay.datagrams"] > 100, JSON.stringify(relay));
      assert.equal(relay["relay.strays"], 0);
      assert.ok(a.faults[0].fired > 0, JSON.stringify(a.faults));
      assert.equal(a.metrics.membership.detection.count, 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("consensus scenarios: Byzantine nodes, twins and commit-reveal tasks are named as simulator-only", async () => {
  for (
    const [file, want] of [
      ["scenarios/consensus-n4.yaml", /consensus\.tasks[\s\S]*trust-dynamics/],
      ["scenarios/consensus-byz-double-vote.yaml", /consensus\.byzantine/],
      ["scenarios/consensus-n4-twins.yaml", /consensus\.twins/],
    ] as const
  ) {
    const s = await loadScenarioFile(file);
    assert.match(unsupportedFeatures(s, { netns: true }).join("\n"), want, file);
  }
  const ok = await loadScenarioFile("scenarios/consensus-crash-restart.yaml");
  assert.deepEqual(unsupportedFeatures(ok), []);
});

Deno.test({
  name: "cluster run: consensus on 7 real voters under HTTP load, kill -9 and restart; " +
    "the simulator's consensus checks and summary shape",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const sets = [
        "duration=24s",
        "faults[0].at=4s",
        "faults[0].restartAfter=4s",
        "faults[1].at=11s",
        "faults[1].restartAfter=3s",
      ];
      const setArgs = sets.flatMap((s) => ["--set", s]);
      const file = "scenarios/consensus-crash-restart.yaml";
      const real = await cli(CLI, [
        "run",
        file,
        "--no-netns",
        "--report",
        "--out",
        join(dir, "real"),
        ...setArgs,
      ]);
      assert.equal(real.code, 0, real.stdout + real.stderr);
      const report = await Deno.readTextFile(join(dir, "real", "report.html"));
      assert.match(report, /Consensus progress/, "the cluster run's report charts its heights");
      const sim = await cli(SIM_CLI, [
        "run",
        file,
        "--out",
        join(dir, "sim"),
        "--quiet",
        ...setArgs,
      ]);
      assert.equal(sim.code, 0, sim.stderr);
      const a = JSON.parse(await Deno.readTextFile(join(dir, "real", "summary.json")));
      const b = JSON.parse(await Deno.readTextFile(join(dir, "sim", "summary.json")));
      assert.deepEqual(
        a.checks.map((c: { name: string }) => c.name),
        b.checks.map((c: { name: string }) => c.name),
      );
      assert.ok(a.checks.every((c: { ok: boolean }) => c.ok), JSON.stringify(a.checks));
      for (const k of Object.keys(b.metrics.consensus)) {
        assert.ok(k in a.metrics.consensus, `metrics.consensus.${k} missing from the real run`);
      }
      assert.ok(a.metrics.consensus.heights > 0 && a.metrics.consensus.committedOps > 0);
      const ops = await Deno.readTextFile(join(dir, "real", "ops.csv"));
      assert.ok(ops.split("\n").length > 10, "ops.csv holds the client history");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
