/**
 * RAM replication: epochs, merging, throttling, emergency pause and drop, failover (crash
 * and partition), planned migration, and a property over random delays and faults. All in
 * virtual time with the in-repo harness (core/ram/testing.ts).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { type Host, MemoryStore, nullLogger } from "../host.ts";
import { asNodeId, IdInterner, type NodeId } from "../ids.ts";
import { throttleIntensity } from "../throttle.ts";
import { appliedStateProblem, type TimedRamEvent, twoPrimariesProblem } from "./checks.ts";
import { DirtyPages, type Epoch, EpochStager, mergeEpochs } from "./epochs.ts";
import type { RamEvent } from "./events.ts";
import { PrimaryLease } from "./lease.ts";
import {
  type EpochChunk,
  RAM_HEADER_BYTES,
  type RamMessage,
  ramMessageBytes,
  type VoteResponse,
} from "./messages.ts";
import { PAGE_SIZE, type ThrottlePolicy } from "./params.ts";
import { RamReplicator } from "./replicator.ts";
import {
  addTestVm,
  curvePolicy,
  startGuest,
  TestNet,
  testParams,
  VersionImage,
} from "./testing.ts";

const [A, B, C, D] = ["a", "b", "c", "d"].map((c) => asNodeId(c.repeat(32)));
const VM = "vm1";

function net3(seed = 1, delayMs = 1): TestNet<number> {
  const net = new TestNet<number>({ seed, link: { delayMs } });
  for (const id of [A, B, C]) net.addNode(id);
  return net;
}

type Kind = RamEvent["kind"];
function events<K extends Kind>(net: TestNet<number>, kind: K, node?: NodeId) {
  return net.trace.filter((t): t is TimedRamEvent & { event: Extract<RamEvent, { kind: K }> } =>
    t.event.kind === kind && (node === undefined || t.event.node === node)
  );
}

function cutDigests(net: TestNet<number>): Map<string, string> {
  const m = new Map<string, string>();
  for (const { event: e } of net.trace) {
    if ((e.kind === "epochCut" || e.kind === "promoted") && e.digest) {
      m.set(`${e.term}/${e.epoch}`, e.digest);
    }
  }
  return m;
}

// ---- building blocks ----

Deno.test("ramMessageBytes: pages * PAGE_SIZE plus a small header", () => {
  const chunk: EpochChunk<number> = {
    t: "ram-epoch",
    vmId: VM,
    term: 1,
    epoch: 2,
    baseTerm: 1,
    baseEpoch: 1,
    resync: false,
    chunk: 0,
    chunks: 1,
    pages: [1, 2, 3],
    contents: [7, 8, 9],
  };
  const n = ramMessageBytes(chunk);
  assert.ok(n >= 3 * PAGE_SIZE && n <= 3 * PAGE_SIZE + 256, `${n}`);
  const ack: RamMessage = {
    t: "ram-ack",
    vmId: VM,
    term: 1,
    appliedTerm: 1,
    epoch: 2,
    chunkEpoch: 2,
    chunkResync: false,
    chunk: 0,
  };
  assert.equal(ramMessageBytes(ack), RAM_HEADER_BYTES);
});

Deno.test("DirtyPages: re-dirtied pages merge; take is ascending and clears", () => {
  const d = new DirtyPages(20);
  assert.equal(d.mark(5), true);
  assert.equal(d.mark(3), true);
  assert.equal(d.mark(5), false);
  assert.equal(d.mark(19), true);
  assert.equal(d.count, 3);
  assert.deepEqual(d.take(), [3, 5, 19]);
  assert.equal(d.count, 0);
  assert.equal(d.has(5), false);
  assert.throws(() => d.mark(20), RangeError);
  assert.throws(() => d.mark(-1), RangeError);
});

const ep = (epoch: number, pages: number[], contents: number[], term = 1): Epoch<number> => ({
  term,
  epoch,
  pages,
  contents,
  resync: false,
});

Deno.test("mergeEpochs: keyed by page, later content wins, newest number", () => {
  const a = ep(3, [1, 4, 9], [10, 40, 90]);
  const b = ep(5, [2, 4, 10], [21, 41, 101]);
  const m = mergeEpochs(a, b);
  assert.equal(m.epoch, 5);
  assert.deepEqual(m.pages, [1, 2, 4, 9, 10]);
  assert.deepEqual(m.contents, [10, 21, 41, 90, 101]);
  assert.deepEqual(a.pages, [1, 4, 9]); // inputs untouched (shared between backups)
  // Applying the merge equals applying both in order.
  fc.assert(fc.property(
    fc.uniqueArray(fc.integer({ min: 0, max: 31 })),
    fc.uniqueArray(fc.integer({ min: 0, max: 31 })),
    (p1, p2) => {
      p1.sort((x, y) => x - y);
      p2.sort((x, y) => x - y);
      const e1 = ep(1, p1, p1.map((p) => 100 + p));
      const e2 = ep(2, p2, p2.map((p) => 200 + p));
      const seq = new VersionImage(32);
      const merged = new VersionImage(32);
      for (const e of [e1, e2]) e.pages.forEach((p, i) => seq.apply(p, e.contents[i]));
      const m = mergeEpochs(e1, e2);
      m.pages.forEach((p, i) => merged.apply(p, m.contents[i]));
      assert.equal(merged.digest(), seq.digest());
    },
  ));
});

function chunkOf(
  epoch: number,
  chunk: number,
  chunks: number,
  pages: number[],
  o: Partial<EpochChunk<number>> = {},
): EpochChunk<number> {
  return {
    t: "ram-epoch",
    vmId: VM,
    term: 1,
    epoch,
    baseTerm: 1,
    baseEpoch: epoch - 1,
    resync: false,
    chunk,
    chunks,
    pages,
    contents: pages.map((p) => epoch * 100 + p),
    ...o,
  };
}

Deno.test("EpochStager: only complete epochs on the current state apply; duplicates ignored", () => {
  const s = new EpochStager<number>();
  assert.equal(s.add(chunkOf(2, 1, 2, [5])), "new"); // epoch 2 first, out of order
  assert.equal(s.add(chunkOf(1, 0, 2, [1])), "new");
  assert.equal(s.next(1, 0, true), undefined); // epoch 1 incomplete
  assert.equal(s.add(chunkOf(1, 0, 2, [1])), "duplicate");
  assert.equal(s.add(chunkOf(1, 1, 2, [2])), "new");
  assert.equal(s.add(chunkOf(1, 2, 2, [2])), "malformed");
  const e1 = s.next(1, 0, true)!;
  assert.deepEqual([e1.epoch, e1.pages], [1, [1, 2]]);
  s.prune(1, 1, 1);
  assert.equal(s.next(1, 1, true), undefined); // epoch 2 still missing chunk 0
  s.add(chunkOf(2, 0, 2, [4]));
  assert.deepEqual(s.next(1, 1, true)!.pages, [4, 5]);
  // A resync of a newer term wins over deltas, and applies even to an invalid image.
  s.add(chunkOf(9, 0, 1, [0, 1, 2], { term: 2, resync: true }));
  assert.equal(s.next(1, 1, true)!.resync, true);
  assert.equal(s.next(0, 0, false)!.epoch, 9);
  s.prune(2, 1, 1); // term 1 is gone
  assert.equal(s.size, 1);
});

Deno.test("PrimaryLease: counted from the request's send time, majority of the group", () => {
  const l = new PrimaryLease(200);
  const s1 = l.request(0);
  const s2 = l.request(50);
  assert.equal(l.expiry([B, C]), -Infinity);
  // A grant for the request sent at 0 that arrives at 150 still ends at 0 + 200.
  l.grant(B, l.sentAt(s1)!);
  assert.equal(l.expiry([B, C]), 200);
  l.grant(C, l.sentAt(s2)!);
  assert.equal(l.expiry([B, C]), 250); // one backup + self is a majority of 3
  assert.equal(l.expiry([B, C, D, A]), 200); // of 5: the second newest grant counts
  assert.equal(l.expiry([]), Infinity);
  l.request(400); // forgets requests older than a lease
  assert.equal(l.sentAt(s1), undefined);
  // Drifting clocks: the lease is shortened so a fast primary clock still ends first.
  const d = new PrimaryLease(200, 0.01);
  d.grant(B, 0);
  assert.ok(Math.abs(d.expiry([B, C]) - 200 * 0.99 / 1.01) < 1e-9);
});

// ---- voting, with a hand-driven host ----

class ManualHost implements Host<RamMessage<number>> {
  t = 0;
  sent: Array<{ to: NodeId; msg: RamMessage<number> }> = [];
  timers = new Map<string, number>();
  readonly ids = new IdInterner();
  readonly storage = new MemoryStore();
  readonly log = nullLogger;
  readonly metrics = { inc() {}, set() {}, observe() {} };
  constructor(readonly self: NodeId) {}
  now() {
    return this.t;
  }
  random() {
    return 0.5;
  }
  send(to: NodeId, msg: RamMessage<number>) {
    this.sent.push({ to, msg });
  }
  setTimer(key: string, d: number) {
    this.timers.set(key, this.t + d);
  }
  cancelTimer(key: string) {
    this.timers.delete(key);
  }
  votes(): VoteResponse[] {
    return this.sent.map((s) => s.msg).filter((m): m is VoteResponse => m.t === "ram-vote");
  }
}

function manualBackup(self: NodeId): { h: ManualHost; r: RamReplicator<number> } {
  const h = new ManualHost(self);
  const r = new RamReplicator<number>();
  r.start(h);
  const params = testParams();
  r.addVm({
    vmId: VM,
    role: "backup",
    image: new VersionImage(8),
    params,
    policy: curvePolicy(params.curve, params),
    primary: A,
    backups: [B, C],
    term: 1,
  });
  return { h, r };
}

const voteReq = (term: number, lastEpoch = 0, pre = false): RamMessage<number> => ({
  t: "ram-vote-req",
  vmId: VM,
  term,
  pre,
  lastTerm: 1,
  lastEpoch,
});

Deno.test("votes: none while a lease is promised, one per term, never to a stale candidate", () => {
  const { h, r } = manualBackup(B);
  r.onMessage(A, { t: "ram-lease-req", vmId: VM, term: 1, seq: 1, backups: [B, C] });
  h.t = 150; // promised A a lease until 200 (and heard from it at 0)
  r.onMessage(C, voteReq(2));
  assert.equal(h.votes().at(-1)!.granted, false);
  h.t = 200;
  r.onMessage(C, voteReq(2, 0, true)); // a pre-vote commits nothing
  assert.equal(h.votes().at(-1)!.granted, true);
  r.onMessage(C, voteReq(2));
  assert.equal(h.votes().at(-1)!.granted, true);
  r.onMessage(D, voteReq(2)); // same term, another candidate
  assert.equal(h.votes().at(-1)!.granted, false);
  // The vote is a lease grant to C: no vote for a later term while it lasts.
  h.t = 250;
  r.onMessage(D, voteReq(3));
  assert.equal(h.votes().at(-1)!.granted, false);
  h.t = 400;
  r.onMessage(D, voteReq(3));
  assert.equal(h.votes().at(-1)!.granted, true);
  // And lease requests of the older term are now ignored.
  const before = h.sent.length;
  r.onMessage(A, { t: "ram-lease-req", vmId: VM, term: 1, seq: 2, backups: [B, C] });
  assert.equal(h.sent.length, before);

  // A candidate whose last complete epoch is behind ours gets no vote.
  const other = manualBackup(C);
  other.r.onMessage(A, {
    t: "ram-epoch",
    vmId: VM,
    term: 1,
    epoch: 1,
    baseTerm: 1,
    baseEpoch: 0,
    resync: false,
    chunk: 0,
    chunks: 1,
    pages: [3],
    contents: [42],
  });
  assert.equal(other.r.status(VM).lastAppliedEpoch, 1);
  other.h.t = 1000;
  other.r.onMessage(B, voteReq(2, 0));
  assert.equal(other.h.votes().at(-1)!.granted, false);
  other.r.onMessage(B, voteReq(2, 1));
  assert.equal(other.h.votes().at(-1)!.granted, true);
});

// ---- replication ----

Deno.test("epochs replicate; a backup's image is always the primary's image at a cut epoch", () => {
  const net = net3(1, 2);
  const params = testParams();
  const images = addTestVm(net, { vmId: VM, primary: A, backups: [B, C], pageCount: 64, params });
  startGuest(net, VM, images, { pagesPerMs: 0.5, until: 500 });
  // Sample the backups' images all along: each equals the cut digest of its last epoch.
  let samples = 0;
  net.every(7, () => {
    const cuts = cutDigests(net);
    for (const id of [B, C]) {
      const st = net.node(id).rep.status(VM);
      assert.equal(images.get(id)!.digest(), cuts.get(`${st.appliedTerm}/${st.lastAppliedEpoch}`));
      samples++;
    }
    return net.now < 700;
  });
  net.runUntil(700);
  assert.ok(samples > 100);

  const cutsEv = events(net, "epochCut", A);
  assert.ok(cutsEv.length > 40, `${cutsEv.length} cuts`);
  for (const id of [B, C]) {
    const applied = events(net, "epochApplied", id).map((t) => t.event.epoch);
    assert.ok(applied.every((e, i) => i === 0 || e > applied[i - 1]), "applied in epoch order");
    assert.equal(applied.at(-1), cutsEv.at(-1)!.event.epoch);
    assert.equal(images.get(id)!.digest(), images.get(A)!.digest());
  }
  assert.equal(appliedStateProblem(net.trace), null);
  assert.equal(twoPrimariesProblem(net.trace), null);

  const st = net.node(A).rep.status(VM);
  assert.equal(st.role, "primary");
  assert.equal(st.lastAppliedEpoch, st.epoch); // all committed
  const m = net.node(A).metrics;
  const labels = { vm: VM };
  const pages = cutsEv.reduce((n, t) => n + t.event.pages, 0);
  assert.equal(m.counter("mycelium_replications_total", labels), pages);
  assert.equal(m.counter("mycelium_ram_bytes_replicated_total", labels), 2 * pages * PAGE_SIZE);
  assert.equal(m.histogram("mycelium_ram_epoch_commit_ms", labels).length, cutsEv.length);
  assert.ok(m.histogram("mycelium_ram_epoch_commit_ms", labels).every((x) => x >= 4 && x < 20));
  assert.equal(m.gauge("mycelium_ram_replication_lag_ms", labels), 0);
  assert.equal(m.gauge("mycelium_ram_buffer_level", labels), 0);
});

Deno.test("queued epochs merge by page on a slow backup, which still only holds cut epochs", () => {
  const net = net3(2, 1);
  net.setLink(A, C, { delayMs: 5, bytesPerMs: 2048 }); // C drains ~0.5 page/ms
  const params = testParams({ maxBufferBytes: 256 * PAGE_SIZE });
  const images = addTestVm(net, { vmId: VM, primary: A, backups: [B, C], pageCount: 64, params });
  startGuest(net, VM, images, { pagesPerMs: 1.5, hotPages: 24, until: 800 });
  net.runUntil(2500);
  const cuts = events(net, "epochCut", A).map((t) => t.event.epoch);
  const onB = events(net, "epochApplied", B).map((t) => t.event.epoch);
  const onC = events(net, "epochApplied", C).map((t) => t.event.epoch);
  assert.deepEqual(onB, cuts); // the fast backup gets every epoch
  assert.ok(onC.length < cuts.length / 2, `${onC.length} of ${cuts.length}`);
  assert.ok(onC.some((e, i) => i > 0 && e - onC[i - 1] > 1), "merged epochs skip numbers");
  assert.equal(onC.at(-1), cuts.at(-1));
  assert.equal(appliedStateProblem(net.trace), null);
  assert.equal(images.get(C)!.digest(), images.get(A)!.digest());
  // Merging saves bytes: C received fewer page copies than were cut.
  const cutPages = events(net, "epochCut", A).reduce((n, t) => n + t.event.pages, 0);
  const bytes = net.node(A).metrics.counter("mycelium_ram_bytes_replicated_total", { vm: VM });
  assert.ok(bytes < 2 * cutPages * PAGE_SIZE);
});

Deno.test("b and intensity follow the policy every tick, back to 0 when the buffer drains", () => {
  const net = net3(3, 1);
  for (const id of [B, C]) net.setLink(A, id, { delayMs: 2, bytesPerMs: 4096 });
  const params = testParams({ maxBufferBytes: 48 * PAGE_SIZE, pauseEnabled: false });
  const images = addTestVm(net, { vmId: VM, primary: A, backups: [B, C], pageCount: 512, params });
  const guest = startGuest(net, VM, images, { pagesPerMs: 3, until: 600 });
  net.runUntil(1200);
  const ticks = events(net, "tick", A);
  assert.ok(ticks.length >= 119);
  const m = net.node(A).metrics;
  const labels = { vm: VM };
  for (const { event: t } of ticks) {
    assert.equal(t.decision.intensity, throttleIntensity(params.curve, t.b));
    assert.equal(t.intensity, t.decision.intensity);
  }
  const peak = Math.max(...ticks.map((t) => t.event.intensity));
  assert.ok(peak > 0.3, `peak intensity ${peak}`);
  assert.equal(ticks.at(-1)!.event.intensity, 0);
  assert.equal(net.node(A).rep.intensity(VM), 0);
  assert.equal(m.gauge("mycelium_ram_intensity", labels), 0);
  assert.equal(m.gauge("mycelium_ram_buffer_level", labels), ticks.at(-1)!.event.b);
  // The throttle slowed the guest: fewer writes than r0 * 600 ms.
  assert.ok(guest.writes() < 0.9 * 3 * 600, `${guest.writes()} writes`);
});

/** Pauses at b >= 1 and never lets go by itself until the buffer is empty. */
function stubbornPolicy(): ThrottlePolicy {
  let pausing = false;
  return {
    name: "stubborn",
    tick(s) {
      if (s.bufferLevel >= 1) pausing = true;
      if (s.bufferLevel === 0) pausing = false;
      return { intensity: 0, pause: pausing };
    },
    reset() {
      pausing = false;
    },
  };
}

