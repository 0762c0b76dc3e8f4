/** Helpers for tests: small scenarios built in code, run to completion. */
import { parseScenario, type Scenario, type ScenarioInput } from "./scenario.ts";
import { type SimOptions, Simulation } from "./simulation.ts";

/** A scenario of `count` nodes (group "n") with fast defaults, merged with `over`. */
export function smallScenario(count: number, over: Partial<ScenarioInput> = {}): Scenario {
  return parseScenario({
    name: "test",
    duration: "60s",
    nodes: [{ group: "n", count }],
    checks: [],
    ...over,
  }, "test");
}

export function runScenario(s: Scenario, opts: SimOptions = {}): Simulation {
  const sim = new Simulation(s, opts);
  sim.run();
  return sim;
}

export function check(sim: Simulation, name: string) {
  const c = sim.evaluateChecks().find((c) => c.name === name);
  if (!c) throw new Error(`no check ${name}`);
  return c;
}
