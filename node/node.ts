/**
 * A Mycelium node: the same core/ SWIM membership as the simulator, over real sockets.
 * UDP datagrams (authenticated with the network's isolation key) carry gossip; a mutual-TLS
 * stream listener (client certificates required, checked against the network CA) serves
 * reliable traffic (consensus frames, distributed RAM frames: ram.ts, object storage frames:
 * objects.ts); state lives in SQLite, object chunks and manifests in files;
 * the admin HTTP server exposes health, metrics, the membership view and the client APIs.
 * SIGTERM leaves the cluster gracefully.
 */
import { mkdir } from "node:fs/promises";
import { statfsSync } from "node:fs";
import { totalmem } from "node:os";
import tls from "node:tls";
import { join } from "node:path";
import { IdInterner, type NodeId } from "../core/ids.ts";
import { DecodeError } from "../core/errors.ts";
import { encodeSwim, parseSwim } from "../core/membership/codec.ts";
import { MemberState, memberStateName, type SwimMessage } from "../core/membership/messages.ts";
import { Swim } from "../core/membership/swim.ts";
import { type AdminServer, startAdmin } from "./admin.ts";
import type { NodeConfig } from "./config.ts";
import { DatagramTransport } from "./datagram.ts";
import { attachFramedSocket, FrameError } from "./framing.ts";
import { NodeHost } from "./host.ts";
import { JsonLogger } from "./log.ts";
import { PromMetrics, SWIM_METRIC_NAMES } from "./metrics.ts";
import { loadNodeIdentity, type NodeIdentity, peerNodeId, tlsOptions } from "./pki.ts";
import { SqliteStore } from "./store.ts";
import {
  type ClientSession,
  FRAME_CONSENSUS,
  NodeConsensus,
  RecordSigner,
  SESSION_RE,
} from "./consensus.ts";
import { operationSchema } from "../core/consensus/envelope.ts";
import type { Operation } from "../core/consensus/types.ts";
import type { FramedSocket } from "./framing.ts";
import { FRAME_PING, FRAME_PONG, PeerStream, StreamPool } from "./streams.ts";
import { FRAME_RAM, NodeRam } from "./ram.ts";
import { ramApi } from "./ram_api.ts";
import { FRAME_OBJECTS, NodeObjects, type StorageLabels, type StoragePeer } from "./objects.ts";
import { objectsApi } from "./objects_api.ts";
import { LABEL_RE } from "./objects_config.ts";
import { type Tier, TIERS } from "../core/spores/types.ts";
import { PROTOCOL_MAJOR, runtimeVersion, VERSION } from "./version.ts";
import { FRAME_SPORES, NodeSpores, type SeedMember } from "./spores.ts";
import { bootstrap, type BootstrapResult } from "./bootstrap.ts";
import { sporesApi } from "./spores_api.ts";
import { CONN_NEVER, type ConnSummary, recordConnEvent } from "../core/spores/latent.ts";
import { RecordVerifier } from "./consensus.ts";

export { FRAME_PING, FRAME_PONG } from "./streams.ts";

/**
 * A member's announced address is "GOSSIP#STREAMS#TIER#LABELS" (GOSSIP and STREAMS
 * host:port; TIER its `node.tier`; LABELS its storage failure-domain labels as
 * "region/zone/host", each part possibly empty, the whole field absent without labels); the
 * core treats it as opaque. "GOSSIP#STREAMS" and plain "host:port" (gossip only) are
 * accepted too; an unknown or absent tier reads as undefined.
 */
export function splitAnnounced(addr: string | undefined): {
  gossip?: string;
  streams?: string;
  tier?: Tier;
  labels?: StorageLabels;
} {
  if (!addr) return {};
  const [gossip, streams, tier, labels] = addr.split("#");
  const out: ReturnType<typeof splitAnnounced> = {
    gossip: gossip || undefined,
    streams: streams || undefined,
  };
  if (TIERS.includes(tier as Tier)) out.tier = tier as Tier;
  if (labels) {
    const [region, zone, host] = labels.split("/");
    const l: { region?: string; zone?: string; host?: string } = {};
    if (region && LABEL_RE.test(region)) l.region = region;
    if (zone && LABEL_RE.test(zone)) l.zone = zone;
    if (host && LABEL_RE.test(host)) l.host = host;
    out.labels = l;
  }
  return out;
}

