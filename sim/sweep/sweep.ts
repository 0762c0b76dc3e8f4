/**
 * Runs a sweep's tasks in worker processes on this machine and keeps every result in
 * `DIR/runs.jsonl` as it arrives (one fsync'd line per run), so an interrupted sweep resumes
 * where it stopped: finished (cell, seed) pairs are never run again. `DIR/sweep-spec.json`
 * records what the directory holds; resuming with other arguments is refused. At the end
 * (and after `collect`) `runs.csv` and `sweep.json` are written from all the rows.
 */
import { join } from "node:path";
import { ConfigError } from "../../core/errors.ts";
import { writeFilesAtomically } from "../summary.ts";
import { aggregate, runsCsv } from "./aggregate.ts";
import type { Axis, Task } from "./grid.ts";
import { lines } from "./lines.ts";
import type { RunRow } from "./run_one.ts";

const WORKER = new URL("./worker.ts", import.meta.url).pathname;

export interface SweepSpec {
  file: string;
  scenario: string;
  seeds: number[];
  axes: Axis[];
  shard?: { index: number; count: number };
}

export interface SweepProgress {
  done: number;
  total: number;
  failed: number;
  skipped: number;
  elapsedMs: number;
}

export interface SweepOptions {
  spec: SweepSpec;
  tasks: Task[];
  out: string;
  workers: number;
  onProgress?: (p: SweepProgress) => void;
  /** Called for each failed run as it arrives. */
  onFailure?: (row: RunRow) => void;
  signal?: AbortSignal;
}

const key = (cell: string, seed: number) => `${cell}/${seed}`;

/** Rows already in DIR/runs.jsonl (a torn last line, from a crash mid-write, is ignored). */
export async function readRows(dir: string): Promise<RunRow[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, "runs.jsonl"));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const rows: RunRow[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line) as RunRow);
    } catch {
      // torn write at a crash: that run is simply run again
    }
  }
  return rows;
}

async function checkSpec(out: string, spec: SweepSpec): Promise<void> {
  const path = join(out, "sweep-spec.json");
  const mine = JSON.stringify(spec, null, 2) + "\n";
  let theirs: string | null = null;
  try {
    theirs = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (theirs !== null && theirs !== mine) {
    throw new ConfigError(
      `${out} holds a different sweep (see ${path}); resume it with the same arguments or ` +
        `choose another --out`,
      "--out",
    );
  }
  if (theirs === null) await Deno.writeTextFile(path, mine);
}

/** Runs the tasks not yet in DIR/runs.jsonl; returns every row of the directory. */
export async function runSweep(o: SweepOptions): Promise<RunRow[]> {
  await Deno.mkdir(o.out, { recursive: true });
  await checkSpec(o.out, o.spec);
  const previous = await readRows(o.out);
  const done = new Set(previous.map((r) => key(r.cell, r.seed)));
  const todo = o.tasks.filter((t) => !done.has(key(t.cell, t.seed)));
  const rows = [...previous];
  const log = await Deno.open(join(o.out, "runs.jsonl"), { append: true, create: true });
  const t0 = performance.now();
  let finished = 0;
  let failed = previous.filter((r) => !r.ok).length;
  const report = () =>
    o.onProgress?.({
      done: finished,
      total: todo.length,
      failed,
      skipped: o.tasks.length - todo.length,
      elapsedMs: performance.now() - t0,
    });
  report();
  const enc = new TextEncoder();
  let next = 0;
  const children = new Set<Deno.ChildProcess>();
  const stopAll = () => {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* already gone */ }
    }
  };
  o.signal?.addEventListener("abort", stopAll);
  const worker = async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", WORKER],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
      env: { NO_COLOR: "1" },
    }).spawn();
    children.add(child);
    const input = child.stdin.getWriter();
    const replies = lines(child.stdout);
    try {
      while (next < todo.length && !o.signal?.aborted) {
        const t = todo[next++];
        await input.write(enc.encode(JSON.stringify({ ...t, file: o.spec.file }) + "\n"));
        const reply = await replies.next();
        if (reply.done) {
          if (o.signal?.aborted) break; // interrupted: this run is simply run again on resume
          throw new Error(`a sweep worker exited during ${t.cell} seed ${t.seed}`);
        }
        const { row } = JSON.parse(reply.value) as { row: RunRow };
        log.writeSync(enc.encode(JSON.stringify(row) + "\n"));
        log.syncSync(); // a finished run survives a crash of the sweep
        rows.push(row);
        finished++;
        if (!row.ok) {
          failed++;
          o.onFailure?.(row);
        }
        report();
      }
    } finally {
      await input.close().catch(() => {});
      await child.status;
      children.delete(child);
      // Drain whatever the worker still printed so its pipe closes.
      for await (const _ of replies) { /* nothing */ }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.workers, todo.length) }, worker));
  } finally {
    o.signal?.removeEventListener("abort", stopAll);
    stopAll();
    log.close();
  }
  return rows;
}

/** runs.csv and sweep.json from rows (the end of a sweep, and `sweep collect`). */
export async function writeSweepOutputs(
  out: string,
  scenario: string,
  rows: readonly RunRow[],
): Promise<void> {
  await writeFilesAtomically(out, {
    "runs.csv": runsCsv(rows),
    "sweep.json": JSON.stringify(aggregate(scenario, rows), null, 2) + "\n",
  });
}
