/**
 * The RAM simulator end to end: runs are reproducible from the seed; every ram.* check
 * fails when its property is broken (a policy off the curve, a replica that applies epochs
 * wrongly, outputs released unbuffered, tight bounds); the failover, partition, migration and
 * rate scenarios behave as their descriptions say.
 */
import assert from "node:assert/strict";
import type { ThrottlePolicy } from "../../core/ram/params.ts";
import { loadScenarioFile, parseScenario, type Scenario } from "../scenario.ts";
import { SimImage } from "./image.ts";
import { type RamSimOptions, RamSimulation } from "./simulation.ts";

const scenarioPath = (name: string) =>
  new URL(`../../scenarios/${name}.yaml`, import.meta.url).pathname;

const load = (name: string, sets: string[] = []) => loadScenarioFile(scenarioPath(name), sets);

function run(s: Scenario, opts: RamSimOptions = {}) {
  const sim = new RamSimulation(s, opts);
  sim.run();
  return { sim, checks: sim.evaluateChecks() };
}

const failed = (checks: { name: string; ok: boolean; detail: string }[]) =>
  checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);

function check(checks: { name: string; ok: boolean; detail: string }[], name: string) {
  const c = checks.find((x) => x.name === name);
  assert.ok(c, `no check ${name} in ${checks.map((x) => x.name).join(", ")}`);
  return c;
}

/** A small LAN scenario: 3 nodes, one VM with two backups. */
function lan(extra: Record<string, unknown> = {}, ram: Record<string, unknown> = {}): Scenario {
  return parseScenario({
    name: "ram-test",
    seed: 5,
    duration: "3s",
    nodes: [{ group: "n", count: 3 }],
    network: {
      latency: { dist: "uniform", min: 0.15, max: 0.25 },
      bandwidth: "1Gbit",
      queue: "64MiB",
    },
    ram: {
      config: { maxBufferBytes: 16 * 1024 * 1024 },
      vms: [{ name: "web", memoryMiB: 16, primaries: "n-0", workload: { kind: "web-server" } }],
      ...ram,
    },
    checks: [
      { type: "ram.intensity" },
      { type: "ram.single-primary" },
      { type: "ram.failover-consistent" },
      { type: "ram.pause-bounded" },
    ],
    ...extra,
  });
}

Deno.test("ram sim: same seed gives the same trace hash, another seed another", () => {
  const a = run(lan());
  assert.deepEqual(failed(a.checks), []);
  assert.ok(a.sim.events > 1000);
  const b = run(lan());
  assert.equal(a.sim.traceHash, b.sim.traceHash);
  assert.equal(a.sim.events, b.sim.events);
  assert.deepEqual(a.sim.metricsSummary(), b.sim.metricsSummary());
  const c = run(lan({ seed: 6 }));
  assert.notEqual(c.sim.traceHash, a.sim.traceHash);
});

Deno.test("ram sim: guests dirty pages and epochs reach both backups", () => {
  const { sim, checks } = run(lan());
  assert.deepEqual(failed(checks), []);
  const m = sim.metricsSummary();
  assert.equal(m.vms, 1);
  assert.deepEqual(m.profiles, { low: 1 });
  // ~12,000 pages/s for 3 s.
  assert.ok(m.pagesDirtied > 30_000 && m.pagesDirtied <= 36_000, `${m.pagesDirtied}`);
  assert.ok(m.epochs > 500);
  assert.ok(m.bytesReplicated > 0);
  assert.equal(m.intensity.max, 0);
  assert.equal(m.failovers.count, 0);
  assert.ok(m.epochCommit.p99Ms! < 5, "epochs commit within an interval on the LAN");
  assert.ok(sim.samples.length > 0);
});

Deno.test("ram.intensity fails when the applied intensity is not the policy's I(b)", () => {
  const off = (p: ThrottlePolicy): ThrottlePolicy => ({
    name: "off-curve",
    tick: (s) => {
      const d = p.tick(s);
      return { intensity: Math.min(0.9, d.intensity + 0.05), pause: d.pause };
    },
    reset: () => p.reset(),
  });
  const { sim, checks } = run(lan(), { wrapPolicy: off });
  assert.equal(sim.violation?.check, "ram.intensity");
  assert.match(check(checks, "ram.intensity").detail, /intensity 0\.05 != 0 expected/);
  assert.ok(sim.virtualMs < 100, "the run stops at the first violation");
  assert.ok(sim.violation!.event > 0);
});

