/**
 * PHOLD on the simulator Engine: `lps` logical processes with one event each in flight; the
 * handler of every event schedules one successor at a uniformly random LP after an Exp(1)
 * delay (mean 1 virtual ms). Measures raw engine throughput (queue + dispatch + trace hash).
 *
 *   deno run -A bench/phold.ts --lps 10000 --events 10000000 [--seed 1]
 */
import { parseArgs } from "node:util";
import { Engine } from "../sim/engine.ts";
import { Rng } from "../sim/rng.ts";

export interface PholdOptions {
  lps: number;
  events: number;
  seed?: number;
}

export interface PholdResult {
  wallS: number;
  eventsPerSec: number;
  traceHash: string;
  events: number;
  virtualMs: number;
}

/** Builds and runs one PHOLD instance; wall time covers only the event loop. */
export function runPhold({ lps, events, seed = 1 }: PholdOptions): PholdResult {
  if (!Number.isSafeInteger(lps) || lps < 1) throw new RangeError(`lps must be >= 1, got ${lps}`);
  if (!Number.isSafeInteger(events) || events < 0) {
    throw new RangeError(`events must be >= 0, got ${events}`);
  }
  const engine = new Engine();
  const root = Rng.fromSeed(seed);
  const init = root.derive("init");
  const rng = root.derive("phold");
  const hop = engine.register((_lp: number) => {
    engine.schedule(engine.now + rng.exp(1), hop, rng.int(lps), 0);
  });
  for (let lp = 0; lp < lps; lp++) engine.schedule(init.exp(1), hop, lp, 0);
  const t0 = performance.now();
  const done = engine.run(Infinity, events);
  const wallS = (performance.now() - t0) / 1000;
  return {
    wallS,
    eventsPerSec: wallS > 0 ? done / wallS : Infinity,
    traceHash: engine.traceHash(),
    events: done,
    virtualMs: engine.now,
  };
}

export function formatPhold(lps: number, r: PholdResult): string {
  return `phold lps=${lps} events=${r.events} wall_s=${r.wallS.toFixed(3)} events_per_s=${
    Math.round(r.eventsPerSec)
  }`;
}

function intArg(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  return n;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      lps: { type: "string" },
      events: { type: "string" },
      seed: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno run -A bench/phold.ts [--lps N=10000] [--events N=10000000] [--seed S=1]\n" +
        "Prints: phold lps=N events=N wall_s=X events_per_s=Y",
    );
  } else {
    const lps = intArg("lps", values.lps, 10000);
    const events = intArg("events", values.events, 10000000);
    const seed = intArg("seed", values.seed, 1);
    console.log(formatPhold(lps, runPhold({ lps, events, seed })));
  }
}