/** The address a node announces (see `splitAnnounced`). */
export function announce(
  gossip: string,
  streams: string,
  tier: Tier,
  labels: StorageLabels,
): string {
  const base = `${gossip}#${streams}#${tier}`;
  if (!labels.region && !labels.zone && !labels.host) return base;
  return `${base}#${labels.region ?? ""}/${labels.zone ?? ""}/${labels.host ?? ""}`;
}

export class MyceliumNode {
  readonly identity: NodeIdentity;
  readonly config: NodeConfig;
  readonly swim: Swim;
  readonly metrics: PromMetrics;
  readonly log: JsonLogger;
  private readonly store: SqliteStore;
  private readonly transport: DatagramTransport;
  private readonly host: NodeHost<SwimMessage>;
  private readonly tlsServer: tls.Server;
  readonly streamAddress: string;
  private admin: AdminServer | null = null;
  private readonly addrs = new Map<NodeId, string>();
  private readonly streams: StreamPool;
  private readonly streamCounters: Record<string, number> = {};
  /** The latest inbound stream from each peer: a way back when our own stream is down. */
  private readonly inbound = new Map<NodeId, FramedSocket>();
  /** Every open inbound stream: closed on stop (the TLS server waits for them to end). */
  private readonly inboundAll = new Set<FramedSocket>();
  consensus: NodeConsensus | null = null;
  /** Distributed RAM: always on (VMs come from the config or the API). */
  ram: NodeRam | null = null;
  /** Object storage: always on. */
  objects: NodeObjects | null = null;
  /** Latent gossip and Seed spores: always on. */
  spores: NodeSpores | null = null;
  /** How discovery brought this node in (null while it runs). */
  bootstrapped: BootstrapResult | null = null;
  /** Stream connections, condensed (the own Latent entry's connection events). */
  private conn: ConnSummary = CONN_NEVER;
  /** Protocol frames handled: the own Latent entry's processing volume. */
  private processed = 0;
  private readonly startedAt = Date.now();
  private stopping = false;

  private constructor(parts: {
    identity: NodeIdentity;
    config: NodeConfig;
    swim: Swim;
    metrics: PromMetrics;
    log: JsonLogger;
    store: SqliteStore;
    transport: DatagramTransport;
    host: NodeHost<SwimMessage>;
    tlsServer: tls.Server;
    streamAddress: string;
  }) {
    this.identity = parts.identity;
    this.config = parts.config;
    this.swim = parts.swim;
    this.metrics = parts.metrics;
    this.log = parts.log;
    this.store = parts.store;
    this.transport = parts.transport;
    this.host = parts.host;
    this.tlsServer = parts.tlsServer;
    this.streamAddress = parts.streamAddress;
    const cfg = parts.config.streams;
    this.streams = new StreamPool((peer) =>
      new PeerStream({
        identity: parts.identity,
        peer,
        address: () => splitAnnounced(this.swim.addrOf(peer)).streams,
        maxFrameBytes: cfg.maxFrameBytes,
        reconnect: cfg.reconnect,
        heartbeat: cfg.heartbeat,
        metrics: parts.metrics,
        log: parts.log.child("streams"),
        onFrame: (type, body) => this.onStreamFrame(peer, type, body),
      })
    );
  }

