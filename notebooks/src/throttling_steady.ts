import { parseScenario } from "../sim/scenario.ts";
import { RamSimulation } from "../sim/ram/simulation.ts";
import { PAGE_SIZE } from "../core/ram/params.ts";
import { PAGE_INDEX_BYTES, RAM_HEADER_BYTES } from "../core/ram/messages.ts";

// Every simulated run's failed checks (verified in the last cell).
const failures: string[] = [];

// One VM (256 MiB, uniform writes) on a 100 Mbit/s uplink, Medium profile with the spec's
// test curve: linear, T = 0.7, M = 0.9, emergency pause off (so the plateau is the curve's).
const R0 = 4572; // pages/s the guest would dirty unthrottled
const LINK_BYTES = 100e6 / 8;
const CHUNK_PAGES = 255; // 1 MiB chunks
const B = LINK_BYTES / (PAGE_SIZE + PAGE_INDEX_BYTES + RAM_HEADER_BYTES / CHUNK_PAGES); // pages/s
const steadyScenario = parseScenario({
  name: "steady-state",
  seed: 3,
  duration: "30s",
  nodes: [{ group: "n", count: 2 }],
  network: { latency: { dist: "uniform", min: 4, max: 6 }, bandwidth: "100Mbit", queue: "64MiB" },
  ram: {
    config: {
      profile: "medium",
      backupNodeCount: 1,
      maxBufferBytes: 16 * 1024 * 1024,
      profiles: {
        medium: { curve: { curve: "linear", threshold: T, maxIntensity: M }, pauseEnabled: false },
      },
    },
    vms: [{
      name: "vm",
      memoryMiB: 256,
      primaries: "n-0",
      workload: { kind: "uniform", ratePagesPerSec: R0 },
    }],
  },
  outputs: { sampleInterval: "100ms" },
  checks: [{ type: "ram.intensity" }, { type: "ram.single-primary" }, { type: "ram.failover-consistent" }],
});
const steadySim = new RamSimulation(steadyScenario, { seed: 3 });
steadySim.run();
for (const c of steadySim.evaluateChecks()) if (!c.ok) failures.push(`steady-state: ${c.name}: ${c.detail}`);

// Analytic steady state: r0 (1 - I*) = B, and b* = T + (1 - T) I*/M (the linear curve's inverse).
const iStar = 1 - B / R0;
const bStar = T + (1 - T) * iStar / M;
const plateau = steadySim.samples.filter((s) => s.t >= 15_000);
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const bMean = avg(plateau.map((s) => s.b));
const iMean = avg(plateau.map((s) => s.intensity));
const steadyProblems: string[] = [];
if (Math.abs(bMean - bStar) > 0.03) steadyProblems.push(`plateau b ${bMean.toFixed(3)} vs analytic ${bStar.toFixed(3)}`);
if (Math.abs(iMean - iStar) > 0.03) steadyProblems.push(`plateau I ${iMean.toFixed(3)} vs analytic ${iStar.toFixed(3)}`);

const traces = steadySim.samples.flatMap((s) => [
  { t: s.t / 1000, v: s.b, what: "buffer level b" },
  { t: s.t / 1000, v: s.intensity, what: "intensity I" },
]);
const analytic = [
  { what: "buffer level b", v: bStar },
  { what: "intensity I", v: iStar },
];
show(Plot.plot({
  document,
  width: 760,
  height: 320,
  grid: true,
  x: { label: "virtual time (s)" },
  y: { label: "b, I", domain: [0, 1] },
  color: { legend: true },
  marks: [
    Plot.line(traces, { x: "t", y: "v", stroke: "what" }),
    Plot.ruleY(analytic, { y: "v", stroke: "what", strokeDasharray: "5 4" }),
    Plot.text(analytic, { x: 29, y: "v", text: (d) => `analytic ${d.v.toFixed(3)}`, dy: -7, textAnchor: "end" }),
  ],
}));
