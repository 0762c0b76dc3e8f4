import assert from "node:assert/strict";
import fc from "fast-check";
import type { NodeId } from "../core/ids.ts";
import type { SeedSnapshot } from "../core/spores/seed.ts";
import { TIERS } from "../core/spores/types.ts";
import { seedJoinAddrs } from "./bootstrap.ts";

const node = fc.stringMatching(/^[0-9a-f]{32}$/).map((s) => s as NodeId);

Deno.test("seedJoinAddrs: every other member's addresses, Sclerotia first, never our own", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(
        fc.record({
          node,
          tier: fc.constantFrom(...TIERS),
          trust: fc.constant(0.5),
          addrs: fc.array(fc.ipV4().map((ip) => `${ip}:7946`), { minLength: 1, maxLength: 2 }),
        }),
        { selector: (e) => e.node, maxLength: 8 },
      ),
      fc.nat(),
      (entries, pick) => {
        const self = entries.length > 0
          ? entries[pick % entries.length].node
          : ("0".repeat(32) as NodeId);
        const seed = { entries } as unknown as SeedSnapshot;
        const out = seedJoinAddrs(seed, self);
        const others = entries.filter((e) => e.node !== self);
        assert.deepEqual([...out].sort(), others.flatMap((e) => e.addrs).sort());
        const tierOf = new Map(others.flatMap((e) => e.addrs.map((a) => [a, e.tier] as const)));
        const firstOther = out.findIndex((a) => tierOf.get(a) !== "sclerotia");
        if (firstOther >= 0) {
          assert.ok(
            out.slice(firstOther).every((a) =>
              tierOf.get(a) !== "sclerotia" ||
              others.some((e) => e.tier !== "sclerotia" && e.addrs.includes(a))
            ),
          );
        }
      },
    ),
  );
});
