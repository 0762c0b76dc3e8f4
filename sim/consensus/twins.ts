/**
 * Twins (Bano, Sonnino, Chursin, Perelman, Li, Sun, Malkhi: "Twins: BFT Systems Made
 * Robust", OPODIS 2022): Byzantine behaviour without writing adversaries. Some voters get a
 * twin, a second honest instance with the same identity and key; the network is then cut
 * into partitions that change over time, so the twins may each take part in a different
 * quorum. With at most f twinned voters a correct protocol stays safe; with f+1 it must
 * break (the test that shows the checker would notice).
 *
 * A sweep samples placements: per scenario, a schedule of `phases` partitions of all
 * instances (twins included) into two or three groups, each held for a random time, then
 * runs the consensus simulator with the safety checkers and reports any violation with
 * the seed that replays it.
 */
import type { Scenario, ScenarioInput } from "../scenario.ts";
import { parseScenario } from "../scenario.ts";
import { Rng } from "../rng.ts";
import { ConsensusSimulation } from "./simulation.ts";

export interface TwinsOptions {
  /** Voters. */
  n: number;
  /** How many voters get a twin. */
  twins: number;
  /** Scenarios to run. */
  samples: number;
  /** Seed of the sampler; scenario k runs with seed `seed + k`. */
  seed: number;
  /** Partition phases per scenario. */
  phases?: number;
  /** Virtual length of a scenario (ms). */
  durationMs?: number;
  /** Called after every scenario. */
  onProgress?: (done: number, violations: number) => void;
  /** Stop at the first violation. */
  stopAtFirst?: boolean;
}

export interface TwinsViolation {
  sample: number;
  seed: number;
  check: string;
  detail: string;
  scenario: Scenario;
}

export interface TwinsReport {
  runs: number;
  violations: TwinsViolation[];
  heights: number;
  wallMs: number;
}

const SAFETY = [
  "consensus.agreement",
  "consensus.validity",
  "consensus.no-fork",
  "consensus.monotonic",
  "consensus.certificates",
] as const;

/** One sampled Twins scenario: n voters, the first `twins` twinned, `phases` partitions. */
export function twinsScenario(o: TwinsOptions, sample: number): Scenario {
  const rng = Rng.fromSeed(o.seed).derive(`twins/${sample}`);
  const names = Array.from({ length: o.n }, (_, i) => `voter-${i}`);
  const instances = [...names, ...names.slice(0, o.twins).map((v) => `twin-${v}`)];
  const duration = o.durationMs ?? 4000;
  const phases = o.phases ?? 3;
  const faults: NonNullable<ScenarioInput["faults"]> = [];
  let t = 50;
  const span = (duration - 200) / phases;
  for (let p = 0; p < phases; p++) {
    const groups = 2 + (rng.next() < 0.3 ? 1 : 0);
    const member: string[][] = Array.from({ length: groups }, () => []);
    for (const inst of instances) member[Math.floor(rng.next() * groups)].push(inst);
    const until = Math.min(duration - 100, t + span * (0.5 + rng.next()));
    const listed = member.filter((g) => g.length > 0);
    if (listed.length >= 2) {
      faults.push({ type: "partition", at: t, until, groups: listed, name: `phase-${p}` });
    }
    t = until + 10;
    if (t >= duration - 150) break;
  }
  return parseScenario({
    name: `twins-n${o.n}-t${o.twins}-${sample}`,
    seed: o.seed + sample,
    duration,
    nodes: [{ group: "voter", count: o.n }],
    network: { latency: { dist: "uniform", min: 0.5, max: 5 } },
    consensus: {
      config: {
        proposeTimeoutMs: 100,
        prevoteTimeoutMs: 100,
        precommitTimeoutMs: 100,
        emptyBlockDelayMs: 20,
      },
      load: { clients: 2, thinkMs: 50, keys: 4 },
      twins: names.slice(0, o.twins),
    },
    faults,
    checks: SAFETY.map((type) => ({ type })),
  }, `twins sample ${sample}`);
}

/** Runs the sweep; returns every violation found (or the first, with `stopAtFirst`). */
export function twinsSweep(o: TwinsOptions): TwinsReport {
  const start = performance.now();
  const violations: TwinsViolation[] = [];
  let heights = 0;
  let runs = 0;
  for (let k = 0; k < o.samples; k++) {
    const scenario = twinsScenario(o, k);
    const sim = new ConsensusSimulation(scenario);
    sim.run();
    runs++;
    heights += sim.observer.height;
    if (sim.violation) {
      violations.push({
        sample: k,
        seed: scenario.seed,
        check: sim.violation.check,
        detail: sim.violation.detail,
        scenario,
      });
      if (o.stopAtFirst) break;
    }
    o.onProgress?.(runs, violations.length);
  }
  return { runs, violations, heights, wallMs: performance.now() - start };
}