function pauseRuns(ticks: ReadonlyArray<{ at: number; event: { pause: boolean } }>) {
  const runs: number[] = [];
  let since = -1;
  for (const { at, event } of ticks) {
    if (event.pause && since < 0) since = at;
    if (!event.pause && since >= 0) {
      runs.push(at - since);
      since = -1;
    }
  }
  return runs;
}

Deno.test("an emergency pause is bounded by the convergence timeout, and counted", () => {
  const net = net3(4, 1);
  for (const id of [B, C]) net.setLink(A, id, { delayMs: 2, bytesPerMs: 1024 });
  const params = testParams({ maxBufferBytes: 32 * PAGE_SIZE, convergenceTimeoutMs: 100 });
  const images = addTestVm(net, {
    vmId: VM,
    primary: A,
    backups: [B, C],
    pageCount: 512,
    params,
    policy: () => stubbornPolicy(),
  });
  startGuest(net, VM, images, { pagesPerMs: 4, until: 1500 });
  let maxStretch = 0;
  let since = -1;
  net.every(1, () => {
    const paused = net.node(A).rep.status(VM).pauseCount > 0 && !net.node(A).rep.running(VM);
    if (paused && since < 0) since = net.now;
    if (!paused && since >= 0) {
      maxStretch = Math.max(maxStretch, net.now - since);
      since = -1;
    }
    return net.now < 2500;
  });
  net.runUntil(2500);
  const ticks = events(net, "tick", A);
  const runs = pauseRuns(ticks);
  const st = net.node(A).rep.status(VM);
  assert.ok(runs.length >= 2, `${runs.length} pauses`);
  assert.ok(runs.every((r) => r <= params.convergenceTimeoutMs + params.intervalMs), `${runs}`);
  assert.ok(maxStretch <= params.convergenceTimeoutMs + params.intervalMs, `${maxStretch}`);
  assert.equal(st.pauseCount, runs.length);
  assert.equal(st.pausedMs, runs.reduce((a, b) => a + b, 0));
  const m = net.node(A).metrics;
  assert.equal(m.counter("mycelium_ram_pauses_total", { vm: VM }), st.pauseCount);
  assert.ok(m.counter("mycelium_ram_pause_timeouts_total", { vm: VM }) > 0);
  assert.equal(appliedStateProblem(net.trace), null);
});

