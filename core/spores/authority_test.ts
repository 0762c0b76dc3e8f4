import assert from "node:assert/strict";
import fc from "fast-check";
import type { NodeId } from "../ids.ts";
import {
  type AuthorityInput,
  authorityMerge,
  mergeSeedTiers,
  seedTierEquals,
  seedTierFrom,
} from "./authority.ts";
import { boundLatent, CONN_NEVER, type LatentEntry, signLatentEntry } from "./latent.ts";
import { contradiction, type PrimaryView } from "./primary.ts";
import { SEED_FORMAT, type SeedEntry, type SeedSnapshot } from "./seed.ts";
import { modelSigner, OTHER_NETWORK, TEST_NETWORK, testNode } from "./testing.ts";
import { type Tier, TIERS, totalDiscarded } from "./types.ts";

const nodeArb = fc.integer({ min: 1, max: 8 }).map(testNode);
const tierArb = fc.constantFrom<Tier>(...TIERS);
const trustArb = fc.integer({ min: 0, max: 20 }).map((x) => x / 20);

const primaryArb: fc.Arbitrary<PrimaryView> = fc.record({
  members: fc.uniqueArray(fc.tuple(nodeArb, tierArb), { selector: (m) => m[0], maxLength: 6 }),
  trust: fc.uniqueArray(fc.tuple(nodeArb, trustArb), { selector: (m) => m[0], maxLength: 6 }),
  excluded: fc.uniqueArray(nodeArb, { maxLength: 2 }),
  certified: fc.boolean(),
  height: fc.integer({ min: 1, max: 100 }),
}).map((p) => ({
  network: TEST_NETWORK,
  height: p.height,
  certified: p.certified,
  members: new Map(p.members),
  trust: new Map(p.trust),
  excluded: new Set(p.excluded),
  config: new Map([["k", "v"]]),
}));

const seedEntryArb: fc.Arbitrary<SeedEntry> = fc.record({
  node: nodeArb,
  tier: tierArb,
  trust: trustArb,
  addrs: fc.array(fc.constantFrom("a:1", "b:2", "c:3"), { maxLength: 2 }),
});

const seedArb: fc.Arbitrary<SeedSnapshot> = fc.record({
  version: fc.integer({ min: 1, max: 3 }),
  network: fc.constantFrom(TEST_NETWORK, TEST_NETWORK, TEST_NETWORK, OTHER_NETWORK),
  scope: fc.constantFrom("master", "master", "master", "service:x"),
  created: fc.nat(3),
  writer: nodeArb,
  primaryHeight: fc.nat(3),
  entries: fc.uniqueArray(seedEntryArb, { selector: (e) => e.node, maxLength: 5 }),
}).map((s) => ({
  format: SEED_FORMAT,
  ...s,
  entries: [...s.entries].sort((a, b) => (a.node < b.node ? -1 : 1)),
  sig: "unchecked-here",
}));

const latentEntryArb: fc.Arbitrary<LatentEntry> = fc.record({
  node: nodeArb,
  tier: tierArb,
  trust: trustArb,
  ms: fc.nat(5),
  network: fc.constantFrom(TEST_NETWORK, TEST_NETWORK, TEST_NETWORK, OTHER_NETWORK),
}).map((r) =>
  signLatentEntry({
    network: r.network,
    scope: "master",
    node: r.node,
    tier: r.tier,
    health: "ok",
    trust: r.trust,
    usage: { cpu: 0, memory: 0, storage: 0, bandwidth: 0 },
    uptimeDiffMs: 0,
    processingVolume: 0,
    conn: CONN_NEVER,
    hlc: { ms: r.ms, c: 0 },
  }, modelSigner(r.node))
);

const inputArb: fc.Arbitrary<AuthorityInput> = fc.record({
  primary: fc.option(primaryArb, { nil: null }),
  seeds: fc.array(seedArb, { maxLength: 4 }),
  latent: fc.array(latentEntryArb, { maxLength: 10 }).map((es) => boundLatent(es, 6)),
}).map((i) => ({ network: TEST_NETWORK, ...i }));

