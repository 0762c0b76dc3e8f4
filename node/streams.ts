/**
 * Outbound mutual-TLS streams to peers, one per peer, kept up with exponential backoff and
 * jitter (backoff.ts). The server side is the node's TLS listener. Frames are the
 * length-prefixed frames of framing.ts: ping/pong here, consensus frames (consensus.ts) and
 * later protocols add theirs.
 */
import tls from "node:tls";
import type { Logger, Metrics } from "../core/host.ts";
import type { NodeId } from "../core/ids.ts";
import { Reconnector } from "./backoff.ts";
import { parseHostPort } from "./datagram.ts";
import { attachFramedSocket, type FramedSocket } from "./framing.ts";
import { type NodeIdentity, tlsOptions } from "./pki.ts";

export const FRAME_PING = 1;
export const FRAME_PONG = 2;

export interface PeerStreamOptions {
  identity: NodeIdentity;
  peer: NodeId;
  /** The peer's current stream address ("host:port"), from membership; undefined if unknown. */
  address: () => string | undefined;
  maxFrameBytes: number;
  reconnect: { baseMs: number; maxMs: number };
  /**
   * Liveness of an established stream: a ping every `intervalMs`; no frame back for
   * `timeoutMs` closes it and reconnects. `connectTimeoutMs` bounds one connection attempt.
   * Without these a stream that lost packets in a partition waits out TCP's exponential
   * retransmission backoff (tens of seconds) after the network has healed.
   */
  heartbeat?: { intervalMs: number; timeoutMs: number; connectTimeoutMs: number };
  metrics: Metrics;
  log: Logger;
  /**
   * Frames other than ping/pong the peer sends back on this stream (it replies over our
   * stream while its own to us is down). Absent: they are ignored.
   */
  onFrame?: (type: number, body: Uint8Array) => void;
}

/** One peer's stream: connects, reconnects with backoff when it drops, answers pings. */
export class PeerStream {
  private conn: FramedSocket | null = null;
  private readonly reconnector: Reconnector;
  private waiters: Array<(body: Uint8Array | null) => void> = [];
  private connectedOnce = false;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private lastHeard = 0;
  lastError = "";

  constructor(private readonly o: PeerStreamOptions) {
    this.reconnector = new Reconnector(() => this.connect(), o.reconnect);
  }

  get connected(): boolean {
    return this.conn !== null && !this.conn.closed;
  }
  get attempt(): number {
    return this.reconnector.attempt;
  }

  start(): void {
    this.reconnector.start();
  }

  stop(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.reconnector.stop();
    this.conn?.close("stopped");
    this.conn = null;
  }

  private connect(): Promise<void> {
    const addr = this.o.address();
    const hp = addr ? parseHostPort(addr) : null;
    if (!hp) return Promise.reject(new Error(`no stream address known for ${this.o.peer}`));
    if (this.connectedOnce) this.o.metrics.inc("mycelium_stream_reconnects_total");
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        ...tlsOptions(this.o.identity, { expectPeer: this.o.peer }),
        host: hp.host,
        port: hp.port,
      });
      socket.setNoDelay(true); // small protocol frames: Nagle would hold them for an ACK
      let settled = false;
      const hb = this.o.heartbeat;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        this.o.metrics.inc("mycelium_stream_connect_failures_total");
        this.lastError = e.message;
        socket.destroy();
        reject(e);
      };
      const connectTimer = hb
        ? setTimeout(
          () => fail(new Error(`connect timed out after ${hb.connectTimeoutMs} ms`)),
          hb.connectTimeoutMs,
        )
        : undefined;
      socket.once("secureConnect", () => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        this.connectedOnce = true;
        this.lastHeard = performance.now();
        const conn = attachFramedSocket(socket, {
          maxFrameBytes: this.o.maxFrameBytes,
          counters: {},
          onFrame: (type, body, owned) => {
            this.lastHeard = performance.now();
            // Heartbeat pongs are empty; ping() sends a timestamp.
            if (type === FRAME_PONG) {
              if (body.length > 0) this.waiters.shift()?.(body.slice());
            } else if (type !== FRAME_PING) this.o.onFrame?.(type, owned ? body : body.slice());
          },
          onClose: (reason) => {
            if (this.conn === conn) this.conn = null;
            for (const w of this.waiters.splice(0)) w(null);
            if (reason !== "stopped") {
              this.o.log.log("info", "stream_lost", { peer: this.o.peer, reason });
              this.reconnector.failed();
            }
          },
        });
        this.conn = conn;
        if (hb && !this.heartbeat) {
          this.heartbeat = setInterval(() => this.beat(hb.timeoutMs), hb.intervalMs);
        }
        resolve();
      });
      socket.once("error", fail);
    });
  }

  /** Heartbeat tick: ping the peer, or drop a stream that has gone silent. */
  private beat(timeoutMs: number): void {
    const c = this.conn;
    if (!c || c.closed) return;
    if (performance.now() - this.lastHeard > timeoutMs) {
      this.o.metrics.inc("mycelium_stream_heartbeat_timeouts_total");
      c.close(`no frame from the peer for ${timeoutMs} ms`);
      return;
    }
    c.send(FRAME_PING, new Uint8Array(0));
  }

  /** Sends one frame if connected now; false otherwise (the caller's protocol retransmits). */
  send(type: number, body: Uint8Array): boolean {
    if (!this.connected) return false;
    this.conn!.send(type, body);
    return true;
  }

  /** `send` for a frame made with `allocFrame` (sent as is, no copy). */
  sendFrame(frame: Uint8Array): boolean {
    if (!this.connected) return false;
    this.conn!.sendFrame(frame);
    return true;
  }

  /** Round trip of a ping over the stream, in ms; rejects if not connected in time. */
  async ping(timeoutMs = 3000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    while (!this.connected) {
      if (performance.now() > deadline) {
        throw new Error(`not connected to ${this.o.peer}: ${this.lastError}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const t0 = performance.now();
    const body = new TextEncoder().encode(String(t0));
    const pong = new Promise<Uint8Array | null>((resolve) => {
      this.waiters.push(resolve);
      setTimeout(() => resolve(null), Math.max(1, deadline - performance.now()));
    });
    this.conn!.send(FRAME_PING, body);
    const reply = await pong;
    if (!reply) throw new Error(`no pong from ${this.o.peer}`);
    return performance.now() - t0;
  }
}

/** The node's outbound streams, created on first use. */
export class StreamPool {
  private readonly streams = new Map<NodeId, PeerStream>();
  constructor(private readonly make: (peer: NodeId) => PeerStream) {}

  get(peer: NodeId): PeerStream {
    let s = this.streams.get(peer);
    if (!s) {
      s = this.make(peer);
      this.streams.set(peer, s);
      s.start();
    }
    return s;
  }

  stopAll(): void {
    for (const s of this.streams.values()) s.stop();
    this.streams.clear();
  }
}
