/** `deno task sim` on spores scenarios as a user runs it: a real subprocess, real files. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runScript } from "../testing.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const sim = (args: string[]) => runScript(CLI, args);

const SCENARIO = `name: spores-cli
seed: 3
duration: 20s
nodes:
  - { group: s, count: 4, tier: sclerotia }
  - { group: r, count: 6, tier: rhizomorph, start: { at: 500ms, spread: 2s } }
  - { group: h, count: 4, tier: hypha, start: { at: 500ms, spread: 2s } }
network: { latency: { dist: uniform, min: 1ms, max: 3ms } }
spores:
  seed: { locations: [/seed] }
  byzantine: [{ nodes: r-0, behaviour: forge }]
  workload: { apWriteMs: 2s, cpWriteMs: 1s }
storage:
  config: { chunkSize: 262144 }
  writes: { rate: 4, size: { min: 100KiB, max: 600KiB }, from: h }
  detectionMs: 2s
faults:
  - { type: crash, at: 8s, nodes: r-1 }
outputs: { sampleInterval: 1s }
checks:
  - { type: spores.formation, within: 15s }
  - { type: spores.byzantine-discarded }
  - { type: storage.rf-restored, within: 15s }
  - { type: storage.no-lost-writes }
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

Deno.test("sim run on a spores scenario: exit 0, summary.json with metrics.spores and .storage, CSVs", async () => {
  await withScenario(SCENARIO, async (file, dir) => {
    const out = join(dir, "out");
    const r = await sim(["run", file, "--out", out]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /formation\s+\d/);
    assert.match(r.stdout, /time to restore RF\s+n=\d+/);
    assert.match(r.stdout, /ok\s+spores\.byzantine-discarded/);
    const s = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
    assert.equal(s.ok, true);
    assert.equal(s.seed, 3);
    assert.match(s.traceHash, /^[0-9a-f]{16}$/);
    for (const k of ["formationMs", "join", "discovery", "primary", "discards", "byzantine"]) {
      assert.ok(k in s.metrics.spores, `metrics.spores lacks ${k}`);
    }
    for (const k of ["objects", "restore", "repair", "reads", "lostStrongObjects"]) {
      assert.ok(k in s.metrics.storage, `metrics.storage lacks ${k}`);
    }
    assert.ok(s.metrics.spores.discards.forged > 0);
    const spores = (await Deno.readTextFile(join(out, "spores.csv"))).trim().split("\n");
    assert.match(spores[0], /^t_ms,up,active,joining,read_only,primary_height,latent_divergence,/);
    assert.equal(spores.length, 21);
    const storage = (await Deno.readTextFile(join(out, "storage.csv"))).trim().split("\n");
    assert.match(storage[0], /under_replicated/);
    assert.match(await Deno.readTextFile(join(out, "nodes.csv")), /^node,tier,region,state/);

    // The same seed again: the same trace hash.
    const again = await sim(["run", file, "--out", join(dir, "again"), "--quiet"]);
    assert.equal(again.code, 0);
    const s2 = JSON.parse(await Deno.readTextFile(join(dir, "again", "summary.json")));
    assert.equal(s2.traceHash, s.traceHash);
  });
});

Deno.test("sim run: a failing check exits 1 with a replay command that replays", async () => {
  await withScenario(
    SCENARIO.replace(
      "within: 15s }\n  - { type: spores.byz",
      "within: 1s }\n  - { type: spores.byz",
    ),
    async (file, dir) => {
      const r = await sim(["run", file, "--out", join(dir, "out"), "--quiet"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /replay: deno task sim replay .* --seed 3/);
      const rp = await sim(["replay", file, "--seed", "3", "--event", "500", "--window", "3"]);
      assert.equal(rp.code, 0, rp.stderr);
      assert.match(rp.stdout, />> #500/);
      assert.match(rp.stdout, /Primary height \d+/);
    },
  );
});

Deno.test("sim run: a bad spores section exits 2 naming the field", async () => {
  await withScenario(
    SCENARIO.replace(
      "byzantine: [{ nodes: r-0, behaviour: forge }]",
      "byzantine: [{ nodes: r-0, behaviour: lie }]",
    ),
    async (file) => {
      const r = await sim(["run", file, "--quiet"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /spores\.byzantine\[0\]\.behaviour/);
    },
  );
});
