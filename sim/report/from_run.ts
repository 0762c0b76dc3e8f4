/**
 * Builds `report.html` from a run directory (simulator or real cluster): summary.json, the
 * run's time-series CSVs, the scenario's fault windows, and (when the run kept one)
 * trace.jsonl, read as a stream so a large trace costs only the chosen window.
 */
import { join } from "node:path";
import { loadScenarioFile, type Scenario } from "../scenario.ts";
import { lines } from "../sweep/lines.ts";
import { buildReport, type FaultWindow, type Series, type TraceEvent } from "./report.ts";

/** The time-series files a run may write, and their titles. */
const SERIES_FILES: Array<[string, string]> = [
  ["timeseries.csv", "Membership over time"],
  ["heights.csv", "Consensus progress"],
  ["ram.csv", "Distributed RAM over time"],
];

export interface LamportChoice {
  nodes?: string[];
  fromMs?: number;
  toMs?: number;
}

/** Numeric CSV (the simulator's plain format: no quoting); text columns are dropped. */
export function parseNumericCsv(text: string): Array<Record<string, number | null>> {
  const [head, ...body] = text.trim().split("\n");
  if (!head) return [];
  const cols = head.split(",");
  const rows = body.map((l) => l.split(","));
  const numeric = cols.map((_, j) =>
    rows.every((r) => r[j] === "" || Number.isFinite(Number(r[j])))
  );
  return rows.map((r) => {
    const o: Record<string, number | null> = {};
    cols.forEach((c, j) => {
      if (numeric[j]) o[c] = r[j] === "" ? null : Number(r[j]);
    });
    return o;
  });
}

/** The scenario's faults (and leaves) as time windows, clipped to the run. */
export function faultWindows(s: Scenario): FaultWindow[] {
  const end = s.duration;
  const blip = Math.max(100, end / 200); // instant events get a visible sliver
  const out: FaultWindow[] = s.faults.map((f, i) => {
    const name = f.name ?? `faults[${i}]`;
    let to: number;
    if (f.type === "crash") to = f.restartAfter !== undefined ? f.at + f.restartAfter : end;
    else if ("until" in f && f.until !== undefined) to = f.until;
    else to = end;
    return { name, type: f.type, fromMs: f.at, toMs: Math.min(Math.max(to, f.at + blip), end) };
  });
  s.workload.leaves.forEach((w, i) =>
    out.push({
      name: `leave ${i}`,
      type: "leave",
      fromMs: w.at,
      toMs: Math.min(w.at + blip, end),
    })
  );
  return out;
}

/** `--set` overrides recorded in a summary's replay command (JSON-quoted). */
export function setsFromReplay(replay: string): string[] {
  return [...replay.matchAll(/--set ("(?:[^"\\]|\\.)*")/g)].map((m) => JSON.parse(m[1]));
}

async function readTrace(path: string, choice: LamportChoice, defaultFrom: number) {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    return null;
  }
  const from = choice.fromMs ?? defaultFrom;
  const to = choice.toMs ?? from + 1000;
  const wanted = choice.nodes ? new Set(choice.nodes) : null;
  const seen: string[] = [];
  const events: TraceEvent[] = [];
  for await (const line of lines(file.readable)) {
    if (!line) continue;
    const e = JSON.parse(line) as TraceEvent;
    if (e.t > to) break; // the trace is in time order
    if (!wanted && seen.length < 4) {
      for (const n of [e.from, e.to, e.node]) {
        if (n && !seen.includes(n) && seen.length < 4) seen.push(n);
      }
    }
    if (e.t >= from) events.push(e);
  }
  try {
    file.close(); // (reading it to the end, or breaking out, may have closed it already)
  } catch { /* closed */ }
  const nodes = choice.nodes ?? seen;
  const set = new Set(nodes);
  return {
    nodes,
    fromMs: from,
    toMs: to,
    events: events.filter((e) => set.has(e.from ?? e.node ?? "") || set.has(e.to ?? "")),
  };
}

/** Writes DIR/report.html for the run in DIR; returns its path. */
export async function writeReport(
  dir: string,
  opts: { scenario?: Scenario; lamport?: LamportChoice; title?: string } = {},
): Promise<string> {
  const summary = JSON.parse(await Deno.readTextFile(join(dir, "summary.json")));
  let scenario = opts.scenario;
  if (!scenario) {
    try {
      scenario = await loadScenarioFile(summary.scenarioFile, setsFromReplay(summary.replay));
    } catch {
      scenario = undefined; // the file moved: the report has no fault windows
    }
  }
  const series: Series[] = [];
  for (const [file, title] of SERIES_FILES) {
    try {
      series.push({ title, rows: parseNumericCsv(await Deno.readTextFile(join(dir, file))) });
    } catch {
      // not written by this kind of run
    }
  }
  const faults = scenario ? faultWindows(scenario) : [];
  const firstFault = faults.length ? Math.min(...faults.map((f) => f.fromMs)) : 1000;
  const lamport = await readTrace(join(dir, "trace.jsonl"), opts.lamport ?? {}, firstFault);
  const html = buildReport({
    title: opts.title ?? `${summary.scenario}: ${summary.ok ? "all checks ok" : "CHECKS FAILED"}`,
    facts: [
      ["scenario", `${summary.scenario} (${summary.scenarioFile})`],
      ["seed", String(summary.seed)],
      ["trace hash", summary.traceHash || "-"],
      ["virtual time", `${(summary.virtualMs / 1000).toFixed(1)} s`],
      ["wall time", `${(summary.wallMs / 1000).toFixed(1)} s`],
      ["events", String(summary.events)],
      ["result", summary.ok ? "all checks passed" : "a check failed"],
      ["replay", summary.replay],
    ],
    checks: summary.checks,
    faults,
    durationMs: scenario?.duration ?? summary.virtualMs,
    series,
    lamport: lamport && lamport.nodes.length > 0 ? lamport : undefined,
    lamportNote: lamport
      ? "The trace holds no message in the chosen window."
      : "No trace.jsonl in this run (run with --trace to draw the message sequence).",
  });
  const path = join(dir, "report.html");
  await Deno.writeTextFile(path, html);
  return path;
}