  static async start(config: NodeConfig): Promise<MyceliumNode> {
    const identity = await loadNodeIdentity(config.node.identityDir);
    const log = new JsonLogger({ node: identity.name || identity.nodeId, level: config.log.level });
    const metrics = new PromMetrics();
    metrics.preregister([
      ...SWIM_METRIC_NAMES,
      "mycelium_tls_handshake_failures_total",
      "mycelium_stream_connections_total",
      "mycelium_handler_errors_total",
      "mycelium_datagrams_unroutable_total",
      "mycelium_stream_reconnects_total",
      "mycelium_stream_connect_failures_total",
    ]);
    await mkdir(config.node.dataDir, { recursive: true });
    const store = SqliteStore.open(join(config.node.dataDir, "state.db"));
    const ids = new IdInterner();

    // Filled in below: the transport's callback needs the node, the node needs the transport.
    let node: MyceliumNode | null = null;
    const transport = await DatagramTransport.bind({
      host: config.gossip.bind,
      port: config.gossip.port,
      key: identity.isolationKey,
      self: identity.nodeId,
      maxBytes: 65_507,
      onMessage: (from, payload, addr) => node?.onDatagram(from, payload, addr),
    });
    const advertise = config.gossip.advertise ?? transport.address;

    const counters: Record<string, number> = {};
    const { server: tlsServer, address: streamAddress } = await listenStreams(
      identity,
      config.streams.bind,
      config.streams.port,
      config.streams.maxFrameBytes,
      counters,
      log,
      metrics,
      {
        onFrame: (peer, type, body) => node?.onStreamFrame(peer, type, body) ?? false,
        onOpen: (peer, conn) => {
          node?.inboundAll.add(conn);
          node?.inbound.set(peer, conn);
          node?.connEvent(true);
        },
        onClose: (peer, conn) => {
          node?.inboundAll.delete(conn);
          node?.connEvent(false);
          if (node?.inbound.get(peer) === conn) {
            node.inbound.delete(peer);
            node.objects?.peerGone(peer);
          }
        },
      },
    );

    const swim = new Swim({
      config: config.membership,
      // Joins go through discovery (node/bootstrap.ts), one source at a time.
      seedAddrs: [],
      addr: announce(advertise, streamAddress, config.node.tier, config.storage.labels),
      listener: (idx, from, to) => {
        if (from === to) return;
        const id = ids.id(idx);
        if (to === MemberState.Alive) node?.spores?.addPeer(id);
        log.log(to === MemberState.Alive ? "info" : "warn", "member_state", {
          member: id,
          from: memberStateName[from] ?? "unknown",
          to: memberStateName[to],
        });
        // Object storage: a death (or leave) schedules a repair scan (objects_repair.ts).
        node?.objects?.memberChanged(id, memberStateName[to]);
      },
    });
    const host = new NodeHost<SwimMessage>({
      self: identity.nodeId,
      ids,
      storage: store,
      log: log.child("swim"),
      metrics,
      send: (to, msg) => node!.sendTo(to, msg),
      sendToAddress: (addr, msg) => node!.sendToAddr(addr, msg),
      onTimer: (key) => swim.onTimer(key),
    });
    node = new MyceliumNode({
      identity,
      config,
      swim,
      metrics,
      log,
      store,
      transport,
      host,
      tlsServer,
      streamAddress,
    });
    Object.assign(node.streamCounters, counters);
    host.guard("start", () => swim.start(host));
    if (config.consensus.voters.length > 0) {
      const n = node;
      node.consensus = new NodeConsensus({
        self: identity.nodeId,
        ids: new IdInterner(),
        config: config.consensus,
        store,
        signer: new RecordSigner(identity.keyPem, identity.publicKeyRaw),
        metrics,
        log: log.child("consensus"),
        sendFrame: (to, type, body) => n.sendFrame(to, type, body),
      });
      node.consensus.start();
    }
    {
      const n = node;
      node.ram = new NodeRam({
        self: identity.nodeId,
        ids: new IdInterner(),
        config: config.ram,
        maxFrameBytes: config.streams.maxFrameBytes,
        store,
        metrics,
        log: log.child("ram"),
        sendFrame: (to, frame) => n.sendEncoded(to, frame),
        rtt: (peer, timeoutMs) => n.streams.get(peer).ping(timeoutMs),
      });
      node.ram.start();
    }
    {
      const n = node;
      node.objects = new NodeObjects({
        self: identity.nodeId,
        tier: config.node.tier,
        config: config.storage,
        dataDir: config.node.dataDir,
        isolationKey: identity.isolationKey,
        maxFrameBytes: config.streams.maxFrameBytes,
        metrics,
        log: log.child("storage"),
        sendFrame: (to, frame) => n.sendEncoded(to, frame),
        peers: () => n.storagePeers(),
      });
      await node.objects.open();
      node.objects.startRepair();
    }
    {
      const n = node;
      const signer = new RecordSigner(identity.keyPem, identity.publicKeyRaw);
      const verifier = new RecordVerifier();
      node.spores = new NodeSpores({
        self: identity.nodeId,
        network: identity.networkId,
        tier: config.node.tier,
        config: config.spores,
        dataDir: config.node.dataDir,
        sign: (payload) => signer.sign(payload),
        verify: (signer, payload, sig) => verifier.verify(signer, payload, sig),
        store,
        metrics,
        log: log.child("spores"),
        sendFrame: (to, body) => n.sendFrame(to, FRAME_SPORES, body),
        status: () => n.ownStatus(),
        members: () => n.seedMembers(),
        trustOf: (node) => n.trustOf(node),
        isMember: () => n.swim.isJoined && n.bootstrapped !== null,
      });
      await node.spores.start(node.storagePeers().map((p) => p.id));
      const c = config.join;
      void bootstrap({
        self: identity.nodeId,
        selfAddr: advertise,
        rhizomorphs: c.rhizomorphs,
        seedLocations: config.spores.seed.locations,
        entryPoints: c.seeds,
        attemptTimeoutMs: c.attemptTimeoutMs,
        retryMs: c.retryMs,
        spores: node.spores,
        joinThrough: (addrs) => host.guard("join", () => swim.joinThrough(addrs)),
        isJoined: () => swim.isJoined,
        sclerotia: () =>
          n.storagePeers()
            .filter((p) => p.state === "alive" && p.tier === "sclerotia")
            .map((p) => splitAnnounced(swim.addrOf(p.id)).gossip ?? ""),
        stopped: () => n.stopping,
        log: log.child("bootstrap"),
        metrics,
      }).then((r) => {
        n.bootstrapped = r;
        n.metrics.set("mycelium_bootstrap_seconds", r.ms / 1000, { source: r.source });
      }).catch((e) => n.log.log("error", "bootstrap_failed", { error: e }));
    }
    node.admin = await startAdmin(node.adminView(), config.admin.bind, config.admin.port);
    log.log("info", "started", {
      nodeId: identity.nodeId,
      networkId: identity.networkId,
      gossip: transport.address,
      streams: streamAddress,
      admin: node.admin.address,
      incarnation: swim.incarnation,
    });
    return node;
  }

