/**
 * Consensus scenarios on the real cluster: the genesis voter set handed to every node,
 * closed-loop HTTP clients of the nodes' KV API (`POST`/`GET /v1/kv/{key}`), and the
 * simulator's consensus checkers fed from the nodes' committed blocks
 * (`GET /v1/consensus/blocks`), whose commit certificates are checked with real Ed25519.
 *
 * As in the simulator, each client is an exactly-once session (`session`, `seq` in the
 * request): when its node goes away or gives no answer within `retryMs`, it resubmits the
 * same operation to the next voter, and the replicated session record answers a retry of an
 * operation that had already committed. An operation still unanswered when the run ends is
 * recorded as unacknowledged (it may or may not have taken effect).
 */
import { join } from "node:path";
import type { ClientOp, CommittedBlock, Vote } from "../core/consensus/types.ts";
import { votePayload } from "../core/consensus/types.ts";
import type { NodeId } from "../core/ids.ts";
import { RecordVerifier } from "../node/consensus.ts";
import { loadNodeIdentity } from "../node/pki.ts";
import type { NodeProcess } from "../node/testing.ts";
import type { CheckResult } from "../sim/checks.ts";
import { checkLinearizable, type HistoryEntry } from "../sim/consensus/linearizability.ts";
import { ConsensusObserver } from "../sim/consensus/observer.ts";
import { Rng } from "../sim/rng.ts";
import type { Scenario } from "../sim/scenario.ts";
import { type NodeInfo, resolveSelector } from "../sim/selectors.ts";
import { percentile } from "../sim/summary.ts";

/** What the real cluster cannot do for a consensus scenario (empty: it can). */
export function consensusUnsupported(s: Scenario): string[] {
  const cs = s.consensus;
  if (!cs) return [];
  const out: string[] = [];
  if (cs.byzantine.length > 0) {
    out.push("consensus.byzantine: real nodes run only the honest protocol");
  }
  if (cs.twins.length > 0) out.push("consensus.twins: two processes cannot share one TLS identity");
  if (cs.tasks.every > 0) {
    out.push("consensus.tasks: commit-reveal executors run only in the simulator");
  }
  s.checks.forEach((c, i) => {
    if (c.type === "consensus.trust-dynamics") {
      out.push(`checks[${i}]: consensus.trust-dynamics needs commit-reveal tasks (simulator)`);
    }
  });
  return out;
}

/** The runner's view of one node. */
export interface LoadNode extends NodeInfo {
  readonly index: number;
  readonly dataDir: string;
  readonly proc: NodeProcess | null;
  readonly up: boolean;
}

interface Client {
  name: string;
  rng: Rng;
  seq: number;
  target: number;
  known: Map<string, string | null>;
}

const HTTP_SLACK_MS = 2000;

export class ClusterConsensus {
  readonly observer: ConsensusObserver;
  readonly history: HistoryEntry[] = [];
  readonly heightSamples: Array<{ t: number; height: number; ops: number }> = [];
  /** Genesis voters: node indexes and ids (ids once `prepare` ran). */
  readonly voterIndexes: number[];
  voterIds: NodeId[] = [];
  private readonly verifier = new RecordVerifier();
  private readonly values = new Set<string>();
  private readonly keys = new Set<string>();
  private readonly fetched: number[] = [];
  private readonly latencies: number[] = [];
  private completed = 0;
  private abandoned = 0;
  private retries = 0;
  private stopping = false;
  private clients: Promise<void>[] = [];
  private readonly loadUntil: number;

  constructor(
    private readonly scenario: Scenario,
    private readonly nodes: readonly LoadNode[],
    private readonly now: () => number,
  ) {
    const cs = scenario.consensus!;
    this.voterIndexes = resolveSelector(
      cs.voters,
      nodes,
      Rng.fromSeed(scenario.seed).derive("voters"),
    );
    const enabled = new Set(scenario.checks.map((c) => c.type as string));
    this.observer = new ConsensusObserver({
      verifyVote: (v: Vote) => this.verifier.verify(v.voter, votePayload(v), v.sig),
    }, enabled);
    // Node-assigned op ids: an op is ours when its value (or, for reads, its key) is.
    this.observer.isSubmitted = (op: ClientOp) => {
      const o = op.op;
      if (o.kind === "put" || o.kind === "cas") return this.values.has(o.value);
      if (o.kind === "get") return this.keys.has(o.key);
      return false;
    };
    this.loadUntil = cs.load.until ?? scenario.duration * 0.8;
  }