/** The Seed tier as the merge should see it: our network and scope, not contradicting. */
function validSeedTier(input: AuthorityInput) {
  const p = input.primary?.certified ? input.primary : null;
  const kept = input.seeds.filter((s) => s.network === input.network && s.scope === "master")
    .map((s) => ({ ...s, entries: s.entries.filter((e) => contradiction(p, e) === null) }));
  return seedTierFrom(kept);
}

Deno.test("a lower tier never overrides a higher one, and nothing kept contradicts the Primary", () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const view = authorityMerge(input);
      const p = input.primary?.certified ? input.primary : null;
      assert.equal(view.primaryHeight, p ? p.height : null);
      const seeds = validSeedTier(input);
      for (const [node, n] of view.nodes) {
        assert.equal(n.node, node);
        assert.ok(!p?.excluded.has(node), "excluded nodes are not in the view");
        assert.equal(contradiction(p, n), null, `${node} contradicts the Primary`);
        const pTier = p?.members.get(node);
        const sClaim = seeds.get(node);
        if (pTier !== undefined) assert.deepEqual([n.tier, n.tierFrom], [pTier, "primary"]);
        else if (sClaim) assert.deepEqual([n.tier, n.tierFrom], [sClaim.entry.tier, "seed"]);
        else assert.equal(n.tierFrom, "latent");
        const pTrust = p?.trust.get(node);
        if (pTrust !== undefined) assert.deepEqual([n.trust, n.trustFrom], [pTrust, "primary"]);
        else if (sClaim) assert.deepEqual([n.trust, n.trustFrom], [sClaim.entry.trust, "seed"]);
        else assert.equal(n.trustFrom, n.status ? "latent" : null);
        assert.deepEqual(n.addrs, sClaim?.entry.addrs ?? []);
        if (n.status) {
          assert.equal(contradiction(p, n.status), null);
          assert.equal(n.status.network, TEST_NETWORK);
        }
      }
      // Every Primary member that is not excluded is in the view.
      for (const m of p?.members.keys() ?? []) {
        assert.equal(view.nodes.has(m), !p!.excluded.has(m));
      }
      // Latent accounting: each entry is kept as some node's status or counted as discarded.
      const kept = [...view.nodes.values()].filter((n) => n.status).length;
      assert.equal(kept + totalDiscarded(view.discarded.latent), input.latent.size);
      assert.deepEqual([...view.nodes.keys()], [...view.nodes.keys()].sort(), "node id order");
    }),
    { numRuns: 500 },
  );
});

