/**
 * `report.html`: one offline file (no network fetch, no script needed to see it) with the
 * run's headline metrics over time, the fault schedule as bands on the time axis, the check
 * results, and a message-sequence (Lamport) diagram of a chosen node set and time window
 * from the trace. Charts are Observable Plot rendered to SVG here (linkedom), so the file
 * opens as fast as the browser can lay out a few SVGs, whatever the run's size.
 */
import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import type { CheckResult } from "../checks.ts";

export interface FaultWindow {
  name: string;
  type: string;
  fromMs: number;
  toMs: number;
}

/** One time-series file of the run: `t_ms` plus numeric columns. */
export interface Series {
  title: string;
  rows: Array<Record<string, number | null>>;
}

/** A trace line of a message leaving (`send`, `at` null when dropped) or arriving (`msg`). */
export interface TraceEvent {
  t: number;
  ev: string;
  from?: string;
  to?: string;
  node?: string;
  type?: string;
  at?: number | null;
}

export interface ReportInput {
  title: string;
  /** Key facts shown at the top (scenario, seed, ok, times...). */
  facts: Array<[string, string]>;
  checks: CheckResult[];
  faults: FaultWindow[];
  durationMs: number;
  series: Series[];
  /** The Lamport diagram's messages (already filtered to the window), if a trace exists. */
  lamport?: { nodes: string[]; fromMs: number; toMs: number; events: TraceEvent[] };
  /** Why there is no Lamport diagram (no trace, ...). */
  lamportNote?: string;
}

// deno-lint-ignore no-explicit-any
type Doc = any;

function newDocument(): Doc {
  // deno-lint-ignore no-explicit-any
  return (parseHTML("<!doctype html><html><body></body></html>") as any).document;
}

