/**
 * Length-prefixed frames for reliable streams (TCP / mutual TLS).
 *
 *   frame = length:u32 big-endian (N, bytes that follow) | type:u8 | body: N-1 bytes
 *
 * `N` counts the type byte, so the smallest frame is 5 bytes (N = 1, empty body). A declared
 * length of 0 ("empty") or over the receiver's `maxFrameBytes` ("oversize") is a protocol
 * error detected from the 4 header bytes alone, before any of the body is buffered. Frame
 * types mean nothing here: an unknown type is the caller's business (throw `FrameError`
 * with reason "garbage" from `onFrame` to close the connection for it).
 *
 * `attachFramedSocket` drives a `net.Socket` or `tls.TLSSocket`: malformed input, a failing
 * handler, a peer closing mid-frame or going idle closes that one connection with a counted,
 * logged reason; nothing a peer sends can throw out of it.
 */
import type net from "node:net";
import type tls from "node:tls";
import { MyceliumError } from "../core/errors.ts";
import type { Logger } from "../core/host.ts";

/** Bytes of the length prefix. */
export const FRAME_HEADER_BYTES = 4;
/** Largest length the 4-byte prefix can carry. */
export const MAX_FRAME_LENGTH = 0xffffffff;
/** A sensible default for `maxFrameBytes` (declared length N), 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

export type FrameErrorReason = "oversize" | "empty" | "garbage";

export interface Frame {
  type: number;
  body: Uint8Array;
  /**
   * True when `body` lies in a buffer of its own (a frame assembled from several chunks),
   * so a consumer may keep it without copying; false (or absent) for a view into a received
   * chunk.
   */
  owned?: boolean;
}

/** A stream violated the framing (or the caller's) protocol; the connection must close. */
export class FrameError extends MyceliumError {
  readonly reason: FrameErrorReason;
  /**
   * Complete frames that preceded the violation in the chunk given to `FrameDecoder.push`
   * (they arrived intact and in order; deliver them before closing, so what a peer's good
   * frames do does not depend on how TCP segmented the stream). Empty elsewhere.
   */
  frames: Frame[] = [];
  constructor(reason: FrameErrorReason, message: string, cause?: unknown) {
    super("protocol", message, { cause });
    this.name = "FrameError";
    this.reason = reason;
  }
}

/**
 * Encodes one frame. Throws `FrameError` "oversize" when the body does not fit the 4-byte
 * length, and `RangeError` for a type outside 0..255.
 */
export function encodeFrame(type: number, body: Uint8Array): Uint8Array {
  if (!Number.isInteger(type) || type < 0 || type > 255) {
    throw new RangeError(`frame type must be an integer in 0..255, got ${type}`);
  }
  const n = body.length + 1;
  if (n > MAX_FRAME_LENGTH) {
    throw new FrameError(
      "oversize",
      `frame body of ${body.length} bytes exceeds the length prefix`,
    );
  }
  const out = new Uint8Array(FRAME_HEADER_BYTES + n);
  out[0] = n >>> 24;
  out[1] = (n >>> 16) & 0xff;
  out[2] = (n >>> 8) & 0xff;
  out[3] = n & 0xff;
  out[4] = type;
  out.set(body, 5);
  return out;
}

/**
 * A frame to be filled in place: `frame` has its header written and `body` (zeroed) views the
 * rest, so a large body is encoded straight into the bytes `FramedSocket.sendFrame` sends.
 */
export function allocFrame(
  type: number,
  bodyLength: number,
): { frame: Uint8Array; body: Uint8Array } {
  if (!Number.isInteger(type) || type < 0 || type > 255) {
    throw new RangeError(`frame type must be an integer in 0..255, got ${type}`);
  }
  const n = bodyLength + 1;
  if (!Number.isInteger(bodyLength) || bodyLength < 0 || n > MAX_FRAME_LENGTH) {
    throw new FrameError("oversize", `frame body of ${bodyLength} bytes exceeds the length prefix`);
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + n);
  frame[0] = n >>> 24;
  frame[1] = (n >>> 16) & 0xff;
  frame[2] = (n >>> 8) & 0xff;
  frame[3] = n & 0xff;
  frame[4] = type;
  return { frame, body: frame.subarray(5) };
}

function readLength(b: Uint8Array, at: number): number {
  return ((b[at] << 24) >>> 0) + (b[at + 1] << 16) + (b[at + 2] << 8) + b[at + 3];
}

/**
 * Incremental decoder: feed it chunks as they arrive, in any split, and it returns the frames
 * completed so far. Frames contained in one chunk are returned as views into that chunk (zero
 * copy: do not reuse a chunk's memory while its frames are in use); frames that straddle
 * chunks are assembled once complete: the decoder keeps views of the pieces as they arrive
 * and copies them once into a buffer of the frame's size, so a peer cannot make it allocate
 * more than it actually sent (times two), and each byte is copied once.
 *
 * A bad header throws `FrameError`; the frames completed earlier in the same chunk travel
 * in its `frames`. After that the decoder is poisoned: every later `push` throws a
 * `FrameError` with the same reason (and no frames).
 */
