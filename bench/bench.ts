/**
 * Benchmark harness (mitata). Run: `deno task bench` (= deno run -A bench/bench.ts).
 *
 * Benchmarks are declared as a list of groups; to add one, append an entry to `GROUPS`.
 * After the mitata report, the headline PHOLD run (10,000 LPs x 10,000,000 events) prints the
 * same one-line summary as bench/phold.ts.
 */
import { formatMeasurement, measureScenario } from "./membership10k.ts";
import { measureSignatures } from "./signatures.ts";
import { runScenario, smallScenario } from "../sim/testing.ts";
import { bench, do_not_optimize, group, run } from "mitata";
import { EventHeap } from "../sim/heap.ts";
import { Rng } from "../sim/rng.ts";
import { formatPhold, runPhold } from "./phold.ts";

interface BenchGroup {
  name: string;
  /** Declares the group's benches with mitata's `bench(...)`. */
  define: () => void;
}

/** Hold model: a heap pre-filled with `size` entries; one pop + one push per iteration. */
function heapHold(size: number): void {
  bench(`heap pop+push (hold) size=${size}`, function* () {
    const heap = new EventHeap();
    const rng = Rng.fromSeed(42).derive(`heap-${size}`);
    for (let i = 0; i < size; i++) heap.push(rng.exp(1), 0, i, 0, undefined);
    const delays = new Float64Array(1 << 16);
    for (let i = 0; i < delays.length; i++) delays[i] = rng.exp(1);
    let k = 0;
    yield () => {
      const s = heap.pop();
      heap.push(heap.lastTime + delays[k++ & 0xffff], 0, heap.as[s], 0, undefined);
    };
  });
}

/** Fill then drain: `size` pushes followed by `size` pops, many equal times. */
function heapFillDrain(size: number): void {
  bench(`heap fill+drain size=${size}`, function* () {
    const rng = Rng.fromSeed(7).derive(`fill-${size}`);
    const times = new Float64Array(size);
    for (let i = 0; i < size; i++) times[i] = rng.int(size >> 2);
    const heap = new EventHeap(size);
    yield () => {
      for (let i = 0; i < size; i++) heap.push(times[i], 0, i, 0, undefined);
      let acc = 0;
      for (let i = 0; i < size; i++) acc += heap.pop();
      do_not_optimize(acc);
    };
  });
}

const GROUPS: BenchGroup[] = [
  {
    name: "event heap",
    define: () => {
      for (const size of [1_000, 10_000, 100_000]) heapHold(size);
      for (const size of [1_000, 10_000, 100_000]) heapFillDrain(size);
    },
  },
  {
    name: "rng",
    define: () => {
      const rng = Rng.fromSeed(1).derive("bench");
      bench("Rng.next", () => do_not_optimize(rng.next()));
      bench("Rng.u32", () => do_not_optimize(rng.u32()));
      bench("Rng.int(10000)", () => do_not_optimize(rng.int(10000)));
      bench("Rng.exp(1)", () => do_not_optimize(rng.exp(1)));
      bench("Rng.derive", () => do_not_optimize(rng.derive("node/1234")));
    },
  },
  {
    name: "phold",
    define: () => {
      bench("PHOLD 10,000 LPs x 1,000,000 events", () => {
        do_not_optimize(runPhold({ lps: 10_000, events: 1_000_000, seed: 1 }));
      }).gc("inner");
    },
  },
  {
    // A whole simulation in-process: 200 nodes, 20 s virtual, one crash.
    name: "membership",
    define: () => {
      const s = smallScenario(200, {
        duration: "20s",
        bootstrap: { mode: "snapshot" },
        faults: [{ type: "crash", at: "5s", nodes: "n-7" }],
      });
      bench("swim 200 nodes x 20 s", () => runScenario(s).engine.events);
    },
  },
];

if (import.meta.main) {
  for (const g of GROUPS) group(g.name, g.define);
  await run();
  const lps = 10_000;
  console.log(formatPhold(lps, runPhold({ lps, events: 10_000_000, seed: 1 })));
  const sig = await measureSignatures();
  console.log(
    `signatures one_by_one_per_s=${sig.oneByOne.toFixed(0)} batched_per_s=${
      sig.batched.toFixed(0)
    }`,
  );
  // The 10,000-node scenario in its own process, so its peak RSS is its own.
  console.log(
    formatMeasurement("membership-10k", await measureScenario("scenarios/membership-10k.yaml")),
  );
}