Deno.test("ram.failover-consistent fails when a backup applies an epoch wrongly", () => {
  // A backup whose image never takes page 0 from an epoch: its state is no cut epoch.
  class LossyImage extends SimImage {
    override apply(page: number, content: number): void {
      if (page !== 0) super.apply(page, content);
    }
  }
  const { sim, checks } = run(
    lan({}, {
      vms: [{ name: "web", memoryMiB: 1, primaries: "n-0", workload: { kind: "uniform" } }],
    }),
    {
      makeImage: (pages, tracked, _vm, node) =>
        node === "n-2" ? new LossyImage(pages, tracked) : new SimImage(pages, tracked),
    },
  );
  assert.equal(sim.violation?.check, "ram.failover-consistent");
  assert.match(check(checks, "ram.failover-consistent").detail, /n-2 applied epoch \d+ of term 1/);
});

Deno.test("ram.output-buffering fails when outputs are released unbuffered and the primary dies", async () => {
  const buffered = run(await load("ram-remus", ["duration=8s"]));
  assert.deepEqual(failed(buffered.checks), []);
  const m = buffered.sim.metricsSummary();
  assert.ok(m.outputs && m.outputs.released > 500);
  assert.equal(m.failovers.count, 1);

  const { sim, checks } = run(
    await load("ram-remus", ["duration=8s", "ram.outputBuffering=false"]),
  );
  assert.equal(sim.violation?.check, "ram.output-buffering");
  assert.match(check(checks, "ram.output-buffering").detail, /already released to clients/);
});

Deno.test("ram-primary-crash: a backup takes over within 5 s from a complete epoch", async () => {
  const { sim, checks } = run(await load("ram-primary-crash"));
  assert.deepEqual(failed(checks), []);
  assert.ok(check(checks, "ram.failover-consistent").ok);
  const m = sim.metricsSummary();
  assert.equal(m.failovers.count, 1);
  const f = m.failovers.list[0];
  assert.equal(f.cause, "crash");
  assert.ok(f.ms! > 0 && f.ms! <= 5000, `${f.ms}`);
  assert.notEqual(f.node, "n-0");
  // The guest runs on at the new primary.
  assert.ok(sim.vms[0].primary > 0);
  assert.ok(m.pagesDirtied > 12_000 * 12);
  // The old primary came back empty: the new primary re-seeded it as a backup.
  assert.equal(m.backupsReseeded, 1);
  assert.ok(m.resyncs >= 1);
});

Deno.test("after a failover a spare node becomes a new backup, seeded by resync", async () => {
  // Four nodes, the crashed primary never returns: n-3 (no replica yet) replaces it.
  const { sim, checks } = run(
    await load("ram-primary-crash", [
      "nodes[0].count=4",
      "faults[0]={type: crash, at: 5s, nodes: n-0, name: kill-primary}",
      // Seeding the new backup (a full 64 MiB image) holds the lag up for a while.
      "checks[5].maxMs=5s",
    ]),
  );
  assert.deepEqual(failed(checks), []);
  const m = sim.metricsSummary();
  assert.equal(m.backupsReseeded, 1);
  assert.ok(m.resyncs >= 1);
  assert.ok(sim.vms[0].images[3] !== null, "n-3 holds a replica now");
});

Deno.test("ram.failover-time fails with a bound below the lease", async () => {
  const { checks } = run(
    await load("ram-primary-crash", ["duration=8s", "checks[4].maxMs=200"]),
  );
  const c = check(checks, "ram.failover-time");
  assert.equal(c.ok, false);
  assert.match(c.detail, /ms from n-0 crashed to a new primary \(bound 200 ms\)/);
});

Deno.test("ram-partition-primary: the isolated primary fences itself, one primary at a time", async () => {
  const { sim, checks } = run(await load("ram-partition-primary"));
  assert.deepEqual(failed(checks), []);
  const m = sim.metricsSummary();
  assert.equal(m.failovers.count, 1);
  assert.equal(m.failovers.list[0].cause, "fence");
  assert.ok(m.resyncs >= 1, "the old primary is reseeded after the heal");
  assert.ok(sim.vms[0].primary !== 0);
});

Deno.test("ram-rate-above throttles and pauses; ram-rate-below does not throttle", async () => {
  const above = run(await load("ram-rate-above", ["duration=10s"]));
  assert.deepEqual(failed(above.checks), []);
  const a = above.sim.metricsSummary();
  assert.ok(a.intensity.max! >= 0.85, `intensity max ${a.intensity.max}`);
  assert.ok(a.pauses.count > 0 || a.drops.count > 0, "no emergency pause or drop");
  assert.ok(a.integratedThrottleS! > 1);

  const below = run(await load("ram-rate-below", ["duration=10s"]));
  assert.deepEqual(failed(below.checks), []);
  const b = below.sim.metricsSummary();
  assert.equal(b.intensity.max, 0);
  assert.equal(b.pauses.count, 0);
  assert.equal(b.drops.count, 0);
  assert.equal(b.integratedThrottleS, 0);
});

