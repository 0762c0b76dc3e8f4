/** The real cluster runner: what it refuses, and a short real run with the simulator's shape. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseScenario } from "../sim/scenario.ts";
import { unsupportedFeatures } from "./runner.ts";

const CLI = new URL("./cli.ts", import.meta.url).pathname;
const SIM_CLI = new URL("../sim/cli.ts", import.meta.url).pathname;

async function cli(path: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("unsupportedFeatures names every feature the loopback cluster cannot do", () => {
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
