import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError, DecodeError } from "../errors.ts";
import type { NodeId } from "../ids.ts";
import {
  type AcceptContext,
  acceptRemote,
  boundLatent,
  CONN_NEVER,
  type ConnSummary,
  EMPTY_LATENT,
  ingestLatent,
  intermittency,
  latentEntries,
  type LatentEntry,
  latentEquals,
  type LatentMap,
  LatentStore,
  mergeLatent,
  parseLatentConfig,
  parseLatentEntry,
  recordConnEvent,
  signLatentEntry,
  type UnsignedLatentEntry,
  verifyLatentEntry,
} from "./latent.ts";
import type { PrimaryView } from "./primary.ts";
import { modelSigner, modelVerify, OTHER_NETWORK, TEST_NETWORK, testNode } from "./testing.ts";
import { emptyDiscardCounts, type Tier } from "./types.ts";

function entry(i: number, over: Partial<UnsignedLatentEntry> = {}): LatentEntry {
  const node = testNode(i);
  const base: UnsignedLatentEntry = {
    network: TEST_NETWORK,
    scope: "master",
    node,
    tier: "sclerotia",
    health: "ok",
    trust: 0.5,
    usage: { cpu: 0.1, memory: 0.2, storage: 0.3, bandwidth: 0.4 },
    uptimeDiffMs: 1000,
    processingVolume: 10,
    conn: CONN_NEVER,
    hlc: { ms: 100, c: 0 },
    ...over,
  };
  return signLatentEntry(base, modelSigner(base.node));
}

/** Entries over a small pool of nodes and timestamps, so ties and collisions are common. */
const entryArb: fc.Arbitrary<LatentEntry> = fc.record({
  node: fc.nat(5),
  ms: fc.nat(6),
  c: fc.nat(2),
  trust: fc.constantFrom(0.5, 0.6),
  health: fc.constantFrom("ok" as const, "degraded" as const),
  volume: fc.nat(3),
}).map((r) =>
  entry(r.node, {
    hlc: { ms: r.ms, c: r.c },
    trust: r.trust,
    health: r.health,
    processingVolume: r.volume,
  })
);
const K = fc.integer({ min: 0, max: 5 });
const mapArb = (k: number) => fc.array(entryArb, { maxLength: 12 }).map((es) => boundLatent(es, k));

