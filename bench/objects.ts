/**
 * `deno task bench:objects`: object storage on real node processes over loopback (mutual
 * TLS, chunks fsync'd on every replica): N objects of S MiB (4 MiB chunks by default,
 * replication factor 3, Strong) written through one node's admin API, then read back through
 * another's. Prints
 *   objects nodes=5 write_mb_s=X read_mb_s=Y
 * write: object bytes acknowledged per second (each byte stored on 3 nodes' disks, a quorum
 * of 2 fsync'd before the acknowledgement); read: object bytes returned per second, every
 * chunk checksum-verified (MB = 10^6 bytes). Objects go one at a time unless --parallel.
 * Options: --nodes (5) --objects (4) --size-mib (64) --chunk-mib (4) --parallel (1)
 * --consistency strong|eventual (strong) --class (Standard) --binary PATH
 * --profile: runs the writer and the reader under the V8 inspector (deno run only) and prints
 * the functions with the most self time while they write and read (a CPU profile each).
 */
import crypto from "node:crypto";
import { parseArgs } from "node:util";
import { createTestNetwork, nodeEnv, NodeProcess, until } from "../node/testing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    nodes: { type: "string", default: "5" },
    objects: { type: "string", default: "4" },
    "size-mib": { type: "string", default: "64" },
    "chunk-mib": { type: "string", default: "4" },
    parallel: { type: "string", default: "1" },
    consistency: { type: "string", default: "strong" },
    class: { type: "string", default: "Standard" },
    binary: { type: "string" },
    profile: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(
    "deno task bench:objects [--nodes 5] [--objects 4] [--size-mib 64] [--chunk-mib 4]\n" +
      "  [--parallel 1] [--consistency strong] [--class Standard] [--binary dist/mycelium]",
  );
  Deno.exit(0);
}
const n = Number(values.nodes), count = Number(values.objects);
const sizeMiB = Number(values["size-mib"]), chunkMiB = Number(values["chunk-mib"]);
const parallel = Number(values.parallel);
for (
  const [k, v] of Object.entries({
    nodes: n,
    objects: count,
    "size-mib": sizeMiB,
    "chunk-mib": chunkMiB,
    parallel,
  })
) {
  if (!(Number.isInteger(v) && v >= 1)) {
    console.error(`--${k}: expected a positive integer, got ${v}`);
    Deno.exit(2);
  }
}
if (n < 2) {
  console.error(`--nodes: expected at least 2, got ${n}`);
  Deno.exit(2);
}
const MiB = 2 ** 20;
const size = sizeMiB * MiB, chunk = chunkMiB * MiB;

/** CPU time (user + system) a process has used so far, seconds (0 when it is gone). */
function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** A V8 CPU profile of a node process, through its inspector (Profiler domain). */
class Profiler {
  private ws!: WebSocket;
  private seq = 0;
  private readonly waiting = new Map<number, (r: unknown) => void>();

  static async attach(port: number): Promise<Profiler> {
    const list = await until("the inspector", 10_000, async () => {
      const r = await fetch(`http://127.0.0.1:${port}/json/list`);
      return r.ok;
    }).then(() => fetch(`http://127.0.0.1:${port}/json/list`)).then((r) => r.json());
    const p = new Profiler();
    p.ws = new WebSocket(list[0].webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      p.ws.onopen = resolve;
      p.ws.onerror = reject;
    });
    p.ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.id !== undefined) p.waiting.get(m.id)?.(m.result);
    };
    await p.call("Profiler.enable");
    await p.call("Profiler.setSamplingInterval", { interval: 200 });
    return p;
  }

  call(method: string, params: object = {}): Promise<unknown> {
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  start(): Promise<unknown> {
    return this.call("Profiler.start");
  }

  /** Stops and summarizes: the top functions by self time, and the idle share. */
  async stop(top = 15): Promise<string> {
    type Node = {
      id: number;
      callFrame: { functionName: string; url: string; lineNumber: number };
      hitCount: number;
    };
    const r = await this.call("Profiler.stop") as {
      profile: { nodes: Node[]; samples: number[]; timeDeltas: number[] };
    };
    const prof = r.profile;
    const byNode = new Map<number, number>();
    prof.samples.forEach((id, i) => {
      byNode.set(id, (byNode.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
    });
    const byFn = new Map<string, number>();
    let total = 0;
    for (const nd of prof.nodes) {
      const us = byNode.get(nd.id) ?? 0;
      total += us;
      const f = nd.callFrame;
      const where = f.url
        ? `${f.url.replace(/^.*\/(node|core|npm)\//, "$1/")}:${f.lineNumber + 1}`
        : "";
      const key = `${f.functionName || "(anonymous)"} ${where}`.trim();
      byFn.set(key, (byFn.get(key) ?? 0) + us);
    }
    const rows = [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top);
    return rows.map(([k, us]) => `    ${(100 * us / total).toFixed(1).padStart(5)}%  ${k}`)
      .join("\n");
  }

  close(): void {
    this.ws.close();
  }
}

/** Runs `work(i)` for i in [0, count) with at most `width` at once. */
async function pool(width: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, count) }, async () => {
    while (next < count) await work(next++);
  }));
}

