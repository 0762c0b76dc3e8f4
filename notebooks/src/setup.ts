import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import { join, relative, resolve } from "node:path";

// Plot needs a DOM to build SVG; linkedom provides one without a browser. (Deno has no DOM
// types, so the document is typed loosely.)
// deno-lint-ignore no-explicit-any
const { document } = parseHTML("<!doctype html><html><body></body></html>") as any;

// Show a Plot result as a Jupyter output: bare <svg> as image/svg+xml, anything else as HTML.
function show(
  node: { tagName: string; outerHTML: string; setAttribute(k: string, v: string): void },
) {
  const isSvg = node.tagName.toLowerCase() === "svg";
  if (isSvg) node.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  const bundle = isSvg
    ? { "image/svg+xml": node.outerHTML, "text/plain": "[Plot SVG]" }
    : { "text/html": node.outerHTML, "text/plain": "[Plot figure]" };
  return { [Deno.jupyter.$display]: () => bundle };
}

// Show a small table as HTML (with a plain-text fallback).
function table(rows: [string, unknown][] | Record<string, unknown>[]) {
  const esc = (v: unknown) =>
    String(v ?? "").replace(
      /[&<>"]/g,
      (c) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot" }[c]};`,
    );
  const recs: Record<string, unknown>[] = Array.isArray(rows[0])
    ? (rows as [string, unknown][]).map(([k, v]) => ({ "": k, value: v }))
    : (rows as Record<string, unknown>[]);
  const cols = Object.keys(recs[0] ?? {});
  const html =
    `<table><thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead><tbody>` +
    recs.map((r) =>
      `<tr>${cols.map((c) => `<td style="text-align:left">${esc(r[c])}</td>`).join("")}</tr>`
    )
      .join("") +
    "</tbody></table>";
  const plain = recs.map((r) => cols.map((c) => String(r[c] ?? "")).join("\t")).join("\n");
  return { [Deno.jupyter.$display]: () => ({ "text/html": html, "text/plain": plain }) };
}

const num = (v: unknown, digits = 0) =>
  typeof v === "number" && Number.isFinite(v)
    ? v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "—";
const secs = (
  ms: unknown,
  digits = 2,
) => (typeof ms === "number" ? `${num(ms / 1000, digits)} s` : "—");

// Tiny CSV parser. The simulator writes plain CSV: a header row, no quoting, no commas or newlines
// inside fields, so splitting on "," is exact (d3-dsv is not in the import map, and deno.json
// stays as is). Columns in `text` stay strings; all others are numbers, with an empty field = null.
type Row = Record<string, string | number | null>;
function parseCsv(csv: string, required: string[], text: string[] = []): Row[] {
  const lines = csv.split(/\r?\n/).filter((l) => l !== "");
  if (lines.length === 0) throw new Error("empty CSV (no header)");
  const header = lines[0].split(",");
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length) {
    throw new Error(`missing column(s) ${missing.join(", ")} in header ${lines[0]}`);
  }
  return lines.slice(1).map((line, i) => {
    const fields = line.split(",");
    if (fields.length !== header.length) {
      throw new Error(`line ${i + 2}: ${fields.length} fields, expected ${header.length}: ${line}`);
    }
    const row: Row = {};
    header.forEach((h, j) => {
      const v = fields[j];
      if (text.includes(h)) row[h] = v;
      else if (v === "") row[h] = null;
      else {
        const n = Number(v);
        if (!Number.isFinite(n)) {
          throw new Error(`line ${i + 2}: ${h}=${JSON.stringify(v)} is not a number`);
        }
        row[h] = n;
      }
    });
    return row;
  });
}

// Empirical CDF of the finite values, as a fraction of `total` (so it tops out below 1 when some
// events never completed). Returns step points starting at (min, 0).
function ecdf(values: number[], total = values.length) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  return [{ x: v[0] ?? 0, y: 0 }, ...v.map((x, i) => ({ x, y: (i + 1) / total }))];
}