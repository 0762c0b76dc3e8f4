/**
 * `deno task cluster run <scenario>`: the scenario on a real cluster of node processes, each
 * in its own network namespace when run as root (`--netns`), else on 127.0.0.1. Same checks and summary.json shape as the simulator. Exit codes: 0 all checks
 * passed, 1 a check failed, 2 bad input or a scenario the real cluster cannot run.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { MyceliumError } from "../core/errors.ts";
import { loadScenarioFile } from "../sim/scenario.ts";
import { buildSummary, formatSummary, writeFilesAtomically, writeOutputs } from "../sim/summary.ts";
import {
  type ConsensusSummary,
  formatConsensusSummary,
  heightsCsv,
  opsCsv,
} from "../sim/consensus/summary.ts";
import { NetnsError, netnsUnavailable } from "./netns.ts";
import { RealCluster } from "./runner.ts";
import { writeReport } from "../sim/report/from_run.ts";

const HELP = `Mycelium real cluster

Usage:
  deno task cluster run <scenario.yaml> [--out DIR] [--binary PATH] [--set PATH=VALUE ...]
                       [--netns | --no-netns]

Starts the scenario's nodes as real processes (ephemeral ports), applies its crash faults
(kill -9, restart with the same data dir) and graceful leaves (SIGTERM) in real time,
watches every node's membership view through its admin API, and evaluates the scenario's
checks. Writes DIR/summary.json (the simulator's shape; traceHash is empty:
real runs are not deterministic), the same CSVs, DIR/metrics/<node>.prom (each node's last
/metrics scrape) and DIR/logs/<node>.log.

With --netns (the default as root with ip, nft and tc) every node runs in its own network
namespace (10.213.X.0/24 on a bridge the run creates and removes): partition, oneway, jam
and degrade faults are nftables rules at their at/until, network.loss too, and
network.bandwidth a tc tbf qdisc on each node's uplink. Added latency (network.latency,
jitter, regions, slow faults, degrade.addLatency), reordering and duplication come from a
delaying relay the run starts (this kernel has no netem): node-to-node packets pass
through it and wait the delay the simulator's network model draws for their link. Without
--netns, nodes share 127.0.0.1 and all of those are rejected. Always rejected, with the
reason, before anything starts: clock faults.

Options:
  --out DIR          output directory (default: out/cluster/<scenario name>)
  --binary PATH      run nodes from a built binary (default: deno run node/cli.ts)
  --set PATH=VALUE   override a scenario field (repeatable; VALUE is YAML)
  --poll-ms N        how often node views are read (default 250)
  --netns            each node in its own network namespace (needs root, ip, nft, tc)
  --no-netns         all nodes on 127.0.0.1 (no link faults)
  --report           also write DIR/report.html (metrics over time, faults, checks)
  -h, --help         this help
`;

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      binary: { type: "string" },
      set: { type: "string", multiple: true, default: [] },
      "poll-ms": { type: "string", default: "250" },
      report: { type: "boolean", default: false },
      netns: { type: "boolean" },
      "no-netns": { type: "boolean" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const file = positionals[0];
  if (!file) {
    console.error(`missing <scenario.yaml>\n\n${HELP}`);
    return 2;
  }
  const pollMs = Number(values["poll-ms"]);
  if (!Number.isInteger(pollMs) || pollMs < 10) {
    console.error(`--poll-ms: expected an integer >= 10, got "${values["poll-ms"]}"`);
    return 2;
  }
  if (values.netns && values["no-netns"]) {
    console.error("--netns and --no-netns exclude each other");
    return 2;
  }
  const netns = values.netns ? true : values["no-netns"] ? false : netnsUnavailable() === null;
  if (netns && netnsUnavailable()) {
    console.error(`--netns: ${netnsUnavailable()}`);
    return 2;
  }
  const sets = values.set as string[];
  let cluster: RealCluster;
  let out: string;
  try {
    const scenario = await loadScenarioFile(file, sets);
    out = values.out ?? join("out", "cluster", scenario.name);
    await Deno.mkdir(out, { recursive: true });
    const workDir = await Deno.makeTempDir({ prefix: "mycelium-cluster-" });
    cluster = new RealCluster(scenario, {
      workDir,
      binary: values.binary,
      pollMs,
      netns,
      onNetns: (lab) =>
        console.error(
          `namespaces ${lab.prefix}-n0..n${
            lab.size - 1
          }, 10.213.${lab.subnet}.0/24 on bridge ${lab.bridge}`,
        ),
      onProgress: (t, d) => {
        if (Deno.stderr.isTerminal()) {
          Deno.stderr.writeSync(
            new TextEncoder().encode(
              `\r\x1b[2Kt=${(t / 1000).toFixed(0)}/${(d / 1000).toFixed(0)} s`,
            ),
          );
        }
      },
    });
    const n = cluster.nodes.length;
    console.error(
      `running ${scenario.name} on a real cluster: ${n} node processes${
        netns ? " in network namespaces" : " on 127.0.0.1"
      }, ${scenario.duration / 1000} s`,
    );
    const start = performance.now();
    // Ctrl-C / SIGTERM: stop the nodes and remove the namespaces before exiting.
    const running = cluster;
    const stop = () => {
      console.error("\ninterrupted: stopping nodes and removing namespaces");
      running.shutdown().finally(() => Deno.exit(130));
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    try {
      await cluster.run(out);
    } catch (e) {
      if (e instanceof NetnsError) {
        console.error(`network namespaces: ${e.message}`);
        return 2;
      }
      throw e;
    } finally {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      await Deno.remove(workDir, { recursive: true }).catch(() => undefined);
    }
    if (Deno.stderr.isTerminal()) Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[2K"));
    const summary = buildSummary(cluster, {
      scenarioFile: file,
      sets,
      wallMs: performance.now() - start,
      peakRssBytes: cluster.peakNodeRssBytes,
    });
    summary.replay = `deno task cluster run ${file}${
      sets.map((s) => ` --set ${JSON.stringify(s)}`).join("")
    }`;
    const consensus = cluster.consensus;
    if (consensus) {
      (summary.metrics as Record<string, unknown>).consensus = consensus.metricsSummary(
        cluster.virtualMs,
        (name) => cluster.counterSum(name),
      );
      await writeFilesAtomically(out, {
        "ops.csv": opsCsv(consensus.history, true),
        "heights.csv": heightsCsv(consensus.heightSamples, true),
      });
    }
    await writeOutputs(out, cluster, summary);
    console.log(
      consensus
        ? formatConsensusSummary(summary as unknown as ConsensusSummary)
        : formatSummary(summary),
    );
    const formed = cluster.observer.formationAt;
    if (formed !== null) {
      const after = Math.max(0, formed - cluster.lastInitialReadyMs) / 1000;
      console.log(`\n  formation after the last node process was up: ${after.toFixed(2)} s`);
    }
    console.log(`\n  outputs in ${out}/ (peak RSS is the largest node process's)`);
    if (values.report) {
      console.log(`  report: ${await writeReport(out, { scenario: cluster.scenario })}`);
    }
    return summary.ok ? 0 : 1;
  } catch (e) {
    if (e instanceof MyceliumError) {
      console.error(`invalid scenario: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (cmd === "run") return await run(rest);
  if (cmd === undefined || cmd === "--help" || cmd === "-h" || cmd === "help") {
    console.log(HELP);
    return cmd === undefined ? 2 : 0;
  }
  console.error(`unknown command "${cmd}"\n\n${HELP}`);
  return 2;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