  /** Reads the voters' node ids from their identities (before any node starts). */
  async prepare(): Promise<void> {
    this.voterIds = await Promise.all(
      this.voterIndexes.map(async (i) =>
        (await loadNodeIdentity(join(this.nodes[i].dataDir, "identity"))).nodeId as NodeId
      ),
    );
  }

  /** Environment for every node: the voters, the consensus config, quick reconnects. */
  env(): Record<string, string> {
    const cs = this.scenario.consensus!;
    const env: Record<string, string> = {
      MYCELIUM_CONSENSUS_VOTERS: this.voterIds.join(","),
      MYCELIUM_CONSENSUS_REQUEST_TIMEOUT_MS: String(cs.load.retryMs),
      MYCELIUM_STREAMS_RECONNECT_MAX_MS: "1000",
    };
    for (const [k, v] of Object.entries(cs.config)) {
      env[`MYCELIUM_CONSENSUS_${k.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()}`] = String(
        v,
      );
    }
    return env;
  }

  /** Starts the closed-loop clients (each runs until the load ends or `stop`). */
  startClients(): void {
    const cs = this.scenario.consensus!;
    const root = Rng.fromSeed(this.scenario.seed).derive("clients");
    for (let i = 0; i < cs.load.clients; i++) {
      const c: Client = {
        name: `client-${i}`,
        rng: root.derive(String(i)),
        seq: 0,
        target: i % this.voterIndexes.length,
        known: new Map(),
      };
      this.clients.push(this.runClient(c));
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.clients);
  }

  private async runClient(c: Client): Promise<void> {
    const load = this.scenario.consensus!.load;
    await sleep(c.rng.next() * Math.max(1, load.thinkMs));
    while (!this.stopping && this.now() < this.loadUntil) {
      const node = this.pickNode(c);
      if (!node) {
        await sleep(100);
        continue;
      }
      await this.oneOp(c, node);
      if (load.thinkMs > 0) await sleep(load.thinkMs);
    }
  }

  /** The client's voter if it is up, else the next one that is. */
  private pickNode(c: Client): LoadNode | null {
    for (let k = 0; k < this.voterIndexes.length; k++) {
      const n = this.nodes[this.voterIndexes[(c.target + k) % this.voterIndexes.length]];
      if (n.up && n.proc?.addresses) {
        c.target = (c.target + k) % this.voterIndexes.length;
        return n;
      }
    }
    return null;
  }

  private async oneOp(c: Client, node: LoadNode): Promise<void> {
    const load = this.scenario.consensus!.load;
    const r = c.rng;
    const key = `k${Math.floor(r.next() * load.keys)}`;
    const seq = ++c.seq;
    const value = `${c.name}:${seq}:`.padEnd(load.valueBytes, "x");
    const u = r.next();
    const kind = u < load.reads ? "get" : u < load.reads + load.cas ? "cas" : "put";
    const expect = kind === "cas" ? c.known.get(key) ?? null : undefined;
    this.keys.add(key);
    if (kind !== "get") this.values.add(value);
    const entry: {
      -readonly [K in keyof HistoryEntry]: HistoryEntry[K];
    } = {
      client: c.name,
      op: kind,
      key,
      value: kind === "get" ? undefined : value,
      expect,
      invoke: this.now(),
      complete: null,
    };
    this.history.push(entry);
    let result: { ok: boolean; value?: string | null } | null = null;
    for (let n: LoadNode | null = node; !this.stopping; n = this.pickNode(c)) {
      if (n) result = await this.request(n, c.name, seq, kind, key, value, expect);
      if (result) break;
      // No answer: the same operation (same seq) goes to the next voter.
      this.retries++;
      c.target = (c.target + 1) % this.voterIndexes.length;
      await sleep(100);
    }
    const done = this.now();
    if (result === null) {
      this.abandoned++;
      return;
    }
    if (kind === "get" || (kind === "cas" && !result.ok)) c.known.set(key, result.value ?? null);
    else c.known.set(key, value);
    entry.complete = done;
    entry.result = result;
    this.latencies.push(done - entry.invoke);
    this.completed++;
  }