Deno.test("ram.replication-lag fails when the link cannot keep up", async () => {
  const { checks } = run(
    await load("ram-rate-above", [
      "duration=6s",
      "checks[4]={type: ram.replication-lag, maxMs: 50}",
    ]),
  );
  const c = check(checks, "ram.replication-lag");
  assert.equal(c.ok, false);
  assert.match(c.detail, /p99 \d+/);
});

Deno.test("ram-migration completes on the LAN; on a slow link it aborts", async () => {
  const lanRun = run(await load("ram-migration"));
  assert.deepEqual(failed(lanRun.checks), []);
  const m = lanRun.sim.metricsSummary().migrations;
  assert.equal(m.completed, 1);
  assert.equal(lanRun.sim.vms[0].primary, 1, "the VM runs on n-1 after the migration");
  assert.ok(m.list[0].blackoutMs! < 300);

  const slow = run(await load("ram-migration-abort"));
  assert.deepEqual(failed(slow.checks), []);
  const s = slow.sim.metricsSummary().migrations;
  assert.equal(s.aborted, 1);
  assert.equal(s.list[0].reason, "timeout");
  assert.equal(slow.sim.vms[0].primary, 0, "the VM stays on its source");

  // Expecting completion on the slow link fails the check.
  const strict = run(
    await load("ram-migration-abort", ["checks[4]={type: ram.migration, expect: completed}"]),
  );
  assert.match(
    check(strict.checks, "ram.migration").detail,
    /aborted \(timeout\), expected completed/,
  );
});

Deno.test("ram-mixed picks Low for the LAN-only VM and High for the one with a WAN backup", async () => {
  const { sim, checks } = run(await load("ram-mixed", ["duration=3s"]));
  assert.deepEqual(failed(checks), []);
  assert.deepEqual(sim.vms.map((v) => [v.name, v.profile]), [["local", "low"], ["geo", "high"]]);
});

Deno.test("ram-autoconverge: the baseline ratchets its throttle up to 99 %", async () => {
  const { sim, checks } = run(await load("ram-autoconverge", ["duration=5s"]));
  assert.deepEqual(failed(checks), []);
  const m = sim.metricsSummary();
  assert.equal(m.policy, "auto-converge");
  assert.equal(m.intensity.max, 0.99);
});

Deno.test("a RAM run rejects membership checks, and a migration that never starts fails", () => {
  assert.throws(
    () =>
      new RamSimulation(parseScenario({
        ...lan(),
        checks: [{ type: "membership.converged" }],
      })),
    /checks\[0\]: membership.converged cannot run in a RAM run/,
  );
  // At 1 s the VM's primary is down: the migration cannot start.
  const s = lan({
    faults: [{ type: "crash", at: "500ms", nodes: "n-0" }],
    checks: [{ type: "ram.migration" }],
  }, {
    vms: [{ name: "web", memoryMiB: 16, primaries: "n-0" }],
    migrations: [{ at: "1s", vm: "web", to: "n-1" }],
  });
  const { checks } = run(s);
  assert.equal(check(checks, "workload.fired").ok, false);
  assert.match(check(checks, "ram.migration").detail, /1 never started/);
});

Deno.test("ram-relay-failure: the stream continues over the surviving relay; the check can fail", async () => {
  const { sim, checks } = run(await load("ram-relay-failure"));
  assert.deepEqual(failed(checks), []);
  const relayed = sim.metrics.counters.get("mycelium_ram_relayed_bytes_total") ?? 0;
  assert.ok(relayed > 100 * 1024 * 1024, `the relays carried ${relayed} bytes`);
  // The same run with a bound tighter than a failure's detection time: the check fires.
  const tight = run(
    await load("ram-relay-failure", ["checks[0]={type: ram.replication-continues, maxGapMs: 40}"]),
  );
  const c = check(tight.checks, "ram.replication-continues");
  assert.equal(c.ok, false);
  assert.match(c.detail, /gaps over 40 ms: web on n-1/);
  // Without relays the check has nothing to judge, and says so.
  const direct = run(lan({ checks: [{ type: "ram.replication-continues" }] }));
  assert.match(check(direct.checks, "ram.replication-continues").detail, /no VM uses relays/);
});

Deno.test("ram-profile-switch: the profile follows the smoothed RTT up and back down", async () => {
  const { sim, checks } = run(await load("ram-profile-switch"));
  assert.deepEqual(failed(checks), []);
  const path = sim.profileSwitches.map((s) => s.to);
  assert.deepEqual(path, ["medium", "high", "medium", "low"]);
  const slowFrom = 5000, slowUntil = 15_000;
  assert.ok(sim.profileSwitches[0].at >= slowFrom, "no switch before the link slows");
  assert.ok(sim.profileSwitches[2].at >= slowUntil, "hysteresis: no step down while slow");
});