Deno.test("merge is commutative, associative and idempotent under the bound", () => {
  fc.assert(
    fc.property(
      K.chain((k) => fc.tuple(fc.constant(k), mapArb(k), mapArb(k), mapArb(k))),
      ([k, a, b, c]) => {
        assert.ok(latentEquals(mergeLatent(a, b, k), mergeLatent(b, a, k)), "commutative");
        assert.ok(
          latentEquals(
            mergeLatent(mergeLatent(a, b, k), c, k),
            mergeLatent(a, mergeLatent(b, c, k), k),
          ),
          "associative",
        );
        assert.ok(latentEquals(mergeLatent(a, a, k), a), "idempotent");
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("the bound commutes with union: f(A ∪ B) = f(f(A) ∪ f(B))", () => {
  fc.assert(
    fc.property(
      K,
      fc.array(entryArb, { maxLength: 14 }),
      fc.array(entryArb, { maxLength: 14 }),
      (k, a, b) => {
        const direct = boundLatent([...a, ...b], k);
        const viaParts = mergeLatent(boundLatent(a, k), boundLatent(b, k), k);
        assert.ok(latentEquals(direct, viaParts));
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("bounded merge keeps one entry per node, at most K, the newest of the unbounded merge", () => {
  fc.assert(
    fc.property(K, mapArb(1000), mapArb(1000), (k, a, b) => {
      const unbounded = mergeLatent(a, b, 1000);
      const m = mergeLatent(boundLatent(a.values(), k), boundLatent(b.values(), k), k);
      assert.ok(m.size <= k);
      for (const [node, e] of m) {
        assert.equal(e.node, node);
        assert.ok(latentEquals(new Map([[node, e]]), new Map([[node, unbounded.get(node)!]])));
      }
      assert.ok(latentEquals(m, boundLatent(unbounded.values(), k)));
      assert.deepEqual(latentEntries(m).map((e) => e.node), [...m.keys()], "node id order");
    }),
    { numRuns: 300 },
  );
});

Deno.test("where the bound is not a join: merge is not inflationary, an evicted entry stays out", () => {
  const a = boundLatent([entry(1, { hlc: { ms: 1, c: 0 } })], 1);
  const b = boundLatent([entry(2, { hlc: { ms: 2, c: 0 } })], 1);
  const m = mergeLatent(a, b, 1);
  assert.deepEqual([...m.keys()], [testNode(2)], "a's entry was evicted");
  assert.ok(latentEquals(mergeLatent(m, a, 1), m), "re-merging the evicted entry changes nothing");
  const ctx = context({ maxEntries: 1 });
  const r = acceptRemote(m, entry(1, { hlc: { ms: 1, c: 0 } }), ctx);
  assert.deepEqual(r.ok ? "ok" : r.reason, "stale");
  // A newer entry of the evicted node does come back.
  assert.ok(acceptRemote(m, entry(1, { hlc: { ms: 3, c: 0 } }), ctx).ok);
});

Deno.test("LatentStore.insert equals the pure merge with a singleton map", () => {
  fc.assert(
    fc.property(K, fc.array(entryArb, { maxLength: 25 }), (k, es) => {
      const store = new LatentStore(k);
      let pure: LatentMap = EMPTY_LATENT;
      for (const e of es) {
        store.insert(e);
        pure = mergeLatent(pure, new Map([[e.node, e]]), k);
        assert.ok(latentEquals(store.snapshot(), pure));
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("LatentStore.offer decides exactly as acceptRemote on its snapshot", () => {
  fc.assert(
    fc.property(K, fc.array(entryArb, { maxLength: 25 }), (k, es) => {
      const store = new LatentStore(k);
      const ctx = context({ maxEntries: k, now: 3 });
      for (const e of es) {
        const expected = acceptRemote(store.snapshot(), e, ctx);
        assert.deepEqual(store.offer(e, ctx), expected);
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("replicas that receive the same entries in any order converge", () => {
  fc.assert(
    fc.property(
      K.filter((k) => k > 0),
      fc.array(entryArb, { maxLength: 20 }).chain((es) =>
        fc.tuple(fc.constant(es), fc.shuffledSubarray(es, { minLength: es.length }))
      ),
      (k, [es, shuffled]) => {
        const ctx = context({ maxEntries: k, now: 100 });
        const c1 = emptyDiscardCounts();
        const c2 = emptyDiscardCounts();
        const m1 = ingestLatent(EMPTY_LATENT, es, ctx, c1);
        const m2 = ingestLatent(EMPTY_LATENT, shuffled, ctx, c2);
        assert.ok(latentEquals(m1, m2));
        assert.ok(latentEquals(m1, boundLatent(es, k)));
      },
    ),
    { numRuns: 200 },
  );
});

// ---- acceptance ----

function primary(over: Partial<PrimaryView> = {}): PrimaryView {
  return {
    network: TEST_NETWORK,
    height: 10,
    certified: true,
    members: new Map<NodeId, Tier>([[testNode(1), "sclerotia"], [testNode(2), "rhizomorph"]]),
    trust: new Map([[testNode(1), 0.9], [testNode(2), 0.5]]),
    excluded: new Set([testNode(3)]),
    config: new Map(),
    ...over,
  };
}

function context(over: Partial<AcceptContext> = {}): AcceptContext {
  return {
    network: TEST_NETWORK,
    scope: "master",
    now: 1000,
    maxSkewMs: 50,
    maxEntries: 16,
    verify: modelVerify,
    primary: null,
    ...over,
  };
}

function reason(held: LatentMap, e: LatentEntry, ctx: AcceptContext): string {
  const a = acceptRemote(held, e, ctx);
  return a.ok ? "ok" : a.reason;
}

Deno.test("acceptRemote catches each kind of bad entry and accepts a good one", () => {
  const good = entry(1, { trust: 0.9 });
  const ctx = context({ primary: primary() });
  assert.equal(reason(EMPTY_LATENT, good, ctx), "ok");
  // forged: a field changed after signing, or signed by someone else
  assert.equal(reason(EMPTY_LATENT, { ...good, trust: 1 }, ctx), "forged");
  assert.equal(
    reason(EMPTY_LATENT, { ...good, sig: modelSigner(testNode(9))("x") }, ctx),
    "forged",
  );
  assert.equal(reason(EMPTY_LATENT, entry(1, { network: OTHER_NETWORK }), ctx), "wrong-network");
  assert.equal(reason(EMPTY_LATENT, entry(1, { scope: "service:db" }), ctx), "wrong-scope");
  // future-dated beyond the skew bound of the receiver's clock (the bound itself is fine)
  assert.equal(reason(EMPTY_LATENT, entry(1, { trust: 0.9, hlc: { ms: 1050, c: 9 } }), ctx), "ok");
  assert.equal(
    reason(EMPTY_LATENT, entry(1, { trust: 0.9, hlc: { ms: 1051, c: 0 } }), ctx),
    "future-dated",
  );
  // replayed: older than, or the same as, what we hold
  const held = boundLatent([entry(1, { trust: 0.9, hlc: { ms: 500, c: 0 } })], 16);
  assert.equal(reason(held, entry(1, { trust: 0.9, hlc: { ms: 400, c: 0 } }), ctx), "stale");
  assert.equal(reason(held, entry(1, { trust: 0.9, hlc: { ms: 500, c: 0 } }), ctx), "duplicate");
  assert.equal(reason(held, entry(1, { trust: 0.9, hlc: { ms: 500, c: 1 } }), ctx), "ok");
});

Deno.test("acceptRemote: entries contradicting the certified Primary are discarded", () => {
  const ctx = context({ primary: primary() });
  const why = (e: LatentEntry) => {
    const a = acceptRemote(EMPTY_LATENT, e, ctx);
    return a.ok ? "ok" : `${a.reason}:${a.detail}`;
  };
  assert.equal(why(entry(3, { tier: "hypha" })), "contradicts-primary:excluded");
  assert.equal(why(entry(4, { tier: "sclerotia" })), "contradicts-primary:not-a-member");
  assert.equal(why(entry(4, { tier: "hypha" })), "ok", "clients need not be members");
  assert.equal(why(entry(2, { tier: "sclerotia" })), "contradicts-primary:tier");
  assert.equal(why(entry(1, { trust: 0.8 })), "contradicts-primary:trust");
  assert.equal(why(entry(1, { trust: 0.85 })), "ok", "within the 0.05 tolerance");
  assert.equal(why(entry(1, { trust: 0.95 })), "ok");
  // An uncertified Primary has no authority.
  const loose = context({ primary: primary({ certified: false }) });
  assert.ok(acceptRemote(EMPTY_LATENT, entry(3), loose).ok);
});

Deno.test("a forged entry that contradicts the Primary counts as forged (attribution)", () => {
  const ctx = context({ primary: primary() });
  const forged = { ...entry(4, { tier: "sclerotia" }), sig: "nope" };
  assert.equal(reason(EMPTY_LATENT, forged, ctx), "forged");
});

Deno.test("a full map rejects an entry older than all it holds as stale", () => {
  const held = boundLatent([
    entry(1, { hlc: { ms: 10, c: 0 } }),
    entry(2, { hlc: { ms: 20, c: 0 } }),
  ], 2);
  const ctx = context({ maxEntries: 2 });
  assert.equal(reason(held, entry(5, { hlc: { ms: 5, c: 0 } }), ctx), "stale");
  assert.equal(reason(held, entry(5, { hlc: { ms: 15, c: 0 } }), ctx), "ok");
  assert.equal(reason(EMPTY_LATENT, entry(5), context({ maxEntries: 0 })), "stale");
});

Deno.test("ingestLatent counts every discard by reason and merges the rest", () => {
  const counts = emptyDiscardCounts();
  const ctx = context({ primary: primary() });
  const m = ingestLatent(
    EMPTY_LATENT,
    [
      entry(1, { trust: 0.9 }),
      entry(1, { trust: 0.9 }), // duplicate
      { ...entry(2, { tier: "rhizomorph", hlc: { ms: 200, c: 0 } }), sig: "x" }, // forged
      entry(3, { tier: "hypha" }), // excluded
      entry(2, { network: OTHER_NETWORK, tier: "rhizomorph" }),
      entry(2, { tier: "rhizomorph", hlc: { ms: 9999, c: 0 } }), // future
    ],
    ctx,
    counts,
  );
  assert.deepEqual([...m.keys()], [testNode(1)]);
  assert.deepEqual(counts, {
    ...emptyDiscardCounts(),
    duplicate: 1,
    forged: 1,
    "contradicts-primary": 1,
    "wrong-network": 1,
    "future-dated": 1,
  });
});

Deno.test("every field is covered by the signature", () => {
  const e = entry(1);
  const tampered: LatentEntry[] = [
    { ...e, network: OTHER_NETWORK },
    { ...e, scope: "service:x" },
    { ...e, tier: "hypha" },
    { ...e, health: "failing" },
    { ...e, trust: 0.51 },
    { ...e, usage: { ...e.usage, cpu: 0.9 } },
    { ...e, uptimeDiffMs: 1 },
    { ...e, processingVolume: 11 },
    { ...e, conn: { ...e.conn, flaps: 1 } },
    { ...e, conn: { ...e.conn, lastUpMs: 3 } },
    { ...e, hlc: { ms: 100, c: 1 } },
    { ...e, node: testNode(2) },
  ];
  assert.ok(verifyLatentEntry(e, modelVerify));
  for (const t of tampered) assert.ok(!verifyLatentEntry(t, modelVerify), JSON.stringify(t));
});

// ---- connection summary ----

Deno.test("connection events condense into a fixed-size summary that matches the log", () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ up: fc.boolean(), dt: fc.integer({ min: 0, max: 30 }) }), {
        maxLength: 200,
      }),
      (events) => {
        let s: ConnSummary = CONN_NEVER;
        let t = 0;
        const log: Array<{ up: boolean; at: number }> = [];
        for (const ev of events) {
          t += ev.dt;
          s = recordConnEvent(s, ev.up, t, 10);
          log.push({ up: ev.up, at: t });
        }
        // Recount from the log: only changes of state count.
        let up = false;
        let connects = 0, disconnects = 0, flaps = 0;
        let lastUp: number | null = null, lastDown: number | null = null;
        for (const ev of log) {
          if (ev.up === up) continue;
          up = ev.up;
          if (up) {
            connects++;
            if (lastDown !== null && ev.at - lastDown <= 10) flaps++;
            lastUp = ev.at;
          } else {
            disconnects++;
            lastDown = ev.at;
          }
        }
        assert.deepEqual(s, {
          up,
          connects,
          disconnects,
          flaps,
          lastUpMs: lastUp,
          lastDownMs: lastDown,
        });
        assert.equal(Object.keys(s).length, 6, "bounded: no log");
        assert.ok(intermittency(s) >= 0 && intermittency(s) <= 1);
      },
    ),
  );
});

// ---- schemas ----

Deno.test("parseLatentEntry round-trips JSON and names a bad field", () => {
  const e = entry(1, { conn: recordConnEvent(CONN_NEVER, true, 5, 10) });
  const back = parseLatentEntry(JSON.parse(JSON.stringify(e)));
  assert.deepEqual(back, e);
  assert.ok(verifyLatentEntry(back, modelVerify));
  assert.throws(
    () => parseLatentEntry({ ...JSON.parse(JSON.stringify(e)), trust: 1.5 }),
    (err: unknown) => err instanceof DecodeError && /entry\.trust/.test(err.message),
  );
  assert.throws(
    () => parseLatentEntry({ ...JSON.parse(JSON.stringify(e)), extra: 1 }),
    (err: unknown) => err instanceof DecodeError && /entry\.extra: unknown field/.test(err.message),
  );
});

Deno.test("parseLatentConfig: defaults, and errors that name the field", () => {
  const c = parseLatentConfig(undefined);
  assert.deepEqual(c, {
    maxEntries: 1024,
    maxSkewMs: 5000,
    trustTolerance: 0.05,
    flapWindowMs: 10000,
  });
  assert.throws(
    () => parseLatentConfig({ maxEntries: 0 }),
    (err: unknown) => err instanceof ConfigError && /spores\.latent\.maxEntries/.test(err.message),
  );
});

Deno.test("LatentStore.delete forgets an entry; the store then equals the bound of what is left", () => {
  fc.assert(
    fc.property(
      K,
      fc.array(entryArb, { maxLength: 25 }),
      fc.array(fc.nat(5), { maxLength: 6 }),
      (k, es, gone) => {
        const store = new LatentStore(k);
        for (const e of es) store.insert(e);
        const before = store.snapshot();
        for (const g of gone) store.delete(testNode(g));
        const left = [...before.values()].filter((e) =>
          !gone.includes(Number.parseInt(e.node, 16))
        );
        assert.ok(latentEquals(store.snapshot(), boundLatent(left, k)));
        assert.equal([...store.entries()].length, store.size);
        // The horizon is recomputed: inserting after deletes still equals the pure merge.
        const extra = entry(9, { hlc: { ms: 1, c: 1 } });
        store.insert(extra);
        assert.ok(
          latentEquals(
            store.snapshot(),
            mergeLatent(boundLatent(left, k), new Map([[extra.node, extra]]), k),
          ),
        );
      },
    ),
    { numRuns: 300 },
  );
  const store = new LatentStore(2);
  assert.equal(store.delete(testNode(1)), false, "nothing to delete");
});

Deno.test("verifyEntry replaces the payload check and must still say forged", () => {
  const e = entry(1);
  const ctx = context({ now: 100 });
  let calls = 0;
  const accepting = { ...ctx, verifyEntry: () => (calls++, true) };
  const refusing = { ...ctx, verifyEntry: () => false };
  assert.ok(acceptRemote(EMPTY_LATENT, e, accepting).ok);
  assert.equal(calls, 1);
  const r = acceptRemote(EMPTY_LATENT, e, refusing);
  assert.deepEqual(r.ok ? "ok" : r.reason, "forged");
});
