/**
 * The simulator end to end on small clusters: the determinism contract, SWIM behaviour
 * under faults, and one test per checker showing it fires on a violation.
 */
import assert from "node:assert/strict";
import { MemberState } from "../core/membership/messages.ts";
import { Simulation } from "./simulation.ts";
import { check, runScenario, smallScenario } from "./testing.ts";

const stateIn = (sim: Simulation, observer: number, target: number) =>
  sim.nodes[observer].proto!.stateAt(target);

Deno.test("determinism: same scenario and seed give the same trace hash; another seed differs", () => {
  const s = smallScenario(24, {
    duration: "40s",
    network: {
      latency: { dist: "lognormal", median: "2ms", sigma: 0.6 },
      jitter: "1ms",
      loss: 0.02,
      duplicate: 0.01,
      reorder: 0.05,
      bandwidth: "10Mbit",
    },
    faults: [
      { type: "crash", at: "10s", nodes: "10%", restartAfter: "8s" },
      { type: "partition", at: "20s", until: "28s", groups: ["n[0..11]", "n[12..23]"] },
      { type: "clock", at: "5s", nodes: "n-3", offset: "200ms", drift: 0.01 },
    ],
  });
  const a = runScenario(s);
  const b = runScenario(s);
  assert.equal(a.engine.traceHash(), b.engine.traceHash());
  assert.equal(a.engine.events, b.engine.events);
  assert.equal(a.totalBytes, b.totalBytes);
  const c = runScenario(s, { seed: s.seed + 1 });
  assert.notEqual(c.engine.traceHash(), a.engine.traceHash());
});

Deno.test("formation through seed nodes: every node sees every other alive", () => {
  const sim = runScenario(smallScenario(16, { duration: "20s" }));
  assert.notEqual(sim.observer.formationAt, null);
  for (let o = 0; o < 16; o++) {
    for (let t = 0; t < 16; t++) assert.equal(stateIn(sim, o, t), MemberState.Alive);
  }
});

Deno.test("a crash is detected by every live node, within the suspicion bounds", () => {
  const sim = runScenario(smallScenario(10, {
    duration: "60s",
    faults: [{ type: "crash", at: "10s", nodes: "n-4" }],
    checks: [{ type: "membership.detection", maxMs: 30_000 }],
  }));
  assert.ok(check(sim, "membership.detection").ok, check(sim, "membership.detection").detail);
  const [d] = sim.observer.detections;
  const latency = d.allDeclaredAt! - d.crashAt;
  // At least one probe period plus the minimum suspicion timeout (4 x 1 x 1 s for n=10).
  assert.ok(latency >= 4000, `detected too early: ${latency} ms`);
  for (let o = 0; o < 10; o++) if (o !== 4) assert.equal(stateIn(sim, o, 4), MemberState.Dead);
});

Deno.test("a restarted node rejoins with a higher incarnation from its durable store", () => {
  const sim = runScenario(smallScenario(8, {
    duration: "60s",
    faults: [{ type: "crash", at: "10s", nodes: "n-2", restartAfter: "25s" }],
  }));
  const n2 = sim.nodes[2];
  assert.ok(n2.up);
  assert.ok(n2.proto!.incarnation >= 2, `incarnation ${n2.proto!.incarnation}`);
  for (let o = 0; o < 8; o++) {
    if (o === 2) continue;
    assert.equal(stateIn(sim, o, 2), MemberState.Alive, `n-${o} sees n-2 as ${stateIn(sim, o, 2)}`);
    const m = sim.nodes[o].proto!.members().find((m) => m.node === n2.id)!;
    assert.equal(m.inc, n2.proto!.incarnation);
  }
});

Deno.test("a false suspicion is refuted by the suspect raising its incarnation", () => {
  const sim = runScenario(smallScenario(8, { duration: "10s" }));
  const [n0, n1, n2] = sim.nodes;
  const inc = n2.proto!.incarnation;
  sim.send(n0, n1.id, { t: "gossip", gossip: [{ k: "suspect", node: n2.id, inc, from: n0.id }] });
  sim.engine.run(40_000);
  assert.ok(n2.proto!.incarnation > inc);
  for (let o = 0; o < 8; o++) assert.equal(stateIn(sim, o, 2), MemberState.Alive);
  assert.equal(sim.observer.falsePositives, 0);
  assert.ok(sim.observer.falseSuspicions >= 1);
});