Deno.test("the curve policy's emergency pause lasts from b >= 1 until b <= resumeLevel", () => {
  const net = net3(5, 1);
  for (const id of [B, C]) net.setLink(A, id, { delayMs: 2, bytesPerMs: 2048 });
  const params = testParams({ maxBufferBytes: 32 * PAGE_SIZE, convergenceTimeoutMs: 1000 });
  const images = addTestVm(net, { vmId: VM, primary: A, backups: [B, C], pageCount: 512, params });
  startGuest(net, VM, images, { pagesPerMs: 4, until: 1500 });
  net.runUntil(2000);
  const ticks = events(net, "tick", A).map((t) => t.event);
  const starts = ticks.filter((t, i) => t.pause && (i === 0 || !ticks[i - 1].pause));
  const ends = ticks.filter((t, i) => !t.pause && i > 0 && ticks[i - 1].pause);
  assert.ok(starts.length > 0);
  assert.ok(starts.every((t) => t.b >= 1));
  assert.ok(ends.every((t) => t.b <= params.resumeLevel));
  assert.equal(net.node(A).rep.status(VM).pauseCount, starts.length);
});

Deno.test("pause disabled, b >= 1: queued payload dropped and re-marked; backup inconsistent, then consistent", () => {
  const net = net3(6, 1);
  net.setLink(A, C, { delayMs: 2, bytesPerMs: 2048 });
  const params = testParams({ maxBufferBytes: 24 * PAGE_SIZE, pauseEnabled: false });
  const images = addTestVm(net, { vmId: VM, primary: A, backups: [B, C], pageCount: 512, params });
  startGuest(net, VM, images, { pagesPerMs: 3, until: 800 });
  const seen: boolean[] = [];
  net.every(1, () => {
    seen.push(net.node(A).rep.backupConsistent(VM, C));
    assert.equal(net.node(A).rep.backupConsistent(VM, B), true);
    return net.now < 2000;
  });
  net.runUntil(2000);
  const drops = events(net, "dropped", A);
  assert.ok(drops.length > 0);
  assert.ok(drops.every((d) => d.event.backups.includes(C) && !d.event.backups.includes(B)));
  assert.ok(seen.includes(false));
  assert.equal(seen.at(-1), true);
  assert.equal(net.node(A).rep.status(VM).inconsistentBackups.length, 0);
  assert.equal(net.node(A).rep.status(VM).pauseCount, 0);
  assert.ok(net.node(A).metrics.counter("mycelium_ram_drops_total", { vm: VM }) > 0);
  assert.equal(appliedStateProblem(net.trace), null);
  assert.equal(images.get(C)!.digest(), images.get(A)!.digest());
});

