/**
 * Consensus on a real node: the same Tendermint core and replicated state as the simulator,
 * with messages as frames on the mutual-TLS streams, Ed25519 signatures (node:crypto, sync),
 * the SQLite store as the durable log, and a client API (admin HTTP) whose requests answer
 * after their operation commits.
 *
 * Signatures are self-certifying: a record's `sig` is base64url(public key || signature), and
 * it verifies only if sha256(public key) is the signer's node id and the signature holds, so
 * certificates and evidence check without a key directory.
 */
import crypto from "node:crypto";
import { type IdInterner, type NodeId, nodeIdFromPublicKey } from "../core/ids.ts";
import { DecodeError } from "../core/errors.ts";
import type { Logger, Metrics } from "../core/host.ts";
import { decodeConsensus, encodeConsensus, verifyMessage } from "../core/consensus/envelope.ts";
import { type Applied, ReplicatedState } from "../core/consensus/state.ts";
import { type ConsensusHost, Tendermint } from "../core/consensus/tendermint.ts";
import type { ClientOp, ConsensusMessage, Operation } from "../core/consensus/types.ts";
import type { KvResult } from "../core/consensus/kv.ts";
import type { NodeConfig } from "./config.ts";
import { NodeHost } from "./host.ts";
import type { SqliteStore } from "./store.ts";

export const FRAME_CONSENSUS = 3;

const b64url = (b: Uint8Array) => Buffer.from(b).toString("base64url");

/** Signs records with the node's key: base64url(public key (32) || Ed25519 signature (64)). */
export class RecordSigner {
  private readonly key: crypto.KeyObject;
  private readonly pub: Uint8Array;
  constructor(keyPem: string, publicKeyRaw: Uint8Array) {
    this.key = crypto.createPrivateKey(keyPem);
    this.pub = publicKeyRaw;
  }
  sign(payload: string): string {
    const sig = crypto.sign(null, Buffer.from(payload), this.key);
    const out = new Uint8Array(96);
    out.set(this.pub, 0);
    out.set(sig, 32);
    return b64url(out);
  }
}

/** Verifies self-certifying record signatures; keeps the last public keys it parsed. */
export class RecordVerifier {
  private readonly keys = new Map<string, crypto.KeyObject>();
  verified = 0;
  rejected = 0;
  verify(signer: NodeId, payload: string, sig: string): boolean {
    const ok = this.check(signer, payload, sig);
    if (ok) this.verified++;
    else this.rejected++;
    return ok;
  }
  private check(signer: NodeId, payload: string, sig: string): boolean {
    let raw: Uint8Array;
    try {
      raw = Buffer.from(sig, "base64url");
    } catch {
      return false;
    }
    if (raw.length !== 96) return false;
    const pub = raw.subarray(0, 32);
    if (nodeIdFromPublicKey(pub) !== signer) return false;
    const k = b64url(pub);
    let key = this.keys.get(k);
    if (!key) {
      key = crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: k }, format: "jwk" });
      if (this.keys.size > 4096) this.keys.clear();
      this.keys.set(k, key);
    }
    try {
      return crypto.verify(null, Buffer.from(payload), key, raw.subarray(32));
    } catch {
      return false;
    }
  }
}

class ConsensusNodeHost extends NodeHost<ConsensusMessage> implements ConsensusHost {
  constructor(
    opts: ConstructorParameters<typeof NodeHost<ConsensusMessage>>[0],
    private readonly signer: RecordSigner,
  ) {
    super(opts);
  }
  sign(payload: string): string {
    return this.signer.sign(payload);
  }
}

export interface ConsensusParts {
  self: NodeId;
  ids: IdInterner;
  config: NodeConfig["consensus"];
  store: SqliteStore;
  signer: RecordSigner;
  metrics: Metrics;
  log: Logger;
  /** Sends one frame to a peer; false when there is no connection to it now. */
  sendFrame: (to: NodeId, type: number, body: Uint8Array) => boolean;
}