const esc = (v: unknown) =>
  String(v ?? "").replace(
    /[&<>"]/g,
    (c) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot" }[c]};`,
  );

/** Plot output as markup: bare SVG, or a figure holding SVG and a legend. */
function markup(node: { outerHTML: string }): string {
  return node.outerHTML;
}

function faultBands(faults: FaultWindow[]) {
  return faults.map((f) => ({ ...f, from: f.fromMs / 1000, to: f.toMs / 1000 }));
}

/** One chart per numeric column of a series, fault windows shaded behind. */
function seriesCharts(doc: Doc, s: Series, faults: FaultWindow[], durationS: number): string[] {
  const cols = Object.keys(s.rows[0] ?? {}).filter((k) => k !== "t_ms");
  const bands = faultBands(faults);
  return cols.map((col) => {
    const pts = s.rows
      .filter((r) => r[col] !== null && Number.isFinite(r[col]!))
      .map((r) => ({ t: r.t_ms! / 1000, v: r[col]! }));
    return markup(Plot.plot({
      document: doc,
      width: 760,
      height: 170,
      marginLeft: 60,
      grid: true,
      x: { label: "time (s)", domain: [0, durationS] },
      y: { label: col.replaceAll("_", " ") },
      color: { type: "categorical", legend: false },
      marks: [
        Plot.rect(bands, { x1: "from", x2: "to", fill: "type", fillOpacity: 0.12 }),
        Plot.line(pts, { x: "t", y: "v", stroke: "steelblue" }),
      ],
    }));
  });
}

function faultChart(doc: Doc, faults: FaultWindow[], durationS: number): string {
  if (faults.length === 0) return "<p>No faults in this run.</p>";
  return markup(Plot.plot({
    document: doc,
    width: 760,
    height: 40 + 26 * faults.length,
    marginLeft: 160,
    x: { label: "time (s)", domain: [0, durationS], grid: true },
    y: { label: null },
    color: { type: "categorical", legend: true },
    marks: [
      Plot.barX(faultBands(faults), { x1: "from", x2: "to", y: "name", fill: "type" }),
    ],
  }));
}

/**
 * The message-sequence diagram: one vertical line per node, time running down, an arrow per
 * message from (sender, send time) to (receiver, arrival time); a dropped message is a
 * cross at its sender.
 */
function lamportChart(doc: Doc, l: NonNullable<ReportInput["lamport"]>): string {
  const inSet = new Set(l.nodes);
  const sends = l.events.filter((e) => e.ev === "send" && inSet.has(e.from!) && inSet.has(e.to!));
  const arrows = sends.filter((e) => e.at !== null && e.at !== undefined).map((e) => ({
    x1: e.from,
    y1: e.t,
    x2: e.to,
    y2: e.at!,
    type: e.type,
  }));
  const dropped = sends.filter((e) => e.at === null).map((e) => ({ x: e.from, y: e.t }));
  const marks = l.events.filter((e) => e.node && inSet.has(e.node) && e.ev !== "msg")
    .map((e) => ({ x: e.node, y: e.t, label: e.ev }));
  const height = Math.min(1600, Math.max(300, 6 * (arrows.length + dropped.length)));
  return markup(Plot.plot({
    document: doc,
    width: Math.max(500, 140 * l.nodes.length),
    height,
    marginTop: 40,
    marginLeft: 70,
    x: { domain: l.nodes, axis: "top", label: null, padding: 0.3 },
    y: { domain: [l.fromMs, l.toMs], reverse: true, label: "time (ms)", grid: true },
    // Categorical always: with no message in the window Plot would otherwise pick a ramp.
    color: { type: "categorical", legend: arrows.length > 0 },
    marks: [
      Plot.ruleX(l.nodes, { stroke: "#bbb" }),
      Plot.arrow(arrows, {
        x1: "x1",
        y1: "y1",
        x2: "x2",
        y2: "y2",
        stroke: "type",
        headLength: 6,
        strokeWidth: 1,
      }),
      Plot.dot(dropped, { x: "x", y: "y", symbol: "times", stroke: "red", r: 4 }),
      Plot.text(marks, { x: "x", y: "y", text: "label", fill: "darkred", dx: 8 }),
    ],
  }));
}

function checksTable(checks: CheckResult[]): string {
  const rows = checks.map((c) =>
    `<tr class="${c.ok ? "ok" : "fail"}"><td>${c.ok ? "ok" : "FAIL"}</td><td>${
      esc(c.name)
    }</td><td>${esc(c.detail)}</td></tr>`
  ).join("");
  return `<table><thead><tr><th></th><th>check</th><th>detail</th></tr></thead><tbody>${rows}</tbody></table>`;
}

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 24px auto; max-width: 900px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: 3px 8px; vertical-align: top; }
tr.ok td:first-child { color: #1a7f37; font-weight: 600; } tr.fail td:first-child { color: #c62828; font-weight: 700; }
tr.fail { background: #fdecea; } .facts td:first-child { color: #666; width: 180px; }
.chart { margin: 8px 0; } .note { color: #666; }
`;

export function buildReport(r: ReportInput): string {
  const doc = newDocument();
  const durationS = r.durationMs / 1000;
  const parts: string[] = [];
  parts.push(`<h1>${esc(r.title)}</h1>`);
  parts.push(
    `<table class="facts">${
      r.facts.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join("")
    }</table>`,
  );
  parts.push(`<h2>Checks</h2>${checksTable(r.checks)}`);
  parts.push(
    `<h2>Fault schedule</h2><div class="chart">${faultChart(doc, r.faults, durationS)}</div>`,
  );
  for (const s of r.series) {
    if (s.rows.length === 0) continue;
    parts.push(`<h2>${esc(s.title)}</h2>`);
    for (const c of seriesCharts(doc, s, r.faults, durationS)) {
      parts.push(`<div class="chart">${c}</div>`);
    }
  }
  parts.push("<h2>Message sequence</h2>");
  if (r.lamport) {
    parts.push(
      `<p class="note">${
        esc(r.lamport.nodes.join(", "))
      } from ${r.lamport.fromMs} to ${r.lamport.toMs} ms (virtual).</p>`,
    );
    parts.push(`<div class="chart">${lamportChart(doc, r.lamport)}</div>`);
  } else {
    parts.push(`<p class="note">${esc(r.lamportNote ?? "No trace for this run.")}</p>`);
  }
  // The one script: tells a test (or a curious reader's console) how many charts rendered.
  const script =
    `<script>console.log("report ready: " + document.querySelectorAll("svg").length + " svg");
addEventListener("load", () => requestAnimationFrame(() =>
  console.log("report first frame at " + Math.round(performance.now()) + " ms")));</script>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${
    esc(r.title)
  }</title><style>${STYLE}</style></head><body>${parts.join("\n")}${script}</body></html>\n`;
}
