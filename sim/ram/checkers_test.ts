/**
 * The online RAM checkers on hand-made event sequences: each one fires on the violation it
 * exists for and stays quiet on the legal sequence next to it.
 */
import assert from "node:assert/strict";
import type { RamEvent } from "../../core/ram/events.ts";
import { throttleIntensity } from "../../core/throttle.ts";
import type { NodeId } from "../../core/ids.ts";
import type { Violation } from "../membership_observer.ts";
import { RamCheckers, type VmCheckInfo } from "./checkers.ts";

const INFO: VmCheckInfo = {
  curve: { curve: "linear", threshold: 0.6, maxIntensity: 0.9 },
  maxIntensity: 0.9,
  convergenceTimeoutMs: 100,
  intervalMs: 10,
};

const ALL = [
  "ram.intensity",
  "ram.single-primary",
  "ram.failover-consistent",
  "ram.output-buffering",
  "ram.pause-bounded",
];

function checkers(deferred?: Array<() => void>) {
  const c = new RamCheckers(new Set(ALL), deferred ? (fn) => deferred.push(fn) : undefined);
  c.addVm("vm", INFO);
  return c;
}

const node = (n: string) => n as NodeId;
/** The checker's violation (read through a function so assertions do not narrow it). */
const v = (c: RamCheckers): Violation | null => c.violation;
const base = (n: string, now: number) => ({ vmId: "vm", node: node(n), now });

const promoted = (
  n: string,
  now: number,
  term: number,
  baseTerm: number,
  epoch: number,
  digest?: string,
): RamEvent => ({
  ...base(n, now),
  kind: "promoted",
  term,
  baseTerm,
  epoch,
  reason: term === 1 ? "initial" : "election",
  digest,
});

const tick = (
  now: number,
  b: number,
  intensity: number,
  pause = false,
): Extract<RamEvent, { kind: "tick" }> => ({
  ...base("a", now),
  kind: "tick",
  term: 1,
  b,
  intensity,
  pause,
  decision: { intensity, pause },
});

Deno.test("ram.intensity: I(b) passes, a decision off the curve fails", () => {
  const c = checkers();
  c.onEvent(0, promoted("a", 0, 1, 1, 0));
  c.onEvent(10, tick(10, 0.5, 0));
  c.onEvent(20, tick(20, 0.8, throttleIntensity(INFO.curve!, 0.8)));
  c.onEvent(30, tick(30, 1.2, 0.9));
  assert.equal(c.violation, null);
  c.onEvent(40, tick(40, 0.8, 0.3));
  assert.equal(v(c)?.check, "ram.intensity");
  assert.match(v(c)!.detail, /intensity 0.3 != 0.45\d* expected for b = 0.8/);
});

Deno.test("ram.intensity: catch-up runs at M; the applied value must equal the decision", () => {
  const c = checkers();
  c.onEvent(0, promoted("a", 0, 1, 1, 0));
  c.onEvent(5, { ...base("a", 5), kind: "migrationStarted", term: 1, target: node("b") });
  c.onEvent(10, tick(10, 0.1, 0.9));
  assert.equal(c.violation, null);
  c.onEvent(15, {
    ...base("a", 15),
    kind: "migrationBlackout",
    term: 1,
    target: node("b"),
    epoch: 3,
  });
  c.onEvent(20, { ...tick(20, 0.1, 0.5), decision: { intensity: 0, pause: false } });
  assert.match(v(c)!.detail, /applied intensity 0.5 differs from the decision 0/);
});

