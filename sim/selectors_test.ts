import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError } from "../core/errors.ts";
import { Rng } from "./rng.ts";
import { type Selector, selector, type Tier } from "./scenario.ts";
import { type NodeInfo, resolveSelector, validateSelector } from "./selectors.ts";

// ---------------------------------------------------------------------------------------
// A small cluster: a-0..a-4 (eu, sclerotia), b-0..b-2 (us, hypha), c.x-1-0..1 (eu, rhizomorph)

function groupOf(group: string, count: number, tier: Tier, region: string): NodeInfo[] {
  return Array.from(
    { length: count },
    (_, k) => ({ name: `${group}-${k}`, group, indexInGroup: k, tier, region }),
  );
}
const NODES: NodeInfo[] = [
  ...groupOf("a", 5, "sclerotia", "eu"),
  ...groupOf("b", 3, "hypha", "us"),
  ...groupOf("c.x-1", 2, "rhizomorph", "eu"),
];
const N = NODES.length;
const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

const resolve = (sel: Selector, seed = 1, cand?: (i: number) => boolean) =>
  resolveSelector(sel, NODES, Rng.fromSeed(seed), cand);

function configErrorOf(sel: Selector, path: string): ConfigError {
  try {
    validateSelector(sel, NODES, path);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.kind, "config");
    return e;
  }
  assert.fail(`expected ConfigError for ${JSON.stringify(sel)}`);
}

/** Non-random atoms with their expected indices. */
const FIXED: Array<[string, number[]]> = [
  ["all", range(0, N - 1)],
  ["a", range(0, 4)],
  ["b", [5, 6, 7]],
  ["c.x-1", [8, 9]],
  ["a[0..0]", [0]],
  ["a[1..3]", [1, 2, 3]],
  ["a[0..4]", range(0, 4)],
  ["b[2..2]", [7]],
  ["c.x-1[1..1]", [9]],
  ["a-4", [4]],
  ["b-0", [5]],
  ["c.x-1-1", [9]],
  ["region:eu", [0, 1, 2, 3, 4, 8, 9]],
  ["region:us", [5, 6, 7]],
  ["tier:hypha", [5, 6, 7]],
  ["tier:rhizomorph", [8, 9]],
  ["tier:sclerotia", range(0, 4)],
];

// ---------------------------------------------------------------------------------------
// resolveSelector

Deno.test("resolveSelector: every fixed atom kind", () => {
  for (const [atom, want] of FIXED) {
    assert.ok(selector.safeParse(atom).success, `${atom} is not a valid selector`);
    assert.deepEqual(resolve(atom), want, atom);
    validateSelector(atom, NODES, "x");
  }
});

Deno.test("resolveSelector: a list is the sorted union of its atoms", () => {
  assert.deepEqual(resolve(["b-2", "a[3..4]", "b", "a-0"]), [0, 3, 4, 5, 6, 7]);
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...FIXED), { minLength: 1, maxLength: 6 }), (atoms) => {
      const got = resolve(atoms.map(([a]) => a));
      const want = [...new Set(atoms.flatMap(([, w]) => w))].sort((x, y) => x - y);
      assert.deepEqual(got, want);
    }),
  );
});

const randomAtomArb = fc.oneof(
  fc.integer({ min: 0, max: 100 }).map((p) => `${p}%`),
  fc.integer({ min: 0, max: 1000 }).map((p) => `${p / 10}%`),
  fc.integer({ min: 0, max: 15 }).map((k) => `random:${k}`),
);

Deno.test("resolveSelector: P% and random:K draw the right number among candidates only", () => {
  fc.assert(
    fc.property(
      randomAtomArb,
      fc.array(fc.boolean(), { minLength: N, maxLength: N }),
      fc.nat(),
      (atom, mask, seed) => {
        const pool = range(0, N - 1).filter((i) => mask[i]);
        const got = resolve(atom, seed, (i) => mask[i]);
        const want = atom.endsWith("%")
          ? Math.round((Number(atom.slice(0, -1)) / 100) * pool.length)
          : Math.min(pool.length, Number(atom.slice(7)));
        assert.equal(got.length, want, `${atom} of ${pool.length}`);
        for (const i of got) assert.ok(mask[i], `${i} is not a candidate`);
        for (let i = 1; i < got.length; i++) assert.ok(got[i - 1] < got[i], "not sorted/unique");
        assert.deepEqual(resolve(atom, seed, (i) => mask[i]), got, "not deterministic per seed");
      },
    ),
  );
});