  get gossipAddress(): string {
    return this.transport.address;
  }
  get adminAddress(): string {
    return this.admin?.address ?? "";
  }

  // ---- transport ----

  private onDatagram(from: NodeId, payload: Uint8Array, addr: string): void {
    let msg: SwimMessage;
    try {
      msg = parseSwim(payload);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      this.metrics.inc("mycelium_datagrams_dropped_total", 1, { reason: "decode" });
      this.log.log("debug", "datagram_dropped", { reason: "decode", from, addr, error: e.message });
      return;
    }
    if (from === this.identity.nodeId) return;
    this.addrs.set(from, addr);
    this.host.guard(`message ${msg.t}`, () => this.swim.onMessage(from, msg));
  }

  private sendTo(to: NodeId, msg: SwimMessage): void {
    const addr = this.addrs.get(to) ?? splitAnnounced(this.swim.addrOf(to)).gossip;
    if (!addr) {
      this.metrics.inc("mycelium_datagrams_unroutable_total");
      return;
    }
    this.sendToAddr(addr, msg);
  }

  private sendToAddr(addr: string, msg: SwimMessage): void {
    this.transport.send(addr, encodeSwim(msg));
  }

  /** A frame on an inbound stream; true if it was ours to handle. */
  private onStreamFrame(peer: NodeId, type: number, body: Uint8Array): boolean {
    this.processed++;
    if (type === FRAME_CONSENSUS && this.consensus) {
      this.consensus.onFrame(peer, body);
      return true;
    }
    if (type === FRAME_RAM && this.ram) {
      this.ram.onFrame(peer, body);
      return true;
    }
    if (type === FRAME_OBJECTS && this.objects) {
      this.objects.onFrame(peer, body);
      return true;
    }
    if (type === FRAME_SPORES && this.spores) {
      this.spores.onFrame(peer, body);
      return true;
    }
    return false;
  }

