import fc from "fast-check";
import assert from "node:assert/strict";
import { parseThrottleCurve, type ThrottleCurve } from "../throttle.ts";
import { PAGE_SIZE } from "./params.ts";
import {
  type MigrationModelParams,
  type MigrationPolicyName,
  type MigrationResult,
  simulateMigration,
} from "./migration_model.ts";
import { hotSetWorkload, uniformWorkload, webServerWorkload, type Workload } from "./workloads.ts";

/** mulberry32: a small seeded source in [0, 1) for tests. */
function source(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const POLICIES: readonly MigrationPolicyName[] = ["mycelium", "auto-converge"];
const GBIT = 125e6;

type Kind = "uniform" | "hot-set" | "web-server";
function workload(kind: Kind, pageCount: number, rate: number): Workload {
  switch (kind) {
    case "uniform":
      return uniformWorkload({ pageCount, ratePagesPerSec: rate });
    case "hot-set":
      return hotSetWorkload({
        pageCount,
        ratePagesPerSec: rate,
        hotPages: Math.max(1, pageCount >> 3),
      });
    case "web-server":
      return webServerWorkload({ pageCount, ratePagesPerSec: rate });
  }
}

type Setup = Omit<MigrationModelParams, "workload" | "random"> & {
  kind: Kind;
  rate: number;
  seed: number;
};
/** Runs `policy` with a fresh workload and random stream. */
function run(policy: MigrationPolicyName, s: Setup): MigrationResult {
  const { kind, rate, seed, ...rest } = s;
  return simulateMigration(policy, {
    ...rest,
    workload: workload(kind, s.pageCount, rate),
    random: source(seed),
  });
}

/** The contract every converged or aborted run must meet; the first violation, if any. */
function resultProblem(
  s: Omit<MigrationModelParams, "workload" | "random">,
  r: MigrationResult,
  maxIntensity: number,
): string | undefined {
  const rtt = s.rttMs ?? 1;
  const budget = s.downtimeBudgetMs ?? 300;
  const copyMs = s.pageCount * PAGE_SIZE / s.bandwidthBytesPerSec * 1000;
  if (r.bytesSent < s.pageCount * PAGE_SIZE) return `sent ${r.bytesSent} < memory size`;
  if (!(r.peakIntensity >= 0 && r.peakIntensity <= maxIntensity)) {
    return `peak intensity ${r.peakIntensity} outside [0, ${maxIntensity}]`;
  }
  if (r.integratedThrottle > maxIntensity * r.migrationMs / 1000 + 1e-9) {
    return `integrated throttle ${r.integratedThrottle} above M * time`;
  }
  if (r.converged) {
    if (r.downtimeMs < rtt || r.downtimeMs > budget + rtt + 1e-9) {
      return `downtime ${r.downtimeMs} outside [rtt, budget + rtt]`;
    }
    if (r.migrationMs < copyMs + rtt - 1e-9) return `migration ${r.migrationMs} < copy time`;
  } else if (r.downtimeMs !== 0) return `aborted with downtime ${r.downtimeMs}`;
  return undefined;
}

// ---------------------------------------------------------------------------------------

Deno.test("zero dirty rate: both converge in size / bandwidth + rtt (within a tick), no throttle", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20000 }),
      fc.double({ min: 1e6, max: 2e9, noNaN: true }),
      fc.double({ min: 0, max: 50, noNaN: true }),
      fc.constantFrom(1, 2.5, 5, 10),
      fc.constantFrom<Kind>("uniform", "hot-set", "web-server"),
      (pageCount, bw, rttMs, tickMs, kind) => {
        const s: Setup = {
          pageCount,
          bandwidthBytesPerSec: bw,
          rttMs,
          tickMs,
          kind,
          rate: 0,
          seed: 1,
        };
        const ideal = pageCount * PAGE_SIZE / bw * 1000 + rttMs;
        for (const policy of POLICIES) {
          const r = run(policy, s);
          assert.equal(r.converged, true);
          assert.ok(r.migrationMs >= ideal - 1e-6, `${policy}: ${r.migrationMs} < ${ideal}`);
          assert.ok(
            r.migrationMs <= ideal + tickMs + 1e-6,
            `${policy}: ${r.migrationMs} > ${ideal}`,
          );
          assert.equal(r.downtimeMs, rttMs);
          assert.equal(r.integratedThrottle, 0);
          assert.equal(r.peakIntensity, 0);
          assert.equal(r.bytesSent, pageCount * PAGE_SIZE);
        }
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("every run meets the result contract; Mycelium never exceeds M", () => {
  fc.assert(
    fc.property(
      fc.constantFrom<Kind>("uniform", "hot-set", "web-server"),
      fc.integer({ min: 0, max: 20000 }),
      fc.double({ min: 0.1, max: 1, noNaN: true }),
      fc.constantFrom(0, 0.5, 0.9),
      fc.integer(),
      (kind, rate, m, dirtyShare, seed) => {
        // 2,048 pages (8 MiB) over 10 MB/s: ~2,441 pages/s, so rates go up to 8x the link.
        const curve: ThrottleCurve = parseThrottleCurve({ curve: "linear", maxIntensity: m });
        const s: Setup = {
          pageCount: 2048,
          bandwidthBytesPerSec: 1e7,
          maxBufferBytes: 2 * 1024 * 1024,
          downtimeBudgetMs: 100,
          abortMs: 3000,
          curve,
          dirtyShare,
          kind,
          rate,
          seed,
        };
        const mine = run("mycelium", s);
        assert.equal(resultProblem(s, mine, m), undefined);
        assert.equal(resultProblem(s, run("auto-converge", s), 0.99), undefined);
        assert.deepEqual(run("mycelium", s), mine, "deterministic");
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("resultProblem catches a run above M (auto-converge's throttle against M = 0.3)", () => {
  const s: Setup = {
    pageCount: 2048,
    bandwidthBytesPerSec: 1e7,
    abortMs: 120000,
    downtimeBudgetMs: 100,
    kind: "uniform",
    rate: 10000,
    seed: 5,
  };
  const ac = run("auto-converge", s);
  assert.equal(resultProblem(s, ac, 0.99), undefined);
  assert.match(resultProblem(s, ac, 0.3) ?? "", /peak intensity .* outside \[0, 0.3\]/);
  const mine = run("mycelium", {
    ...s,
    curve: parseThrottleCurve({ curve: "linear", maxIntensity: 0.3 }),
  });
  assert.equal(mine.peakIntensity, 0.3); // the bound is reached, so the check is not vacuous
  assert.equal(resultProblem(s, mine, 0.3), undefined);
});

Deno.test("mycelium throttles only under pressure and catches up at I = M", () => {
  const base: Setup = {
    pageCount: 4096,
    bandwidthBytesPerSec: GBIT,
    kind: "uniform",
    rate: 0,
    seed: 9,
  };
  // Well below the link: nothing builds up, no throttle.
  const light = run("mycelium", { ...base, rate: 5000 });
  assert.equal(light.converged, true);
  assert.equal(light.integratedThrottle, 0);
  // Far above the link (4x): the buffer fills, the curve engages and catch-up runs at M.
  const heavy = run("mycelium", { ...base, rate: 120000, maxBufferBytes: 8 * 1024 * 1024 });
  assert.equal(heavy.converged, true);
  assert.equal(heavy.peakIntensity, 0.9);
  assert.ok(heavy.integratedThrottle > 0);
  assert.ok(heavy.downtimeMs <= 300);
});

Deno.test("auto-converge: far above the link, it throttles up step by step and converges", () => {
  // 8,192 pages over 12.5 MB/s (~3,052 pages/s) dirtied at 4x the link, generous time limit.
  const s: Setup = {
    pageCount: 8192,
    bandwidthBytesPerSec: 12.5e6,
    downtimeBudgetMs: 100,
    abortMs: 600000,
    kind: "uniform",
    rate: 12000,
    seed: 3,
  };
  const r = run("auto-converge", s);
  assert.equal(r.converged, true);
  assert.ok(r.peakIntensity >= 0.5, `peak ${r.peakIntensity}`);
  // Every level auto-converge can reach is initial + k * increment (or max).
  const k = Math.round((r.peakIntensity - 0.2) / 0.1);
  assert.ok(Math.abs(0.2 + k * 0.1 - r.peakIntensity) < 1e-9 || r.peakIntensity === 0.99);
  assert.ok(r.downtimeMs <= 100 + 1);
  // Without throttling (max 0) the same migration never converges: throttling is what helps.
  const off = run("auto-converge", { ...s, abortMs: 60000, autoConverge: { initial: 0, max: 0 } });
  assert.equal(off.converged, false);
  assert.equal(off.peakIntensity, 0);
});

Deno.test("both give up abortMs after the first copy", () => {
  const s: Setup = {
    pageCount: 8192,
    bandwidthBytesPerSec: 12.5e6,
    downtimeBudgetMs: 100,
    abortMs: 1000,
    dirtyShare: 0, // Mycelium's bulk copy then ends when auto-converge's first pass does
    kind: "uniform",
    rate: 12000,
    seed: 3,
  };
  const copyMs = 8192 * PAGE_SIZE / 12.5e6 * 1000;
  for (const policy of POLICIES) {
    const r = run(policy, s);
    assert.equal(r.converged, false, policy);
    assert.equal(r.downtimeMs, 0);
    assert.ok(r.migrationMs >= copyMs + 1000 && r.migrationMs <= copyMs + 1000 + 2 * 5, policy);
    // With time, both get there.
    assert.equal(run(policy, { ...s, abortMs: 600000 }).converged, true, policy);
  }
});

Deno.test("a 1 GiB VM over 1 Gbit/s runs for every workload and both policies", () => {
  const pageCount = 262144;
  for (const kind of ["uniform", "hot-set", "web-server"] as const) {
    for (const policy of POLICIES) {
      const s: Setup = { pageCount, bandwidthBytesPerSec: GBIT, kind, rate: 12000, seed: 1 };
      const r = run(policy, s);
      assert.equal(resultProblem(s, r, policy === "mycelium" ? 0.9 : 0.99), undefined);
      assert.equal(r.converged, true, `${kind} ${policy}`);
    }
  }
});

Deno.test("invalid model parameters are rejected", () => {
  const s: Setup = { pageCount: 16, bandwidthBytesPerSec: GBIT, kind: "uniform", rate: 0, seed: 1 };
  assert.throws(() => run("mycelium", { ...s, pageCount: 0 }), RangeError);
  assert.throws(() => run("mycelium", { ...s, bandwidthBytesPerSec: 0 }), RangeError);
  assert.throws(() => run("auto-converge", { ...s, tickMs: -1 }), RangeError);
  assert.throws(() => run("mycelium", { ...s, dirtyShare: 1 }), RangeError);
  assert.throws(() => run("mycelium", { ...s, rttMs: NaN }), RangeError);
  assert.throws(() => run("auto-converge", { ...s, autoConverge: { passes: 0 } }), RangeError);
});

Deno.test("remus: no dirtying converges at once; paused time is its only throttle", () => {
  const base = { pageCount: 4096, bandwidthBytesPerSec: GBIT, rttMs: 1, kind: "uniform" as Kind };
  const idle = run("remus", { ...base, rate: 0, seed: 1 });
  assert.equal(idle.converged, true);
  assert.equal(idle.integratedThrottle, 0);
  assert.ok(Math.abs(idle.downtimeMs - (0.5 + 1)) < 1e-9, `downtime ${idle.downtimeMs}`);
  // Below the link: converges after checkpoints; each checkpoint paused the guest.
  const busy = run("remus", { ...base, rate: 8000, seed: 2 });
  assert.equal(busy.converged, true);
  assert.ok(busy.integratedThrottle > 0, "checkpoint pauses count as throttling");
  assert.ok(busy.integratedThrottle <= busy.migrationMs / 1000);
  // An epoch's dirtying at 8,000 pages/s is ~200 pages: the blackout stays small.
  assert.ok(busy.downtimeMs < 10, `downtime ${busy.downtimeMs}`);
  // Far above the link the staged data never drains: it gives up.
  const over = run("remus", {
    ...base,
    bandwidthBytesPerSec: 10e6,
    rate: 20000,
    seed: 3,
    abortMs: 2000,
  });
  assert.equal(over.converged, false);
  assert.equal(over.downtimeMs, 0);
  assert.throws(
    () => run("remus", { ...base, rate: 0, seed: 1, remus: { epochMs: 1 } }),
    /epochMs must be >= tickMs/,
  );
});