export interface Committed {
  height: number;
  result: KvResult;
}

/** A client's own exactly-once session: operation `seq` of session `client`. */
export interface ClientSession {
  client: string;
  seq: number;
}

/** Client session names; `node-` is reserved for the node's own slots. */
export const SESSION_RE = /^(?!node-)[A-Za-z0-9._-]{1,64}$/;

/** Sessions the node's own clients use: bounded, so the store's dedup record stays bounded. */
const SLOTS = 256;

export class NodeConsensus {
  readonly tm: Tendermint;
  readonly state: ReplicatedState;
  private readonly host: ConsensusNodeHost;
  private readonly verifier = new RecordVerifier();
  private readonly waiting = new Map<string, { resolve: (c: Committed) => void; t0: number }>();
  private readonly freeSlots: number[] = [];
  private readonly slotSeq: number[] = [];
  private readonly clientPrefix: string;

  constructor(private readonly p: ConsensusParts) {
    const voters = [...new Set(p.config.voters as NodeId[])].sort();
    this.state = new ReplicatedState({
      genesisVoters: voters,
      peers: voters.includes(p.self) ? voters : [...voters, p.self],
      commitWindow: p.config.commitWindow,
      revealWindow: p.config.revealWindow,
    }, { applied: (a) => this.applied(a) });
    this.tm = new Tendermint(p.config, this.state);
    this.host = new ConsensusNodeHost({
      self: p.self,
      ids: p.ids,
      storage: p.store,
      log: p.log,
      metrics: p.metrics,
      send: (to, msg) => this.send(to, msg),
      sendToAddress: () => {},
      onTimer: (key) => this.tm.onTimer(key),
    }, p.signer);
    this.clientPrefix = `node-${p.self.slice(0, 12)}`;
  }

  start(): void {
    this.host.guard("consensus start", () => this.tm.start(this.host));
    // Resume each session after the last operation the log applied for it.
    for (let s = 0; s < SLOTS; s++) {
      this.slotSeq[s] = this.state.kv.sessionSeq(`${this.clientPrefix}/${s}`) ?? 0;
      this.freeSlots.push(SLOTS - 1 - s);
    }
    this.p.log.log("info", "consensus_started", {
      voters: this.state.voters(this.tm.h).length,
      height: this.tm.committedHeight,
    });
  }

  stop(): void {
    this.host.guard("consensus stop", () => this.tm.stop());
    this.host.close();
    for (const w of this.waiting.values()) {
      w.resolve({ height: -1, result: { ok: false, error: "stopping" } });
    }
    this.waiting.clear();
  }

  private send(to: NodeId, msg: ConsensusMessage): void {
    const body = encodeConsensus(msg);
    if (!this.p.sendFrame(to, FRAME_CONSENSUS, body)) {
      this.p.metrics.inc("mycelium_consensus_unsent_total");
    }
  }

  /** A consensus frame from a peer (its identity from its TLS certificate). */
  onFrame(from: NodeId, body: Uint8Array): void {
    let msg: ConsensusMessage;
    try {
      msg = decodeConsensus(body);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.p.metrics.inc("mycelium_consensus_dropped_total", 1, { reason: "decode" });
      this.p.log.log("debug", "consensus_dropped", { from, reason: "decode", error: e.message });
      return;
    }
    if (!verifyMessage(msg, (s, payload, sig) => this.verifier.verify(s, payload, sig))) {
      this.p.metrics.inc("mycelium_consensus_dropped_total", 1, { reason: "signature" });
      this.p.log.log("warn", "consensus_dropped", { from, reason: "signature", type: msg.t });
      return;
    }
    this.host.guard(`consensus ${msg.t}`, () => this.tm.onMessage(from, msg));
  }

