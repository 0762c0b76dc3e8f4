/**
 * The delaying relay: added latency for the namespace lab on a kernel without `netem`.
 *
 * Every packet between two lab nodes is steered through this relay (a process in the root
 * namespace), which holds it for the delay the scenario's network model draws for that link
 * and then sends it on. Steering is plain nftables NAT inside each node's namespace: node
 * i's traffic to node j's gossip (UDP) or stream (TCP) port is DNAT'd to a relay socket at
 * `alias(i):relayPort(j)`, an address on the bridge that stands for "node i, via the relay".
 * The relay forwards from that same alias, so the receiver's fault rules (partitions, one-way
 * cuts, loss), which match the alias as well as the node's own address, still apply to
 * relayed packets, and uplink bandwidth (`tc tbf` on the sender's veth) still applies too.
 *
 * UDP: socket (i, j) at `alias(i):relayPort(j)` forwards what node i sends to node j after
 * `delay(i, j)`; a datagram node j sends back to that socket (a reply to the source it saw)
 * goes to node i from socket (j, i) after `delay(j, i)`. Each datagram is delayed on its own,
 * so jitter reorders datagrams as a real link would; `duplicate` sends a second copy.
 *
 * TCP: server (i, j) accepts node i's connection to node j, connects to j from `alias(i)`,
 * and forwards each chunk after its delay, never before an earlier chunk of the same
 * direction (a byte stream cannot reorder). End of stream follows the last chunk.
 *
 * Timers have millisecond granularity, and the relay adds its own forwarding cost (tens of
 * microseconds); both are small next to the WAN latencies it exists to model.
 */
import dgram from "node:dgram";
import net from "node:net";

/** Where the relay sits: the lab's addresses and the nodes' fixed ports. */
export interface RelayLayout {
  readonly size: number;
  /** Node i's own address. */
  addr(i: number): string;
  /** The bridge address standing for node i when the relay forwards its traffic. */
  alias(i: number): string;
  /** The relay port for traffic to node j (the same number for UDP and TCP). */
  relayPort(j: number): number;
  readonly gossipPort: number;
  readonly streamsPort: number;
}

/** The link's behaviour: the one-way delay (ms) of a packet now, and whether to duplicate it. */
export interface RelayLinks {
  delay(from: number, to: number, bytes: number): number;
  duplicate?(from: number, to: number): { delayMs: number } | null;
}

export interface RelayStats {
  datagrams: number;
  datagramBytes: number;
  duplicates: number;
  streamChunks: number;
  streamBytes: number;
  connections: number;
  /** Packets that reached a relay socket from an address that is not one of its two nodes. */
  strays: number;
}

export class DelayRelay {
  readonly stats: RelayStats = {
    datagrams: 0,
    datagramBytes: 0,
    duplicates: 0,
    streamChunks: 0,
    streamBytes: 0,
    connections: 0,
    strays: 0,
  };
  private readonly udp: dgram.Socket[] = [];
  private readonly tcp: net.Server[] = [];
  private readonly conns = new Set<net.Socket>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private closed = false;
  private readonly nodeOf = new Map<string, number>();

  private constructor(readonly layout: RelayLayout, readonly links: RelayLinks) {
    for (let i = 0; i < layout.size; i++) this.nodeOf.set(layout.addr(i), i);
  }

  /** Binds every (i, j) socket and server; fails (closing what it opened) if one cannot bind. */
  static async start(layout: RelayLayout, links: RelayLinks): Promise<DelayRelay> {
    const relay = new DelayRelay(layout, links);
    try {
      await relay.bind();
    } catch (e) {
      relay.close();
      throw e;
    }
    return relay;
  }

  private socketIndex(i: number, j: number): number {
    return i * this.layout.size + j;
  }

