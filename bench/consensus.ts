/**
 * `deno task bench:consensus`: the consensus simulator's targets (issue 4).
 * - 100 voters, 1,000 heights, honest, LAN: wall time and events/s.
 * - A Twins sweep for n = 4 with f = 1 twin: scenarios per CPU-hour (target >= 100,000),
 *   and that no violation appears.
 * Options: --voters N (100) --heights H (1000) --twins-samples S (2000).
 */
import { parseArgs } from "node:util";
import { parseScenario } from "../sim/scenario.ts";
import { ConsensusSimulation } from "../sim/consensus/simulation.ts";
import { twinsSweep } from "../sim/consensus/twins.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    voters: { type: "string", default: "100" },
    heights: { type: "string", default: "1000" },
    "twins-samples": { type: "string", default: "2000" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log("deno task bench:consensus [--voters 100] [--heights 1000] [--twins-samples 2000]");
  Deno.exit(0);
}
const voters = Number(values.voters), heights = Number(values.heights);
const samples = Number(values["twins-samples"]);
for (const [k, v] of Object.entries({ voters, heights, samples })) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`--${k}: expected a positive integer, got ${v}`);
    Deno.exit(2);
  }
}

const scenario = parseScenario({
  name: `bench-consensus-n${voters}`,
  seed: 1,
  duration: "1h",
  nodes: [{ group: "voter", count: voters }],
  consensus: { load: { clients: 32, thinkMs: 0, keys: 64 } },
  checks: [
    { type: "consensus.agreement" },
    { type: "consensus.no-fork" },
    { type: "consensus.monotonic" },
    { type: "consensus.certificates" },
  ],
});
const t0 = performance.now();
const sim = new ConsensusSimulation(scenario, { stopAtHeight: heights });
sim.run();
const wall = (performance.now() - t0) / 1000;
const m = sim.metricsSummary();
console.log(
  `consensus_sim voters=${voters} heights=${m.heights} wall_s=${wall.toFixed(1)} ` +
    `events=${sim.events} events_per_s=${Math.round(sim.events / wall)} ` +
    `virtual_s=${(sim.virtualMs / 1000).toFixed(1)} msgs_per_height=${
      Math.round(m.messagesPerHeight ?? 0)
    } ` +
    `p50_ms=${m.commitLatency.p50Ms?.toFixed(1)} p99_ms=${m.commitLatency.p99Ms?.toFixed(1)} ` +
    `rss_mib=${Math.round(Deno.memoryUsage().rss / 2 ** 20)} violation=${
      sim.violation?.check ?? "none"
    }`,
);

const r = twinsSweep({ n: 4, twins: 1, samples, seed: 1 });
const perHour = r.runs / (r.wallMs / 3_600_000);
console.log(
  `twins n=4 twins=1 scenarios=${r.runs} violations=${r.violations.length} wall_s=${
    (r.wallMs / 1000).toFixed(1)
  } scenarios_per_cpu_hour=${Math.round(perHour)}`,
);