  /** One HTTP request of operation `seq`; null when it got no definite answer. */
  private async request(
    node: LoadNode,
    session: string,
    seq: number,
    kind: "get" | "put" | "cas",
    key: string,
    value: string,
    expect: string | null | undefined,
  ): Promise<{ ok: boolean; value?: string | null } | null> {
    const load = this.scenario.consensus!.load;
    let url = `http://${node.proc!.addresses!.admin}/v1/kv/${encodeURIComponent(key)}`;
    if (kind === "get") url += `?session=${session}&seq=${seq}`;
    let status = 0;
    let body: { value?: string | null; current?: string | null } = {};
    try {
      const res = await fetch(url, {
        method: kind === "get" ? "GET" : "POST",
        headers: kind === "get" ? {} : { "content-type": "application/json" },
        body: kind === "get" ? undefined : JSON.stringify(
          kind === "cas" ? { value, expect, session, seq } : { value, session, seq },
        ),
        signal: AbortSignal.timeout(load.retryMs + HTTP_SLACK_MS),
      });
      status = res.status;
      body = await res.json().catch(() => ({}));
    } catch {
      return null; // connection refused or reset (node killed), or our own timeout
    }
    if (kind === "get" && (status === 200 || status === 404)) {
      return { ok: true, value: status === 200 ? body.value ?? null : null };
    }
    if (kind !== "get" && status === 200) return { ok: true };
    if (kind === "cas" && status === 409) return { ok: false, value: body.current ?? null };
    return null;
  }

  /** Feeds every node's newly committed blocks to the checkers. */
  async poll(): Promise<void> {
    await Promise.all(
      this.nodes.filter((n) => n.up && n.proc?.addresses).map(async (n) => {
        const from = (this.fetched[n.index] ?? 0) + 1;
        let doc: { height: number; blocks: CommittedBlock[] };
        try {
          const res = await fetch(
            `http://${n.proc!.addresses!.admin}/v1/consensus/blocks?from=${from}&limit=200`,
            { signal: AbortSignal.timeout(5000) },
          );
          if (res.status !== 200) return;
          doc = await res.json();
        } catch {
          return; // going down; the next life continues from the same height
        }
        if ((this.fetched[n.index] ?? 0) + 1 !== from) return; // a concurrent poll got them
        for (const cb of doc.blocks) {
          this.observer.onCommit(
            { instance: n.index, name: n.name, correct: true, voters: this.voterIds },
            cb,
            false,
          );
          this.fetched[n.index] = cb.block.height;
        }
      }),
    );
  }

  /** One row of heights.csv. */
  sample(t: number): void {
    this.heightSamples.push({ t, height: this.observer.height, ops: this.completed });
  }

  /**
   * `metrics`: each node's last /metrics scrape (for the trust scores the replicas hold).
   */
  evaluateChecks(
    lastFaultEnd: number,
    endMs: number,
    metrics: Array<{ name: string; body: string }> = [],
  ): CheckResult[] {
    const out: CheckResult[] = [];
    for (const c of this.scenario.checks) {
      switch (c.type) {
        case "consensus.agreement":
        case "consensus.validity":
        case "consensus.no-fork":
        case "consensus.monotonic":
        case "consensus.certificates":
          if (this.observer.violation?.check === c.type) {
            out.push({ name: c.type, ok: false, detail: this.observer.violation.detail });
          } else {
            out.push({
              name: c.type,
              ok: this.observer.commits > 0,
              detail: this.observer.commits > 0
                ? `held at all ${this.observer.commits} commits (${this.observer.height} heights)`
                : "no block was committed",
            });
          }
          break;
        case "consensus.liveness":
          out.push(this.liveness(c.within, lastFaultEnd, endMs));
          break;
        case "consensus.trust-bounds":
          out.push(trustBoundsFromMetrics(metrics));
          break;
        case "consensus.linearizable": {
          const r = checkLinearizable(this.history);
          out.push({
            name: c.type,
            ok: r.ok === true,
            detail: r.ok === true
              ? `${this.history.length} client operations (${this.abandoned} unacknowledged at the end) are linearizable`
              : `key ${r.key}: ${r.reason}`,
          });
          break;
        }
        default:
          break;
      }
    }
    return out;
  }

