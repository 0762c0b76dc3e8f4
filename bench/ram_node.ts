/**
 * `deno task bench:ram-node`: distributed RAM on real node processes over loopback (mutual
 * TLS): one VM with a 256 MiB image on the first node, the others its backups, a synthetic
 * guest dirtying pages at a high rate (throttled by the replicator as it sees fit). Prints
 *   ram_node nodes=N image_mib=256 throughput_mb_s=X lag_p50_ms=Y lag_p99_ms=Z epochs=E
 * throughput: page bytes applied per second by one backup (MB = 10^6 bytes), measured at the
 * backup; lag: epoch commit latency (cut on the primary to applied by every live backup)
 * over the measurement window; epochs: epochs cut in the window.
 * Options: --nodes 2|3 (2) --image-mib (256) --rate PAGES_PER_S (40000, ~164 MB/s)
 * --workload uniform|web-server|hot-set (uniform) --seconds (15) --warmup (5)
 * --profile auto|low|medium|high (auto) --max-buffer-mib (64, `max_buffer_size`) --binary PATH.
 * With a guest faster than the link the throttle holds b near its threshold (0.6 for Low), so
 * the lag is then about threshold * max buffer / throughput: --max-buffer-mib bounds it.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { loadNodeIdentity } from "../node/pki.ts";
import { createTestNetwork, nodeEnv, NodeProcess, until } from "../node/testing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    nodes: { type: "string", default: "2" },
    "image-mib": { type: "string", default: "256" },
    rate: { type: "string", default: "40000" },
    workload: { type: "string", default: "uniform" },
    seconds: { type: "string", default: "15" },
    warmup: { type: "string", default: "5" },
    profile: { type: "string", default: "auto" },
    "max-buffer-mib": { type: "string", default: "64" },
    binary: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(
    "deno task bench:ram-node [--nodes 2] [--image-mib 256] [--rate 40000] [--workload uniform]\n" +
      "  [--seconds 15] [--warmup 5] [--profile auto] [--max-buffer-mib 64] [--binary dist/mycelium]",
  );
  Deno.exit(0);
}
const n = Number(values.nodes), imageMiB = Number(values["image-mib"]);
const rate = Number(values.rate), seconds = Number(values.seconds);
const warmup = Number(values.warmup), maxBufferMiB = Number(values["max-buffer-mib"]);
for (
  const [k, v] of Object.entries({
    nodes: n,
    "image-mib": imageMiB,
    seconds,
    "max-buffer-mib": maxBufferMiB,
  })
) {
  if (!(Number.isInteger(v) && v >= 1)) {
    console.error(`--${k}: expected a positive integer, got ${v}`);
    Deno.exit(2);
  }
}
if (n < 2 || n > 3) {
  console.error(`--nodes: expected 2 or 3, got ${n}`);
  Deno.exit(2);
}

interface VmStatus {
  role: string;
  epoch: number;
  bufferLevel: number;
  intensity: number;
  pagesApplied: number;
  pauses: { count: number; pausedMs: number };
  lag: { p50Ms?: number; p99Ms?: number; samples?: number };
  guest: { writes: number } | null;
}

/** CPU time (user + system) a process has used so far, seconds (0 when it is gone). */
function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
}

const dir = await Deno.makeTempDir({ prefix: "mycelium-bench-ram-" });
const procs: NodeProcess[] = [];
try {
  const net = await createTestNetwork(dir, "bench");
  const dataDirs = await Promise.all([...Array(n).keys()].map((i) => net.node(`r${i}`)));
  const ids = await Promise.all(
    dataDirs.map(async (d) => (await loadNodeIdentity(join(d, "identity"))).nodeId),
  );
  const extra = {
    MYCELIUM_RAM_REPLICATION_PROFILE: values.profile,
    MYCELIUM_RAM_REPLICATION_BACKUP_NODE_COUNT: String(n - 1),
    MYCELIUM_RAM_REPLICATION_MAX_BUFFER_BYTES: String(maxBufferMiB * 2 ** 20),
  };
  procs.push(new NodeProcess("r0", dataDirs[0], nodeEnv(dataDirs[0], [], extra), values.binary));
  const seed = (await procs[0].ready()).gossip;
  for (let i = 1; i < n; i++) {
    procs.push(
      new NodeProcess(`r${i}`, dataDirs[i], nodeEnv(dataDirs[i], [seed], extra), values.binary),
    );
  }
  await Promise.all(procs.map((p) => p.ready()));
  await until("membership", 20_000, async () => {
    for (const p of procs) {
      const m = await p.json<Array<{ state: string }>>("/v1/members");
      if (m.filter((x) => x.state === "alive").length < n - 1) return false;
    }
    return true;
  });
  const spec = {
    id: "bench",
    memoryMiB: imageMiB,
    primary: ids[0],
    backups: ids.slice(1),
    dirtyPagesPerSec: rate,
    workload: values.workload,
  };
  for (let i = n - 1; i >= 0; i--) {
    const r = await procs[i].send("POST", "/v1/ram/vms", {
      ...spec,
      role: i === 0 ? "primary" : "backup",
    });
    if (r.status !== 201) throw new Error(`r${i}: ${r.status} ${r.body}`);
  }
  const primary = procs[0], backup = procs[1];
  const st = (p: NodeProcess, q = "") => p.json<VmStatus>(`/v1/ram/vms/bench${q}`);
  console.error(`  ${n} nodes, ${imageMiB} MiB image, guest ${rate} pages/s; warming up`);
  await new Promise((r) => setTimeout(r, warmup * 1000));

  const p0 = await st(primary), b0 = await st(backup);
  const cpu0 = [cpuSeconds(primary.pid), cpuSeconds(backup.pid)];
  const t0 = performance.now();
  const levels: number[] = [], intensities: number[] = [];
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 250));
    const s = await st(primary);
    levels.push(s.bufferLevel);
    intensities.push(s.intensity);
  }
  const b1 = await st(backup);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = [cpuSeconds(primary.pid), cpuSeconds(backup.pid)].map((c, i) =>
    (100 * (c - cpu0[i]) / elapsed).toFixed(0)
  );
  const p1 = await st(primary, `?lagWindowMs=${Math.round(elapsed * 1000)}`);
  const bytes = (b1.pagesApplied - b0.pagesApplied) * 4096;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const dirtied = ((p1.guest?.writes ?? 0) - (p0.guest?.writes ?? 0)) * 4096;
  console.error(
    `  guest dirtied ${(dirtied / elapsed / 1e6).toFixed(1)} MB/s; mean b=${
      mean(levels).toFixed(3)
    } I=${mean(intensities).toFixed(3)}; pauses ${p1.pauses.count - p0.pauses.count} ` +
      `(${(p1.pauses.pausedMs - p0.pauses.pausedMs).toFixed(0)} ms); ` +
      `CPU primary ${cpu[0]}% backup ${cpu[1]}% of a core; peak RSS primary ${
        (primary.peakRssBytes() / 2 ** 20).toFixed(0)
      } MiB, backup ${(backup.peakRssBytes() / 2 ** 20).toFixed(0)} MiB`,
  );
  console.log(
    `ram_node nodes=${n} image_mib=${imageMiB} throughput_mb_s=${
      (bytes / elapsed / 1e6).toFixed(1)
    } lag_p50_ms=${p1.lag.p50Ms?.toFixed(1) ?? "nan"} lag_p99_ms=${
      p1.lag.p99Ms?.toFixed(1) ?? "nan"
    } epochs=${p1.epoch - p0.epoch}`,
  );
} finally {
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited.catch(() => undefined)));
  await Deno.remove(dir, { recursive: true });
}