// ---- failover ----

Deno.test("primary crash: the most up-to-date backup is promoted from a complete epoch", () => {
  const net = net3(7, 1);
  net.setLink(A, C, { delayMs: 25 }); // C trails B by a few epochs
  const params = testParams();
  const images = addTestVm(net, { vmId: VM, primary: A, backups: [B, C], pageCount: 64, params });
  startGuest(net, VM, images, { pagesPerMs: 0.5, until: 1500 });
  let atCrash = { b: 0, c: 0 };
  net.at(400, () => {
    atCrash = {
      b: net.node(B).rep.status(VM).lastAppliedEpoch,
      c: net.node(C).rep.status(VM).lastAppliedEpoch,
    };
    net.crash(A);
  });
  net.runUntil(2200);
  assert.ok(atCrash.b > atCrash.c, `${JSON.stringify(atCrash)}`);
  const promoted = events(net, "promoted").filter((t) => t.event.reason === "election");
  assert.equal(promoted.length, 1);
  const p = promoted[0];
  assert.equal(p.event.node, B);
  assert.equal(p.event.term, 2);
  // Nothing from A arrived after the crash, so B's last epoch is the one it had.
  assert.ok(p.event.epoch >= atCrash.b);
  assert.equal(p.event.digest, cutDigests(net).get(`1/${p.event.epoch}`));
  const failoverMs = p.at - 400;
  assert.ok(failoverMs <= 2 * params.leaseMs + 50, `failover took ${failoverMs} ms`);
  // The guest went on on B, and C follows it.
  assert.equal(net.node(B).rep.status(VM).role, "primary");
  assert.ok(events(net, "epochCut", B).length > 20);
  assert.equal(images.get(C)!.digest(), images.get(B)!.digest());
  assert.equal(twoPrimariesProblem(net.trace), null);
  assert.equal(appliedStateProblem(net.trace), null);
});

