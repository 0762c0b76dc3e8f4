/**
 * A sweep's grid: seeds (`--seeds 1..1000`, `3`, `1,5,9`, `1..10,20..30`) times the cells
 * of the `--set path=v1,v2,...` axes (their cartesian product). Each cell is a list of
 * `path=value` overrides for the scenario loader; each task is one (cell, seed) run.
 */
import { ConfigError } from "../../core/errors.ts";

export interface Axis {
  path: string;
  values: string[];
}

export interface Cell {
  /** Stable id: "c<index>" in axis order. */
  id: string;
  /** `path=value` overrides (one per axis). */
  sets: string[];
}

export interface Task {
  /** Position in the full grid (cell-major): the shard of task i is i % shards. */
  index: number;
  cell: string;
  sets: string[];
  seed: number;
}

const MAX_SEED = 2 ** 32 - 1;
const MAX_TASKS = 10_000_000;

/** Parses a seed list: ranges `A..B` (inclusive) and single seeds, comma-separated. */
export function parseSeeds(spec: string, what = "--seeds"): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  for (const part of spec.split(",").map((s) => s.trim())) {
    const m = /^(\d+)(?:\.\.(\d+))?$/.exec(part);
    if (!m) {
      throw new ConfigError(`"${part}" is not a seed or a range A..B (e.g. 1..1000)`, what);
    }
    const a = Number(m[1]), b = m[2] === undefined ? a : Number(m[2]);
    if (a > MAX_SEED || b > MAX_SEED) throw new ConfigError(`seeds go up to ${MAX_SEED}`, what);
    if (b < a) throw new ConfigError(`range ${part} runs backwards`, what);
    if (out.length + (b - a + 1) > MAX_TASKS) {
      throw new ConfigError(`more than ${MAX_TASKS} seeds`, what);
    }
    for (let s = a; s <= b; s++) {
      if (!seen.has(s)) {
        seen.add(s);
        out.push(s);
      }
    }
  }
  return out;
}

/**
 * Splits `v1,v2,...` at top-level commas: commas inside [], {}, or quotes belong to the
 * value (values are YAML: `--set 'network.regions=[a,b],[c]'`).
 */
export function splitValues(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let cur = "";
  for (const ch of list) {
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "[" || ch === "{") depth++;
    else if ((ch === "]" || ch === "}") && depth > 0) depth--;
    else if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
      continue;
    }
    cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

/** `path=v1,v2` options into axes; a path given twice is an error. */
export function parseAxes(sets: readonly string[]): Axis[] {
  const axes: Axis[] = [];
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new ConfigError(`"${s}": expected PATH=VALUE[,VALUE...]`, "--set");
    const path = s.slice(0, eq).trim();
    if (axes.some((a) => a.path === path)) {
      throw new ConfigError(`${path} is set twice; list its values once: ${path}=a,b`, "--set");
    }
    const values = splitValues(s.slice(eq + 1));
    if (values.some((v) => v === "")) {
      throw new ConfigError(`${path}: an empty value in "${s.slice(eq + 1)}"`, "--set");
    }
    axes.push({ path, values });
  }
  return axes;
}

/** The cartesian product of the axes (one empty cell without axes). */
export function cells(axes: readonly Axis[]): Cell[] {
  let combos: string[][] = [[]];
  for (const a of axes) {
    combos = combos.flatMap((c) => a.values.map((v) => [...c, `${a.path}=${v}`]));
  }
  return combos.map((sets, i) => ({ id: `c${i}`, sets }));
}

/** Every (cell, seed) run, cell-major. */
export function tasks(grid: readonly Cell[], seeds: readonly number[]): Task[] {
  if (grid.length * seeds.length > MAX_TASKS) {
    throw new ConfigError(`${grid.length * seeds.length} runs: at most ${MAX_TASKS}`, "--seeds");
  }
  const out: Task[] = [];
  for (const c of grid) {
    for (const seed of seeds) out.push({ index: out.length, cell: c.id, sets: c.sets, seed });
  }
  return out;
}

/** The tasks of shard `index` of `count` (Kubernetes Indexed Job: JOB_COMPLETION_INDEX). */
export function shard(all: readonly Task[], index: number, count: number): Task[] {
  if (!Number.isInteger(count) || count < 1) {
    throw new ConfigError(`shard count must be >= 1, got ${count}`, "--shard");
  }
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new ConfigError(`shard index must be in [0, ${count - 1}], got ${index}`, "--shard");
  }
  return all.filter((t) => t.index % count === index);
}