Deno.test("ram.pause-bounded: a pause up to timeout + interval passes, a longer one fails", () => {
  const c = checkers();
  c.onEvent(0, promoted("a", 0, 1, 1, 0));
  for (let t = 10; t <= 110; t += 10) c.onEvent(t, tick(t, 1, 0.9, true));
  c.onEvent(120, tick(120, 1, 0.9, false)); // 110 ms = 100 + 10: the bound
  assert.equal(c.violation, null);
  for (let t = 130; t <= 250; t += 10) c.onEvent(t, tick(t, 1, 0.9, true));
  assert.equal(v(c)?.check, "ram.pause-bounded");
  assert.match(v(c)!.detail, /has lasted 120.0 ms \(bound 110 ms/);
});

Deno.test("ram.single-primary: a handover is fine, an overlap or a shared term is not", () => {
  const later: Array<() => void> = [];
  const c = checkers(later);
  c.onEvent(0, promoted("a", 0, 1, 1, 0));
  c.onEvent(50, { ...base("a", 50), kind: "fenced", term: 1, reason: "lease-lost" });
  c.onEvent(60, promoted("b", 60, 2, 1, 4));
  later.splice(0).forEach((f) => f());
  assert.equal(c.violation, null);
  // c is promoted while b still runs.
  c.onEvent(70, promoted("c", 70, 3, 2, 5));
  assert.equal(c.violation, null, "judged once the instant is over");
  later.splice(0).forEach((f) => f());
  assert.equal(v(c)?.check, "ram.single-primary");
  assert.match(v(c)!.detail, /b \(term 2.*and c \(term 3.*at the same time/);

  const d = checkers([]);
  d.onEvent(0, promoted("a", 0, 1, 1, 0));
  d.onEvent(1, { ...base("a", 1), kind: "stopped", term: 1 });
  d.onEvent(2, promoted("b", 2, 2, 1, 0));
  d.onEvent(3, { ...base("b", 3), kind: "stopped", term: 2 });
  d.onEvent(4, promoted("c", 4, 2, 1, 0));
  assert.match(v(d)!.detail, /two primaries in term 2 \(b and c\)/);
});

Deno.test("ram.single-primary: a fence at the very instant of the promotion is fine", () => {
  const later: Array<() => void> = [];
  const c = checkers(later);
  c.onEvent(0, promoted("a", 0, 1, 1, 0));
  c.onEvent(60, promoted("b", 60, 2, 1, 4));
  c.onEvent(60, { ...base("a", 60), kind: "demoted", term: 1 });
  later.splice(0).forEach((f) => f());
  assert.equal(c.violation, null);
});

Deno.test("ram.failover-consistent: applied and promoted states must match the cut digests", () => {
  const c = checkers();
  c.onEvent(0, promoted("a", 0, 1, 1, 0, "d0"));
  c.onEvent(5, { ...base("a", 5), kind: "epochCut", term: 1, epoch: 1, pages: 3, digest: "d1" });
  c.onEvent(6, {
    ...base("b", 6),
    kind: "epochApplied",
    term: 1,
    epoch: 1,
    resync: false,
    digest: "d1",
  });
  c.onEvent(7, { ...base("a", 7), kind: "stopped", term: 1 });
  c.onEvent(8, promoted("b", 8, 2, 1, 1, "d1"));
  assert.equal(c.violation, null);
  // A stale backup promoted from epoch 1 with an image that is not epoch 1.
  c.onEvent(9, { ...base("b", 9), kind: "stopped", term: 2 });
  c.onEvent(10, promoted("c", 10, 3, 1, 1, "stale"));
  assert.equal(v(c)?.check, "ram.failover-consistent");
  assert.match(v(c)!.detail, /c became primary of term 3 from epoch 1 of term 1/);

  const d = checkers();
  d.onEvent(6, {
    ...base("b", 6),
    kind: "epochApplied",
    term: 1,
    epoch: 9,
    resync: false,
    digest: "x",
  });
  assert.match(v(d)!.detail, /which was never cut/);
});

Deno.test("ram.output-buffering: a promotion must hold every released output", () => {
  const c = checkers();
  c.onEvent(0, promoted("a", 0, 1, 1, 0));
  c.outputReleased("vm", 1, 4, 30);
  c.outputReleased("vm", 1, 3, 31);
  c.onEvent(40, { ...base("a", 40), kind: "stopped", term: 1 });
  c.onEvent(50, promoted("b", 50, 2, 1, 4));
  assert.equal(c.violation, null);
  c.outputReleased("vm", 2, 7, 60);
  c.onEvent(70, { ...base("b", 70), kind: "stopped", term: 2 });
  c.onEvent(80, promoted("c", 80, 3, 2, 6));
  assert.equal(v(c)?.check, "ram.output-buffering");
  assert.match(v(c)!.detail, /output of epoch 7 of term 2 was already released/);
});

Deno.test("disabled checks never fire", () => {
  const c = new RamCheckers(new Set());
  c.addVm("vm", INFO);
  c.onEvent(0, promoted("a", 0, 1, 1, 0));
  c.onEvent(10, tick(10, 0.8, 0.3));
  c.onEvent(20, promoted("b", 20, 1, 1, 0));
  assert.equal(c.violation, null);
  assert.equal(c.wantsDigests, false);
});