Deno.test("the merge does not depend on the order of the seeds", () => {
  fc.assert(
    fc.property(
      inputArb.chain((i) =>
        fc.tuple(fc.constant(i), fc.shuffledSubarray([...i.seeds], { minLength: i.seeds.length }))
      ),
      ([input, shuffled]) => {
        assert.deepEqual(authorityMerge({ ...input, seeds: shuffled }), authorityMerge(input));
        const dup = authorityMerge({ ...input, seeds: [...input.seeds, ...input.seeds] });
        assert.deepEqual(dup.nodes, authorityMerge(input).nodes, "idempotent");
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("within the Seed tier, merge is commutative, associative and idempotent", () => {
  const tierArb = fc.array(seedArb, { maxLength: 3 }).map(seedTierFrom);
  fc.assert(
    fc.property(tierArb, tierArb, tierArb, (a, b, c) => {
      assert.ok(seedTierEquals(mergeSeedTiers(a, b), mergeSeedTiers(b, a)));
      assert.ok(
        seedTierEquals(
          mergeSeedTiers(mergeSeedTiers(a, b), c),
          mergeSeedTiers(a, mergeSeedTiers(b, c)),
        ),
      );
      assert.ok(seedTierEquals(mergeSeedTiers(a, a), a));
    }),
    { numRuns: 300 },
  );
});

const A = testNode(1);
const B = testNode(2);
const C = testNode(3);
const D = testNode(4);

function primary(certified: boolean): PrimaryView {
  return {
    network: TEST_NETWORK,
    height: 9,
    certified,
    members: new Map<NodeId, Tier>([[A, "sclerotia"], [B, "rhizomorph"]]),
    trust: new Map([[A, 0.9], [B, 0.6]]),
    excluded: new Set([C]),
    config: new Map([["storage.rf", "3"]]),
  };
}

function seed(entries: SeedEntry[], over: Partial<SeedSnapshot> = {}): SeedSnapshot {
  return {
    format: SEED_FORMAT,
    version: 1,
    network: TEST_NETWORK,
    scope: "master",
    created: 0,
    writer: A,
    primaryHeight: 1,
    entries,
    sig: "",
    ...over,
  };
}

function latent(node: NodeId, tier: Tier, trust: number, network = TEST_NETWORK): LatentEntry {
  return signLatentEntry({
    network,
    scope: "master",
    node,
    tier,
    health: "degraded",
    trust,
    usage: { cpu: 0.5, memory: 0, storage: 0, bandwidth: 0 },
    uptimeDiffMs: 5,
    processingVolume: 7,
    conn: CONN_NEVER,
    hlc: { ms: 1, c: 0 },
  }, modelSigner(node));
}

Deno.test("Primary > Seed > Latent on a worked example, with discards counted by reason", () => {
  const input: AuthorityInput = {
    network: TEST_NETWORK,
    primary: primary(true),
    seeds: [
      seed([
        { node: A, tier: "sclerotia", trust: 0.9, addrs: ["a:1"] },
        { node: B, tier: "sclerotia", trust: 0.6, addrs: ["b:1"] }, // tier contradicts
        { node: C, tier: "sclerotia", trust: 0.9, addrs: ["c:1"] }, // excluded
        { node: D, tier: "hypha", trust: 0.3, addrs: ["d:1"] },
      ]),
      seed([{ node: D, tier: "hypha", trust: 0.4, addrs: ["d:2"] }], { version: 2 }),
      seed([{ node: D, tier: "hypha", trust: 0.1, addrs: ["x"] }], { network: OTHER_NETWORK }),
    ],
    latent: boundLatent([
      latent(A, "sclerotia", 0.88), // within tolerance: kept, trust overridden by the Primary
      latent(B, "rhizomorph", 0.9), // trust inflated beyond tolerance
      latent(D, "hypha", 0.5),
    ], 16),
  };
  const v = authorityMerge(input);
  assert.deepEqual([...v.nodes.keys()], [A, B, D]);
  const a = v.nodes.get(A)!;
  assert.deepEqual([a.tier, a.tierFrom, a.trust, a.trustFrom], [
    "sclerotia",
    "primary",
    0.9,
    "primary",
  ]);
  assert.deepEqual(a.addrs, ["a:1"]);
  assert.equal(a.status?.health, "degraded");
  const b = v.nodes.get(B)!;
  assert.deepEqual([b.tier, b.tierFrom, b.addrs, b.status], ["rhizomorph", "primary", [], null]);
  const d = v.nodes.get(D)!;
  assert.deepEqual([d.tier, d.tierFrom, d.trust, d.trustFrom, d.addrs], [
    "hypha",
    "seed",
    0.4,
    "seed",
    ["d:2"],
  ], "the newer seed version wins within the tier");
  assert.equal(v.discarded.seed["contradicts-primary"], 2);
  assert.equal(v.discarded.seed["wrong-network"], 1);
  assert.equal(v.discarded.latent["contradicts-primary"], 1);
  assert.deepEqual([...v.config], [["storage.rf", "3"]]);
  assert.equal(v.primaryIgnored, null);
});

Deno.test("an uncertified Primary is ignored: the Seed tier leads", () => {
  const v = authorityMerge({
    network: TEST_NETWORK,
    primary: primary(false),
    seeds: [seed([{ node: C, tier: "sclerotia", trust: 0.9, addrs: [] }])],
    latent: boundLatent([latent(C, "rhizomorph", 0.2)], 4),
  });
  assert.equal(v.primaryIgnored, "uncertified");
  assert.equal(v.primaryHeight, null);
  const c = v.nodes.get(C)!;
  assert.deepEqual([c.tier, c.tierFrom, c.trust, c.trustFrom], ["sclerotia", "seed", 0.9, "seed"]);
  assert.equal(c.status?.tier, "rhizomorph", "the Latent entry stays as status");
  const other = authorityMerge({
    network: TEST_NETWORK,
    primary: { ...primary(true), network: OTHER_NETWORK },
    seeds: [],
    latent: new Map(),
  });
  assert.equal(other.primaryIgnored, "wrong-network");
});
