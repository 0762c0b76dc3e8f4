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

/** Runs a Deno script as a user would (a real subprocess); returns its exit code and output. */
export async function runScript(path: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", path, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