Deno.test("a graceful leave is seen as left everywhere and is not a failure", () => {
  const sim = runScenario(smallScenario(8, {
    duration: "30s",
    workload: { leaves: [{ at: "10s", nodes: "n-6" }] },
    checks: [{ type: "membership.converged", within: 15_000 }],
  }));
  assert.equal(sim.nodes[6].up, false);
  for (let o = 0; o < 8; o++) if (o !== 6) assert.equal(stateIn(sim, o, 6), MemberState.Left);
  assert.equal(sim.observer.detections.length, 0);
  assert.ok(check(sim, "membership.converged").ok);
});

Deno.test("Lifeguard: a node with a lossy link raises its local-health score", () => {
  const sim = runScenario(smallScenario(12, {
    duration: "40s",
    faults: [{ type: "degrade", at: "5s", until: "40s", nodes: "n-0", loss: 0.6 }],
  }));
  assert.ok(sim.nodes[0].proto!.awareness > 0, "degraded node should distrust its own links");
  assert.equal(sim.nodes[5].proto!.awareness, 0);
});

Deno.test("a clock fault shifts and skews the node's clock continuously", () => {
  const sim = runScenario(smallScenario(4, {
    duration: "20s",
    faults: [{ type: "clock", at: "10s", nodes: "n-1", offset: "500ms", drift: 0.1 }],
  }));
  const n = sim.nodes[1];
  const local = n.clockOffset + 20_000 * (1 + n.clockDrift);
  assert.ok(Math.abs(local - (20_000 + 500 + 1000)) < 1e-6, `local clock ${local}`);
  assert.equal(sim.faults[0].fired, 1);
});

Deno.test("a narrow uplink queues and drops datagrams, counted by reason", () => {
  const sim = runScenario(smallScenario(30, {
    duration: "10s",
    network: { bandwidth: "20kbit", queue: "2KiB" },
  }));
  assert.ok((sim.dropCounts().queue ?? 0) > 0);
});

// ---- every checker can fail ----

Deno.test("checker membership.detection fails when failure detection is off", () => {
  const sim = runScenario(smallScenario(8, {
    duration: "40s",
    protocol: { membership: { probing: false } },
    faults: [{ type: "crash", at: "10s", nodes: "n-3" }],
    checks: [{ type: "membership.detection", maxMs: 20_000 }],
  }));
  const c = check(sim, "membership.detection");
  assert.equal(c.ok, false);
  assert.match(c.detail, /never detected/);
});

Deno.test("checker membership.converged fails when a crash is never noticed", () => {
  const sim = runScenario(smallScenario(8, {
    duration: "40s",
    protocol: { membership: { probing: false } },
    faults: [{ type: "crash", at: "10s", nodes: "n-3" }],
    checks: [{ type: "membership.converged", within: 20_000 }],
  }));
  const c = check(sim, "membership.converged");
  assert.equal(c.ok, false);
  assert.match(c.detail, /not converged/);
});

Deno.test("checker membership.false-positives fails when a live node is declared dead", () => {
  const sim = runScenario(smallScenario(8, {
    duration: "60s",
    faults: [{ type: "degrade", at: "5s", until: "60s", nodes: "n-2", loss: 0.95 }],
    checks: [{ type: "membership.false-positives", max: 0 }],
  }));
  const c = check(sim, "membership.false-positives");
  assert.equal(c.ok, false, c.detail);
  assert.ok(sim.observer.falsePositives > 0);
});

Deno.test("checker membership.formation fails when nodes cannot learn of each other", () => {
  const sim = runScenario(smallScenario(12, {
    duration: "20s",
    network: { latency: { dist: "constant", value: "5ms" } },
    nodes: [{ group: "n", count: 12, start: { at: 0, spread: "2s" } }],
    protocol: { membership: { probing: false, gossiping: false, pushPullIntervalMs: 0 } },
    checks: [{ type: "membership.formation", within: 10_000 }],
  }));
  assert.equal(check(sim, "membership.formation").ok, false);
});

