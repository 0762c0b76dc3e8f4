/**
 * The spores simulator: determinism, healthy runs pass, and every spores.* and storage.*
 * checker fails on a setup broken on purpose (DESIGN.md section 3: every checker has a test
 * proving it can fail).
 */
import assert from "node:assert/strict";
import { parseScenario, type Scenario } from "../scenario.ts";
import { type SporeSimOptions, SporeSimulation } from "./simulation.ts";

// deno-lint-ignore no-explicit-any
type Doc = Record<string, any>;

const NODES = [
  { group: "s", count: 4, tier: "sclerotia" },
  { group: "r", count: 6, tier: "rhizomorph", start: { at: "500ms", spread: "2s" } },
  { group: "h", count: 4, tier: "hypha", start: { at: "500ms", spread: "2s" } },
];

function scenario(checks: Doc[], spores: Doc = {}, over: Doc = {}): Scenario {
  return parseScenario({
    name: "spores-test",
    seed: 7,
    duration: "20s",
    nodes: NODES,
    network: { latency: { dist: "uniform", min: 1, max: 3 } },
    spores: { seed: { locations: ["/seed"] }, discovery: { entryPoints: "s[0..1]" }, ...spores },
    checks,
    ...over,
  }, "test");
}

function run(s: Scenario, opts: SporeSimOptions = {}) {
  const sim = new SporeSimulation(s, opts);
  sim.run();
  return { sim, checks: sim.evaluateChecks() };
}

function result(checks: ReturnType<SporeSimulation["evaluateChecks"]>, name: string) {
  const c = checks.find((x) => x.name === name);
  assert.ok(c, `no result for ${name}: ${JSON.stringify(checks)}`);
  return c;
}

function passes(s: Scenario, opts: SporeSimOptions = {}) {
  const { sim, checks } = run(s, opts);
  for (const c of checks) assert.ok(c.ok, `${c.name}: ${c.detail}`);
  return sim;
}

function fails(s: Scenario, name: string, opts: SporeSimOptions = {}, detail?: RegExp) {
  const { sim, checks } = run(s, opts);
  const c = result(checks, name);
  assert.equal(c.ok, false, `${name} should fail: ${c.detail}`);
  if (detail) assert.match(c.detail, detail);
  return sim;
}

const STORAGE: Doc = {
  config: { chunkSize: 262144, replicationFactor: 3, failureDomain: "host" },
  writes: { rate: 5, size: { min: "100KiB", max: "600KiB" }, strong: 0.7, from: "h" },
  detectionMs: "2s",
};

Deno.test("same seed, same trace hash; another seed, another", () => {
  const s = scenario([], { workload: { apWriteMs: "2s", cpWriteMs: "2s" } }, {
    storage: STORAGE,
    faults: [{ type: "crash", at: "8s", nodes: "r-1", restartAfter: "4s" }],
  });
  const a = run(s).sim;
  const b = run(s).sim;
  const c = run(s, { seed: 8 }).sim;
  assert.equal(a.traceHash, b.traceHash);
  assert.equal(a.events, b.events);
  assert.deepEqual(a.metricsSummary(), b.metricsSummary());
  assert.notEqual(a.traceHash, c.traceHash);
});

Deno.test("a healthy network forms, converges and keeps every spores check", () => {
  const sim = passes(scenario([
    { type: "spores.bounded" },
    { type: "spores.formation", within: "10s" },
    { type: "spores.converged", within: "10s" },
    { type: "spores.no-contradiction" },
    { type: "spores.discovery", within: "5s" },
    { type: "spores.single-writer" },
    { type: "spores.no-lockout", within: "5s" },
  ], { workload: { cpWriteMs: "1s", readMs: "1s" } }));
  assert.ok(sim.formationAt! > 0);
  assert.equal(sim.nodes.filter((n) => n.active).length, 14);
  const m = sim.metricsSummary();
  assert.equal(m.primary.members, 10, "Sclerotia and Rhizomorphs joined the Primary; Hyphae not");
  assert.ok(m.cp.committed > 0);
  assert.equal(m.discovery.bySource.seed, 10);
});

Deno.test("spores.bounded fails when nodes push more entries than the configured bound", () => {
  const s = scenario([{ type: "spores.bounded" }], { gossip: { maxPush: 2 } });
  passes(s);
  fails(s, "spores.bounded", { gossipOverride: { maxPush: 64 } }, /pushed \d+ entries/);
});

Deno.test("spores.formation fails when formation takes longer than the bound", () => {
  fails(scenario([{ type: "spores.formation", within: "1s" }]), "spores.formation", {}, /bound 1/);
});

Deno.test("spores.converged fails while a partition never heals", () => {
  fails(
    scenario([{ type: "spores.converged", within: "5s" }], {
      workload: { apWriteMs: "1s" },
    }, { faults: [{ type: "partition", at: "5s", groups: ["s[0..1]", "s[2..3]"] }] }),
    "spores.converged",
    {},
    /not converged/,
  );
});

