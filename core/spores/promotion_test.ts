import assert from "node:assert/strict";
import fc from "fast-check";
import { demotionDue, promotionEligible, type PromotionRule, spareCapacity } from "./promotion.ts";

const RULE: PromotionRule = {
  minTrust: 0.7,
  minUptimeMs: 60_000,
  minCapacity: 0.3,
  demoteBelowTrust: 0.7,
};
const unit = fc.double({ min: 0, max: 1, noNaN: true });

Deno.test("promotion needs trust, uptime and capacity, each at its bound", () => {
  assert.ok(promotionEligible({ trust: 0.7, uptimeMs: 60_000, capacity: 0.3 }, RULE));
  assert.ok(!promotionEligible({ trust: 0.69, uptimeMs: 1e9, capacity: 1 }, RULE));
  assert.ok(!promotionEligible({ trust: 1, uptimeMs: 59_999, capacity: 1 }, RULE));
  assert.ok(!promotionEligible({ trust: 1, uptimeMs: 1e9, capacity: 0.29 }, RULE));
});

Deno.test("promotion is monotone in trust, uptime and capacity", () => {
  fc.assert(fc.property(unit, unit, unit, unit, fc.nat(), fc.nat(), (t1, t2, c1, c2, u1, u2) => {
    const lo = { trust: Math.min(t1, t2), uptimeMs: Math.min(u1, u2), capacity: Math.min(c1, c2) };
    const hi = { trust: Math.max(t1, t2), uptimeMs: Math.max(u1, u2), capacity: Math.max(c1, c2) };
    return !promotionEligible(lo, RULE) || promotionEligible(hi, RULE);
  }));
});

Deno.test("an eligible node is never demoted at once (same trust bound)", () => {
  fc.assert(fc.property(unit, fc.nat(), unit, (trust, uptimeMs, capacity) => {
    const s = { trust, uptimeMs, capacity };
    return !promotionEligible(s, RULE) || !demotionDue(trust, null, RULE);
  }));
  assert.ok(demotionDue(0.9, 60_001, RULE));
  assert.ok(!demotionDue(0.9, 60_000, RULE));
  assert.ok(demotionDue(0.5, null, RULE));
});

Deno.test("spare capacity stays in 0..1 and falls with usage", () => {
  fc.assert(fc.property(unit, unit, unit, (c, u1, u2) => {
    const a = spareCapacity(c, Math.min(u1, u2));
    const b = spareCapacity(c, Math.max(u1, u2));
    return a >= 0 && a <= 1 && b <= a;
  }));
});
