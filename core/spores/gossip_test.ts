import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError } from "../errors.ts";
import { type Host, MemoryStore, nullLogger, nullMetrics } from "../host.ts";
import { IdInterner, type NodeId } from "../ids.ts";
import {
  LatentGossip,
  maxSporeMessageBytes,
  type OwnStatus,
  parseSporeGossipConfig,
  type SporeGossipConfig,
  type SporeMessage,
  sporeMessageBytes,
} from "./gossip.ts";
import { CONN_NEVER, type LatentEntry, parseLatentConfig, signLatentEntry } from "./latent.ts";
import type { PrimaryView } from "./primary.ts";
import { modelSigner, modelVerify, OTHER_NETWORK, TEST_NETWORK, testNode } from "./testing.ts";
import type { Tier } from "./types.ts";

/** mulberry32: a tiny seeded generator for the harness. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STATUS: OwnStatus = {
  health: "ok",
  trust: 0.5,
  usage: { cpu: 0, memory: 0, storage: 0, bandwidth: 0 },
  uptimeDiffMs: 0,
  processingVolume: 0,
  conn: CONN_NEVER,
};

function view(height: number, members: number[], over: Partial<PrimaryView> = {}): PrimaryView {
  return {
    network: TEST_NETWORK,
    height,
    certified: true,
    members: new Map(members.map((i) => [testNode(i), "sclerotia" as Tier])),
    trust: new Map(members.map((i) => [testNode(i), 0.5])),
    excluded: new Set(),
    config: new Map(),
    ...over,
  };
}

interface Ev {
  t: number;
  seq: number;
  fn: () => void;
}

/** A deterministic little network: constant latency, optional drops, a time-ordered queue. */
class Harness {
  now = 0;
  private seq = 0;
  private readonly q: Ev[] = [];
  readonly nodes: LatentGossip[] = [];
  readonly sent: SporeMessage[] = [];
  readonly ids = new IdInterner();
  /** Message filter: false drops it. */
  link: (from: number, to: number, m: SporeMessage) => boolean = () => true;
  /** Rewrites what a node sends (Byzantine senders). */
  rewrite: (from: number, m: SporeMessage) => SporeMessage = (_f, m) => m;

  constructor(
    n: number,
    readonly gossip: SporeGossipConfig,
    readonly latent = parseLatentConfig({ maxEntries: 64, maxSkewMs: 1000 }),
    seed = 1,
  ) {
    for (let i = 0; i < n; i++) this.add(i, seed);
  }

