import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type AttemptOutcome,
  DISCOVERY_ORDER,
  type DiscoveryAttempt,
  DiscoveryCursor,
  type DiscoveryInputs,
  discoveryPlan,
  runDiscovery,
} from "./discovery.ts";

const NONE: DiscoveryInputs = { cached: [], rhizomorphs: [], seeds: [], entryPoints: [] };

Deno.test("the plan tries cached spore, Rhizomorphs, Seeds, then Latent entry points, each once", () => {
  const plan = discoveryPlan({
    entryPoints: ["e1"],
    seeds: ["/etc/seed", "https://x/seed", "/etc/seed"],
    rhizomorphs: ["r1", "r2"],
    cached: ["s1"],
  });
  assert.deepEqual(plan, [
    { source: "cached", target: "s1" },
    { source: "rhizomorph", target: "r1" },
    { source: "rhizomorph", target: "r2" },
    { source: "seed", target: "/etc/seed" },
    { source: "seed", target: "https://x/seed" },
    { source: "latent", target: "e1" },
  ]);
});

Deno.test("discovery stops at the first attempt that yields a reachable Sclerotium", () => {
  const world: Record<string, AttemptOutcome> = {
    s1: { reached: false }, // the cached Sclerotium is gone
    r1: { reached: true, sclerotia: [] }, // a Rhizomorph that knows nobody
    "/etc/seed": { reached: true, sclerotia: ["S9", "S2", "S3", "S4", "S2"] },
    e1: { reached: true, sclerotia: ["S5"] },
  };
  const r = runDiscovery(
    { cached: ["s1"], rhizomorphs: ["r1"], seeds: ["/etc/seed"], entryPoints: ["e1"] },
    (a) => world[a.target],
    { sclerotiumReachable: (s) => s !== "S9" },
  );
  assert.deepEqual(r.attempts.map((a) => [a.attempt.target, a.result]), [
    ["s1", "unreachable"],
    ["r1", "no-sclerotium"],
    ["/etc/seed", "found"],
  ]);
  assert.deepEqual(r.found, {
    via: { source: "seed", target: "/etc/seed" },
    sclerotia: ["S2", "S3", "S4"],
  });
});

interface World {
  inputs: DiscoveryInputs;
  reachable: Set<string>;
  reveals: Map<string, string[]>;
  liveSclerotia: Set<string>;
}

const name = (p: string) => fc.integer({ min: 0, max: 4 }).map((i) => `${p}${i}`);
const worldArb: fc.Arbitrary<World> = fc.record({
  rhizomorphs: fc.array(name("r"), { maxLength: 4 }),
  seeds: fc.array(name("/seed"), { maxLength: 3 }),
  entryPoints: fc.array(name("e"), { maxLength: 4 }),
  reachable: fc.array(fc.oneof(name("r"), name("/seed"), name("e")), { maxLength: 8 }),
  reveals: fc.array(
    fc.tuple(fc.oneof(name("r"), name("/seed"), name("e")), fc.array(name("S"), { maxLength: 3 })),
    { maxLength: 10 },
  ),
  live: fc.array(name("S"), { maxLength: 4 }),
}).map((w) => ({
  // A fresh Hyphae: nothing cached.
  inputs: { cached: [], rhizomorphs: w.rhizomorphs, seeds: w.seeds, entryPoints: w.entryPoints },
  reachable: new Set(w.reachable),
  reveals: new Map(w.reveals),
  liveSclerotia: new Set(w.live),
}));

function probe(w: World) {
  return (a: DiscoveryAttempt): AttemptOutcome =>
    w.reachable.has(a.target)
      ? { reached: true, sclerotia: w.reveals.get(a.target) ?? [] }
      : { reached: false };
}

Deno.test("a fresh Hyphae finds a Sclerotium whenever any discovery path exists", () => {
  fc.assert(
    fc.property(worldArb, (w) => {
      const plan = discoveryPlan(w.inputs);
      const works = (a: DiscoveryAttempt) =>
        w.reachable.has(a.target) &&
        (w.reveals.get(a.target) ?? []).some((s) => w.liveSclerotia.has(s));
      const first = plan.findIndex(works);
      const r = runDiscovery(w.inputs, probe(w), {
        sclerotiumReachable: (s) => w.liveSclerotia.has(s),
      });
      assert.equal(r.found !== null, first >= 0, "found iff a path exists");
      if (r.found) {
        assert.deepEqual(r.found.via, plan[first], "the first working path in order");
        assert.equal(r.attempts.length, first + 1);
        assert.ok(r.found.sclerotia.every((s) => w.liveSclerotia.has(s)));
        assert.ok(r.found.sclerotia.length >= 1 && r.found.sclerotia.length <= 3);
      } else assert.equal(r.attempts.length, plan.length, "every path was tried");
      // Sources are tried in the documented order.
      const ranks = r.attempts.map((a) => DISCOVERY_ORDER.indexOf(a.attempt.source));
      assert.deepEqual(ranks, [...ranks].sort((x, y) => x - y));
    }),
    { numRuns: 500 },
  );
});

Deno.test("maxAttempts bounds the work; with nothing to try discovery ends at once", () => {
  const r = runDiscovery(
    { ...NONE, rhizomorphs: ["r1", "r2", "r3"] },
    () => ({ reached: false }),
    { maxAttempts: 2 },
  );
  assert.equal(r.attempts.length, 2);
  assert.equal(r.found, null);
  const empty = new DiscoveryCursor(discoveryPlan(NONE));
  assert.ok(empty.done);
  assert.equal(empty.next(), null);
});

Deno.test("the cursor hands out one attempt at a time and refuses a report without one", () => {
  const c = new DiscoveryCursor(discoveryPlan({ ...NONE, cached: ["a", "b"] }));
  assert.throws(() => c.report({ reached: false }));
  const a = c.next();
  assert.deepEqual(a, { source: "cached", target: "a" });
  assert.equal(c.next(), null, "one outstanding attempt at a time");
  assert.equal(c.report({ reached: false }), "unreachable");
  assert.deepEqual(c.next(), { source: "cached", target: "b" });
  assert.equal(c.report({ reached: true, sclerotia: ["b"] }), "found");
  assert.ok(c.done);
  assert.equal(c.next(), null);
});
