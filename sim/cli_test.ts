/** The `sim` CLI as a user runs it: a real subprocess, real files. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runScript } from "./testing.ts";

const CLI = new URL("./cli.ts", import.meta.url).pathname;

const sim = (args: string[]) => runScript(CLI, args);

async function scenarioFile(dir: string, yaml: string): Promise<string> {
  const p = join(dir, "s.yaml");
  await Deno.writeTextFile(p, yaml);
  return p;
}

const SMALL = `name: small
seed: 3
duration: 30s
nodes: [{ group: n, count: 8 }]
faults:
  - { type: crash, at: 10s, nodes: n-5 }
checks:
  - { type: membership.detection, maxMs: 25s }
  - { type: membership.converged, within: 20s }
`;

Deno.test("sim --help and run --help print usage and exit 0", async () => {
  for (const args of [["--help"], ["run", "--help"]]) {
    const r = await sim(args);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /deno task sim run <scenario.yaml>/);
    assert.match(r.stdout, /--set PATH=VALUE/);
  }
});

Deno.test("sim run: passing checks exit 0 and write summary.json and the CSVs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = await scenarioFile(dir, SMALL);
    const out = join(dir, "out");
    const r = await sim(["run", file, "--out", out, "--quiet"]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
    for (
      const k of [
        "scenario",
        "seed",
        "traceHash",
        "virtualMs",
        "wallMs",
        "events",
        "eventsPerSec",
        "peakRssBytes",
        "checks",
        "faults",
        "metrics",
      ]
    ) assert.ok(k in s, `summary.json lacks ${k}`);
    assert.equal(s.seed, 3);
    assert.equal(s.virtualMs, 30_000);
    const m = s.metrics.membership;
    for (
      const k of [
        "formationMs",
        "detection",
        "joinDissemination",
        "falsePositives",
        "bytesPerNodePerSec",
      ]
    ) {
      assert.ok(k in m, `metrics.membership lacks ${k}`);
    }
    assert.equal(m.detection.count, 1);
    assert.deepEqual(s.faults.map((f: { fired: number }) => f.fired), [1]);
    for (const f of ["timeseries.csv", "detections.csv", "joins.csv", "nodes.csv"]) {
      const text = await Deno.readTextFile(join(out, f));
      assert.ok(text.split("\n").length >= 2, f);
    }
    // Same seed through the CLI again: same trace hash.
    const r2 = await sim(["run", file, "--out", join(dir, "out2"), "--quiet"]);
    assert.equal(r2.code, 0);
    const s2 = JSON.parse(await Deno.readTextFile(join(dir, "out2", "summary.json")));
    assert.equal(s2.traceHash, s.traceHash);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sim run: a failing check exits 1 and prints the replay command", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = await scenarioFile(dir, SMALL);
    const r = await sim([
      "run",
      file,
      "--out",
      join(dir, "out"),
      "--set",
      "protocol.membership.probing=false",
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /FAIL {2}membership\.detection/);
    assert.match(
      r.stderr,
      /replay: deno task sim replay .*s\.yaml --seed 3 --set "protocol\.membership\.probing=false"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sim run: a bad scenario exits 2 naming the field, before anything runs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = await scenarioFile(dir, SMALL.replace("count: 8", "count: 0"));
    const r = await sim(["run", file, "--out", join(dir, "out")]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /nodes\[0\]\.count/);
    await assert.rejects(Deno.stat(join(dir, "out", "summary.json")));

    const bad = await sim(["run", await scenarioFile(dir, SMALL.replace("n-5", "nope-5"))]);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /faults\[0\]\.nodes: "nope-5" is neither a node group nor a node name/,
    );

    const seed = await sim(["run", file, "--seed", "abc"]);
    assert.equal(seed.code, 2);
    assert.match(seed.stderr, /--seed/);

    const missing = await sim(["run", join(dir, "missing.yaml")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing\.yaml: cannot read scenario file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sim replay prints the events around the requested index", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = await scenarioFile(dir, SMALL);
    const r = await sim(["replay", file, "--seed", "3", "--event", "500", "--window", "3"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /events 497\.\.503/);
    assert.match(r.stdout, />> #500 /);
    assert.match(r.stdout, /reached event 503/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: a consensus scenario runs the consensus simulator; summary.json has metrics.consensus", async () => {
  const out = await Deno.makeTempDir();
  try {
    const r = await sim([
      "run",
      "scenarios/consensus-n4.yaml",
      "--out",
      out,
      "--set",
      "duration=6s",
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /consensus\.agreement: held at all/);
    const s = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
    for (const k of ["scenario", "seed", "traceHash", "checks", "faults", "replay"]) {
      assert.ok(k in s, k);
    }
    assert.ok(s.metrics.consensus.heights > 0);
    for (const f of ["trust.csv", "heights.csv", "ops.csv", "nodes.csv"]) {
      await Deno.stat(join(out, f));
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("cli: sim twins with f+1 twins reports a violation with a scenario file that replays it", async () => {
  const out = await Deno.makeTempDir();
  try {
    const r = await sim([
      "twins",
      "--n",
      "4",
      "--twins",
      "2",
      "--samples",
      "300",
      "--seed",
      "9",
      "--stop-at-first",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1 violations/);
    const file = /replay: deno task sim run (\S+)/.exec(r.stdout)?.[1];
    assert.ok(file, r.stdout);
    const again = await sim(["run", file, "--out", join(out, "replay"), "--quiet"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /FAILED: seed/);
    const s = JSON.parse(await Deno.readTextFile(join(out, "replay", "summary.json")));
    assert.ok(
      s.checks.some((c: { name: string; ok: boolean }) =>
        c.name === "consensus.agreement" && !c.ok
      ),
    );
    const bad = await sim(["twins", "--n", "4", "--twins", "5"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--twins/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
