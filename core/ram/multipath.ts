/**
 * Rhizomorph relay paths for a replication stream (DESIGN.md section 5): where a VM's primary
 * and a replica reach each other only through relays, every message between them travels in
 * a `ram-relay` envelope through one relay, the stream split across the live paths in
 * proportion to their measured bandwidth (`PathSet`: a Degraded path's share halves, a
 * Failed one carries nothing). Probes every `probeIntervalMs` through each path measure its
 * round trip and report what it delivered; a probe unanswered in time (`probeTimeout`)
 * counts as failed, and `failedProbes` of them in a row fail the path.
 *
 * `MultipathRam` wraps a `RamReplicator` as a protocol of its own: the replicator sends and
 * receives plain RAM messages; the wrapper routes them, relays envelopes addressed to
 * others, and answers probes. Routes are configured on both ends (`setRoute`).
 *
 * Bandwidth is measured, not configured, from the one thing every path reports: its round
 * trip. Each path's weight (its "measured bandwidth" in `PathSet`) is adjusted every probe
 * round, as delay-based congestion control does: a round trip more than `QUEUE_MS` above the
 * path's smallest means data is queueing on it, so its weight shrinks by 30 %; otherwise it
 * grows by 10 % (capped). Under load the weights settle where no path queues, which is in
 * proportion to their capacities; a failed probe halves the weight. Relays are trusted to
 * keep `origin` intact (they are mutually authenticated nodes of the network).
 */
import type { Host, Protocol } from "../host.ts";
import type { NodeId } from "../ids.ts";
import { type RamMessage, ramMessageBytes } from "./messages.ts";
import { type PathsConfig, PathSet } from "./paths.ts";
import type { RamReplicator } from "./replicator.ts";

/** A RAM message from `origin` to `to`, carried through relay `via`. */
export interface RelayEnvelope<C = unknown> {
  t: "ram-relay";
  vmId: string;
  origin: NodeId;
  to: NodeId;
  via: NodeId;
  inner: RamMessage<C>;
}

/** A probe of one path (`ack` false) or its answer (`ack` true, sent back the same way). */
export interface PathProbe {
  t: "ram-probe";
  vmId: string;
  origin: NodeId;
  to: NodeId;
  via: NodeId;
  seq: number;
  ack: boolean;
  /** In an answer: payload bytes this path delivered to the answering end since its last answer. */
  delivered: number;
}

export type RamWire<C = unknown> = RamMessage<C> | RelayEnvelope<C> | PathProbe;

/** Wire size: an envelope is its inner message plus a relay header. */
export function ramWireBytes(msg: RamWire<unknown>): number {
  if (msg.t === "ram-relay") return ramMessageBytes(msg.inner) + RELAY_HEADER_BYTES;
  if (msg.t === "ram-probe") return RELAY_HEADER_BYTES;
  return ramMessageBytes(msg);
}

export const RELAY_HEADER_BYTES = 48;
/** A round trip this far above a path's smallest means data queues on it. */
export const QUEUE_MS = 20;
/** How long a failed probe's answer is still used to measure the path. */
const LATE_MS = 5000;

/**
 * A probe fails when unanswered for `probeIntervalMs` (DESIGN.md: "3 failed 100 ms probes"),
 * or for twice the path's latest round trip where that is longer, so a slow but working WAN
 * path is measured (and Degraded), not Failed. (A path whose latency jumps fails its next
 * probes; the late answers, still accepted for `LATE_MS`, restore it with the new round trip.)
 */
function probeTimeout(lastRtt: number | undefined, intervalMs: number): number {
  return Math.max(intervalMs, 2 * (lastRtt ?? 0));
}
const MAX_WEIGHT = 1e6;

interface Route {
  vmId: string;
  peer: NodeId;
  relays: NodeId[];
  paths: PathSet;
  /** Bytes sent through each relay (all time), for the deficit split. */
  sent: Map<NodeId, number>;
  /** Bytes sent through each relay in the current probe round. */
  roundSent: Map<NodeId, number>;
  /** Bytes received from the peer through each relay since the last probe answer. */
  received: Map<NodeId, number>;
  /** Each path's weight (relative bandwidth), smallest and latest round trip. */
  weight: Map<NodeId, number>;
  baseRtt: Map<NodeId, number>;
  lastRtt: Map<NodeId, number>;
  /** When each path last answered a probe (-1: never). */
  lastOk: Map<NodeId, number>;
  /** Outstanding probes per relay: seq -> send time. */
  probes: Map<NodeId, Map<number, number>>;
  /** Probes counted as failed whose answer may still come (it measures a slow path). */
  late: Map<NodeId, Map<number, number>>;
  seq: number;
}

