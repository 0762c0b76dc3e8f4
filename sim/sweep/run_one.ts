/**
 * One run of a sweep, in-process: the scenario file with the cell's overrides and the
 * seed, through the simulator its sections call for, reduced to one row: pass/fail, the
 * failed checks, cost, and the summary's headline metrics flattened to `a.b.c` numbers.
 */
import { MyceliumError } from "../../core/errors.ts";
import { loadScenarioFile, type Scenario } from "../scenario.ts";
import { Simulation } from "../simulation.ts";
import { buildSummary } from "../summary.ts";
import { ConsensusSimulation } from "../consensus/simulation.ts";
import { buildConsensusSummary } from "../consensus/summary.ts";
import { RamSimulation } from "../ram/simulation.ts";
import { buildRamSummary } from "../ram/summary.ts";
import { SporeSimulation } from "../spores/simulation.ts";
import { buildSporeSummary } from "../spores/summary.ts";

export interface RunRow {
  cell: string;
  sets: string[];
  seed: number;
  ok: boolean;
  /** Names of the failed checks. */
  failed: string[];
  wallMs: number;
  virtualMs: number;
  events: number;
  /** Numeric leaves of summary.metrics, e.g. `membership.detection.p99Ms`. */
  metrics: Record<string, number>;
  /** The replay command of a failed run (empty when it passed). */
  replay: string;
  /** Set when the run could not even start (bad override, invalid scenario). */
  error?: string;
}

/** Numeric leaves of a JSON value as dotted paths (arrays and non-finite numbers skipped). */
export function flattenMetrics(v: unknown, prefix = "", out: Record<string, number> = {}) {
  if (typeof v === "number") {
    if (Number.isFinite(v) && prefix) out[prefix] = v;
  } else if (v && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flattenMetrics(x, prefix ? `${prefix}.${k}` : k, out);
  }
  return out;
}

/** The simulator for a scenario (construction validates it: a ConfigError names the field). */
export function simulatorFor(
  scenario: Scenario,
  seed: number,
): Simulation | ConsensusSimulation | RamSimulation | SporeSimulation {
  if (scenario.consensus) return new ConsensusSimulation(scenario, { seed });
  if (scenario.ram) return new RamSimulation(scenario, { seed });
  if (scenario.spores || scenario.storage) return new SporeSimulation(scenario, { seed });
  return new Simulation(scenario, { seed });
}

export async function runOne(
  file: string,
  cell: string,
  sets: string[],
  seed: number,
): Promise<RunRow> {
  const t0 = performance.now();
  const base = { cell, sets, seed, wallMs: 0, virtualMs: 0, events: 0, metrics: {}, replay: "" };
  let sim;
  try {
    sim = simulatorFor(await loadScenarioFile(file, sets), seed);
  } catch (e) {
    if (!(e instanceof MyceliumError)) throw e;
    return { ...base, ok: false, failed: ["scenario"], error: e.message };
  }
  const opts = { scenarioFile: file, sets, wallMs: 0, peakRssBytes: 0 };
  sim.run();
  const o = { ...opts, wallMs: performance.now() - t0 };
  const summary = sim instanceof ConsensusSimulation
    ? buildConsensusSummary(sim, o)
    : sim instanceof RamSimulation
    ? buildRamSummary(sim, o)
    : sim instanceof SporeSimulation
    ? buildSporeSummary(sim, o)
    : buildSummary(sim, o);
  return {
    ...base,
    ok: summary.ok,
    failed: summary.checks.filter((c) => !c.ok).map((c) => c.name),
    wallMs: Math.round(performance.now() - t0),
    virtualMs: summary.virtualMs,
    events: summary.events,
    metrics: flattenMetrics(summary.metrics),
    replay: summary.ok ? "" : summary.replay,
  };
}