  private applied(a: Applied): void {
    const w = this.waiting.get(a.op.id);
    if (!w) return;
    this.waiting.delete(a.op.id);
    this.p.metrics.observe(
      "mycelium_consensus_commit_latency_seconds",
      (performance.now() - w.t0) / 1000,
    );
    w.resolve({ height: a.height, result: a.result });
  }

  /**
   * Orders an operation and resolves when it commits (or rejects after the timeout, or
   * when no session is free). `get` reads through the log, so it is linearizable.
   */
  async submit(op: Operation, session?: ClientSession): Promise<Committed> {
    if (session) return await this.submitAs(op, session);
    const slot = this.freeSlots.pop();
    if (slot === undefined) throw new Error("too many requests in flight");
    const seq = ++this.slotSeq[slot];
    const client = `${this.clientPrefix}/${slot}`;
    const cop: ClientOp = { id: `${client}/${seq}`, client, op };
    try {
      const done = new Promise<Committed>((resolve) => {
        this.waiting.set(cop.id, { resolve, t0: performance.now() });
      });
      let accepted = false;
      this.host.guard("consensus submit", () => {
        accepted = this.tm.submit(cop);
      });
      if (!accepted) {
        this.waiting.delete(cop.id);
        throw new Error("operation refused (malformed, or not admissible in the current state)");
      }
      return await this.waitFor(cop.id, done);
    } finally {
      this.freeSlots.push(slot);
    }
  }

  /**
   * A client-session operation: answered from the replicated session record when that seq
   * was already applied (a retry), else ordered and awaited like any other. A retry of an
   * operation still in this node's mempool waits for the same commit.
   */
  private async submitAs(op: Operation, s: ClientSession): Promise<Committed> {
    const applied = this.state.kv.sessionResult(s.client, s.seq);
    if (applied) return { height: this.tm.committedHeight, result: applied };
    const last = this.state.kv.sessionSeq(s.client) ?? 0;
    if (s.seq <= last) {
      throw new Error(`session ${s.client} is already past seq ${s.seq} (at ${last})`);
    }
    const cop: ClientOp = { id: `${s.client}/${s.seq}`, client: s.client, op };
    const earlier = this.waiting.get(cop.id);
    if (earlier) throw new Error(`seq ${s.seq} of session ${s.client} is already awaited here`);
    const done = new Promise<Committed>((resolve) => {
      this.waiting.set(cop.id, { resolve, t0: performance.now() });
    });
    let accepted = false;
    this.host.guard("consensus submit", () => {
      accepted = this.tm.submit(cop) || this.tm.hasPending(cop.id);
    });
    if (!accepted) {
      this.waiting.delete(cop.id);
      throw new Error("operation refused (malformed, or not admissible in the current state)");
    }
    return await this.waitFor(cop.id, done);
  }

  private async waitFor(id: string, done: Promise<Committed>): Promise<Committed> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`not committed within ${this.p.config.requestTimeoutMs} ms`)),
        this.p.config.requestTimeoutMs,
      );
    });
    try {
      return await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
      this.waiting.delete(id);
    }
  }

  /** Gauges for /metrics. */
  refreshGauges(m: Metrics): void {
    m.set("mycelium_consensus_height", this.tm.committedHeight);
    m.set("mycelium_consensus_round", this.tm.round);
    m.set("mycelium_consensus_pending_ops", this.tm.pending);
    m.set("mycelium_consensus_voters", this.state.voters(this.tm.h).length);
    m.set("mycelium_consensus_signatures_rejected", this.verifier.rejected);
    for (const [node, score] of this.state.trust.snapshot()) {
      m.set("mycelium_trust_score", score, { node });
    }
  }

  status() {
    return {
      height: this.tm.committedHeight,
      round: this.tm.round,
      step: this.tm.step,
      voters: this.state.voters(this.tm.h),
      pending: this.tm.pending,
      lastHash: this.state.lastHash,
      trust: Object.fromEntries(this.state.trust.snapshot()),
      excluded: [...this.state.excluded.keys()],
    };
  }
}
