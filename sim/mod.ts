/** The simulator as a library. */
export { Engine } from "./engine.ts";
export { EventHeap } from "./heap.ts";
export { Rng } from "./rng.ts";
export { latencySampler, NetworkModel } from "./network.ts";
export { MembershipObserver } from "./membership_observer.ts";
export {
  applySet,
  type CheckSpec,
  type Fault,
  loadScenarioFile,
  loadScenarioText,
  parseScenario,
  type Scenario,
  type ScenarioInput,
  scenarioSchema,
} from "./scenario.ts";
export { resolveSelector, validateSelector } from "./selectors.ts";
export { type CheckResult, type Progress, type SimOptions, Simulation } from "./simulation.ts";
export { buildSummary, formatSummary, type Summary, writeOutputs } from "./summary.ts";
export { runScenario, smallScenario } from "./testing.ts";
export { type RamSimOptions, RamSimulation } from "./ram/simulation.ts";
export {
  buildRamSummary,
  formatRamSummary,
  type RamSummary,
  writeRamOutputs,
} from "./ram/summary.ts";
