/**
 * What a sweep writes: `runs.csv` (one row per run: cell, seed, pass/fail, cost, every
 * headline metric) and `sweep.json` (per cell: runs, passes, the failing seeds with their
 * replay commands, and mean / p50 / p99 of every metric).
 */
import { csv, percentile } from "../summary.ts";
import type { RunRow } from "./run_one.ts";

export interface MetricStats {
  mean: number;
  p50: number;
  p99: number;
  n: number;
}

export interface CellAggregate {
  cell: string;
  sets: string[];
  runs: number;
  passed: number;
  failingSeeds: number[];
  replays: string[];
  metrics: Record<string, MetricStats>;
}

export interface SweepAggregate {
  scenario: string;
  seeds: number;
  runs: number;
  passed: number;
  cells: CellAggregate[];
}

/** Per-cell statistics (cells in first-seen order; rows of a cell in seed order). */
export function aggregate(scenario: string, rows: readonly RunRow[]): SweepAggregate {
  const byCell = new Map<string, RunRow[]>();
  for (const r of rows) {
    const list = byCell.get(r.cell) ?? [];
    list.push(r);
    byCell.set(r.cell, list);
  }
  const out: CellAggregate[] = [];
  for (const [cell, list] of byCell) {
    list.sort((a, b) => a.seed - b.seed);
    const names = new Set(list.flatMap((r) => Object.keys(r.metrics)));
    const metrics: Record<string, MetricStats> = {};
    for (const name of [...names].sort()) {
      const v = list.map((r) => r.metrics[name]).filter((x) => x !== undefined)
        .sort((a, b) => a - b);
      metrics[name] = {
        mean: v.reduce((s, x) => s + x, 0) / v.length,
        p50: percentile(v, 50)!,
        p99: percentile(v, 99)!,
        n: v.length,
      };
    }
    const failing = list.filter((r) => !r.ok);
    out.push({
      cell,
      sets: list[0].sets,
      runs: list.length,
      passed: list.length - failing.length,
      failingSeeds: failing.map((r) => r.seed),
      replays: failing.map((r) => r.replay || `error: ${r.error ?? "?"}`),
      metrics,
    });
  }
  return {
    scenario,
    seeds: new Set(rows.map((r) => r.seed)).size,
    runs: rows.length,
    passed: rows.filter((r) => r.ok).length,
    cells: out,
  };
}

/** runs.csv: fixed columns, then the union of metric names (sorted), then the overrides. */
export function runsCsv(rows: readonly RunRow[]): string {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.metrics)))].sort();
  const sorted = rows.slice().sort((a, b) =>
    Number(a.cell.slice(1)) - Number(b.cell.slice(1)) || a.seed - b.seed
  );
  return csv(
    ["cell", "seed", "ok", "failed_checks", "wall_ms", "virtual_ms", "events", ...names, "sets"],
    sorted.map((r) => [
      r.cell,
      r.seed,
      String(r.ok),
      r.failed.join(" "),
      r.wallMs,
      r.virtualMs,
      r.events,
      ...names.map((n) => r.metrics[n] ?? null),
      r.sets.join(" ").replaceAll(",", ";"), // plain CSV: sweep.json keeps the exact overrides
    ]),
  );
}