Deno.test("partition: the isolated primary fences itself before another is elected", () => {
  const net = net3(8, 2);
  const params = testParams();
  const images = addTestVm(net, { vmId: VM, primary: A, backups: [B, C], pageCount: 64, params });
  startGuest(net, VM, images, { pagesPerMs: 0.5, until: 1600 });
  let maxRunning = 0;
  net.every(1, () => {
    maxRunning = Math.max(maxRunning, net.running(VM).length);
    return net.now < 2500;
  });
  net.at(300, () => net.isolate(A));
  net.at(1000, () => net.heal());
  net.runUntil(2500);
  const fenced = events(net, "fenced", A);
  const promoted = events(net, "promoted").filter((t) => t.event.reason === "election");
  assert.equal(fenced.length, 1);
  assert.equal(fenced[0].event.reason, "lease-lost");
  assert.equal(promoted.length, 1);
  assert.ok(fenced[0].at <= promoted[0].at, `fenced ${fenced[0].at}, promoted ${promoted[0].at}`);
  assert.ok(fenced[0].at <= 300 + params.leaseMs);
  assert.equal(maxRunning, 1);
  assert.equal(twoPrimariesProblem(net.trace), null);
  assert.equal(appliedStateProblem(net.trace), null);
  // After the heal the old primary is reseeded and follows the new one.
  const leader = promoted[0].event.node;
  const st = net.node(A).rep.status(VM);
  assert.equal(st.role, "backup");
  assert.equal(st.primary, leader);
  assert.equal(images.get(A)!.digest(), images.get(leader)!.digest());
  assert.ok(events(net, "epochApplied", A).some((t) => t.event.resync));
});

