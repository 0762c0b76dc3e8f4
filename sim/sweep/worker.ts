/**
 * A sweep worker process: reads tasks as JSON lines on stdin ({index, file, cell, sets,
 * seed}), runs each in-process and answers one JSON line {index, row} on stdout. It exits
 * when stdin closes. Simulations are synchronous, so one worker runs one task at a time.
 */
import { lines } from "./lines.ts";
import { runOne } from "./run_one.ts";

interface WorkerTask {
  index: number;
  file: string;
  cell: string;
  sets: string[];
  seed: number;
}

if (import.meta.main) {
  const enc = new TextEncoder();
  const out = Deno.stdout.writable.getWriter();
  for await (const line of lines(Deno.stdin.readable)) {
    if (!line.trim()) continue;
    const t = JSON.parse(line) as WorkerTask;
    let reply: unknown;
    try {
      reply = { index: t.index, row: await runOne(t.file, t.cell, t.sets, t.seed) };
    } catch (e) {
      // A crash inside a simulation is a result too (the row says so), not a dead worker.
      reply = {
        index: t.index,
        row: {
          cell: t.cell,
          sets: t.sets,
          seed: t.seed,
          ok: false,
          failed: ["crash"],
          wallMs: 0,
          virtualMs: 0,
          events: 0,
          metrics: {},
          replay: "",
          error: (e as Error).stack ?? String(e),
        },
      };
    }
    await out.write(enc.encode(JSON.stringify(reply) + "\n"));
  }
}