  /**
   * Every operation completes within `within` of its invocation or of the faults' end,
   * whichever is later (the simulator's rule).
   */
  private liveness(within: number, lastFaultEnd: number, endMs: number): CheckResult {
    const late: string[] = [];
    for (const e of this.history) {
      const deadline = Math.max(e.invoke, lastFaultEnd) + within;
      if (e.complete === null ? deadline < endMs : e.complete > deadline) late.push(describe(e));
    }
    const n = this.history.length;
    return {
      name: "consensus.liveness",
      ok: late.length === 0 && this.completed > 0,
      detail: n === 0
        ? "no operation was submitted"
        : late.length === 0
        ? `${this.completed} of ${n} operations committed, all within ${
          within / 1000
        } s of the faults' end (${this.retries} retries at another voter)`
        : `${late.length} operations missed the bound, e.g. ${late.slice(0, 3).join("; ")}`,
    };
  }

  /** summary.json's `metrics.consensus` (the simulator's shape; what a real run can know). */
  metricsSummary(endMs: number, counters: (name: string) => number) {
    const s = this.latencies.slice().sort((a, b) => a - b);
    const secs = endMs / 1000;
    return {
      voters: this.voterIds.length,
      instances: this.nodes.length,
      heights: this.observer.height,
      committedOps: this.completed,
      unacknowledgedOps: this.abandoned,
      clientRetries: this.retries,
      opsPerSec: secs > 0 ? this.completed / secs : 0,
      commitLatency: {
        count: s.length,
        p50Ms: percentile(s, 50),
        p99Ms: percentile(s, 99),
        maxMs: s.length ? s[s.length - 1] : null,
      },
      messagesPerHeight: null,
      bytesPerHeight: null,
      roundChanges: counters("mycelium_consensus_round_changes_total"),
      equivocationsSeen: counters("mycelium_consensus_equivocations_total"),
      badSignaturesDropped: counters("mycelium_consensus_signatures_rejected"),
      syncedBlocks: counters("mycelium_consensus_synced_blocks_total"),
      tasks: 0,
      exclusions: [] as Array<{ node: string; height: number }>,
      finalTrust: {} as Record<string, number>,
    };
  }
}

/** Every trust score every replica exports (`mycelium_trust_score{node}`) is in [0, 1]. */
export function trustBoundsFromMetrics(
  metrics: Array<{ name: string; body: string }>,
): CheckResult {
  const bad: string[] = [];
  let seen = 0;
  for (const m of metrics) {
    for (const g of m.body.matchAll(/^mycelium_trust_score\{node="([^"]*)"\} (\S+)$/gm)) {
      seen++;
      const v = Number(g[2]);
      if (!(v >= 0 && v <= 1)) bad.push(`${m.name} holds ${g[1].slice(0, 12)} at ${g[2]}`);
    }
  }
  return {
    name: "consensus.trust-bounds",
    ok: seen > 0 && bad.length === 0,
    detail: seen === 0
      ? "no replica exported a trust score"
      : bad.length === 0
      ? `all ${seen} trust scores on ${metrics.length} replicas in [0, 1]`
      : bad.slice(0, 5).join("; "),
  };
}

function describe(e: HistoryEntry): string {
  return `${e.client} ${e.op} ${e.key} (invoked ${(e.invoke / 1000).toFixed(1)} s)`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
