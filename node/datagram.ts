/**
 * Authenticated UDP datagrams for membership gossip.
 *
 * Envelope (every datagram on the gossip port):
 *
 *   version:u8 (= DATAGRAM_VERSION) | from:16 raw bytes (sender NodeId) | payload | tag:16
 *
 * where `tag` is the first 16 bytes of HMAC-SHA256(isolation key, version | from | payload).
 * The isolation key is the network's 32-byte secret (DESIGN.md section 5, Identity); it is never
 * sent on the wire, so a datagram of another network, or one altered in flight, fails the tag
 * and is dropped before a single byte of it is interpreted. The tag is checked in constant time
 * first; only the length is looked at before it (to refuse to hash oversized input). The version
 * byte is therefore only trusted once the tag is good: a "version" drop means a peer of this
 * network speaks another envelope version.
 *
 * `sealDatagram` / `openDatagram` are pure; `DatagramTransport` wraps a `node:dgram` udp4 socket
 * and never throws on bad input or send failures: everything is counted.
 */
import dgram from "node:dgram";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { MyceliumError } from "../core/errors.ts";
import { isNodeId, NODE_ID_BYTES, type NodeId } from "../core/ids.ts";
import type { Logger } from "../core/host.ts";

/** Envelope format version (first byte). */
export const DATAGRAM_VERSION = 1;
/** Bytes of the truncated HMAC-SHA256 tag. */
export const DATAGRAM_TAG_BYTES = 16;
/** Bytes of the header: version + sender NodeId. */
export const DATAGRAM_HEADER_BYTES = 1 + NODE_ID_BYTES;
/** Envelope bytes added to a payload: header (17) + tag (16) = 33. */
export const DATAGRAM_OVERHEAD = DATAGRAM_HEADER_BYTES + DATAGRAM_TAG_BYTES;
/** Default largest datagram accepted (whole envelope), 64 KiB. */
export const DEFAULT_MAX_DATAGRAM_BYTES = 64 * 1024;
/** Length of the isolation key. */
export const ISOLATION_KEY_BYTES = 32;

/**
 * Why a datagram was dropped: "short" (smaller than the envelope), "oversize" (over the
 * maximum), "mac" (bad tag: foreign network or tampered), "version" (authentic, but another
 * envelope version).
 */
export type DropReason = "short" | "oversize" | "mac" | "version";
export const DROP_REASONS: readonly DropReason[] = ["short", "oversize", "mac", "version"];

export type OpenResult = { from: NodeId; payload: Uint8Array } | { drop: DropReason };

const HEX_BYTE: string[] = [];
for (let i = 0; i < 256; i++) HEX_BYTE.push(i.toString(16).padStart(2, "0"));

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== ISOLATION_KEY_BYTES) {
    throw new MyceliumError(
      "config",
      `isolation key must be ${ISOLATION_KEY_BYTES} bytes, got ${
        key instanceof Uint8Array ? key.length : typeof key
      }`,
      { input: "key" },
    );
  }
}

function tagOf(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(sha256, key, data);
}