  private async bind(): Promise<void> {
    const n = this.layout.size;
    const waits: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (i === j) continue;
        const host = this.layout.alias(i), port = this.layout.relayPort(j);
        const sock = dgram.createSocket("udp4");
        this.udp[this.socketIndex(i, j)] = sock;
        sock.on("message", (msg, rinfo) => this.onDatagram(i, j, msg, rinfo.address));
        waits.push(
          new Promise((resolve, reject) => {
            sock.once("error", reject);
            sock.bind(port, host, () => {
              sock.off("error", reject);
              // A send to a node that is down fails: the packet is lost, as on a real link.
              sock.on("error", () => undefined);
              resolve();
            });
          }),
        );
        const server = net.createServer({ noDelay: true }, (c) => this.onConnection(i, j, c));
        this.tcp.push(server);
        waits.push(
          new Promise((resolve, reject) => {
            server.once("error", reject);
            server.listen(port, host, () => resolve());
          }),
        );
      }
    }
    await Promise.all(waits);
  }

  private later(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, Math.max(0, ms));
    this.timers.add(t);
  }

  /** A datagram at socket (i, j): from node i it goes to j; from node j (a reply) back to i. */
  private onDatagram(i: number, j: number, msg: Uint8Array, fromAddr: string): void {
    const sender = this.nodeOf.get(fromAddr);
    let from: number, to: number;
    if (sender === i) [from, to] = [i, j];
    else if (sender === j) [from, to] = [j, i];
    else {
      this.stats.strays++;
      return;
    }
    this.stats.datagrams++;
    this.stats.datagramBytes += msg.length;
    const out = this.udp[this.socketIndex(from, to)];
    const send = () => out.send(msg, this.layout.gossipPort, this.layout.addr(to));
    this.later(this.links.delay(from, to, msg.length), send);
    const dup = this.links.duplicate?.(from, to);
    if (dup) {
      this.stats.duplicates++;
      this.later(dup.delayMs, send);
    }
  }

  /** Node i connected to node j: connect on from alias(i) and forward both ways, delayed. */
  private onConnection(i: number, j: number, client: net.Socket): void {
    if (this.nodeOf.get(client.remoteAddress ?? "") !== i) {
      this.stats.strays++;
      client.destroy();
      return;
    }
    this.stats.connections++;
    const upstream = net.connect({
      host: this.layout.addr(j),
      port: this.layout.streamsPort,
      localAddress: this.layout.alias(i),
      noDelay: true,
    });
    this.conns.add(client);
    this.conns.add(upstream);
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      this.conns.delete(client);
      this.conns.delete(upstream);
    };
    client.on("error", closeBoth);
    upstream.on("error", closeBoth);
    client.on("close", () => this.later(this.links.delay(i, j, 0), closeBoth));
    upstream.on("close", () => this.later(this.links.delay(j, i, 0), closeBoth));
    this.pipe(client, upstream, i, j);
    this.pipe(upstream, client, j, i);
  }

  /** Forwards `src` to `dst` with the (from, to) link's delay, keeping the byte order. */
  private pipe(src: net.Socket, dst: net.Socket, from: number, to: number): void {
    let due = 0; // when the previous chunk of this direction is delivered
    src.on("data", (chunk: Uint8Array) => {
      this.stats.streamChunks++;
      this.stats.streamBytes += chunk.length;
      const now = performance.now();
      due = Math.max(due, now + this.links.delay(from, to, chunk.length));
      this.later(due - now, () => {
        if (!dst.destroyed) dst.write(chunk);
      });
    });
    src.on("end", () => {
      const now = performance.now();
      this.later(Math.max(0, due - now), () => {
        if (!dst.destroyed) dst.end();
      });
    });
  }

  /** Stops forwarding: drops what is in flight, closes every socket, server and connection. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.conns) c.destroy();
    this.conns.clear();
    for (const s of this.udp) {
      try {
        s?.close();
      } catch { /* never bound */ }
    }
    for (const s of this.tcp) s.close();
  }
}
