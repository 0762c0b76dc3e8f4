/**
 * Replication over Rhizomorph relay paths: the stream flows through relays only, splits by
 * measured bandwidth, halves a degraded path's share, survives a failed relay while another
 * path lives, and stops (without harm) when none does.
 */
import assert from "node:assert/strict";
import type { NodeId } from "../ids.ts";
import { appliedStateProblem, twoPrimariesProblem } from "./checks.ts";
import { parseRamConfig } from "./config.ts";
import { MultipathRam, type RamWire } from "./multipath.ts";
import { PAGE_SIZE } from "./params.ts";
import { addTestVm, startGuest, TestNet, testParams } from "./testing.ts";

const P = "p".padEnd(32, "0") as NodeId;
const B = "b".padEnd(32, "0") as NodeId;
const R1 = "1".padEnd(32, "0") as NodeId;
const R2 = "2".padEnd(32, "0") as NodeId;
const PATHS = parseRamConfig({}).paths;

interface Lab {
  net: TestNet<number>;
  mp: Map<NodeId, MultipathRam<number>>;
}

/** P and B reach each other only through R1 and R2; `rate`: KiB/ms on each relay's links. */
function lab(rate: { r1: number; r2: number }, delayMs = 1): Lab {
  const net = new TestNet<number>({ link: { delayMs } });
  const mp = new Map<NodeId, MultipathRam<number>>();
  for (const id of [P, B, R1, R2]) {
    net.addNode(id, (rep) => {
      const m = new MultipathRam<number>(rep, PATHS);
      mp.set(id, m);
      return m;
    });
  }
  net.cut(P, B);
  for (const [r, kib] of [[R1, rate.r1], [R2, rate.r2]] as const) {
    const bw = kib * 1024;
    net.setLink(P, r, { delayMs, bytesPerMs: bw });
    net.setLink(r, B, { delayMs, bytesPerMs: bw });
  }
  mp.get(P)!.setRoute("vm", B, [R1, R2]);
  mp.get(B)!.setRoute("vm", P, [R1, R2]);
  return { net, mp };
}

function setupVm(l: Lab, pagesPerMs: number) {
  const params = testParams({
    backupCount: 1,
    maxBufferBytes: 4096 * PAGE_SIZE,
    windowBytes: 1024 * PAGE_SIZE,
    chunkBytes: 16 * PAGE_SIZE,
    leaseMs: 1000,
    leaseRenewMs: 200,
  });
  const images = addTestVm(l.net, {
    vmId: "vm",
    primary: P,
    backups: [B],
    pageCount: 8192,
    params,
  });
  startGuest(l.net, "vm", images, { pagesPerMs, seed: 3 });
  return images;
}

const applied = (l: Lab) =>
  l.net.trace.filter((e) => e.event.kind === "epochApplied" && e.event.node === B).length;

function relayedBytes(l: Lab, r: NodeId): number {
  return l.net.node(r).metrics.counters.get("mycelium_ram_relayed_bytes_total") ?? 0;
}

Deno.test("multipath: with the direct link cut, epochs flow through the relays and apply", () => {
  const l = lab({ r1: 50, r2: 50 });
  setupVm(l, 20);
  l.net.runUntil(3000);
  assert.ok(applied(l) > 50, `only ${applied(l)} epochs applied on the backup`);
  assert.ok(relayedBytes(l, R1) > 0 && relayedBytes(l, R2) > 0, "both relays carried data");
  assert.equal(appliedStateProblem(l.net.trace), null);
  assert.equal(twoPrimariesProblem(l.net.trace), null);
  assert.ok(l.net.node(P).rep.running("vm"), "the primary keeps its lease through the relays");
});

Deno.test("multipath: the split follows measured bandwidth (4:1 links: 4:1 to 8:1)", () => {
  const l = lab({ r1: 40, r2: 10 });
  setupVm(l, 20); // 80 KiB/ms: more than both paths together, so both stay busy
  l.net.runUntil(2000);
  const a0 = relayedBytes(l, R1), b0 = relayedBytes(l, R2);
  l.net.runUntil(6000);
  const a = relayedBytes(l, R1) - a0, b = relayedBytes(l, R2) - b0;
  const ratio = a / b;
  // About 4:1, or up to 8:1 while queueing on the slow link makes it Degraded (its share
  // halves): never the even split, and the slow path still carries data.
  assert.ok(ratio > 3 && ratio < 10, `relayed ${a} vs ${b} bytes: ratio ${ratio.toFixed(2)}`);
  const shares = l.mp.get(P)!.paths("vm", B)!.shares();
  assert.ok(shares.get(R1)! > 0.7, `share of the fast path ${shares.get(R1)}`);
});

Deno.test("multipath: a path above 100 ms one way is degraded and its share shrinks (weight halved)", () => {
  const l = lab({ r1: 20, r2: 20 });
  l.net.setLink(P, R2, { delayMs: 150, bytesPerMs: 20 * 1024 }); // one way via R2 > 100 ms
  setupVm(l, 2);
  l.net.runUntil(3000);
  const set = l.mp.get(P)!.paths("vm", B)!;
  assert.equal(set.state(R2), "degraded");
  assert.equal(set.state(R1), "healthy");
  const s = set.shares();
  assert.ok(s.get(R2)! < s.get(R1)!, `degraded share ${s.get(R2)} vs ${s.get(R1)}`);
});

Deno.test("multipath: replication continues while one path lives, and stops when none does", () => {
  const l = lab({ r1: 50, r2: 50 });
  setupVm(l, 5);
  l.net.runUntil(1500);
  l.net.crash(R1);
  l.net.runUntil(2500);
  const set = l.mp.get(P)!.paths("vm", B)!;
  assert.equal(set.state(R1), "failed", "3 unanswered probes fail the path");
  const before = applied(l);
  l.net.runUntil(4500);
  assert.ok(applied(l) > before + 50, "epochs keep applying through R2 alone");
  assert.ok(set.alive());
  assert.equal(appliedStateProblem(l.net.trace), null);
  // The check the simulator runs: would it notice a stall while a path lives? Stop R2 too.
  l.net.crash(R2);
  l.net.runUntil(5000);
  const stalled = applied(l);
  l.net.runUntil(6000);
  assert.equal(applied(l), stalled, "no path: nothing applies");
  assert.equal(set.alive(), false);
  assert.equal(twoPrimariesProblem(l.net.trace), null);
});

Deno.test("multipath: relays forward only first-hop envelopes addressed through them", () => {
  const l = lab({ r1: 50, r2: 50 });
  const r1 = l.mp.get(R1)!;
  // An envelope claiming to come from P but handed to R1 by B is not relayed.
  const before = l.net.sentMessages;
  const forged: RamWire<number> = {
    t: "ram-relay",
    vmId: "vm",
    origin: P,
    to: B,
    via: R1,
    inner: { t: "ram-lease-req", vmId: "vm", term: 9, seq: 1, backups: [] },
  };
  r1.onMessage(B, forged);
  assert.equal(l.net.sentMessages, before);
  r1.onMessage(P, forged);
  assert.equal(l.net.sentMessages, before + 1);
});
