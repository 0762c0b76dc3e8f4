#!/usr/bin/env python3
"""Writes notebooks/throttling.ipynb from the cell sources below (run after editing them)."""
import json, os

here = os.path.dirname(os.path.abspath(__file__))
setup = open(os.path.join(here, "src", "setup.ts")).read()

cells = []
def md(src): cells.append(("markdown", src))
def code(src): cells.append(("code", src))

md("""# Distributed RAM: throttling

This notebook runs the distributed-RAM code in the kernel (`core/ram/`, the same code the node
runs, and the RAM simulator in `sim/ram/`) and verifies the throttling properties:

- **The three curves** of DESIGN.md for the spec's test configuration (threshold T = 0.7,
  maximum M = 0.9): linear, exponential (e = 3) and a custom piecewise-linear curve.
- **Buffer level b(t) and intensity I(t)** of a simulated VM whose guest dirties pages faster
  than its link drains them, against the **analytic steady state**: the throttled dirty rate
  r0·(1 − I(b*)) equals the link's bandwidth B, so I(b*) = 1 − B/r0 and
  b* = I⁻¹(1 − B/r0).
- **Guest slowdown against migration time and downtime** for our controller and both
  baselines (QEMU auto-converge, Remus-style fixed epochs), over a grid of each policy's knobs:
  one Pareto front per workload (core/ram/migration_model.ts).

The last cell **verifies**: every curve stays in [0, M], is 0 up to T and monotone; the
simulated plateau of b and I matches the analytic steady state; every simulated run's checks
passed; and on every workload whose dirty rate is below the link's bandwidth our controller
converges. It throws otherwise, so `notebooks/run.sh` (and CI) fails.""")

code(setup)

md("## The three curves (T = 0.7, M = 0.9)")
code("""import { parseThrottleCurve, throttleIntensity } from "../core/throttle.ts";

const T = 0.7, M = 0.9;
const curves = {
  linear: parseThrottleCurve({ curve: "linear", threshold: T, maxIntensity: M }),
  "exponential (e = 3)": parseThrottleCurve({ curve: "exponential", threshold: T, maxIntensity: M, exponent: 3 }),
  custom: parseThrottleCurve({
    curve: "custom",
    threshold: T,
    maxIntensity: M,
    points: [{ x: 0, y: 0 }, { x: 0.3, y: 0.1 }, { x: 0.6, y: 0.5 }, { x: 1, y: 1 }],
  }),
};
const bs = Array.from({ length: 401 }, (_, i) => i / 400);
const curveRows = Object.entries(curves).flatMap(([name, c]) =>
  bs.map((b) => ({ name, b, i: throttleIntensity(c, b) }))
);
show(Plot.plot({
  document,
  width: 720,
  height: 320,
  grid: true,
  x: { label: "buffer level b", domain: [0, 1] },
  y: { label: "intensity I(b)", domain: [0, 1] },
  color: { legend: true },
  marks: [
    Plot.ruleX([T], { stroke: "#999", strokeDasharray: "4 3" }),
    Plot.ruleY([M], { stroke: "#999", strokeDasharray: "4 3" }),
    Plot.text([{ b: T, i: 0.97 }], { x: "b", y: "i", text: () => "T", dx: 6 }),
    Plot.text([{ b: 0.02, i: M }], { x: "b", y: "i", text: () => "M", dy: -8 }),
    Plot.line(curveRows, { x: "b", y: "i", stroke: "name" }),
  ],
}));""")

md("""## Buffer level and intensity over time against the analytic steady state

A VM on a 3-node LAN (1 Gbit/s uplinks) whose guest would dirty pages at r0 above the link's
bandwidth B, under the linear curve (T = 0.7, M = 0.9): the buffer fills until the throttled
rate r0·(1 − I) matches B, and stays there. The buffer drains in steps (queued epochs merge
while the link is busy, and a merged epoch is acknowledged at once), so b and I swing around
the plateau; their means over the second half are compared with the analytic values.""")
code("__STEADY_STATE__")
code("""table([
  ["link B (pages/s, after framing)", B.toFixed(0)],
  ["guest r0 (pages/s)", R0],
  ["analytic I* = 1 - B/r0", iStar.toFixed(3)],
  ["simulated mean I (t >= 15 s)", iMean.toFixed(3)],
  ["analytic b* = T + (1 - T) I*/M", bStar.toFixed(3)],
  ["simulated mean b (t >= 15 s)", bMean.toFixed(3)],
]);""")