Deno.test("spores.no-contradiction fails when nodes accept an uncertified Primary", () => {
  const s = scenario([{ type: "spores.no-contradiction" }], {
    byzantine: [{ nodes: "r-0", behaviour: "contradict-primary" }],
  });
  passes(s);
  fails(s, "spores.no-contradiction", { uncertifiedPrimary: true }, /contradicts the certified/);
});

Deno.test("spores.discovery fails when joiners skip a path that exists", () => {
  const events = [{ at: "100ms", type: "seed", location: "/seed", action: "delete" }];
  const all = scenario([{ type: "spores.discovery", within: "3s" }], { events });
  const sim = passes(all);
  assert.ok(sim.metricsSummary().discovery.bySource.latent > 0, "found through entry points");
  fails(
    scenario([{ type: "spores.discovery", within: "3s" }], {
      events,
      discovery: { entryPoints: "s[0..1]", sources: ["seed"] },
    }),
    "spores.discovery",
    {},
    /found no Sclerotium/,
  );
});

const SPLIT = {
  faults: [{ type: "partition", at: "5s", until: "12s", groups: ["s[0..1]", "s[2..3]"] }],
};

Deno.test("spores.single-writer fails when a side without a quorum commits", () => {
  const checks = [{ type: "spores.single-writer" }];
  const load = { workload: { cpWriteMs: "500ms" } };
  const ok = passes(scenario(checks, load, SPLIT));
  assert.ok(ok.metricsSummary().cp.refused > 0, "both 2|2 halves refused CP writes");
  fails(scenario(checks, { ...load, primary: { quorum: "any" } }, SPLIT), "spores.single-writer");
});

Deno.test("spores.no-lockout fails when a connected quorum cannot commit", () => {
  const checks = [{ type: "spores.no-lockout", within: "3s" }];
  const crash = { faults: [{ type: "crash", at: "5s", nodes: "s-3" }] };
  const load = { workload: { cpWriteMs: "500ms" } };
  passes(scenario(checks, load, crash)); // 3 of 4 voters: a quorum
  fails(scenario(checks, { ...load, primary: { quorum: "all" } }, crash), "spores.no-lockout");
});

Deno.test("spores.byzantine-discarded fails when forgeries are accepted", () => {
  const s = scenario([{ type: "spores.byzantine-discarded" }], {
    byzantine: [{ nodes: "r-0", behaviour: "forge" }, { nodes: "h-0", behaviour: "wrong-network" }],
  });
  const sim = passes(s);
  const m = sim.metricsSummary();
  assert.ok(m.discards.forged > 0 && m.discards["wrong-network"] > 0);
  fails(s, "spores.byzantine-discarded", { verify: () => true }, /accepted a forge entry/);
});

Deno.test("spores.sides-serving fails when AP writes do not spread within a side", () => {
  const s = scenario([{ type: "spores.sides-serving", within: "3s" }], {
    workload: { apWriteMs: "1s", readMs: "1s" },
  }, SPLIT);
  passes(s);
  fails(s, "spores.sides-serving", { gossipOverride: { gossipMs: 1e9, pushPullMs: 0 } }, /lacks/);
});

Deno.test("spores.singletons fails when duplicates are not resolved on heal", () => {
  const s = scenario(
    [{ type: "spores.singletons", within: "2s" }],
    { singletons: ["sched"] },
    SPLIT,
  );
  const sim = passes(s);
  assert.equal(sim.resolutions.length, 1);
  fails(s, "spores.singletons", { keepDuplicateSingletons: true }, /instances on one side/);
});

Deno.test("spores.fork-flagged fails when an override's fork heals unflagged", () => {
  const s = scenario([{ type: "spores.fork-flagged" }, { type: "spores.single-writer" }], {
    workload: { cpWriteMs: "500ms" },
    events: [{ at: "6s", type: "override", nodes: "s-0" }, {
      at: "2s",
      type: "override",
      nodes: "s-1",
    }],
  }, SPLIT);
  const m = passes(s).metricsSummary().splitBrain;
  assert.equal(m.overridesIgnored, 1, "no partition at 2 s: no fork");
  assert.ok(m.overrideWrites > 0 && m.forksFlagged === 1);
  assert.equal(m.flags[0].kept, "quorum line");
  assert.ok(m.flags[0].reported.length > 0, "the losing side's override writes are reported");
  fails(s, "spores.fork-flagged", { skipForkFlag: true }, /healed unflagged/);
});