  private push(t: number, fn: () => void): void {
    const ev = { t, seq: this.seq++, fn };
    let lo = 0, hi = this.q.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = this.q[mid];
      if (m.t < t || (m.t === t && m.seq < ev.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.q.splice(lo, 0, ev);
  }

  private add(i: number, seed: number): void {
    const id = testNode(i);
    const random = rng(seed * 1000 + i);
    const timers = new Map<string, number>();
    let gen = 0;
    const g = new LatentGossip({
      network: TEST_NETWORK,
      tier: "sclerotia",
      gossip: this.gossip,
      latent: this.latent,
      sign: modelSigner(id),
      verify: modelVerify,
      status: () => STATUS,
    });
    const host: Host<SporeMessage> = {
      self: id,
      ids: this.ids,
      now: () => this.now,
      random,
      send: (to, msg) => {
        const j = Number.parseInt(to, 16);
        const m = this.rewrite(i, msg);
        this.sent.push(m);
        if (!this.link(i, j, m)) return;
        this.push(this.now + 1, () => this.nodes[j].onMessage(id, m));
      },
      setTimer: (key, ms) => {
        const mine = ++gen;
        timers.set(key, mine);
        this.push(this.now + ms, () => {
          if (timers.get(key) === mine) g.onTimer(key);
        });
      },
      cancelTimer: (key) => void timers.delete(key),
      storage: new MemoryStore(),
      log: nullLogger,
      metrics: nullMetrics,
    };
    this.nodes.push(g);
    g.start(host);
  }

  run(until: number): void {
    while (this.q.length > 0 && this.q[0].t <= until) {
      const ev = this.q.shift()!;
      this.now = ev.t;
      ev.fn();
    }
    this.now = until;
  }

  /** Every node holds exactly the newest own entry of every node. */
  converged(): boolean {
    return this.nodes.every((a) =>
      this.nodes.every((b) => a.entryOf(b.ownEntry!.node) === b.ownEntry)
    );
  }
}

const FAST = parseSporeGossipConfig({ gossipMs: 100, pushPullMs: 2000, maxPush: 8 });

Deno.test("gossip: nodes that only know node 0 converge on every entry", () => {
  const n = 25;
  const h = new Harness(n, FAST);
  const p = view(1, [...Array(n).keys()]);
  h.nodes.forEach((g, i) => g.bootstrap(p, [], i === 0 ? [] : [testNode(0)]));
  h.run(20_000);
  assert.ok(h.converged());
  for (const g of h.nodes) {
    assert.equal(g.store.size, n);
    assert.equal(g.discards.forged + g.discards["contradicts-primary"], 0);
  }
  // Quiet once the rumors ran out: no push in the last seconds, only anti-entropy.
  const pushes = h.sent.filter((m) => m.t === "spore-push").length;
  h.run(30_000);
  assert.equal(h.sent.filter((m) => m.t === "spore-push").length, pushes);
});

Deno.test("gossip is deterministic and converges for any fanout, push size and loss pattern", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 12 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 1000 }),
      (n, fanout, maxPush, seed) => {
        const cfg = parseSporeGossipConfig({ gossipMs: 100, pushPullMs: 1000, fanout, maxPush });
        const once = () => {
          const h = new Harness(n, cfg, undefined, seed);
          const drop = rng(seed);
          // Lossy until 5 s, then clean: anti-entropy must repair what rumors lost.
          h.link = () => h.now > 5000 || drop() > 0.3;
          const p = view(1, [...Array(n).keys()]);
          h.nodes.forEach((g, i) => g.bootstrap(p, [], [testNode((i + 1) % n)]));
          h.run(5000 + 8 * 1000 * Math.ceil(Math.log2(n + 1)));
          assert.ok(h.converged(), `n=${n} fanout=${fanout} maxPush=${maxPush}`);
          return h.sent.length;
        };
        assert.equal(once(), once(), "same seed, same traffic");
      },
    ),
    { numRuns: 25 },
  );
});

Deno.test("messages respect the size bound", () => {
  const h = new Harness(20, FAST);
  const p = view(1, [...Array(20).keys()]);
  h.nodes.forEach((g, i) => g.bootstrap(p, [], i === 0 ? [] : [testNode(0)]));
  h.run(10_000);
  const bound = maxSporeMessageBytes(FAST, h.latent);
  for (const m of h.sent) {
    if (m.t === "spore-push") assert.ok(m.entries.length <= FAST.maxPush);
    assert.ok(sporeMessageBytes(m) <= bound, `${m.t} of ${sporeMessageBytes(m)} bytes`);
  }
});

function bad(i: number, over: Partial<LatentEntry>, signer = i): LatentEntry {
  const base = {
    network: TEST_NETWORK,
    scope: "master",
    node: testNode(i),
    tier: "sclerotia" as Tier,
    ...STATUS,
    hlc: { ms: 10, c: 0 },
    ...over,
  };
  return signLatentEntry(base, modelSigner(testNode(signer)));
}

Deno.test("bad entries are discarded and counted by reason, never relayed", () => {
  const h = new Harness(3, FAST);
  const p = view(1, [0, 1, 2]);
  h.nodes.forEach((g) => g.bootstrap(p, [], [testNode(0), testNode(1), testNode(2)]));
  h.run(3000);
  const old = h.nodes[1].ownEntry!;
  h.nodes[1].refresh();
  h.run(5000);
  const junk = [
    bad(1, { hlc: { ms: 4000, c: 0 } }, 2), // forged: node 2 signs for node 1
    bad(2, { hlc: { ms: 60_000, c: 0 } }), // future-dated beyond 1 s of skew
    bad(2, { network: OTHER_NETWORK, hlc: { ms: 4000, c: 0 } }), // another network
    bad(2, { trust: 0.9, hlc: { ms: 4000, c: 0 } }), // trust the Primary does not give
    bad(7, { hlc: { ms: 4000, c: 0 } }), // not a member but claims a serving tier
    old, // a replay of node 1's previous entry
  ];
  const target = h.nodes[0];
  const before = { ...target.discards };
  target.onMessage(testNode(2), { t: "spore-push", net: TEST_NETWORK, ph: 1, entries: junk });
  const d = (r: keyof typeof before) => target.discards[r] - before[r];
  assert.deepEqual(
    [d("forged"), d("future-dated"), d("wrong-network"), d("contradicts-primary"), d("stale")],
    [1, 1, 1, 2, 1],
  );
  for (const e of junk.slice(0, 5)) assert.notEqual(target.entryOf(e.node), e);
  h.run(10_000);
  for (const m of h.sent) {
    if (m.t === "spore-push" || m.t === "spore-entries") {
      for (const e of m.entries) assert.ok(!junk.slice(0, 5).includes(e), "never relayed");
    }
  }
});

