/**
 * Test and cluster support: real node processes on 127.0.0.1 with ephemeral ports, their
 * logs collected, their admin API queried.
 */
import tls from "node:tls";
import { join } from "node:path";
import { attachFramedSocket, type FramedSocket } from "./framing.ts";
import { genesis, issueNodeCert, type NodeIdentity, tlsOptions } from "./pki.ts";

const CLI = new URL("./cli.ts", import.meta.url).pathname;

export interface NodeAddresses {
  nodeId: string;
  gossip: string;
  streams: string;
  admin: string;
  incarnation: number;
}

/** A node process: `deno run node/cli.ts node` (or a built binary) with env config. */
export class NodeProcess {
  readonly logs: string[] = [];
  private child: Deno.ChildProcess;
  private started = Promise.withResolvers<NodeAddresses>();
  readonly exited: Promise<Deno.CommandStatus>;
  addresses: NodeAddresses | null = null;

  constructor(
    readonly name: string,
    readonly dataDir: string,
    env: Record<string, string>,
    binary?: string,
    /** Runs the node under this command, e.g. `ip netns exec NS` (a network namespace). */
    commandPrefix: string[] = [],
  ) {
    // A clean environment: a MYCELIUM_* variable of the caller's would reconfigure the node
    // (or be rejected by it as unknown).
    const base: Record<string, string> = {};
    for (const k of ["PATH", "HOME", "DENO_DIR", "TMPDIR", "LANG"]) {
      const v = Deno.env.get(k);
      if (v !== undefined) base[k] = v;
    }
    const opts = {
      env: { ...base, ...env },
      clearEnv: true,
      stdout: "null",
      stderr: "piped",
      stdin: "null",
    } as const;
    const argv = binary ? [binary, "node"] : [Deno.execPath(), "run", "-A", CLI, "node"];
    const [program, ...args] = [...commandPrefix, ...argv];
    const cmd = new Deno.Command(program, { args, ...opts });
    this.child = cmd.spawn();
    this.exited = this.child.status;
    this.readLogs();
    this.exited.then((s) =>
      this.started.reject(new Error(`${name} exited (${s.code}) before starting:\n${this.tail()}`))
    );
  }

  private async readLogs(): Promise<void> {
    let buf = "";
    for await (const chunk of this.child.stderr.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.logs.push(line);
        if (!this.addresses && line.includes('"event":"started"')) {
          const o = JSON.parse(line);
          this.addresses = {
            nodeId: o.nodeId,
            gossip: o.gossip,
            streams: o.streams,
            admin: o.admin,
            incarnation: o.incarnation,
          };
          this.started.resolve(this.addresses);
        }
      }
    }
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Peak resident memory of the process (VmHWM), or 0 when it is gone. */
  peakRssBytes(): number {
    try {
      const status = Deno.readTextFileSync(`/proc/${this.child.pid}/status`);
      return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
    } catch {
      return 0;
    }
  }

  ready(): Promise<NodeAddresses> {
    return this.started.promise;
  }

  tail(n = 20): string {
    return this.logs.slice(-n).join("\n");
  }

  async get(path: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://${this.addresses!.admin}${path}`);
    return { status: res.status, body: await res.text() };
  }

  /** A request with a JSON body (the client API). */
  async send(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: string }> {
    const res = await fetch(`http://${this.addresses!.admin}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    return { status: res.status, body: await res.text() };
  }

  async json<T = unknown>(path: string): Promise<T> {
    return JSON.parse((await this.get(path)).body) as T;
  }

  kill(signal: Deno.Signal): void {
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
  }
}

export interface TestNetwork {
  dir: string;
  networkDir: string;
  /** Creates an identity and returns its data dir (identity in DATA/identity). */
  node(name: string): Promise<string>;
}

export async function createTestNetwork(dir: string, name = "test"): Promise<TestNetwork> {
  const networkDir = join(dir, `network-${name}`);
  await genesis(networkDir, { name });
  return {
    dir,
    networkDir,
    async node(nodeName: string) {
      const dataDir = join(dir, `${name}-${nodeName}`);
      await issueNodeCert(networkDir, join(dataDir, "identity"), { name: nodeName });
      return dataDir;
    },
  };
}

/** Env for a node on loopback with ephemeral ports and fast membership timings. */
export function nodeEnv(dataDir: string, seeds: string[], extra: Record<string, string> = {}) {
  return {
    NO_COLOR: "1",
    MYCELIUM_NODE_DATA_DIR: dataDir,
    MYCELIUM_GOSSIP_PORT: "0",
    MYCELIUM_STREAMS_PORT: "0",
    MYCELIUM_ADMIN_PORT: "0",
    MYCELIUM_JOIN_SEEDS: seeds.join(","),
    ...extra,
  };
}

/** Polls `fn` until it returns true (or throws after `limitMs`, with `what` in the message). */
export async function until(
  what: string,
  limitMs: number,
  fn: () => Promise<boolean>,
): Promise<number> {
  const start = performance.now();
  for (;;) {
    try {
      if (await fn()) return performance.now() - start;
    } catch { /* not yet */ }
    if (performance.now() - start > limitMs) {
      throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export type MemberView = Array<{ node: string; state: string; incarnation: number; addr: string }>;

/**
 * Opens a mutual-TLS stream to `target` ("host:port") as `id` (a valid identity of the
 * network, or not) and sends raw frame bodies of `type`: for tests of malformed input.
 */
export async function sendRawFrames(
  id: NodeIdentity,
  target: string,
  type: number,
  bodies: Uint8Array[],
): Promise<FramedSocket> {
  const [host, port] = target.split(":");
  const socket = tls.connect({ ...tlsOptions(id), host, port: Number(port) });
  await new Promise((resolve, reject) => {
    socket.once("secureConnect", resolve);
    socket.once("error", reject);
  });
  const conn = attachFramedSocket(socket, {
    maxFrameBytes: 1 << 24,
    counters: {},
    onFrame: () => {},
    onClose: () => {},
  });
  for (const b of bodies) conn.send(type, b);
  return conn;
}