md("""## Guest slowdown against migration time and downtime

Live migration of a 1 GiB VM over a 500 Mbit/s link (dirty rate 12,000 pages/s ≈ 393 Mbit/s,
below the link). Guest slowdown is the integrated throttle: Σ intensity·dt, paused time
counting as 1 (seconds of guest time lost). Each policy runs over a grid of its own knobs:
ours (max_buffer_size × the bulk copy's dirty share), auto-converge (initial throttle ×
increment), Remus (epoch length). The line joins each policy's Pareto-optimal points.""")
code("""import { simulateMigration, type MigrationPolicyName } from "../core/ram/migration_model.ts";
import { makeWorkload, type WorkloadSpec } from "../core/ram/workloads.ts";
import { Rng } from "../sim/rng.ts";

const PAGES = 262_144; // 1 GiB
const LINK = 500e6 / 8;
const WORKLOADS: WorkloadSpec[] = [
  { kind: "uniform", ratePagesPerSec: 12_000 },
  { kind: "hot-set", ratePagesPerSec: 12_000, zipfS: 1 },
  { kind: "web-server", ratePagesPerSec: 12_000 },
] as WorkloadSpec[];
const MIB = 1024 * 1024;
const knobs: Array<{ policy: MigrationPolicyName; label: string; params: Record<string, unknown> }> = [
  ...[16, 64, 256, 1024].flatMap((mib) => [0, 0.5].map((share) => ({
    policy: "mycelium" as const, label: `${mib} MiB/${share}`, params: { maxBufferBytes: mib * MIB, dirtyShare: share },
  }))),
  ...[0.1, 0.2, 0.4].flatMap((initial) => [0.05, 0.1, 0.2].map((increment) => ({
    policy: "auto-converge" as const, label: `${initial}+${increment}`, params: { autoConverge: { initial, increment } },
  }))),
  ...[10, 25, 50, 100, 200].map((epochMs) => ({
    policy: "remus" as const, label: `${epochMs} ms`, params: { remus: { epochMs } },
  })),
];
const POLICY_NAME = { mycelium: "ours", "auto-converge": "auto-converge", remus: "Remus" };
const migrations = WORKLOADS.flatMap((spec) => knobs.map((k) => {
  const rng = Rng.fromSeed(11).derive(spec.kind);
  const r = simulateMigration(k.policy, {
    pageCount: PAGES,
    bandwidthBytesPerSec: LINK,
    workload: makeWorkload(spec, PAGES),
    random: () => rng.next(),
    abortMs: 120_000,
    ...k.params,
  });
  return {
    workload: spec.kind,
    policy: POLICY_NAME[k.policy],
    knob: k.label,
    migrationS: r.migrationMs / 1000,
    downtimeMs: r.downtimeMs,
    slowdownS: r.integratedThrottle,
    converged: r.converged,
  };
}));
// Pareto front (minimise both) of one policy's converged points on one workload.
function front<T extends Record<string, unknown>>(rows: T[], x: keyof T, y: keyof T): T[] {
  const sorted = rows.slice().sort((a, b) => (a[x] as number) - (b[x] as number) || (a[y] as number) - (b[y] as number));
  const out: T[] = [];
  for (const r of sorted) if (out.length === 0 || (r[y] as number) < (out[out.length - 1][y] as number)) out.push(r);
  return out;
}
function pareto(x: "migrationS" | "downtimeMs", label: string) {
  const ok = migrations.filter((m) => m.converged);
  const lines = WORKLOADS.flatMap((w) =>
    Object.values(POLICY_NAME).flatMap((p) => front(ok.filter((m) => m.workload === w.kind && m.policy === p), x, "slowdownS"))
  );
  return Plot.plot({
    document,
    width: 760,
    height: 260,
    grid: true,
    facet: { data: ok, x: "workload" },
    x: { label, type: x === "downtimeMs" ? "log" : "linear" },
    y: { label: "guest slowdown (s)" },
    color: { legend: true },
    marks: [
      Plot.dot(ok, { x, y: "slowdownS", stroke: "policy", fx: "workload", r: 3 }),
      Plot.line(lines, { x, y: "slowdownS", stroke: "policy", fx: "workload" }),
    ],
  });
}
show(pareto("migrationS", "migration time (s)"));""")
code("""show(pareto("downtimeMs", "downtime (ms)"));""")
code("""table(WORKLOADS.flatMap((w) => Object.values(POLICY_NAME).map((p) => {
  const rows = migrations.filter((m) => m.workload === w.kind && m.policy === p && m.converged);
  const best = rows.reduce((a, b) => (b.slowdownS < a.slowdownS ? b : a), rows[0]);
  return {
    workload: w.kind,
    policy: p,
    converged: `${rows.length}/${migrations.filter((m) => m.workload === w.kind && m.policy === p).length}`,
    "least slowdown (s)": best ? best.slowdownS.toFixed(3) : "-",
    "its migration (s)": best ? best.migrationS.toFixed(1) : "-",
    "its downtime (ms)": best ? best.downtimeMs.toFixed(0) : "-",
    knob: best?.knob ?? "-",
  };
})));""")

