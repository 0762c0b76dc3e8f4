/**
 * `deno task bench:cluster-kv`: a real 4-node loopback cluster (node processes, mutual-TLS
 * streams, Ed25519, SQLite) under a closed-loop load of 32 concurrent clients writing
 * 100-byte values; prints
 *   kv_cluster nodes=4 clients=32 puts_per_s=X p50_ms=Y p99_ms=Z
 * Options: --nodes N (4) --clients C (32) --seconds S (20) --warmup S (3) --binary PATH.
 * The clients spread over the nodes; each keeps one request outstanding (HTTP keep-alive).
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { loadNodeIdentity } from "../node/pki.ts";
import { createTestNetwork, nodeEnv, NodeProcess, until } from "../node/testing.ts";
import { percentile } from "../sim/summary.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    nodes: { type: "string", default: "4" },
    clients: { type: "string", default: "32" },
    seconds: { type: "string", default: "20" },
    warmup: { type: "string", default: "3" },
    binary: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(
    "deno task bench:cluster-kv [--nodes 4] [--clients 32] [--seconds 20] [--warmup 3] [--binary dist/mycelium]",
  );
  Deno.exit(0);
}
const n = Number(values.nodes), clients = Number(values.clients);
const seconds = Number(values.seconds), warmup = Number(values.warmup);
for (const [k, v] of Object.entries({ nodes: n, clients, seconds })) {
  if (!(Number.isInteger(v) && v >= 1)) {
    console.error(`--${k}: expected a positive integer, got ${v}`);
    Deno.exit(2);
  }
}

const dir = await Deno.makeTempDir({ prefix: "mycelium-bench-kv-" });
const procs: NodeProcess[] = [];
try {
  const net = await createTestNetwork(dir, "bench");
  const dataDirs = await Promise.all([...Array(n).keys()].map((i) => net.node(`v${i}`)));
  const ids = await Promise.all(
    dataDirs.map(async (d) => (await loadNodeIdentity(join(d, "identity"))).nodeId),
  );
  // (Log level stays info: NodeProcess.ready() reads the "started" line.)
  const extra = { MYCELIUM_CONSENSUS_VOTERS: ids.join(",") };
  procs.push(new NodeProcess("v0", dataDirs[0], nodeEnv(dataDirs[0], [], extra), values.binary));
  const seed = (await procs[0].ready()).gossip;
  for (let i = 1; i < n; i++) {
    procs.push(
      new NodeProcess(`v${i}`, dataDirs[i], nodeEnv(dataDirs[i], [seed], extra), values.binary),
    );
  }
  await Promise.all(procs.map((p) => p.ready()));
  console.error(`  ${n} nodes up; waiting for the first commit`);
  await until(
    "a first commit",
    30_000,
    async () => (await procs[0].json<{ height: number }>("/v1/consensus/status")).height > 0,
  );

  const value = "v".repeat(100);
  const latencies: number[] = [];
  let measuring = false, stop = false, errors = 0;
  const t0 = performance.now();
  const loops = [...Array(clients).keys()].map(async (c) => {
    const p = procs[c % n];
    let k = 0;
    while (!stop) {
      const start = performance.now();
      const r = await p.send("POST", `/v1/kv/c${c}-${k++ % 64}`, { value }).catch(() => null);
      if (!r || r.status !== 200) {
        errors++;
        continue;
      }
      if (measuring) latencies.push(performance.now() - start);
    }
  });
  await new Promise((r) => setTimeout(r, warmup * 1000));
  console.error(`  warmed up; measuring for ${seconds} s`);
  measuring = true;
  const m0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - m0) / 1000;
  stop = true;
  await Promise.all(loops);
  const sorted = latencies.slice().sort((a, b) => a - b);
  const height = (await procs[0].json<{ height: number }>("/v1/consensus/status")).height;
  console.log(
    `kv_cluster nodes=${n} clients=${clients} puts_per_s=${
      (latencies.length / elapsed).toFixed(0)
    } ` +
      `p50_ms=${percentile(sorted, 50)?.toFixed(1)} p99_ms=${percentile(sorted, 99)?.toFixed(1)}`,
  );
  console.error(
    `  ${latencies.length} puts in ${
      elapsed.toFixed(1)
    } s (after ${warmup} s warm-up), ${errors} errors, ` +
      `height ${height}, run ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  // Where time may have gone: counters summed over the nodes.
  const names = [
    "mycelium_consensus_round_changes_total",
    "mycelium_consensus_resends_total",
    "mycelium_consensus_propose_timeouts_total",
    "mycelium_consensus_invalid_proposals_total",
    "mycelium_consensus_resubmits_total",
    "mycelium_consensus_unsent_total",
    "mycelium_stream_heartbeat_timeouts_total",
    "mycelium_stream_reconnects_total",
  ];
  const sums = new Map(names.map((k) => [k, 0]));
  for (const p of procs) {
    const body = (await p.get("/metrics")).body;
    for (const k of names) {
      for (const m of body.matchAll(new RegExp(`^${k}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))) {
        sums.set(k, sums.get(k)! + Number(m[1]));
      }
    }
  }
  console.error(
    "  " + [...sums].map(([k, v]) => `${k.replace(/^mycelium_/, "")}=${v}`).join(" "),
  );
  for (const p of procs) {
    for (const l of p.logs) {
      if (/"(round_change|propose_timeout)"/.test(l)) console.error(`  ${p.name}: ${l}`);
    }
  }
} finally {
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited.catch(() => undefined)));
  await Deno.remove(dir, { recursive: true });
}