Deno.test("spores.absence-excused fails when partition records excuse nothing", () => {
  // s-3 alone on one side: the other three voters hold quorum(4) = 3 and commit while s-3 is
  // absent; on heal the partition is recorded in the Primary and excuses those rounds.
  const minority = {
    faults: [{ type: "partition", at: "5s", until: "12s", groups: [["s[0..2]", "r", "h"], "s-3"] }],
  };
  const s = scenario(
    [{ type: "spores.absence-excused" }, { type: "spores.single-writer" }],
    { workload: { cpWriteMs: "500ms" } },
    minority,
  );
  const m = passes(s).metricsSummary().absence;
  assert.ok(m.applied > 0 && m.excused > 0, JSON.stringify(m));
  assert.equal(m.partitionRecords, 1);
  assert.equal(m.kept, m.applied - m.excused);
  fails(
    s,
    "spores.absence-excused",
    { noAbsenceExcuse: true },
    /kept for rounds spent in a minority/,
  );
});

Deno.test("spores.absence-excused fails when a crashed voter is not penalised", () => {
  const crash = { faults: [{ type: "crash", at: "5s", nodes: "s-3" }] };
  const s = scenario(
    [{ type: "spores.absence-excused" }],
    { workload: { cpWriteMs: "500ms" } },
    crash,
  );
  const sim = passes(s);
  const m = sim.metricsSummary().absence;
  assert.ok(m.applied > 0 && m.excused === 0 && m.kept === m.applied, JSON.stringify(m));
  // Eleven absences take a genesis voter from 0.9 below the vote threshold: it loses its vote.
  assert.equal(m.applied, 11);
  assert.equal(sim.ledger.voters(sim.ledger.newest).length, 3);
  fails(s, "spores.absence-excused", { noAbsencePenalty: true }, /not penalised/);
});

Deno.test("storage.class fails when placement ignores the class", () => {
  const s = scenario([{ type: "storage.class" }], {}, {
    storage: { ...STORAGE, writes: { ...STORAGE.writes, classes: { Critical: 1 } } },
  });
  passes(s);
  fails(s, "storage.class", { storage: { ignoreClass: true } }, /Critical replica/);
});

Deno.test("storage.rf-restored fails without re-replication", () => {
  const crash = { faults: [{ type: "crash", at: "8s", nodes: "r[0..1]" }] };
  const checks = [{ type: "storage.rf-restored", within: "8s" }];
  const sim = passes(scenario(checks, {}, { storage: STORAGE, ...crash }));
  assert.ok(sim.storage!.metrics().restore.restored > 0);
  fails(
    scenario(checks, {}, { storage: { ...STORAGE, repair: false }, ...crash }),
    "storage.rf-restored",
    {},
    /still open/,
  );
});

Deno.test("storage.no-lost-writes fails with a single replica and crashes", () => {
  const checks = [{ type: "storage.no-lost-writes" }];
  // Two storage nodes die for good: three replicas survive it, one does not.
  const crash = { faults: [{ type: "crash", at: "10s", nodes: "r[0..1]" }] };
  passes(scenario(checks, {}, { storage: STORAGE, ...crash }));
  const one = { ...STORAGE, config: { ...STORAGE.config, replicationFactor: 1 } };
  fails(scenario(checks, {}, { storage: one, ...crash }), "storage.no-lost-writes", {}, /lost/);
});

const PROMOTION: Doc = {
  trust: { nodes: [{ nodes: "r", value: 0.8 }] },
  promotion: { everyMs: "1s", minUptimeMs: "2s", minCapacity: 0.1 },
  clients: { opMs: "300ms" },
};

Deno.test("Rhizomorphs are promoted through the Primary and Hyphae clients fail over", () => {
  const checks = [{ type: "spores.promotion" }, { type: "spores.client-failover", within: "3s" }];
  const crash = { faults: [{ type: "crash", at: "10s", nodes: "s-3", restartAfter: "4s" }] };
  const sim = passes(scenario(checks, PROMOTION, crash));
  assert.ok(sim.dynamicSclerotia() > 0);
  assert.ok(sim.counters.clientOps > 0 && sim.counters.clientFailures === 0);
});

Deno.test("spores.promotion fails when nodes take the Sclerotia role without the ledger", () => {
  fails(
    scenario([{ type: "spores.promotion" }], PROMOTION),
    "spores.promotion",
    { promotionWithoutLedger: true },
    /without a committed promotion/,
  );
});

Deno.test("spores.client-failover fails when clients retry on the failed connection", () => {
  const crash = { faults: [{ type: "crash", at: "10s", nodes: "s[0..1]" }] };
  const checks = [{ type: "spores.client-failover" }];
  fails(
    scenario(checks, PROMOTION, crash),
    "spores.client-failover",
    { clientRetrySame: true },
    /reachable when it retried/,
  );
  fails(
    scenario(checks, PROMOTION, crash),
    "spores.client-failover",
    { clientNoRefresh: true },
    /live Sclerotia connections/,
  );
});
