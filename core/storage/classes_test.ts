import assert from "node:assert/strict";
import fc from "fast-check";
import { type Tier, TIERS } from "../spores/types.ts";
import {
  eligibleFor,
  ineligibility,
  requiresEncryption,
  STORAGE_CLASS_NAMES,
  STORAGE_CLASSES,
  storageClassSchema,
} from "./classes.ts";

Deno.test("the class table is DESIGN.md's", () => {
  assert.deepEqual(
    STORAGE_CLASS_NAMES.map((
      c,
    ) => [c, STORAGE_CLASSES[c].minTrust, [...STORAGE_CLASSES[c].tiers], requiresEncryption(c)]),
    [
      ["Critical", 0.9, ["sclerotia"], true],
      ["Sensitive", 0.7, ["sclerotia", "rhizomorph"], true],
      ["Standard", 0.5, ["sclerotia", "rhizomorph"], false],
      ["Public", 0.1, ["sclerotia", "rhizomorph"], false],
    ],
  );
  assert.ok(Object.isFrozen(STORAGE_CLASSES) && Object.isFrozen(STORAGE_CLASSES.Critical));
});

Deno.test("eligibility: tier, trust (in basis points) and exclusion each rule a node out", () => {
  assert.ok(eligibleFor("Critical", { tier: "sclerotia", trust: 0.9 }));
  assert.match(ineligibility("Critical", { tier: "rhizomorph", trust: 1 })!, /tier rhizomorph/);
  assert.match(ineligibility("Critical", { tier: "sclerotia", trust: 0.89 })!, /below 0.9/);
  assert.ok(
    eligibleFor("Sensitive", { tier: "rhizomorph", trust: 0.1 + 0.6 }),
    "0.7000000000000001",
  );
  assert.ok(
    eligibleFor("Sensitive", { tier: "rhizomorph", trust: 0.69999999999 }),
    "rounds to 0.7",
  );
  assert.ok(!eligibleFor("Public", { tier: "hypha", trust: 1 }), "clients hold no replicas");
  assert.equal(
    ineligibility("Public", { tier: "sclerotia", trust: 1, excluded: true }),
    "excluded",
  );
  assert.ok(!eligibleFor("Public", { tier: "sclerotia", trust: NaN }));
});

Deno.test("eligibility is monotone in trust and nested from Critical down to Public", () => {
  const tier = fc.constantFrom<Tier>(...TIERS);
  const trust = fc.integer({ min: 0, max: 100 }).map((x) => x / 100);
  fc.assert(
    fc.property(tier, trust, trust, (t, a, b) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      for (const c of STORAGE_CLASS_NAMES) {
        if (eligibleFor(c, { tier: t, trust: lo })) {
          assert.ok(eligibleFor(c, { tier: t, trust: hi }));
        }
      }
      for (let i = 0; i + 1 < STORAGE_CLASS_NAMES.length; i++) {
        if (eligibleFor(STORAGE_CLASS_NAMES[i], { tier: t, trust: a })) {
          assert.ok(eligibleFor(STORAGE_CLASS_NAMES[i + 1], { tier: t, trust: a }));
        }
      }
    }),
  );
});

Deno.test("storageClassSchema accepts the four class names only", () => {
  for (const c of STORAGE_CLASS_NAMES) assert.equal(storageClassSchema.parse(c), c);
  assert.ok(!storageClassSchema.safeParse("critical").success);
});