md("## Verification")
code("""const problems: string[] = [...failures];
for (const [name, c] of Object.entries(curves)) {
  let prev = 0;
  for (const b of bs) {
    const i = throttleIntensity(c, b);
    if (!(i >= 0 && i <= M + 1e-12)) problems.push(`${name}: I(${b}) = ${i} outside [0, M]`);
    if (b <= T && i !== 0) problems.push(`${name}: I(${b}) = ${i} but b <= T`);
    if (i < prev - 1e-12) problems.push(`${name}: not monotone at b = ${b}`);
    prev = i;
  }
  if (Math.abs(throttleIntensity(c, 1) - M) > 1e-12) problems.push(`${name}: I(1) != M`);
}
problems.push(...steadyProblems);
for (const w of WORKLOADS) {
  const ours = migrations.filter((m) => m.workload === w.kind && m.policy === "ours");
  if (!ours.some((m) => m.converged)) problems.push(`ours never converged on ${w.kind} (below the link)`);
}
if (problems.length) throw new Error(`throttling verification failed:\\n- ${problems.join("\\n- ")}`);
Deno.jupyter.md`**All throttling properties verified**: 3 curves in [0, M], zero up to T, monotone; simulated plateau within tolerance of the analytic steady state; ${migrations.length} migrations, ours converged on every workload below the link.`;""")

nb = {
    "cells": [],
    "metadata": {
        "kernelspec": {"display_name": "Deno (Mycelium)", "language": "typescript", "name": "deno"},
        "language_info": {"codemirror_mode": "typescript", "file_extension": ".ts", "mimetype": "text/x.typescript",
                          "name": "typescript", "nbconvert_exporter": "script", "pygments_lexer": "typescript"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}
steady = open(os.path.join(here, "src", "throttling_steady.ts")).read() if os.path.exists(os.path.join(here, "src", "throttling_steady.ts")) else "const failures: string[] = []; const steadyProblems: string[] = [\"steady-state section missing\"];"
for i, (kind, src) in enumerate(cells):
    src = src.replace("__STEADY_STATE__", steady)
    cell = {"cell_type": kind, "id": f"c{i:02d}", "metadata": {}, "source": src.splitlines(keepends=True)}
    if kind == "code":
        cell["execution_count"] = None
        cell["outputs"] = []
    nb["cells"].append(cell)
with open(os.path.join(here, "throttling.ipynb"), "w") as f:
    json.dump(nb, f, indent=1, ensure_ascii=False)
    f.write("\n")
print("wrote notebooks/throttling.ipynb")
