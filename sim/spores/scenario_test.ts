/** The spores and storage scenario sections: defaults, errors that name the field, files. */
import assert from "node:assert/strict";
import { ConfigError } from "../../core/errors.ts";
import { loadScenarioFile, parseScenario } from "../scenario.ts";
import { SporeSimulation } from "./simulation.ts";

const base = {
  name: "t",
  duration: "10s",
  nodes: [{ group: "s", count: 4, tier: "sclerotia" }, { group: "h", count: 2, tier: "hypha" }],
};

function rejects(doc: Record<string, unknown>, re: RegExp) {
  assert.throws(
    () => parseScenario({ ...base, ...doc }, "s.yaml"),
    (e: unknown) => e instanceof ConfigError && re.test(e.message),
    `expected ${re}`,
  );
}

Deno.test("spores and storage sections: defaults, and a storage-only run gets spores defaults", () => {
  const s = parseScenario({ ...base, spores: {} });
  const sp = s.spores!;
  assert.equal(sp.gossip.fanout, 3);
  assert.equal(sp.gossip.ttlMs, 300_000);
  assert.equal(sp.latent.maxEntries, 1024);
  assert.equal(sp.primary.quorum, "bft");
  assert.deepEqual(sp.discovery.sources, ["cached", "rhizomorph", "seed", "latent"]);
  assert.deepEqual(s.checks, [], "no membership checks by default");
  const st = parseScenario({ ...base, storage: {} });
  assert.ok(st.spores, "storage runs on the spores layer");
  assert.equal(st.storage!.config.replicationFactor, 3);
  assert.equal(st.storage!.config.chunkSize, 4 * 1024 * 1024);
  assert.deepEqual(st.storage!.writes.classes, { Standard: 1 });
});

Deno.test("scenario errors name the field", () => {
  rejects({ spores: { gossip: { fanout: 0 } } }, /spores\.gossip\.fanout/);
  rejects({ spores: { latent: { maxEntries: -1 } } }, /spores\.latent\.maxEntries/);
  rejects({ spores: { seed: { locations: ["ftp://x"] } } }, /spores\.seed\.locations\[0\]/);
  rejects({ spores: { seed: { bogus: 1 } } }, /spores\.seed\.bogus: unknown field/);
  rejects({ spores: { primary: { quorum: "most" } } }, /spores\.primary\.quorum/);
  rejects({ spores: { discovery: { sources: ["dns"] } } }, /spores\.discovery\.sources\[0\]/);
  rejects(
    { spores: { byzantine: [{ nodes: "s-0", behaviour: "lie" }] } },
    /spores\.byzantine\[0\]\.behaviour/,
  );
  rejects(
    { spores: { byzantine: [{ nodes: "x-9", behaviour: "forge" }] } },
    /spores\.byzantine\[0\]\.nodes/,
  );
  rejects({ spores: { genesis: "nobody" } }, /spores\.genesis/);
  rejects(
    { spores: { events: [{ at: "1s", type: "seed", location: "/x", action: "corrupt" }] } },
    /spores\.events\[0\]\.location/,
  );
  rejects(
    { spores: { events: [{ at: "20s", type: "exclude", nodes: "s-1" }] } },
    /spores\.events\[0\]\.at/,
  );
  rejects({ spores: { singletons: ["a", "a"] } }, /spores\.singletons\[1\]/);
  rejects({ storage: { writes: { classes: { Secret: 1 } } } }, /storage\.writes\.classes\.Secret/);
  rejects(
    { storage: { writes: { size: { min: "2MiB", max: "1MiB" } } } },
    /storage\.writes\.size\.max/,
  );
  rejects({ storage: { config: { replicationFactor: 0 } } }, /storage\.config\.replicationFactor/);
  rejects({ storage: { corrupt: [{ at: "1s", nodes: "q" }] } }, /storage\.corrupt\[0\]\.nodes/);
  rejects({ spores: {}, ram: { vms: [{ name: "v" }] } }, /no consensus or ram section/);
  rejects(
    { spores: {}, checks: [{ type: "membership.converged" }] },
    /checks\[0\]: membership\.converged cannot run/,
  );
  rejects(
    { spores: {}, checks: [{ type: "storage.class" }] },
    /checks\[0\]: storage\.class needs a storage section/,
  );
  rejects(
    { checks: [{ type: "spores.formation" }] },
    /checks\[0\]: spores\.formation needs a spores or storage/,
  );
  rejects(
    { spores: {}, checks: [{ type: "spores.converged", within: "soon" }] },
    /checks\[0\]\.within/,
  );
});

Deno.test("a genesis selector that picks no node starting at 0 is refused when building", () => {
  const s = parseScenario({
    ...base,
    nodes: [{ group: "s", count: 2, tier: "sclerotia", start: { at: "1s" } }],
    spores: {},
  });
  assert.throws(
    () => new SporeSimulation(s),
    (e: unknown) => e instanceof ConfigError && /genesis/.test(e.message),
  );
});

Deno.test("the issue's scenario files parse and use the spores simulator", async () => {
  for (
    const f of [
      "formation-1000",
      "partition-3-3",
      "sclerotia-majority-loss",
      "spores-byzantine",
      "storage-churn",
    ]
  ) {
    const s = await loadScenarioFile(
      new URL(`../../scenarios/${f}.yaml`, import.meta.url).pathname,
    );
    assert.equal(s.name, f);
    assert.ok(s.spores, f);
    assert.ok(s.checks.length > 0 && s.checks.every((c) => /^(spores|storage)\./.test(c.type)), f);
  }
});