Deno.test("twoPrimariesProblem and appliedStateProblem fire on violating traces", () => {
  const base = { vmId: VM, now: 0 };
  const promoted = (node: NodeId, term: number): RamEvent => ({
    ...base,
    node,
    kind: "promoted",
    term,
    baseTerm: 1,
    epoch: 3,
    reason: "election",
  });
  const fenced = (node: NodeId, term: number): RamEvent => ({
    ...base,
    node,
    kind: "fenced",
    term,
    reason: "lease-lost",
  });
  // B elected while A still runs.
  const overlap: TimedRamEvent[] = [
    { at: 0, event: promoted(A, 1) },
    { at: 100, event: promoted(B, 2) },
    { at: 150, event: fenced(A, 1) },
  ];
  assert.match(twoPrimariesProblem(overlap)!, /at the same time/);
  // Two primaries of one term.
  const sameTerm: TimedRamEvent[] = [
    { at: 0, event: promoted(A, 2) },
    { at: 10, event: fenced(A, 2) },
    { at: 20, event: promoted(B, 2) },
  ];
  assert.match(twoPrimariesProblem(sameTerm)!, /two primaries in term 2/);
  // Fenced at the instant the next is promoted: fine.
  const handoff: TimedRamEvent[] = [
    { at: 0, event: promoted(A, 1) },
    { at: 100, event: fenced(A, 1) },
    { at: 100, event: promoted(B, 2) },
  ];
  assert.equal(twoPrimariesProblem(handoff), null);

  const cut: RamEvent = {
    ...base,
    node: A,
    kind: "epochCut",
    term: 1,
    epoch: 4,
    pages: 1,
    digest: "x",
  };
  const applied = (digest: string, epoch = 4): RamEvent => ({
    ...base,
    node: B,
    kind: "epochApplied",
    term: 1,
    epoch,
    resync: false,
    digest,
  });
  assert.equal(appliedStateProblem([{ at: 0, event: cut }, { at: 1, event: applied("x") }]), null);
  assert.match(
    appliedStateProblem([{ at: 0, event: cut }, { at: 1, event: applied("y") }])!,
    /digest y/,
  );
  assert.match(appliedStateProblem([{ at: 1, event: applied("x", 5) }])!, /never cut/);
});

// ---- planned migration ----

Deno.test("migration on a fast link completes within the downtime budget", () => {
  const net = net3(9, 1);
  const params = testParams();
  const images = addTestVm(net, { vmId: VM, primary: A, backups: [B, C], pageCount: 256, params });
  startGuest(net, VM, images, { pagesPerMs: 1, until: 1500 });
  let maxRunning = 0;
  net.every(1, () => {
    maxRunning = Math.max(maxRunning, net.running(VM).length);
    return net.now < 2000;
  });
  net.at(300, () => net.node(A).rep.migrate(VM, B));
  net.runUntil(2000);
  const done = events(net, "migrationCompleted", A);
  assert.equal(done.length, 1);
  const { blackoutMs, totalMs } = done[0].event;
  assert.ok(blackoutMs <= params.downtimeBudgetMs, `blackout ${blackoutMs}`);
  assert.ok(totalMs < params.migrationAbortMs);
  // Exact blackout from the trace: A paused -> B promoted (running).
  const paused = events(net, "migrationBlackout", A)[0];
  const handedTo = events(net, "promoted", B)[0];
  assert.equal(handedTo.event.reason, "handover");
  assert.equal(handedTo.event.term, 2);
  assert.equal(handedTo.event.epoch, paused.event.epoch);
  assert.ok(handedTo.at - paused.at <= blackoutMs);
  assert.equal(maxRunning, 1);
  // Roles after: B primary of term 2 with A and C as backups, the guest running on B.
  assert.equal(net.node(B).rep.status(VM).role, "primary");
  assert.deepEqual(net.node(B).rep.status(VM).backups.sort(), [A, C].sort());
  assert.equal(net.node(A).rep.status(VM).role, "backup");
  assert.deepEqual(net.node(A).rep.status(VM).lastMigration, {
    target: B,
    outcome: "completed",
    blackoutMs,
    totalMs,
  });
  assert.ok(events(net, "epochCut", B).length > 20);
  for (const id of [A, C]) assert.equal(images.get(id)!.digest(), images.get(B)!.digest());
  // Nobody needed a resync: A and C already held the final epoch.
  assert.ok(!events(net, "epochApplied").some((t) => t.event.resync));
  assert.equal(twoPrimariesProblem(net.trace), null);
  assert.equal(appliedStateProblem(net.trace), null);
  const h = net.node(A).metrics.histogram("mycelium_ram_migration_blackout_ms", { vm: VM });
  assert.deepEqual(h, [blackoutMs]);
});