const PROBE_TIMER = "mp/probe";

export class MultipathRam<C> implements Protocol<RamWire<C>> {
  private host: Host<RamWire<C>> | null = null;
  private readonly routes = new Map<string, Route>();
  private stopped = false;

  constructor(readonly replicator: RamReplicator<C>, private readonly config: PathsConfig) {}

  private static key(vmId: string, peer: NodeId): string {
    return `${vmId}\u0000${peer}`;
  }

  /**
   * Messages of `vmId` between this node and `peer` go through `relays` (both ends set the
   * same route). An empty list removes the route (direct again).
   */
  setRoute(vmId: string, peer: NodeId, relays: readonly NodeId[]): void {
    const k = MultipathRam.key(vmId, peer);
    if (relays.length === 0) {
      this.routes.delete(k);
      return;
    }
    const ids = [...new Set(relays)];
    this.routes.set(k, {
      vmId,
      peer,
      relays: ids,
      paths: new PathSet(this.config, ids),
      sent: new Map(ids.map((r) => [r, 0])),
      roundSent: new Map(ids.map((r) => [r, 0])),
      received: new Map(ids.map((r) => [r, 0])),
      weight: new Map(ids.map((r) => [r, 1])),
      baseRtt: new Map(),
      lastRtt: new Map(),
      lastOk: new Map(ids.map((r) => [r, -1])),
      probes: new Map(ids.map((r) => [r, new Map()])),
      late: new Map(ids.map((r) => [r, new Map()])),
      seq: 0,
    });
    if (this.host && !this.stopped) this.host.setTimer(PROBE_TIMER, this.config.probeIntervalMs);
  }

  /** The path set of a route (state and shares), for status and checks. */
  paths(vmId: string, peer: NodeId): PathSet | undefined {
    return this.routes.get(MultipathRam.key(vmId, peer))?.paths;
  }

  start(host: Host<RamWire<C>>): void {
    this.host = host;
    // The replicator's host: the same, but sends go through the router.
    const inner: Host<RamMessage<C>> = {
      self: host.self,
      ids: host.ids,
      now: () => host.now(),
      random: () => host.random(),
      send: (to, msg) => this.route(to, msg),
      setTimer: (key, d) => host.setTimer(key, d),
      cancelTimer: (key) => host.cancelTimer(key),
      storage: host.storage,
      log: host.log,
      metrics: host.metrics,
    };
    this.replicator.start(inner);
    if (this.routes.size > 0) host.setTimer(PROBE_TIMER, this.config.probeIntervalMs);
  }

  stop(): void {
    this.stopped = true;
    this.replicator.stop();
  }

  private route(to: NodeId, msg: RamMessage<C>): void {
    const h = this.host!;
    const r = this.routes.get(MultipathRam.key(msg.vmId, to));
    if (!r) {
      h.send(to, msg);
      return;
    }
    const via = this.pick(r);
    const bytes = ramMessageBytes(msg);
    r.sent.set(via, r.sent.get(via)! + bytes);
    r.roundSent.set(via, r.roundSent.get(via)! + bytes);
    h.send(via, { t: "ram-relay", vmId: msg.vmId, origin: h.self, to, via, inner: msg });
  }

  /**
   * The most under-served live path: the largest share * total - sent (deterministic; ties
   * to the earlier relay). With every path failed, the least recently failed order still
   * picks one, so the stream resumes as soon as a probe succeeds.
   */
  private pick(r: Route): NodeId {
    const shares = r.paths.shares();
    if (shares.size === 0) {
      // Every path failed: keep trying the one that answered last.
      let best = r.relays[0];
      for (const id of r.relays) if (r.lastOk.get(id)! > r.lastOk.get(best)!) best = id;
      return best;
    }
    let total = 0;
    for (const id of shares.keys()) total += r.sent.get(id as NodeId)!;
    let best = "";
    let bestDeficit = -Infinity;
    for (const [id, share] of shares) {
      const deficit = share * total - r.sent.get(id as NodeId)!;
      if (deficit > bestDeficit) {
        bestDeficit = deficit;
        best = id;
      }
    }
    return best as NodeId;
  }