export class FrameDecoder {
  /** Views of the received bytes of the incomplete frame (header included), in order. */
  private pieces: Uint8Array[] = [];
  private accLen = 0;
  /** Total bytes needed for the frame being assembled (4 while the header is incomplete). */
  private want = FRAME_HEADER_BYTES;
  private failed: FrameError | null = null;

  constructor(readonly maxFrameBytes: number) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > MAX_FRAME_LENGTH) {
      throw new MyceliumError(
        "config",
        `must be an integer in [1, ${MAX_FRAME_LENGTH}], got ${maxFrameBytes}`,
        { input: "maxFrameBytes" },
      );
    }
  }

  /** Bytes of an incomplete frame held back; non-zero means a close now truncates a frame. */
  get buffered(): number {
    return this.accLen;
  }

  private check(n: number): number {
    if (n === 0) {
      throw this.fail(new FrameError("empty", "frame declares length 0 (no type byte)"));
    }
    if (n > this.maxFrameBytes) {
      throw this.fail(
        new FrameError(
          "oversize",
          `frame declares ${n} bytes, over the maximum ${this.maxFrameBytes}`,
        ),
      );
    }
    return n;
  }

  private fail(e: FrameError): FrameError {
    this.failed = e;
    this.pieces = [];
    this.accLen = 0;
    return e;
  }

  /** The pieces joined into one new buffer of `accLen` bytes; the pieces are dropped. */
  private join(): Uint8Array {
    const out = new Uint8Array(this.accLen);
    let at = 0;
    for (const p of this.pieces) {
      out.set(p, at);
      at += p.length;
    }
    this.pieces = [];
    return out;
  }

  /** Feeds bytes; returns every frame they complete. Throws `FrameError` on a bad header. */
  push(chunk: Uint8Array): Frame[] {
    if (this.failed) {
      throw new FrameError(this.failed.reason, `${this.failed.message} (decoder already failed)`);
    }
    const out: Frame[] = [];
    try {
      this.decode(chunk, out);
    } catch (e) {
      if (e instanceof FrameError) e.frames = out;
      throw e;
    }
    return out;
  }

  private decode(chunk: Uint8Array, out: Frame[]): void {
    let off = 0;
    const end = chunk.length;

    // 1. Finish the frame (or header) left over from earlier chunks.
    while (this.accLen > 0 && off < end) {
      const take = Math.min(this.want - this.accLen, end - off);
      this.pieces.push(chunk.subarray(off, off + take));
      this.accLen += take;
      off += take;
      if (this.accLen < this.want) return; // chunk exhausted
      if (this.want === FRAME_HEADER_BYTES) {
        const head = this.join();
        this.pieces.push(head);
        this.want = FRAME_HEADER_BYTES + this.check(readLength(head, 0));
        continue;
      }
      const frame = this.join(); // a buffer of its own: handed out, never reused
      out.push({ type: frame[4], body: frame.subarray(5, this.want), owned: true });
      this.accLen = 0;
      this.want = FRAME_HEADER_BYTES;
    }

    // 2. Whole frames straight out of the chunk.
    while (end - off >= FRAME_HEADER_BYTES) {
      const n = this.check(readLength(chunk, off));
      if (end - off - FRAME_HEADER_BYTES < n) break;
      out.push({
        type: chunk[off + 4],
        body: chunk.subarray(off + 5, off + FRAME_HEADER_BYTES + n),
        owned: false,
      });
      off += FRAME_HEADER_BYTES + n;
    }

    // 3. Keep the incomplete rest.
    if (off < end) {
      this.want = end - off >= FRAME_HEADER_BYTES
        ? FRAME_HEADER_BYTES + readLength(chunk, off) // already checked in step 2
        : FRAME_HEADER_BYTES;
      this.pieces.push(chunk.subarray(off, end));
      this.accLen = end - off;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Sockets

export interface FramedSocketOptions {
  /** Largest declared frame length N (type + body) accepted from the peer and sent to it. */
  maxFrameBytes: number;
  /**
   * One complete frame (`owned`: see `Frame`; copy a body that is not before keeping it).
   * Throwing closes the connection (see `closeReasonOf`).
   */
  onFrame: (type: number, body: Uint8Array, owned: boolean) => void;
  /** Called exactly once, when the connection is gone, with the reason. */
  onClose: (reason: string) => void;
  /** `counters[reason]` is incremented once per closed connection. */
  counters: Record<string, number>;
  /** Close as "idle" after this long without any byte read or written (0/absent: never). */
  idleTimeoutMs?: number;
  /** Abnormal closes are logged at warn, normal ones at debug. */
  log?: Logger;
  /** Free-form label for log lines (peer id, address). */
  label?: string;
}

export interface FramedSocket {
  /**
   * Queues one frame; returns the socket's `write` result (false: buffer full, wait for
   * 'drain'; or the connection is closed). Throws `FrameError` "oversize" for a frame over
   * `maxFrameBytes`, since the peer would reject it.
   */
  send(type: number, body: Uint8Array): boolean;
  /** Queues a frame made with `allocFrame` as is (no copy); otherwise as `send`. */
  sendFrame(frame: Uint8Array): boolean;
  /** Destroys the connection with `reason` (counted, passed to onClose). Idempotent. */
  close(reason: string): void;
  /** True once closed. */
  readonly closed: boolean;
}

/**
 * Close reasons produced by `attachFramedSocket`:
 * - "end": the peer closed cleanly at a frame boundary;
 * - "truncated": the peer closed (or the socket closed) in the middle of a frame;
 * - "oversize" / "empty" / "garbage": a `FrameError` from the decoder (the complete frames
 *   that preceded the bad header are delivered first) or thrown by onFrame;
 * - "garbage" also for a `MyceliumError` of kind "decode" or "protocol" thrown by onFrame;
 * - "handler": any other exception thrown by onFrame (a bug on our side, contained);
 * - "error": a socket error (reset, TLS failure...);
 * - "idle": the idle timeout fired;
 * - whatever reason the owner passed to `close(reason)`.
 */
export function closeReasonOf(e: unknown): string {
  if (e instanceof FrameError) return e.reason;
  if (e instanceof MyceliumError && (e.kind === "decode" || e.kind === "protocol")) {
    return "garbage";
  }
  return "handler";
}

const NORMAL_CLOSE = new Set(["end", "local", "shutdown"]);

export function attachFramedSocket(
  socket: net.Socket | tls.TLSSocket,
  opts: FramedSocketOptions,
): FramedSocket {
  const decoder = new FrameDecoder(opts.maxFrameBytes);
  let closed = false;

  const finish = (reason: string, detail?: unknown) => {
    if (closed) return;
    closed = true;
    socket.removeListener("data", onData);
    socket.destroy();
    opts.counters[reason] = (opts.counters[reason] ?? 0) + 1;
    if (opts.log) {
      const fields: Record<string, unknown> = { reason };
      if (opts.label !== undefined) fields.peer = opts.label;
      if (detail !== undefined) {
        fields.error = detail instanceof Error ? detail.message : String(detail);
      }
      opts.log.log(NORMAL_CLOSE.has(reason) ? "debug" : "warn", "stream_closed", fields);
    }
    try {
      opts.onClose(reason);
    } catch (e) {
      opts.log?.log("error", "stream_onclose_failed", { reason, error: String(e) });
    }
  };

  const onData = (chunk: Uint8Array) => {
    if (closed) return;
    let frames: Frame[];
    let error: unknown = null;
    try {
      frames = decoder.push(chunk);
    } catch (e) {
      error = e;
      frames = e instanceof FrameError ? e.frames : [];
    }
    for (const f of frames) {
      if (closed) return; // onFrame closed the connection itself
      try {
        opts.onFrame(f.type, f.body, f.owned === true);
      } catch (e) {
        finish(closeReasonOf(e), e);
        return;
      }
    }
    if (error !== null) finish(closeReasonOf(error), error);
  };

  socket.on("data", onData);
  socket.on("end", () => finish(decoder.buffered > 0 ? "truncated" : "end"));
  socket.on("error", (e) => finish(decoder.buffered > 0 ? "truncated" : "error", e));
  socket.on("close", () => finish(decoder.buffered > 0 ? "truncated" : "end"));
  if (opts.idleTimeoutMs && opts.idleTimeoutMs > 0) {
    socket.setTimeout(opts.idleTimeoutMs, () => finish("idle"));
  }

  return {
    send(type: number, body: Uint8Array): boolean {
      if (body.length + 1 > opts.maxFrameBytes) {
        throw new FrameError(
          "oversize",
          `frame of ${body.length + 1} bytes over the maximum ${opts.maxFrameBytes}`,
        );
      }
      if (closed || socket.destroyed) return false;
      return socket.write(encodeFrame(type, body));
    },
    sendFrame(frame: Uint8Array): boolean {
      const n = frame.length - FRAME_HEADER_BYTES;
      if (n < 1 || readLength(frame, 0) !== n) {
        throw new FrameError("garbage", "sendFrame: not a frame made by allocFrame");
      }
      if (n > opts.maxFrameBytes) {
        throw new FrameError(
          "oversize",
          `frame of ${n} bytes over the maximum ${opts.maxFrameBytes}`,
        );
      }
      if (closed || socket.destroyed) return false;
      return socket.write(frame);
    },
    close(reason: string): void {
      finish(reason);
    },
    get closed(): boolean {
      return closed;
    },
  };
}