/** Constant-time comparison of `a[0..n)` with `b[0..n)` (both at least n long). */
function equalPrefix(a: Uint8Array, b: Uint8Array, n: number): boolean {
  let diff = 0;
  for (let i = 0; i < n; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * Wraps `payload` in an authenticated envelope from `from`. Throws `MyceliumError` ("config")
 * for a key that is not 32 bytes and ("encode") for a malformed sender id.
 */
export function sealDatagram(key: Uint8Array, from: NodeId, payload: Uint8Array): Uint8Array {
  checkKey(key);
  if (!isNodeId(from)) {
    throw new MyceliumError("encode", `sender must be a node id, got ${JSON.stringify(from)}`, {
      input: "from",
    });
  }
  const body = DATAGRAM_HEADER_BYTES + payload.length;
  const out = new Uint8Array(body + DATAGRAM_TAG_BYTES);
  out[0] = DATAGRAM_VERSION;
  for (let i = 0; i < NODE_ID_BYTES; i++) {
    out[1 + i] = parseInt(from.slice(2 * i, 2 * i + 2), 16);
  }
  out.set(payload, DATAGRAM_HEADER_BYTES);
  out.set(tagOf(key, out.subarray(0, body)).subarray(0, DATAGRAM_TAG_BYTES), body);
  return out;
}

/**
 * Opens an envelope. Never throws on any byte string: returns the sender and the payload (a
 * view into `bytes`, not a copy) or the drop reason. Checks, in order: length ("short",
 * "oversize"), tag in constant time ("mac"), then version ("version").
 */
export function openDatagram(
  key: Uint8Array,
  bytes: Uint8Array,
  maxBytes: number = DEFAULT_MAX_DATAGRAM_BYTES,
): OpenResult {
  checkKey(key);
  const len = bytes.length;
  if (len < DATAGRAM_OVERHEAD) return { drop: "short" };
  if (len > maxBytes) return { drop: "oversize" };
  const body = len - DATAGRAM_TAG_BYTES;
  const expected = tagOf(key, bytes.subarray(0, body));
  if (!equalPrefix(expected, bytes.subarray(body), DATAGRAM_TAG_BYTES)) return { drop: "mac" };
  if (bytes[0] !== DATAGRAM_VERSION) return { drop: "version" };
  let from = "";
  for (let i = 1; i <= NODE_ID_BYTES; i++) from += HEX_BYTE[bytes[i]];
  return { from: from as NodeId, payload: bytes.subarray(DATAGRAM_HEADER_BYTES, body) };
}

// ---------------------------------------------------------------------------------------
// Socket wrapper

export interface DatagramTransportOptions {
  /** Address to bind, e.g. "127.0.0.1" or "0.0.0.0". */
  host: string;
  /** UDP port; 0 picks an ephemeral one. */
  port: number;
  /** The network's 32-byte isolation key. */
  key: Uint8Array;
  /** This node's id, sealed into every datagram sent. */
  self: NodeId;
  /** Called for every authentic datagram; `addr` is the sender's "host:port". */
  onMessage: (from: NodeId, payload: Uint8Array, addr: string) => void;
  /** Largest envelope accepted or sent (default 64 KiB). */
  maxBytes?: number;
  /** Optional logger: drops and send failures are logged at debug level. */
  log?: Logger;
}

/** Send failures, by reason. */
export type SendErrorReason = "address" | "oversize" | "socket" | "closed";

/** Splits "host:port" (IPv4 or hostname; "[v6]:port" tolerated). Null when malformed. */
export function parseHostPort(addr: string): { host: string; port: number } | null {
  if (typeof addr !== "string") return null;
  const i = addr.lastIndexOf(":");
  if (i <= 0 || i === addr.length - 1) return null;
  let host = addr.slice(0, i);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  const portStr = addr.slice(i + 1);
  if (!/^[0-9]{1,5}$/.test(portStr)) return null;
  const port = Number(portStr);
  if (port < 1 || port > 65535 || host.length === 0) return null;
  return { host, port };
}

/**
 * A bound udp4 socket that seals outgoing payloads and opens incoming datagrams. Foreign,
 * tampered, short, oversized and wrong-version datagrams are dropped and counted in `drops`;
 * an exception thrown by `onMessage` is caught and counted as `drops.handler`. Nothing
 * received can throw out of this class or crash the process.
 */
export class DatagramTransport {
  /** Dropped datagrams by reason ("handler": onMessage threw). */
  readonly drops: Record<DropReason | "handler", number> = {
    short: 0,
    oversize: 0,
    mac: 0,
    version: 0,
    handler: 0,
  };
  /** Send failures by reason. */
  readonly sendErrors: Record<SendErrorReason, number> = {
    address: 0,
    oversize: 0,
    socket: 0,
    closed: 0,
  };
  /** Datagrams read from the socket (authentic or not). */
  received = 0;
  /** Authentic datagrams handed to onMessage. */
  delivered = 0;
  /** Datagrams handed to the socket. */
  sent = 0;
  bytesSent = 0;
  bytesReceived = 0;
  /** Socket-level errors reported by the 'error' event. */
  socketErrors = 0;

  private closed = false;
  private readonly maxBytes: number;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly opts: DatagramTransportOptions,
    private readonly boundAddress: string,
  ) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_DATAGRAM_BYTES;
  }

  static async bind(opts: DatagramTransportOptions): Promise<DatagramTransport> {
    checkKey(opts.key);
    if (!isNodeId(opts.self)) {
      throw new MyceliumError("config", `not a node id: ${JSON.stringify(opts.self)}`, {
        input: "self",
      });
    }
    const max = opts.maxBytes ?? DEFAULT_MAX_DATAGRAM_BYTES;
    if (!Number.isInteger(max) || max < DATAGRAM_OVERHEAD) {
      throw new MyceliumError("config", `must be an integer >= ${DATAGRAM_OVERHEAD}`, {
        input: "maxBytes",
      });
    }
    const socket = dgram.createSocket({ type: "udp4" });
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => {
        socket.removeListener("listening", onListening);
        try {
          socket.close();
        } catch { /* already closed */ }
        reject(
          new MyceliumError("network", `cannot bind udp ${opts.host}:${opts.port}`, {
            cause: e,
          }),
        );
      };
      const onListening = () => {
        socket.removeListener("error", onError);
        resolve();
      };
      socket.once("error", onError);
      socket.once("listening", onListening);
      socket.bind(opts.port, opts.host);
    });
    const a = socket.address();
    const t = new DatagramTransport(socket, opts, `${a.address}:${a.port}`);
    socket.on("message", (msg, rinfo) => t.onDatagram(msg, `${rinfo.address}:${rinfo.port}`));
    socket.on("error", (e) => {
      t.socketErrors++;
      opts.log?.log("warn", "datagram_socket_error", { error: String(e) });
    });
    return t;
  }

  /** The bound address, "host:port". */
  get address(): string {
    return this.boundAddress;
  }

  private onDatagram(msg: Uint8Array, addr: string): void {
    if (this.closed) return;
    this.received++;
    this.bytesReceived += msg.length;
    let r: OpenResult;
    try {
      r = openDatagram(this.opts.key, msg, this.maxBytes);
    } catch {
      r = { drop: "short" }; // unreachable: openDatagram does not throw on bytes
    }
    if ("drop" in r) {
      this.drops[r.drop]++;
      this.opts.log?.log("debug", "datagram_dropped", { reason: r.drop, addr, bytes: msg.length });
      return;
    }
    this.delivered++;
    try {
      this.opts.onMessage(r.from, r.payload, addr);
    } catch (e) {
      this.drops.handler++;
      this.opts.log?.log("warn", "datagram_handler_failed", {
        from: r.from,
        addr,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }

  /**
   * Seals and sends `payload` to "host:port". Fire-and-forget: a malformed address, an
   * oversized payload, a closed transport or a socket error is counted in `sendErrors`, never
   * thrown.
   */
  send(addr: string, payload: Uint8Array): void {
    if (this.closed) {
      this.sendErrors.closed++;
      return;
    }
    const hp = parseHostPort(addr);
    if (!hp) {
      this.sendErrors.address++;
      this.opts.log?.log("debug", "datagram_send_failed", { reason: "address", addr });
      return;
    }
    if (payload.length + DATAGRAM_OVERHEAD > this.maxBytes) {
      this.sendErrors.oversize++;
      this.opts.log?.log("warn", "datagram_send_failed", {
        reason: "oversize",
        addr,
        bytes: payload.length + DATAGRAM_OVERHEAD,
      });
      return;
    }
    const bytes = sealDatagram(this.opts.key, this.opts.self, payload);
    try {
      this.socket.send(bytes, hp.port, hp.host, (err) => {
        if (err) {
          this.sendErrors.socket++;
          this.opts.log?.log("debug", "datagram_send_failed", {
            reason: "socket",
            addr,
            error: String(err),
          });
        }
      });
      this.sent++;
      this.bytesSent += bytes.length;
    } catch (e) {
      this.sendErrors.socket++;
      this.opts.log?.log("debug", "datagram_send_failed", {
        reason: "socket",
        addr,
        error: String(e),
      });
    }
  }

  /** Closes the socket; later sends are counted as `sendErrors.closed`. Idempotent. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