const dir = await Deno.makeTempDir({ prefix: "mycelium-bench-objects-" });
const procs: NodeProcess[] = [];
try {
  const net = await createTestNetwork(dir, "bench");
  const dataDirs = await Promise.all([...Array(n).keys()].map((i) => net.node(`s${i}`)));
  const extra = {
    MYCELIUM_STORAGE_CHUNK_SIZE: String(chunk),
    MYCELIUM_STORAGE_MAX_OBJECT_BYTES: String(Math.max(size, 256 * MiB)),
    MYCELIUM_STREAMS_MAX_FRAME_BYTES: String(Math.max(8 * MiB, chunk + MiB)),
  };
  // --profile: s0 and s1 run under the inspector (a wrapper script adds the flag).
  const inspected = (i: number) => {
    if (!values.profile || i > 1) return values.binary;
    const cli = new URL("../node/cli.ts", import.meta.url).pathname;
    const path = `${dir}/inspect-${i}.sh`;
    Deno.writeTextFileSync(
      path,
      `#!/bin/sh\nexec "${Deno.execPath()}" run -A --inspect=127.0.0.1:${9329 + i} "${cli}" "$@"\n`,
    );
    Deno.chmodSync(path, 0o755);
    return path;
  };
  procs.push(new NodeProcess("s0", dataDirs[0], nodeEnv(dataDirs[0], [], extra), inspected(0)));
  const seed = (await procs[0].ready()).gossip;
  for (let i = 1; i < n; i++) {
    procs.push(
      new NodeProcess(`s${i}`, dataDirs[i], nodeEnv(dataDirs[i], [seed], extra), inspected(i)),
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
  const writer = procs[0], reader = procs[1];
  const base = new Uint8Array(crypto.randomBytes(size));
  /** Object i: the base bytes with every chunk's first byte set to i (distinct chunks). */
  const objectBytes = (i: number) => {
    const b = base.slice();
    for (let at = 0; at < b.length; at += chunk) b[at] = i & 0xff;
    b[b.length - 1] ^= (i >> 8) & 0xff;
    return b;
  };
  const digests: string[] = [];
  const bodies = [...Array(count).keys()].map((i) => {
    const b = objectBytes(i);
    digests.push(crypto.createHash("sha256").update(b).digest("hex"));
    return b;
  });
  const q = `?consistency=${values.consistency}&class=${values.class}`;
  // Warm up the streams between the nodes with a small object.
  const warm = await fetch(`http://${writer.addresses!.admin}/v1/objects/warmup${q}`, {
    method: "PUT",
    body: new Uint8Array(1024),
  });
  if (warm.status !== 201) throw new Error(`warm-up PUT: ${warm.status} ${await warm.text()}`);
  await (await fetch(`http://${reader.addresses!.admin}/v1/objects/warmup`)).arrayBuffer();

  console.error(
    `  ${n} nodes, ${count} objects of ${sizeMiB} MiB in ${chunkMiB} MiB chunks, ` +
      `${values.consistency}, ${values.class}, ${parallel} at a time`,
  );
  const profilers = values.profile
    ? [await Profiler.attach(9329), await Profiler.attach(9330)]
    : [];
  await profilers[0]?.start();
  await profilers[1]?.start();
  const cpu0 = procs.map((p) => cpuSeconds(p.pid));
  const w0 = performance.now();
  await pool(parallel, async (i) => {
    const res = await fetch(`http://${writer.addresses!.admin}/v1/objects/bench-${i}${q}`, {
      method: "PUT",
      body: bodies[i],
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`PUT bench-${i}: ${res.status} ${text}`);
  });
  const writeS = (performance.now() - w0) / 1000;
  const cpu1 = procs.map((p) => cpuSeconds(p.pid));
  if (profilers.length) {
    console.error(`  writer s0, self time while writing:\n${await profilers[0].stop()}`);
    console.error(`  replica s1, self time while writing:\n${await profilers[1].stop()}`);
    await profilers[1].start();
  }
  const r0 = performance.now();
  await pool(parallel, async (i) => {
    const res = await fetch(`http://${reader.addresses!.admin}/v1/objects/bench-${i}`);
    const got = new Uint8Array(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`GET bench-${i}: ${res.status}`);
    const d = crypto.createHash("sha256").update(got).digest("hex");
    if (d !== digests[i]) throw new Error(`GET bench-${i}: bytes differ from what was written`);
  });
  const readS = (performance.now() - r0) / 1000;
  const cpu2 = procs.map((p) => cpuSeconds(p.pid));
  if (profilers.length) {
    console.error(`  reader s1, self time while reading:\n${await profilers[1].stop()}`);
    for (const p of profilers) p.close();
  }
  const total = count * size;
  const pct = (a: number[], b: number[], s: number) =>
    a.map((x, i) => `${(100 * (b[i] - x) / s).toFixed(0)}%`).join(" ");
  console.error(
    `  write ${writeS.toFixed(2)} s (CPU per node ${pct(cpu0, cpu1, writeS)}), ` +
      `read ${readS.toFixed(2)} s (CPU per node ${pct(cpu1, cpu2, readS)}); writer s0, reader s1`,
  );
  console.log(
    `objects nodes=${n} write_mb_s=${(total / writeS / 1e6).toFixed(1)} read_mb_s=${
      (total / readS / 1e6).toFixed(1)
    }`,
  );
} finally {
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited.catch(() => undefined)));
  await Deno.remove(dir, { recursive: true });
}