Deno.test("migration on a link too slow for the dirty rate aborts and returns to normal", () => {
  const net = net3(10, 1);
  net.setLink(A, B, { delayMs: 2, bytesPerMs: 256 }); // 1/16 page per ms
  const params = testParams({ maxBufferBytes: 256 * PAGE_SIZE, migrationAbortMs: 1000 });
  const images = addTestVm(net, { vmId: VM, primary: A, backups: [B, C], pageCount: 4096, params });
  startGuest(net, VM, images, { pagesPerMs: 1, until: 3500 });
  net.at(500, () => net.node(A).rep.migrate(VM, B));
  net.runUntil(3000);
  const aborted = events(net, "migrationAborted", A);
  assert.equal(aborted.length, 1);
  assert.equal(aborted[0].event.reason, "timeout");
  assert.ok(aborted[0].at >= 1500 && aborted[0].at <= 1500 + params.intervalMs);
  assert.equal(events(net, "migrationBlackout").length, 0);
  const st = net.node(A).rep.status(VM);
  assert.equal(st.role, "primary");
  assert.equal(st.migration, null);
  assert.equal(st.lastMigration?.outcome, "aborted");
  // Catch-up ran at I = M; afterwards the policy is back on I(b).
  for (const { at, event: t } of events(net, "tick", A)) {
    const migrating = at > 500 && at <= aborted[0].at; // the abort follows the last tick
    const want = migrating ? params.curve.maxIntensity : throttleIntensity(params.curve, t.b);
    assert.equal(t.decision.intensity, want, `tick at ${at}`);
  }
  assert.equal(twoPrimariesProblem(net.trace), null);
});

Deno.test("migration to a node outside the group: seeded by a resync, then handed over", () => {
  const net = net3(11, 1);
  net.addNode(D);
  const params = testParams();
  const images = addTestVm(net, { vmId: VM, primary: A, backups: [B, C], pageCount: 128, params });
  // The runtime adds the VM on the target first, as a backup without a usable image.
  const imgD = new VersionImage(128);
  images.set(D, imgD);
  net.node(D).rep.addVm({
    vmId: VM,
    role: "backup",
    image: imgD,
    params,
    policy: curvePolicy(params.curve, params),
    primary: A,
    backups: [B, C, D],
    term: 1,
    synced: false,
  });
  startGuest(net, VM, images, { pagesPerMs: 0.5, until: 1500 });
  net.at(300, () => net.node(A).rep.migrate(VM, D));
  net.runUntil(2000);
  assert.ok(events(net, "epochApplied", D).some((t) => t.event.resync));
  const done = events(net, "migrationCompleted", A);
  assert.equal(done.length, 1);
  assert.ok(done[0].event.blackoutMs <= params.downtimeBudgetMs);
  const st = net.node(D).rep.status(VM);
  assert.equal(st.role, "primary");
  assert.deepEqual(st.backups.sort(), [A, B, C].sort());
  assert.deepEqual(net.running(VM), [D]);
  for (const id of [A, B, C]) assert.equal(images.get(id)!.digest(), imgD.digest());
  assert.equal(twoPrimariesProblem(net.trace), null);
  assert.equal(appliedStateProblem(net.trace), null);
});

Deno.test("a fenced primary ahead of every backup stands again and loses nothing", () => {
  const net = net3(12, 2);
  const params = testParams();
  const images = addTestVm(net, { vmId: VM, primary: A, backups: [B, C], pageCount: 64, params });
  startGuest(net, VM, images, { pagesPerMs: 0.5, until: 1500 });
  net.at(100, () => net.crash(C));
  net.at(300, () => net.isolate(B)); // A is left without a majority and fences itself
  net.at(900, () => net.heal());
  net.runUntil(2000);
  const fenced = events(net, "fenced", A);
  assert.equal(fenced.length, 1);
  const lastCut = events(net, "epochCut", A).filter((t) => t.at <= fenced[0].at).at(-1)!;
  assert.equal(lastCut.at, fenced[0].at); // the fencing cut
  const promoted = events(net, "promoted").filter((t) => t.event.reason === "election");
  assert.equal(promoted.length, 1);
  assert.equal(promoted[0].event.node, A);
  assert.equal(promoted[0].event.epoch, lastCut.event.epoch);
  assert.equal(promoted[0].event.digest, lastCut.event.digest);
  assert.ok(promoted[0].at >= 900);
  // B, behind A's state, was reseeded and follows.
  assert.ok(events(net, "epochApplied", B).some((t) => t.event.resync));
  assert.equal(images.get(B)!.digest(), images.get(A)!.digest());
  assert.equal(twoPrimariesProblem(net.trace), null);
  assert.equal(appliedStateProblem(net.trace), null);
});