Deno.test("an entry that only a newer Primary admits is deferred, not discarded", () => {
  const h = new Harness(3, FAST);
  const p1 = view(1, [0, 1]);
  const p2 = view(2, [0, 1, 2]);
  h.nodes[0].bootstrap(p2, [], [testNode(1), testNode(2)]);
  h.nodes[1].bootstrap(p1, [], [testNode(0)]);
  h.nodes[2].bootstrap(p2, [], [testNode(0)]);
  // Node 1 hears of node 2 (a joiner of height 2) from node 0 before it has height 2.
  h.link = (from, to, m) => !(to === 1 && from === 0 && m.t === "primary") || h.now > 1500;
  h.run(6000);
  const n1 = h.nodes[1];
  assert.equal(n1.primaryHeight, 2);
  assert.ok(n1.stats.deferred > 0);
  assert.equal(n1.discards["contradicts-primary"], 0);
  assert.ok(h.converged());
});

Deno.test("the sweep drops expired entries and entries of a node the Primary excluded", () => {
  const cfg = parseSporeGossipConfig({ ...FAST, ttlMs: 20_000, refreshMs: 1e9, sweepMs: 1000 });
  const h = new Harness(4, cfg);
  const p = view(1, [0, 1, 2, 3]);
  h.nodes.forEach((g) => g.bootstrap(p, [], [testNode(0)]));
  h.run(5000);
  assert.ok(h.converged());
  // Node 3 goes silent (all its traffic dropped); node 2 is excluded at height 2.
  h.link = (from, to) => from !== 3 && to !== 3;
  const p2 = view(2, [0, 1, 2, 3], { excluded: new Set([testNode(2)]) });
  h.nodes[0].setPrimary(p2);
  h.nodes[1].setPrimary(p2);
  h.run(8000);
  for (const g of [h.nodes[0], h.nodes[1]]) {
    assert.equal(g.entryOf(testNode(2)), undefined, "excluded node purged");
    assert.ok(g.stats.purged >= 1);
  }
  h.run(30_000);
  for (const g of [h.nodes[0], h.nodes[1]]) {
    assert.equal(g.entryOf(testNode(3)), undefined, "silent node expired");
    assert.ok(g.stats.expired >= 1);
  }
});

Deno.test("uncertified or foreign Primaries are not adopted; heights only go up", () => {
  const h = new Harness(1, FAST);
  const g = h.nodes[0];
  assert.ok(g.setPrimary(view(2, [0])));
  assert.ok(!g.setPrimary(view(1, [0])), "older");
  assert.ok(!g.setPrimary(view(3, [0], { certified: false })), "uncertified");
  assert.ok(!g.setPrimary(view(3, [0], { network: OTHER_NETWORK })), "foreign");
  assert.equal(g.primaryHeight, 2);
});

Deno.test("parseSporeGossipConfig: defaults, and errors that name the field", () => {
  const c = parseSporeGossipConfig(undefined);
  assert.equal(c.fanout, 3);
  assert.equal(c.ttlMs, 300_000);
  assert.throws(
    () => parseSporeGossipConfig({ fanout: 0 }),
    (e: unknown) => e instanceof ConfigError && /spores\.gossip\.fanout/.test(e.message),
  );
  assert.throws(
    () => parseSporeGossipConfig({ bogus: 1 }),
    (e: unknown) => e instanceof ConfigError && /bogus/.test(e.message),
  );
});

/** The id of node i, parsed back (the harness addresses nodes by number). */
export function indexOf(id: NodeId): number {
  return Number.parseInt(id, 16);
}