Deno.test("checker membership.join-dissemination fails when joins are not gossiped", () => {
  const sim = runScenario(smallScenario(8, {
    duration: "30s",
    nodes: [{ group: "n", count: 8 }, { group: "late", count: 2, start: { at: "10s" } }],
    // No gossip rounds, no probes to piggyback on, no anti-entropy: only the seeds learn.
    protocol: {
      membership: {
        gossiping: false,
        probing: false,
        pushPullIntervalMs: 0,
        reconnectIntervalMs: 0,
      },
    },
    checks: [{ type: "membership.join-dissemination", within: 10_000 }],
  }));
  const c = check(sim, "membership.join-dissemination");
  assert.equal(c.ok, false, c.detail);
});

Deno.test("checker membership.sides-serving stops the run when a side loses a live member", () => {
  const s = smallScenario(6, {
    duration: "60s",
    network: { latency: { dist: "constant", value: "5ms" } },
    faults: [{ type: "partition", at: "10s", until: "40s", groups: ["n[0..2]", "n[3..5]"] }],
    checks: [{ type: "membership.sides-serving" }],
  });
  // Honest run: holds.
  assert.ok(check(runScenario(s), "membership.sides-serving").ok);
  // Forge a death on side A just before a sample: the online check catches it.
  const sim = new Simulation(s);
  sim.engine.run(19_990); // lands at 19,995 ms; the check samples at 20,000 ms
  const [n0, n1] = sim.nodes;
  const inc = n1.proto!.incarnation;
  sim.send(sim.nodes[2], n0.id, {
    t: "gossip",
    gossip: [{ k: "dead", node: n1.id, inc, from: n0.id }],
  });
  sim.run();
  assert.ok(sim.violation, "expected an online violation");
  assert.equal(sim.violation.check, "membership.sides-serving");
  assert.ok(sim.violation.event > 0);
  assert.ok(sim.engine.now < 60_000, "the run stops at the violation");
  assert.equal(check(sim, "membership.sides-serving").ok, false);
});

Deno.test("checker membership.incarnation-monotonic fires on a lowered incarnation", () => {
  const s = smallScenario(4, {
    duration: "10s",
    checks: [{ type: "membership.incarnation-monotonic" }],
  });
  const sim = new Simulation(s);
  sim.engine.run(5_000);
  assert.equal(sim.observer.violation, null);
  sim.observer.onChange(0, 1, MemberState.Alive, MemberState.Alive, 7, 3);
  const v = sim.observer.violation as { check: string } | null; // (re-read after the call)
  assert.equal(v?.check, "membership.incarnation-monotonic");
  sim.run();
  assert.equal(check(sim, "membership.incarnation-monotonic").ok, false);
});

Deno.test("checker faults.fired fails for a declared fault that never took effect", () => {
  const sim = runScenario(smallScenario(6, {
    duration: "20s",
    // Both "sides" are the same nodes: nothing is ever cut.
    faults: [{ type: "partition", at: "5s", until: "10s", groups: ["n[0..5]", "all"] }],
  }));
  const c = check(sim, "faults.fired");
  assert.equal(c.ok, false);
  assert.match(c.detail, /never took effect/);
});

Deno.test("checker workload.fired fails for a leave that found no live node", () => {
  const sim = runScenario(smallScenario(6, {
    duration: "20s",
    faults: [{ type: "crash", at: "2s", nodes: "n-3" }],
    workload: { leaves: [{ at: "5s", nodes: "n-3" }] }, // n-3 is already down
  }));
  const c = check(sim, "workload.fired");
  assert.equal(c.ok, false);
  assert.match(c.detail, /never took effect: leave@5000ms/);
});

Deno.test("a crash of a node that is already down does not count as fired", () => {
  const sim = runScenario(smallScenario(6, {
    duration: "20s",
    faults: [
      { type: "crash", at: "2s", nodes: "n-3" },
      { type: "crash", at: "5s", nodes: "n-3", name: "again" },
    ],
  }));
  assert.deepEqual(sim.faults.map((f) => f.fired), [1, 0]);
  assert.equal(check(sim, "faults.fired").ok, false);
});