// ---- property ----

type Fault =
  | { kind: "none" }
  | { kind: "crash"; node: number; at: number }
  | { kind: "isolate"; node: number; at: number; healAfter: number }
  | { kind: "split"; node: number; at: number; healAfter: number }
  | { kind: "migrate"; node: number; at: number };

const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  fc.constant<Fault>({ kind: "none" }),
  fc.record({
    kind: fc.constant("crash" as const),
    node: fc.integer({ min: 0, max: 2 }),
    at: fc.integer({ min: 20, max: 1500 }),
  }),
  fc.record({
    kind: fc.constantFrom("isolate" as const, "split" as const),
    node: fc.integer({ min: 0, max: 2 }),
    at: fc.integer({ min: 20, max: 1500 }),
    healAfter: fc.integer({ min: 10, max: 1200 }),
  }),
  fc.record({
    kind: fc.constant("migrate" as const),
    node: fc.integer({ min: 1, max: 2 }),
    at: fc.integer({ min: 20, max: 1500 }),
  }),
);

Deno.test("property: one running primary per term and at a time, applied states are cut epochs, and replication recovers", () => {
  const ids = [A, B, C];
  fc.assert(
    fc.property(
      fc.record({
        seed: fc.integer({ min: 1, max: 1_000_000 }),
        delays: fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 6, maxLength: 6 }),
        jitter: fc.integer({ min: 0, max: 15 }),
        slow: fc.option(fc.integer({ min: 512, max: 8192 }), { nil: undefined }),
        rate: fc.integer({ min: 0, max: 20 }).map((r) => r / 10),
        pauseEnabled: fc.boolean(),
        faults: fc.array(faultArb, { minLength: 1, maxLength: 3 }),
      }),
      (s) => {
        const net = new TestNet<number>({ seed: s.seed });
        for (const id of ids) net.addNode(id);
        let k = 0;
        for (const a of ids) {
          for (const b of ids) {
            if (a === b) continue;
            const bytesPerMs = k === 0 ? s.slow : undefined;
            net.setLink(a, b, { delayMs: s.delays[k++], jitterMs: s.jitter, bytesPerMs }, true);
          }
        }
        const params = testParams({ pauseEnabled: s.pauseEnabled, maxBufferBytes: 32 * PAGE_SIZE });
        const images = addTestVm(net, {
          vmId: VM,
          primary: A,
          backups: [B, C],
          pageCount: 64,
          params,
        });
        startGuest(net, VM, images, { pagesPerMs: s.rate, seed: s.seed, until: 2800 });
        for (const f of s.faults) {
          if (f.kind === "none") continue;
          const id = ids[f.node];
          if (f.kind === "crash") net.at(f.at, () => net.crash(id));
          else if (f.kind === "isolate" || f.kind === "split") {
            net.at(f.at, () => {
              if (f.kind === "isolate") net.isolate(id);
              else net.partition([id, ids[(f.node + 1) % 3]]);
            });
            net.at(f.at + f.healAfter, () => net.heal());
          } else {
            net.at(f.at, () => {
              const prim = net.running(VM)[0];
              if (prim && prim !== id && !net.node(prim).rep.status(VM).migration) {
                net.node(prim).rep.migrate(VM, id);
              }
            });
          }
        }
        net.every(1, () => {
          const running = net.running(VM);
          assert.ok(running.length <= 1, `at ${net.now}: ${running.length} running primaries`);
          return net.now < 6000;
        });
        net.runUntil(3000);
        // Safety.
        assert.equal(twoPrimariesProblem(net.trace), null);
        assert.equal(appliedStateProblem(net.trace), null);
        const terms = events(net, "promoted").map((t) => t.event.term);
        assert.equal(new Set(terms).size, terms.length);
        // Liveness: healed, a majority alive and the guest quiet, one primary runs again and
        // every backup it follows holds its image.
        net.heal();
        net.runUntil(6000);
        assert.equal(twoPrimariesProblem(net.trace), null);
        assert.equal(appliedStateProblem(net.trace), null);
        if ([...net.nodes.values()].filter((n) => !n.alive).length < 2) {
          const running = net.running(VM);
          assert.equal(running.length, 1, "a primary runs again");
          const st = net.node(running[0]).rep.status(VM);
          for (const id of st.backups) {
            if (!net.node(id).alive) continue;
            assert.equal(images.get(id)!.digest(), images.get(running[0])!.digest());
          }
        }
      },
    ),
    { numRuns: 100 },
  );
});
