/**
 * `deno task bench:ram-sim`: the RAM simulator's scale target (issue 5): 1,000 replicated VMs
 * for 60 s virtual at a 5 ms replication interval (scenarios/ram-1000.yaml), wall time and
 * memory. Prints one line:
 *   ram_sim vms=N virtual_s=S wall_s=W events=E events_per_s=X rss_mib=R
 * and the run's check results. Options: --vms N (1000) --seconds S (60) --backups B (the
 * scenario's, 2) --scenario FILE (scenarios/ram-1000.yaml).
 */
import { parseArgs } from "node:util";
import { loadScenarioFile } from "../sim/scenario.ts";
import { RamSimulation } from "../sim/ram/simulation.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    vms: { type: "string", default: "1000" },
    seconds: { type: "string", default: "60" },
    backups: { type: "string" },
    scenario: { type: "string", default: "scenarios/ram-1000.yaml" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(
    "deno task bench:ram-sim [--vms 1000] [--seconds 60] [--backups 2] [--scenario FILE]",
  );
  Deno.exit(0);
}
const vms = Number(values.vms), seconds = Number(values.seconds);
for (const [k, v] of Object.entries({ vms, seconds })) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`--${k}: expected a positive integer, got ${v}`);
    Deno.exit(2);
  }
}
const sets = [`duration=${seconds}s`, `ram.vms[0].count=${vms}`];
if (values.backups !== undefined) sets.push(`ram.vms[0].backups=${Number(values.backups)}`);
const scenario = await loadScenarioFile(values.scenario, sets);

let peakRss = Deno.memoryUsage().rss;
const t0 = performance.now();
const sim = new RamSimulation(scenario);
sim.run(() => {
  peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
});
const wall = (performance.now() - t0) / 1000;
peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
console.log(
  `ram_sim vms=${sim.vms.length} virtual_s=${sim.virtualMs / 1000} wall_s=${wall.toFixed(1)} ` +
    `events=${sim.events} events_per_s=${Math.round(sim.events / wall)} ` +
    `rss_mib=${Math.round(peakRss / 1024 ** 2)}`,
);
const m = sim.metricsSummary();
console.log(
  `  epochs=${m.epochs} pages_dirtied=${m.pagesDirtied} epoch_commit_p99_ms=${m.epochCommit.p99Ms} ` +
    `buffer_level_max=${m.bufferLevel.max} intensity_max=${m.intensity.max}`,
);
for (const c of sim.evaluateChecks()) {
  console.log(`  ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
}