  /**
   * Sends a frame to a peer over our stream to it, or, while that is down, back over the
   * peer's own stream to us; false if neither is up (the stream keeps reconnecting).
   */
  private sendFrame(to: NodeId, type: number, body: Uint8Array): boolean {
    if (this.stopping) return false;
    if (this.streams.get(to).send(type, body)) return true;
    const back = this.inbound.get(to);
    if (back && !back.closed) {
      back.send(type, body);
      return true;
    }
    return false;
  }

  /** `sendFrame` for a frame made with `allocFrame` (sent as is, no copy). */
  private sendEncoded(to: NodeId, frame: Uint8Array): boolean {
    if (this.stopping) return false;
    if (this.streams.get(to).sendFrame(frame)) return true;
    const back = this.inbound.get(to);
    if (back && !back.closed) {
      back.sendFrame(frame);
      return true;
    }
    return false;
  }

  private async consensusApi(
    method: string,
    url: URL,
    body: string,
  ): Promise<{ status: number; body: unknown } | null> {
    const c = this.consensus;
    if (!c) {
      return {
        status: 503,
        body: { error: "consensus is off on this node (consensus.voters is empty)" },
      };
    }
    const path = url.pathname;
    const commit = async (op: Operation, session?: ClientSession) => {
      try {
        return { ok: true as const, ...(await c.submit(op, session)) };
      } catch (e) {
        return { ok: false as const, error: (e as Error).message };
      }
    };
    // Optional exactly-once session: a client that retries {session, seq} at another node
    // after a timeout gets the first outcome, never a second application.
    const sessionOf = (session: unknown, seq: unknown): ClientSession | string | undefined => {
      if (session === undefined && seq === undefined) return undefined;
      if (typeof session !== "string" || !SESSION_RE.test(session)) {
        return "session: expected 1-64 letters, digits, '.', '_' or '-' (not starting with 'node-')";
      }
      const n = typeof seq === "string" ? Number(seq) : seq;
      if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
        return "seq: expected a positive integer (the session's operation number)";
      }
      return { client: session, seq: n };
    };
    if (path.startsWith("/v1/kv/")) {
      let key: string;
      try {
        key = decodeURIComponent(path.slice("/v1/kv/".length));
      } catch {
        return { status: 400, body: { error: "the key is not valid percent-encoding" } };
      }
      if (key === "" || key.length > 1024) {
        return { status: 400, body: { error: "the key must be 1 to 1024 characters" } };
      }
      if (method === "GET") {
        if (url.searchParams.get("stale") === "1") {
          const value = c.state.kv.read(key);
          return {
            status: value === null ? 404 : 200,
            body: { key, value, height: c.tm.committedHeight, stale: true },
          };
        }
        const sess = sessionOf(
          url.searchParams.get("session") ?? undefined,
          url.searchParams.get("seq") ?? undefined,
        );
        if (typeof sess === "string") return { status: 400, body: { error: sess } };
        const r = await commit({ kind: "get", key }, sess);
        if (!r.ok) return { status: 504, body: { key, error: r.error } };
        const value = r.result.value ?? null;
        return { status: value === null ? 404 : 200, body: { key, value, height: r.height } };
      }
      if (method !== "POST" && method !== "PUT") {
        return { status: 405, body: { error: `method ${method} not allowed` } };
      }
      let doc: { value?: unknown; expect?: unknown; session?: unknown; seq?: unknown };
      try {
        doc = JSON.parse(body);
      } catch {
        return {
          status: 400,
          body: {
            error: 'expected a JSON body {"value": "..."} (and "expect" for compare-and-set)',
          },
        };
      }
      if (typeof doc?.value !== "string") {
        return { status: 400, body: { error: "value: expected a string" } };
      }
      if ("expect" in doc && doc.expect !== null && typeof doc.expect !== "string") {
        return { status: 400, body: { error: "expect: expected a string or null" } };
      }
      const sess = sessionOf(doc.session, doc.seq);
      if (typeof sess === "string") return { status: 400, body: { error: sess } };
      const op: Operation = "expect" in doc
        ? { kind: "cas", key, expect: doc.expect as string | null, value: doc.value }
        : { kind: "put", key, value: doc.value };
      const r = await commit(op, sess);
      if (!r.ok) return { status: 504, body: { key, error: r.error } };
      if (!r.result.ok) {
        return {
          status: 409,
          body: { key, ok: false, current: r.result.value ?? null, height: r.height },
        };
      }
      return { status: 200, body: { key, ok: true, height: r.height } };
    }
    if (path === "/v1/ops" && method === "POST") {
      let doc: { op?: unknown };
      try {
        doc = JSON.parse(body);
      } catch {
        return { status: 400, body: { error: 'expected a JSON body {"op": {...}}' } };
      }
      const parsed = operationSchema.safeParse(doc?.op);
      if (!parsed.success) {
        const i = parsed.error.issues[0];
        return { status: 400, body: { error: `op.${i.path.join(".")}: ${i.message}` } };
      }
      const r = await commit(parsed.data as Operation);
      if (!r.ok) return { status: 504, body: { error: r.error } };
      return { status: r.result.ok ? 200 : 409, body: { height: r.height, result: r.result } };
    }
    if (path === "/v1/consensus/status" && method === "GET") {
      return { status: 200, body: c.status() };
    }
    if (path === "/v1/consensus/blocks" && method === "GET") {
      const from = Number(url.searchParams.get("from") ?? "1");
      const limit = Math.min(500, Number(url.searchParams.get("limit") ?? "100"));
      if (!Number.isInteger(from) || from < 1 || !Number.isInteger(limit) || limit < 1) {
        return { status: 400, body: { error: "from and limit must be positive integers" } };
      }
      const blocks = [];
      for (let h = from; h <= c.tm.committedHeight && blocks.length < limit; h++) {
        const cb = c.tm.committedBlock(h);
        if (!cb) break;
        blocks.push(cb);
      }
      return { status: 200, body: { height: c.tm.committedHeight, blocks } };
    }
    return null;
  }

  // ---- admin ----

  private adminView() {
    return {
      health: () => (this.stopping ? ["stopping"] : []),
      readiness: () => {
        const missing: string[] = [];
        if (this.stopping) missing.push("stopping");
        if (!this.swim.isJoined && this.swim.liveMembers === 0) missing.push("not joined yet");
        return missing;
      },
      status: () => this.status(),
      members: () => this.memberList(),
      streamPing: async (peer: string) => {
        const known = this.swim.members().some((m) => m.node === peer);
        if (!known) return { status: 404, body: { error: `no member ${peer}` } };
        const s = this.streams.get(peer as NodeId);
        try {
          const rttMs = await s.ping();
          return { status: 200, body: { peer, rttMs, attempt: s.attempt } };
        } catch (e) {
          return { status: 503, body: { peer, error: (e as Error).message, attempt: s.attempt } };
        }
      },
      spores: (method: string, url: URL) => sporesApi(this.spores, this.bootstrapped, method, url),
      api: (method: string, url: URL, body: string) =>
        url.pathname.startsWith("/v1/ram/") && this.ram
          ? ramApi(this.ram, method, url, body)
          : this.consensusApi(method, url, body),
      objects: this.objects
        ? {
          maxBodyBytes: this.config.storage.maxObjectBytes,
          handle: (
            method: string,
            url: URL,
            headers: Record<string, string | string[] | undefined>,
            body: Uint8Array,
          ) => objectsApi(this.objects!, method, url, headers, body),
        }
        : undefined,
      metrics: async () => {
        this.refreshGauges();
        return { contentType: this.metrics.contentType, body: await this.metrics.render() };
      },
    };
  }

  private connEvent(up: boolean): void {
    this.conn = recordConnEvent(this.conn, up, Date.now(), this.config.spores.latent.flapWindowMs);
  }

  /** This node's status for its signed Latent entry. */
  ownStatus() {
    const a = this.swim.awareness;
    const mem = process.memoryUsage().rss / totalmem();
    const disk = this.diskUsage();
    return {
      health: a === 0 ? "ok" as const : a < 4 ? "degraded" as const : "failing" as const,
      // The consensus-ordered trust table where this node runs consensus (the same on every
      // voter); elsewhere the starting score (the node holds no certified Primary).
      trust: this.trustOf(this.identity.nodeId) ?? 0.5,
      usage: {
        cpu: 0,
        memory: Math.min(1, mem),
        storage: disk,
        bandwidth: 0,
      },
      uptimeDiffMs: Date.now() - this.startedAt,
      processingVolume: this.processed,
      conn: this.conn,
    };
  }

  private disk = { at: -Infinity, used: 0 };
  /** Fraction of the data dir's file system in use (re-read at most every 10 s). */
  private diskUsage(): number {
    const now = Date.now();
    if (now - this.disk.at > 10_000) {
      this.disk.at = now;
      try {
        const s = statfsSync(this.config.node.dataDir);
        this.disk.used = s.blocks > 0 ? Math.min(1, Math.max(0, 1 - s.bavail / s.blocks)) : 0;
      } catch {
        // statfs unsupported here: keep the last reading
      }
    }
    return this.disk.used;
  }

  /** A node's score in the consensus trust table, if this node runs consensus. */
  trustOf(node: NodeId): number | undefined {
    return this.consensus?.state.trust.get(node);
  }

  /** This node and the live members, for a seed spore. */
  seedMembers(): SeedMember[] {
    const out: SeedMember[] = [{
      node: this.identity.nodeId,
      tier: this.config.node.tier,
      gossip: this.config.gossip.advertise ?? this.transport.address,
    }];
    for (const p of this.storagePeers()) {
      const g = splitAnnounced(this.swim.addrOf(p.id)).gossip;
      if (p.state === "alive" && g) out.push({ node: p.id, tier: p.tier, gossip: g });
    }
    return out;
  }

  /** Members alive or suspect, with the tier and labels they announced (for placement). */
  storagePeers(): StoragePeer[] {
    const out: StoragePeer[] = [];
    for (const m of this.swim.members()) {
      if (m.node === this.identity.nodeId) continue;
      if (m.state !== MemberState.Alive && m.state !== MemberState.Suspect) continue;
      const a = splitAnnounced(m.addr);
      out.push({
        id: m.node,
        state: m.state === MemberState.Alive ? "alive" : "suspect",
        // A member that announced no tier (an older node) is taken for a Sclerotium.
        tier: a.tier ?? "sclerotia",
        labels: a.labels ?? {},
      });
    }
    return out;
  }

  memberList() {
    return this.swim.members().map((m) => {
      const a = splitAnnounced(m.addr);
      return {
        node: m.node,
        state: memberStateName[m.state],
        incarnation: m.inc,
        addr: a.gossip ?? this.addrs.get(m.node) ?? "",
        streams: a.streams ?? "",
      };
    });
  }

  status() {
    const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const m of this.swim.members()) counts[memberStateName[m.state]]++;
    return {
      identity: {
        nodeId: this.identity.nodeId,
        name: this.identity.name,
        tier: this.config.node.tier,
        networkId: this.identity.networkId,
      },
      versions: { mycelium: VERSION, protocolMajor: PROTOCOL_MAJOR, ...runtimeVersions() },
      addresses: {
        gossip: this.transport.address,
        streams: this.streamAddress,
        admin: this.adminAddress,
      },
      uptimeMs: Date.now() - this.startedAt,
      membership: {
        incarnation: this.swim.incarnation,
        awareness: this.swim.awareness,
        joined: this.swim.isJoined,
        members: counts,
      },
      peers: this.memberList(),
      consensus: this.consensus?.status() ?? null,
      ram: this.ram?.list() ?? [],
      storage: this.objects?.summary() ?? null,
      spores: this.spores?.summary() ?? null,
      bootstrap: this.bootstrapped
        ? { ...this.bootstrapped, attempts: this.bootstrapped.attempts.length }
        : null,
    };
  }

  private refreshGauges(): void {
    const counts = [0, 0, 0, 0];
    for (const m of this.swim.members()) counts[m.state]++;
    memberStateName.forEach((name, i) =>
      this.metrics.set("mycelium_members", counts[i], { state: name })
    );
    this.metrics.set("mycelium_swim_incarnation", this.swim.incarnation);
    this.metrics.set("mycelium_swim_awareness", this.swim.awareness);
    this.consensus?.refreshGauges(this.metrics);
    this.objects?.refreshGauges();
    this.spores?.refreshGauges();
    const t = this.transport;
    this.metrics.set("mycelium_datagrams_received", t.received);
    this.metrics.set("mycelium_datagrams_sent", t.sent);
    this.metrics.set("mycelium_datagram_bytes_sent", t.bytesSent);
    this.metrics.set("mycelium_datagram_bytes_received", t.bytesReceived);
    for (const [reason, n] of Object.entries(t.drops)) {
      this.metrics.set("mycelium_datagrams_rejected", n, { reason });
    }
  }

  // ---- lifecycle ----

  /** Graceful stop: SWIM leave, wait for it to propagate, flush, close everything. */
  async stop(opts: { leave?: boolean } = {}): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (opts.leave ?? true) {
      this.host.guard("leave", () => this.swim.leave());
      await new Promise((r) => setTimeout(r, this.config.membership.leavePropagateMs));
    }
    this.host.guard("stop", () => this.swim.stop());
    this.host.close();
    this.consensus?.stop();
    this.ram?.stop();
    // Background replica writes of acknowledged objects: a few seconds to finish.
    if (this.objects) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.objects.drain(),
        new Promise((r) => timer = setTimeout(r, 5000)),
      ]);
      clearTimeout(timer);
    }
    this.objects?.stop();
    this.spores?.stop();
    this.streams.stopAll();
    for (const c of [...this.inboundAll]) c.close("shutdown");
    await this.transport.close();
    await new Promise<void>((r) => this.tlsServer.close(() => r()));
    await this.admin?.close();
    this.store.sync();
    this.store.close();
    this.log.log("info", "stopped", {});
  }
}