  onMessage(from: NodeId, msg: RamWire<C>): void {
    if (this.stopped || !this.host) return;
    const h = this.host;
    if (msg.t === "ram-relay") {
      if (msg.to !== h.self) {
        if (from !== msg.origin || msg.via !== h.self) return; // only first-hop relaying
        h.metrics.inc("mycelium_ram_relayed_total");
        h.metrics.inc("mycelium_ram_relayed_bytes_total", ramMessageBytes(msg.inner));
        h.send(msg.to, msg);
        return;
      }
      if (from !== msg.via) return;
      const r = this.routes.get(MultipathRam.key(msg.vmId, msg.origin));
      if (r?.received.has(from)) {
        r.received.set(from, r.received.get(from)! + ramMessageBytes(msg.inner));
      }
      this.replicator.onMessage(msg.origin, msg.inner);
      return;
    }
    if (msg.t === "ram-probe") return this.onProbe(from, msg);
    this.replicator.onMessage(from, msg);
  }

  private onProbe(from: NodeId, p: PathProbe): void {
    const h = this.host!;
    const self = h.self;
    const dest = p.ack ? p.origin : p.to;
    if (dest !== self) {
      // A relay: pass it on (the path is the relay itself).
      if (p.via === self) h.send(dest, p);
      return;
    }
    if (from !== p.via) return;
    if (!p.ack) {
      const r = this.routes.get(MultipathRam.key(p.vmId, p.origin));
      const delivered = r?.received.get(p.via) ?? 0;
      r?.received.set(p.via, 0);
      h.send(p.via, { ...p, ack: true, delivered });
      return;
    }
    const r = this.routes.get(MultipathRam.key(p.vmId, p.to));
    if (!r || !r.probes.has(p.via)) return;
    const sentAt = r.probes.get(p.via)!.get(p.seq) ?? r.late.get(p.via)!.get(p.seq);
    if (sentAt === undefined) return; // too late even for a slow path
    r.probes.get(p.via)!.delete(p.seq);
    r.late.get(p.via)!.delete(p.seq);
    const rtt = h.now() - sentAt;
    r.lastRtt.set(p.via, rtt);
    r.lastOk.set(p.via, h.now());
    const base = Math.min(r.baseRtt.get(p.via) ?? Infinity, rtt);
    r.baseRtt.set(p.via, base);
    const w = r.weight.get(p.via)!;
    const next = rtt > base + QUEUE_MS ? w * 0.7 : Math.min(w * 1.1, MAX_WEIGHT);
    r.weight.set(p.via, next);
    // One-way latency (half the round trip) is what DESIGN.md's 100 ms bound is about.
    r.paths.observe(p.via, { latencyMs: rtt / 2, bandwidthBytesPerMs: next });
    r.paths.probeResult(p.via, true);
  }

  onTimer(key: string): void {
    if (this.stopped || !this.host) return;
    if (key !== PROBE_TIMER) {
      this.replicator.onTimer(key);
      return;
    }
    const h = this.host;
    for (const r of this.routes.values()) {
      let max = 0;
      for (const w of r.weight.values()) max = Math.max(max, w);
      for (const [via, w] of r.weight) r.weight.set(via, w / max); // relative weights
      for (const via of r.relays) {
        const out = r.probes.get(via)!;
        const timeout = probeTimeout(r.lastRtt.get(via), this.config.probeIntervalMs);
        const late = r.late.get(via)!;
        for (const [seq, at] of late) {
          if (h.now() - at > LATE_MS) late.delete(seq);
        }
        for (const [seq, at] of out) {
          if (h.now() - at < timeout) continue;
          out.delete(seq);
          late.set(seq, at);
          const was = r.paths.state(via);
          r.paths.probeResult(via, false);
          if (was !== "failed" && r.paths.state(via) === "failed") {
            // Whatever was in flight through it is lost: send it again over the live paths.
            this.replicator.resendUnacked(r.vmId, r.peer);
          }
          r.weight.set(via, Math.max(r.weight.get(via)! * 0.5, 1e-6));
          h.metrics.inc("mycelium_ram_probe_failures_total");
        }
        r.roundSent.set(via, 0);
        const seq = ++r.seq;
        out.set(seq, h.now());
        h.send(via, {
          t: "ram-probe",
          vmId: r.vmId,
          origin: h.self,
          to: r.peer,
          via,
          seq,
          ack: false,
          delivered: 0,
        });
      }
    }
    if (this.routes.size > 0) h.setTimer(PROBE_TIMER, this.config.probeIntervalMs);
  }
}
