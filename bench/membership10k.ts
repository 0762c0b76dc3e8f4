/**
 * Wall time and peak RSS of scenarios/membership-10k.yaml, measured in a fresh process
 * (the simulator records both in summary.json). Prints one line:
 *   membership-10k wall_s=X peak_rss_mib=Y events=N events_per_s=Z trace=H
 */
import { parseArgs } from "node:util";
import { join } from "node:path";

export interface ScenarioMeasurement {
  wallS: number;
  peakRssMiB: number;
  events: number;
  eventsPerSec: number;
  traceHash: string;
  ok: boolean;
}

export async function measureScenario(
  file: string,
  sets: string[] = [],
): Promise<ScenarioMeasurement> {
  const out = await Deno.makeTempDir({ prefix: "mycelium-bench-" });
  try {
    const cli = new URL("../sim/cli.ts", import.meta.url).pathname;
    const args = [
      "run",
      "-A",
      cli,
      "run",
      file,
      "--out",
      out,
      "--quiet",
      ...sets.flatMap((s) => ["--set", s]),
    ];
    const r = await new Deno.Command(Deno.execPath(), {
      args,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    const s = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
    return {
      wallS: s.wallMs / 1000,
      peakRssMiB: s.peakRssBytes / 2 ** 20,
      events: s.events,
      eventsPerSec: s.eventsPerSec,
      traceHash: s.traceHash,
      ok: r.code === 0,
    };
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

export function formatMeasurement(name: string, m: ScenarioMeasurement): string {
  return `${name} wall_s=${m.wallS.toFixed(2)} peak_rss_mib=${m.peakRssMiB.toFixed(0)} ` +
    `events=${m.events} events_per_s=${m.eventsPerSec} trace=${m.traceHash}${
      m.ok ? "" : " CHECKS-FAILED"
    }`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      scenario: { type: "string", default: "scenarios/membership-10k.yaml" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno task bench:membership [--scenario FILE]\n" +
        "Runs the scenario in a fresh process and prints its wall time and peak RSS.",
    );
    Deno.exit(0);
  }
  console.log(formatMeasurement("membership-10k", await measureScenario(values.scenario)));
}