/** `{ deno: "2.9.6" }` or `{ node: "22.23.3" }`: the runtime the node runs on. */
function runtimeVersions(): Record<string, string> {
  const { runtime, version } = runtimeVersion();
  return { [runtime]: version };
}

/** The mutual-TLS stream listener: framed ping/pong for now; later protocols add frames. */
function listenStreams(
  identity: NodeIdentity,
  bind: string,
  port: number,
  maxFrameBytes: number,
  counters: Record<string, number>,
  log: JsonLogger,
  metrics: PromMetrics,
  handlers: {
    /** A frame other than ping; false if nobody handles its type. */
    onFrame: (peer: NodeId, type: number, body: Uint8Array) => boolean;
    onOpen: (peer: NodeId, conn: FramedSocket) => void;
    onClose: (peer: NodeId, conn: FramedSocket) => void;
  },
): Promise<{ server: tls.Server; address: string }> {
  // Node cuts a peer that never finishes its handshake after handshakeTimeout. Deno 2.9's
  // node:tls does not: after a failed handshake it leaves the TCP connection open until the
  // peer closes it (the descriptor is released then). Known limitation, see README.
  const server = tls.createServer({ ...tlsOptions(identity), handshakeTimeout: 5000 }, (socket) => {
    const peer = peerNodeId(socket);
    socket.setNoDelay(true); // small protocol frames: Nagle would hold them for an ACK
    metrics.inc("mycelium_stream_connections_total");
    const conn = attachFramedSocket(socket, {
      maxFrameBytes,
      counters,
      idleTimeoutMs: 120_000,
      onFrame: (type, body, owned) => {
        if (type === FRAME_PING) conn.send(FRAME_PONG, body);
        // A body that views a received chunk is copied: handlers may keep it.
        else if (peer === null || !handlers.onFrame(peer, type, owned ? body : body.slice())) {
          throw new FrameError("garbage", `unexpected frame type ${type}`);
        }
      },
      onClose: (reason) => {
        if (peer !== null) handlers.onClose(peer, conn);
        if (reason !== "end") {
          metrics.inc("mycelium_stream_closed_total", 1, { reason });
          log.log("warn", "stream_closed", { peer, reason });
        }
      },
    });
    if (peer !== null) handlers.onOpen(peer, conn);
  });
  // A peer of another network (other CA) fails here, before any byte of ours is read.
  server.on("tlsClientError", (err) => {
    metrics.inc("mycelium_tls_handshake_failures_total");
    log.log("warn", "tls_handshake_failed", { error: err.message });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, bind, () => {
      const a = server.address() as { address: string; port: number };
      resolve({ server, address: `${a.address}:${a.port}` });
    });
  });
}