Deno.test("resolveSelector: fixed atoms ignore the candidates; results sorted and unique", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.constantFrom(...FIXED.map(([a]) => a)), randomAtomArb), {
        minLength: 1,
        maxLength: 5,
      }),
      fc.nat(),
      (atoms, seed) => {
        const got = resolve(atoms, seed, (i) => i % 2 === 0);
        for (let i = 1; i < got.length; i++) assert.ok(got[i - 1] < got[i], "not sorted/unique");
        for (const i of got) assert.ok(i >= 0 && i < N);
        // Fixed atoms match regardless of candidates (a crash selector "b" hits all of b).
        for (const a of atoms) {
          const fixed = FIXED.find(([f]) => f === a);
          if (fixed) { for (const i of fixed[1]) assert.ok(got.includes(i), `${a} lost ${i}`); }
        }
        assert.deepEqual(resolve(atoms, seed, (i) => i % 2 === 0), got);
      },
    ),
  );
});

Deno.test("resolveSelector: 100% and random:K beyond the pool take every candidate", () => {
  assert.deepEqual(resolve("100%"), range(0, N - 1));
  assert.deepEqual(resolve("random:99", 3, (i) => i >= 7), [7, 8, 9]);
  assert.deepEqual(resolve("0%"), []);
  assert.deepEqual(resolve("random:0"), []);
  assert.deepEqual(resolve("50%", 1, () => false), []);
  // 25% of 10 = 2.5, rounded to 3.
  assert.equal(resolve("25%").length, 3);
});

Deno.test("resolveSelector: different seeds can pick different nodes", () => {
  const picks = new Set<string>();
  for (let seed = 0; seed < 20; seed++) picks.add(JSON.stringify(resolve("random:3", seed)));
  assert.ok(picks.size > 5, `only ${picks.size} distinct picks over 20 seeds`);
});

// ---------------------------------------------------------------------------------------
// validateSelector

Deno.test("validateSelector: accepts every atom that names something", () => {
  for (const sel of ["all", "a", "a-4", "a[0..4]", "region:us", "tier:hypha", "10%", "random:3"]) {
    validateSelector(sel, NODES, "faults[0].nodes");
  }
  validateSelector(["a", "b[0..2]", "c.x-1-0"], NODES, "faults[0].nodes");
});

Deno.test("validateSelector: errors name the path and the bad group, range or region", () => {
  const cases: Array<[Selector, string, string[]]> = [
    ["zz", "faults[0].nodes: ", ['"zz" is neither a node group nor a node name']],
    ["a-5", "faults[0].nodes: ", ['"a-5"']],
    ["zz[0..1]", "faults[0].nodes: ", ['no node group "zz"']],
    ["a[0..5]", "faults[0].nodes: ", ["range 0..5", 'group "a" (0..4)']],
    ["a[3..1]", "faults[0].nodes: ", ["range 3..1"]],
    ["b[3..3]", "faults[0].nodes: ", ["range 3..3", 'group "b" (0..2)']],
    ["region:mars", "faults[0].nodes: ", ['region "mars"', "eu", "us"]],
    [["a", "b", "nope"], "faults[0].nodes[2]: ", ['"nope"']],
    [["region:eu", "a[9..9]"], "faults[0].nodes[1]: ", ["range 9..9"]],
  ];
  for (const [sel, prefix, parts] of cases) {
    const e = configErrorOf(sel, "faults[0].nodes");
    assert.ok(e.message.startsWith(prefix), `${JSON.stringify(sel)}: ${e.message}`);
    assert.equal(e.input, prefix.slice(0, -2));
    for (const p of parts) assert.ok(e.message.includes(p), `${JSON.stringify(sel)}: ${e.message}`);
  }
});

Deno.test({
  name: "selectors: a percentage above 100 is rejected up front",
  // Regression: "150%" used to pass validation and crash the run when the fault fired.
  fn() {
    let rejected = !selector.safeParse("150%").success;
    if (!rejected) {
      try {
        validateSelector("150%", NODES, "faults[0].nodes");
      } catch (e) {
        assert.ok(e instanceof ConfigError);
        rejected = true;
      }
    }
    if (!rejected) assert.deepEqual(resolve("150%"), range(0, N - 1));
  },
});
