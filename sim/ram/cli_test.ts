/** `deno task sim` on RAM scenarios as a user runs it: a real subprocess, real files. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runScript } from "../testing.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

const sim = (args: string[]) => runScript(CLI, args);

const SCENARIO = `name: ram-cli
description: one VM on a LAN, its primary killed at 1 s
seed: 2
duration: 4s
nodes: [{ group: n, count: 3 }]
network:
  latency: { dist: uniform, min: 0.15, max: 0.25 }
  bandwidth: 1Gbit
  queue: 64MiB
ram:
  config: { maxBufferBytes: 16777216 }
  vms: [{ name: web, memoryMiB: 16, primaries: n-0 }]
faults:
  - { type: crash, at: 1s, nodes: n-0 }
outputs: { sampleInterval: 250ms }
checks:
  - { type: ram.intensity }
  - { type: ram.single-primary }
  - { type: ram.failover-consistent }
  - { type: ram.failover-time, maxMs: 5s }
`;

async function withScenario(yaml: string, fn: (file: string, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "s.yaml");
    await Deno.writeTextFile(file, yaml);
    await fn(file, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("sim --help mentions RAM scenarios", async () => {
  const r = await sim(["--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /ram section runs the distributed RAM simulator/);
  assert.match(r.stdout, /ram\.csv/);
});

Deno.test("sim run on a RAM scenario: exit 0, summary.json with metrics.ram, ram.csv, vms.csv", async () => {
  await withScenario(SCENARIO, async (file, dir) => {
    const out = join(dir, "out");
    const r = await sim(["run", file, "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /failovers\s+1: web -> n-\d \(crash/);
    assert.match(r.stdout, /ok\s+ram\.failover-consistent/);
    const s = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
    assert.equal(s.ok, true);
    assert.equal(s.seed, 2);
    assert.equal(s.virtualMs, 4000);
    assert.match(s.traceHash, /^[0-9a-f]{16}$/);
    const m = s.metrics.ram;
    for (
      const k of [
        "vms",
        "policy",
        "profiles",
        "bufferLevel",
        "intensity",
        "integratedThrottleS",
        "pauses",
        "replicationLag",
        "epochCommit",
        "pagesReplicated",
        "bytesReplicated",
        "failovers",
        "migrations",
      ]
    ) assert.ok(k in m, `metrics.ram lacks ${k}`);
    assert.equal(m.failovers.count, 1);
    const ram = (await Deno.readTextFile(join(out, "ram.csv"))).trim().split("\n");
    assert.equal(ram[0], "t_ms,vm,buffer_level,intensity,paused,lag_ms");
    assert.equal(ram.length, 1 + 16, "one row per VM per 250 ms sample");
    assert.match(ram[1], /^250,web,/);
    const vms = (await Deno.readTextFile(join(out, "vms.csv"))).trim().split("\n");
    assert.equal(vms.length, 2);
    assert.match(vms[0], /^vm,profile,pages,primary,/);
    // Same seed, same trace hash.
    const r2 = await sim(["run", file, "--out", join(dir, "out2"), "--quiet"]);
    assert.equal(r2.code, 0);
    const s2 = JSON.parse(await Deno.readTextFile(join(dir, "out2", "summary.json")));
    assert.equal(s2.traceHash, s.traceHash);
  });
});

Deno.test("sim run: a failing RAM check exits 1 with a replay command that works", async () => {
  const failing = SCENARIO.replace("maxMs: 5s", "maxMs: 100ms");
  await withScenario(failing, async (file, dir) => {
    const r = await sim(["run", file, "--out", join(dir, "out"), "--quiet"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FAILED: seed 2/);
    assert.match(r.stderr, /replay: deno task sim replay .*s\.yaml --seed 2/);
    const s = JSON.parse(await Deno.readTextFile(join(dir, "out", "summary.json")));
    assert.equal(s.ok, false);
    assert.equal(s.checks.find((c: { name: string }) => c.name === "ram.failover-time").ok, false);

    const rep = await sim(["replay", file, "--seed", "2", "--event", "300", "--window", "3"]);
    assert.equal(rep.code, 0, rep.stderr);
    assert.match(rep.stdout, /replay of ram-cli, seed 2: events 297\.\.303/);
    assert.match(rep.stdout, />> #300/);
    assert.match(rep.stdout, /web: primary n-0 term 1/);
  });
});

Deno.test("sim run: an invalid RAM scenario exits 2 naming the field", async () => {
  const bad = SCENARIO.replace("primaries: n-0", "primaries: m-0");
  await withScenario(bad, async (file, dir) => {
    const r = await sim(["run", file, "--out", join(dir, "out")]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /invalid scenario: .*ram\.vms\[0\]\.primaries: "m-0"/);
  });
});
