/**
 * Fuzzing against live sockets on 127.0.0.1: at least 100,000 random and mutated datagrams at
 * a DatagramTransport that decodes SWIM, and at least 100,000 random and mutated frames over
 * real TCP connections to a server built on attachFramedSocket. The process must stay up, the
 * drops must be counted by reason, and a well-formed exchange must still work afterwards.
 *
 * Deterministic: the generator is seeded (FUZZ_SEED overrides). Expected outcomes are
 * computed on the sending side with the pure codecs, so the live counters can be checked
 * exactly (UDP: exactly when the kernel lost nothing; bounds otherwise).
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import net from "node:net";
import { DecodeError } from "../core/errors.ts";
import type { NodeId } from "../core/ids.ts";
import { encodeSwim, parseSwim } from "../core/membership/codec.ts";
import type { SwimMessage } from "../core/membership/messages.ts";
import {
  DATAGRAM_TAG_BYTES,
  DatagramTransport,
  type DropReason,
  openDatagram,
  parseHostPort,
  sealDatagram,
} from "./datagram.ts";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  attachFramedSocket,
  encodeFrame,
  type Frame,
  FrameDecoder,
  type FramedSocket,
  FrameError,
} from "./framing.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 0x5eed1);

/** mulberry32: small seeded PRNG. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)); // inclusive
  const bytes = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (next() * 256) | 0;
    return b;
  };
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)];
  return { next, int, bytes, pick };
}
type Rng = ReturnType<typeof prng>;

/** Bit flips, byte overwrites, truncation, extension, insertion or deletion; never a no-op. */
function mutate(rng: Rng, src: Uint8Array): Uint8Array {
  const out = mutateOnce(rng, src);
  if (out.length !== src.length || out.some((b, i) => b !== src[i])) return out;
  out[rng.int(0, out.length - 1)] ^= 1 << rng.int(0, 7); // e.g. an overwrite with the same byte
  return out;
}

function mutateOnce(rng: Rng, src: Uint8Array): Uint8Array {
  const op = rng.int(0, 5);
  if (op === 0 || src.length === 0) {
    const b = src.length === 0 ? rng.bytes(1) : src.slice();
    for (let k = rng.int(1, 3); k > 0; k--) b[rng.int(0, b.length - 1)] ^= 1 << rng.int(0, 7);
    return b;
  }
  if (op === 1) {
    const b = src.slice();
    b[rng.int(0, b.length - 1)] = rng.int(0, 255);
    return b;
  }
  if (op === 2) return src.slice(0, rng.int(0, src.length - 1)); // truncate
  if (op === 3) return concat([src, rng.bytes(rng.int(1, 40))]); // extend
  const at = rng.int(0, src.length);
  if (op === 4) return concat([src.subarray(0, at), rng.bytes(rng.int(1, 8)), src.subarray(at)]);
  return concat([src.subarray(0, at), src.subarray(Math.min(src.length, at + rng.int(1, 8)))]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs; // safety net only, never an assertion on speed
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 1);
    };
    tick();
  });
}

const KEY = new Uint8Array(32).map((_, i) => (i * 7 + 3) & 0xff);
const FOREIGN_KEY = new Uint8Array(32).map((_, i) => (i * 11 + 5) & 0xff);
const SELF = "aa00000000000000000000000000000a" as NodeId;
const PEER = "bb00000000000000000000000000000b" as NodeId;
const OTHER = "cc00000000000000000000000000000c" as NodeId;

const SWIM_SAMPLES: SwimMessage[] = [
  {
    t: "ping",
    seq: 1,
    target: SELF,
    gossip: [{ k: "alive", node: PEER, inc: 3, addr: "127.0.0.1:7946" }],
  },
  { t: "ack", seq: 1, gossip: [{ k: "suspect", node: OTHER, inc: 2, from: PEER }] },
  {
    t: "gossip",
    gossip: [
      { k: "dead", node: OTHER, inc: 9, from: PEER },
      { k: "alive", node: PEER, inc: 300, addr: "héllo" },
    ],
  },
  { t: "nack", seq: 70_000 },
  { t: "pingreq", seq: 5, target: OTHER, wantNack: true },
  {
    t: "pushpull",
    join: true,
    reply: false,
    nodes: [PEER, OTHER],
    incs: [1, 2],
    states: [0, 2],
    addrs: ["127.0.0.1:1", ""],
  },
];
const SWIM_ENCODED = SWIM_SAMPLES.map(encodeSwim);
const SWIM_HEX = new Set(SWIM_ENCODED.map(hex));

// ---------------------------------------------------------------------------------------
// UDP

const DGRAM_MAX = 2048;
const DATAGRAMS = 100_000;
const BATCH = 100; // the kernel's default UDP receive buffer (~208 KiB) holds this much
/** A sealed payload that makes the test's onMessage throw a non-decode error. */
const HANDLER_BOMB = new Uint8Array([0xee, 0xee]);

/** A properly authenticated datagram of envelope version `v` (for "version" drops). */
function sealVersion(v: number, payload: Uint8Array): Uint8Array {
  const d = sealDatagram(KEY, PEER, payload);
  d[0] = v;
  const body = d.length - DATAGRAM_TAG_BYTES;
  d.set(hmac(sha256, KEY, d.subarray(0, body)).subarray(0, DATAGRAM_TAG_BYTES), body);
  return d;
}

Deno.test("fuzz: 100,000+ random and mutated datagrams at a live DatagramTransport", async () => {
  const rng = prng(SEED);
  const seen = { validSwim: 0, otherSwim: 0, decodeErrors: 0, unexpected: 0, final: false };
  const FINAL_SEQ = 4_242_424;
  const target = await DatagramTransport.bind({
    host: "127.0.0.1",
    port: 0,
    key: KEY,
    self: SELF,
    maxBytes: DGRAM_MAX,
    onMessage: (from, payload, addr) => {
      if (payload.length === 2 && payload[0] === 0xee && payload[1] === 0xee) {
        throw new Error("deliberate handler failure");
      }
      let msg: SwimMessage;
      try {
        msg = parseSwim(payload);
      } catch (e) {
        if (e instanceof DecodeError) seen.decodeErrors++;
        else seen.unexpected++;
        return;
      }
      if (SWIM_HEX.has(hex(payload))) seen.validSwim++;
      else seen.otherSwim++; // a mutated payload that happens to decode
      if (msg.t === "ping" && msg.seq === FINAL_SEQ && from === PEER) {
        target.send(addr, encodeSwim({ t: "ack", seq: FINAL_SEQ, gossip: [] }));
      }
    },
  });
  const peer = await DatagramTransport.bind({
    host: "127.0.0.1",
    port: 0,
    key: KEY,
    self: PEER,
    onMessage: (_from, payload) => {
      const m = parseSwim(payload);
      if (m.t === "ack" && m.seq === FINAL_SEQ) seen.final = true;
    },
  });
  const raw = dgram.createSocket("udp4");
  raw.on("error", () => {});
  await new Promise<void>((r) => raw.bind(0, "127.0.0.1", () => r()));
  const port = parseHostPort(target.address)!.port;

  const kinds = [
    "random",
    "bitflip",
    "truncate",
    "extend",
    "mutated",
    "foreign",
    "sealedRandom",
    "sealedMutatedSwim",
    "validSwim",
    "version",
    "oversize",
    "handler",
  ] as const;
  const sentByKind: Record<string, number> = Object.fromEntries(kinds.map((k) => [k, 0]));
  // What the transport must do with each datagram, computed with the pure codec.
  const expected: Record<DropReason | "delivered", number> = {
    short: 0,
    oversize: 0,
    mac: 0,
    version: 0,
    delivered: 0,
  };
  let sent = 0;
  let expectedHandler = 0;

  const makeDatagram = (): Uint8Array => {
    const kind = rng.pick(kinds);
    sentByKind[kind]++;
    const valid = () => sealDatagram(KEY, PEER, rng.pick(SWIM_ENCODED));
    switch (kind) {
      case "random":
        return rng.bytes(rng.next() < 0.2 ? rng.int(0, 32) : rng.int(33, 400));
      case "bitflip": {
        const d = valid();
        d[rng.int(0, d.length - 1)] ^= 1 << rng.int(0, 7);
        return d;
      }
      case "truncate": {
        const d = valid();
        return d.slice(0, rng.int(0, d.length - 1));
      }
      case "extend":
        return concat([valid(), rng.bytes(rng.int(1, 64))]);
      case "mutated":
        return mutate(rng, valid());
      case "foreign":
        return sealDatagram(FOREIGN_KEY, PEER, rng.pick(SWIM_ENCODED));
      case "sealedRandom":
        return sealDatagram(KEY, PEER, rng.bytes(rng.int(0, 300)));
      case "sealedMutatedSwim":
        return sealDatagram(KEY, PEER, mutate(rng, rng.pick(SWIM_ENCODED)));
      case "validSwim":
        return valid();
      case "version":
        return sealVersion(rng.pick([0, 2, 3, 255]), rng.pick(SWIM_ENCODED));
      case "oversize":
        return rng.bytes(rng.int(DGRAM_MAX + 1, 4000));
      case "handler":
        expectedHandler++;
        return sealDatagram(KEY, PEER, HANDLER_BOMB);
    }
  };

  try {
    while (sent < DATAGRAMS) {
      let last: Promise<void> = Promise.resolve();
      for (let i = 0; i < BATCH; i++) {
        const d = makeDatagram();
        const r = openDatagram(KEY, d, DGRAM_MAX);
        if ("drop" in r) expected[r.drop]++;
        else expected.delivered++;
        last = new Promise<void>((res) => raw.send(d, port, "127.0.0.1", () => res()));
        sent++;
      }
      await last;
      // Pace: let the receiver catch up (or stop making progress) before the next batch.
      let stale = 0;
      let prev = target.received;
      while (target.received < sent && stale < 20) {
        await sleep(0);
        if (target.received === prev) stale++;
        else stale = 0;
        prev = target.received;
      }
    }

    // The node is still up: a well-formed ping from a real peer is answered with an ack.
    peer.send(
      target.address,
      encodeSwim({ t: "ping", seq: FINAL_SEQ, target: SELF, gossip: [] }),
    );
    await waitFor(() => seen.final, "the final ping/ack exchange");

    const lost = sent + 1 - target.received;
    console.log(
      `[udp fuzz seed=${SEED}] sent ${sent} (+1 final) received ${target.received} lost ${lost}`,
    );
    console.log(`  sent by kind ${JSON.stringify(sentByKind)}`);
    console.log(`  expected     ${JSON.stringify(expected)} handler ${expectedHandler}`);
    console.log(`  drops        ${JSON.stringify(target.drops)} delivered ${target.delivered}`);
    console.log(`  onMessage    ${JSON.stringify(seen)}`);

    assert.ok(sent >= 100_000);
    assert.equal(seen.unexpected, 0, "parseSwim threw something other than DecodeError");
    // Internal consistency: every datagram read was either dropped or delivered.
    const dropped = target.drops.short + target.drops.oversize + target.drops.mac +
      target.drops.version;
    assert.equal(dropped + target.delivered, target.received);
    assert.equal(
      target.drops.handler + seen.decodeErrors + seen.validSwim + seen.otherSwim,
      target.delivered,
    );
    // Never more of anything than was sent (+1: the final ping).
    for (const r of ["short", "oversize", "mac", "version"] as const) {
      assert.ok(target.drops[r] <= expected[r], `${r}: ${target.drops[r]} > ${expected[r]}`);
    }
    assert.ok(target.delivered <= expected.delivered + 1);
    assert.ok(target.drops.handler <= expectedHandler);
    if (lost === 0) {
      // Nothing lost on loopback: the live counters match the pure codec exactly.
      for (const r of ["short", "oversize", "mac", "version"] as const) {
        assert.equal(target.drops[r], expected[r], r);
      }
      assert.equal(target.delivered, expected.delivered + 1);
      assert.equal(target.drops.handler, expectedHandler);
      assert.ok(seen.validSwim >= sentByKind.validSwim, "every valid SWIM datagram decoded");
    }
    // Robust lower bounds (thousands of each were sent).
    for (const r of ["short", "oversize", "mac", "version", "handler"] as const) {
      assert.ok(target.drops[r] > 0, `no ${r} drops counted`);
    }
    assert.ok(seen.decodeErrors > 0);
    assert.ok(seen.validSwim >= 1);
    assert.ok(target.received > sent / 4, "most datagrams should have arrived");
  } finally {
    await new Promise<void>((r) => raw.close(() => r()));
    await target.close();
    await peer.close();
  }
});

// ---------------------------------------------------------------------------------------
// TCP

const FRAME_MAX = 4096;
const T_RESERVED = 0; // server treats it as garbage
const T_SWIM = 1;
const T_ECHO = 2;
const T_REPLY = 3;
const T_BOMB = 0xfe; // server's handler throws a plain Error

interface ServerStats {
  frames: number;
  swimOk: number;
  swimDecodeErrors: number;
  unknownTypes: number;
  unexpected: number;
}

function serverOnFrame(stats: ServerStats, reply: (t: number, b: Uint8Array) => void) {
  return (type: number, body: Uint8Array) => {
    stats.frames++;
    switch (type) {
      case T_RESERVED:
        throw new FrameError("garbage", "reserved frame type 0");
      case T_BOMB:
        throw new Error("deliberate handler failure");
      case T_SWIM:
        try {
          parseSwim(body);
          stats.swimOk++;
        } catch (e) {
          if (e instanceof DecodeError) stats.swimDecodeErrors++;
          else stats.unexpected++;
        }
        return;
      case T_ECHO:
        reply(T_REPLY, body);
        return;
      default:
        stats.unknownTypes++;
    }
  };
}

/**
 * What the server must do with a connection on which the client wrote `stream` and then
 * half-closed: the frames it hands to onFrame and the close reason. Replayed offline through a
 * FrameDecoder and the same frame rules (frames before a bad header are still delivered).
 */
function expectedOutcome(stream: Uint8Array): { frames: number; reason: string } {
  const dec = new FrameDecoder(FRAME_MAX);
  let frames: Frame[];
  let error: FrameError | null = null;
  try {
    frames = dec.push(stream);
  } catch (e) {
    if (!(e instanceof FrameError)) throw e;
    error = e;
    frames = e.frames;
  }
  for (let i = 0; i < frames.length; i++) {
    if (frames[i].type === T_RESERVED) return { frames: i + 1, reason: "garbage" };
    if (frames[i].type === T_BOMB) return { frames: i + 1, reason: "handler" };
  }
  if (error) return { frames: frames.length, reason: error.reason };
  return { frames: frames.length, reason: dec.buffered > 0 ? "truncated" : "end" };
}

function randomFrameBody(rng: Rng): { type: number; body: Uint8Array } {
  const r = rng.next();
  if (r < 0.25) return { type: T_SWIM, body: rng.pick(SWIM_ENCODED) };
  if (r < 0.55) return { type: T_SWIM, body: mutate(rng, rng.pick(SWIM_ENCODED)) };
  if (r < 0.6) return { type: T_SWIM, body: rng.bytes(rng.int(0, 200)) };
  let type = rng.int(1, 255);
  if (type === T_BOMB || type === T_ECHO) type = 7;
  const size = rng.next() < 0.01 ? rng.int(1000, FRAME_MAX - 1) : rng.int(0, 120);
  return { type, body: rng.bytes(size) };
}

interface Client {
  socket: net.Socket;
  replies: Frame[];
  done: Promise<void>;
}

async function connect(port: number): Promise<Client> {
  const socket = net.connect(port, "127.0.0.1");
  const dec = new FrameDecoder(FRAME_MAX);
  const replies: Frame[] = [];
  socket.on("data", (c: Uint8Array) => {
    try {
      replies.push(...dec.push(c));
    } catch { /* the server only sends well-formed frames */ }
  });
  socket.on("error", () => {}); // resets after the server closes on us are expected
  const done = new Promise<void>((r) => socket.on("close", () => r()));
  await new Promise<void>((r) => socket.once("connect", () => r()));
  return { socket, replies, done };
}

/** Writes `bytes` in randomly sized pieces so frames straddle TCP segments. */
function writeSplit(rng: Rng, socket: net.Socket, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) {
    const n = rng.next() < 0.3 ? rng.int(1, 16) : rng.int(1, 64 * 1024);
    socket.write(bytes.subarray(off, off + n));
    off += n;
  }
}

Deno.test("fuzz: 100,000+ random and mutated frames over live TCP connections", async () => {
  const rng = prng(SEED ^ 0x7cf);
  const stats: ServerStats = {
    frames: 0,
    swimOk: 0,
    swimDecodeErrors: 0,
    unknownTypes: 0,
    unexpected: 0,
  };
  const counters: Record<string, number> = {};
  const closeLog: string[] = [];
  const open = new Set<FramedSocket>();
  const server = net.createServer((socket) => {
    const conn: FramedSocket = attachFramedSocket(socket, {
      maxFrameBytes: FRAME_MAX,
      counters,
      onFrame: serverOnFrame(stats, (t, b) => conn.send(t, b)),
      onClose: (reason) => {
        closeLog.push(reason);
        open.delete(conn);
      },
    });
    open.add(conn);
  });
  server.on("error", () => {});
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;

  const clients: Client[] = [];
  try {
    // Phase A: 4 long-lived connections, 25,000 well-delimited frames each with random types
    // and random / mutated / valid SWIM bodies. None of them may close a connection.
    const PERSISTENT = 4;
    const PER_CONN = 25_000;
    const CHUNK = 1_000;
    let phaseAFrames = 0;
    let phaseASwim = 0;
    let phaseAValidSwim = 0;
    for (let i = 0; i < PERSISTENT; i++) clients.push(await connect(port));
    for (let sentHere = 0; sentHere < PER_CONN; sentHere += CHUNK) {
      await Promise.all(clients.map(async (c, ci) => {
        const parts: Uint8Array[] = [];
        for (let k = 0; k < CHUNK; k++) {
          const f = randomFrameBody(rng);
          if (f.type === T_SWIM) {
            phaseASwim++;
            if (SWIM_HEX.has(hex(f.body))) phaseAValidSwim++;
          }
          parts.push(encodeFrame(f.type, f.body));
        }
        phaseAFrames += CHUNK;
        // An echo after each chunk paces the sender and proves the chunk was processed.
        const marker = new Uint8Array([
          ci,
          sentHere >> 16,
          (sentHere >> 8) & 0xff,
          sentHere & 0xff,
        ]);
        parts.push(encodeFrame(T_ECHO, marker));
        const before = c.replies.length;
        writeSplit(rng, c.socket, concat(parts));
        await waitFor(() => c.replies.length > before, "echo after a chunk", 20_000);
        assert.deepEqual([...c.replies[before].body], [...marker]);
      }));
    }
    const echoesA = PERSISTENT * (PER_CONN / CHUNK);
    assert.equal(stats.frames, phaseAFrames + echoesA);
    assert.equal(stats.swimOk + stats.swimDecodeErrors, phaseASwim);
    assert.ok(stats.swimOk >= phaseAValidSwim);
    assert.equal(open.size, PERSISTENT, "no phase-A connection may have been closed");
    assert.deepEqual(counters, {});

    // Phase B: hostile connections, each a stream that ends in a protocol violation, garbage,
    // a truncated frame or a clean end. The expected close reason is computed beforehand.
    const HOSTILE = 400;
    const CONCURRENCY = 8;
    const expectedReasons: Record<string, number> = {};
    let expectedFramesB = 0;
    const framesBefore = stats.frames;
    const endings = [
      "oversize",
      "empty",
      "truncated",
      "halfHeader",
      "garbage",
      "bitflips",
      "reserved",
      "bomb",
      "clean",
    ] as const;
    const makeStream = (): Uint8Array => {
      const parts: Uint8Array[] = [];
      for (let k = rng.int(0, 20); k > 0; k--) {
        const f = randomFrameBody(rng);
        parts.push(encodeFrame(f.type, f.body));
      }
      const header = (n: number) =>
        new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
      switch (rng.pick(endings)) {
        case "oversize":
          parts.push(header(rng.int(FRAME_MAX + 1, 0xffffffff)), rng.bytes(rng.int(0, 100)));
          break;
        case "empty":
          parts.push(header(0), rng.bytes(rng.int(0, 100)));
          break;
        case "truncated": {
          const f = encodeFrame(7, rng.bytes(rng.int(1, 500)));
          parts.push(f.subarray(0, rng.int(5, f.length - 1)));
          break;
        }
        case "halfHeader":
          parts.push(rng.bytes(rng.int(1, 3)).map((b) => b & 0x0f));
          break;
        case "garbage":
          parts.push(rng.bytes(rng.int(1, 3000)));
          break;
        case "bitflips": {
          const s = concat(parts.splice(0));
          parts.push(s.length ? mutate(rng, s) : rng.bytes(10));
          break;
        }
        case "reserved":
          parts.push(encodeFrame(T_RESERVED, rng.bytes(rng.int(0, 10))));
          break;
        case "bomb":
          parts.push(encodeFrame(T_BOMB, new Uint8Array(0)));
          break;
        case "clean":
          break;
      }
      return concat(parts);
    };
    const runHostile = async () => {
      const stream = makeStream();
      const { frames, reason } = expectedOutcome(stream);
      expectedReasons[reason] = (expectedReasons[reason] ?? 0) + 1;
      expectedFramesB += frames;
      const c = await connect(port);
      writeSplit(rng, c.socket, stream);
      c.socket.end();
      await c.done;
    };
    for (let done = 0; done < HOSTILE; done += CONCURRENCY) {
      await Promise.all(Array.from({ length: CONCURRENCY }, runHostile));
    }
    await waitFor(() => closeLog.length === HOSTILE, "every hostile connection closed", 20_000);
    assert.deepEqual(counters, expectedReasons);
    assert.equal(stats.frames - framesBefore, expectedFramesB);
    assert.equal(open.size, PERSISTENT, "hostile connections must not affect others");

    // Phase C: the server is still up; old and new connections complete an exchange.
    const fresh = await connect(port);
    clients.push(fresh);
    for (const c of clients) {
      const before = c.replies.length;
      c.socket.write(encodeFrame(T_ECHO, new Uint8Array([0xc0, 0xff, 0xee])));
      await waitFor(() => c.replies.length > before, "final echo");
      assert.deepEqual([...c.replies[before].body], [0xc0, 0xff, 0xee]);
    }
    assert.equal(stats.unexpected, 0);

    const totalFrames = stats.frames;
    console.log(
      `[tcp fuzz seed=${SEED}] frames decoded by the server ${totalFrames} ` +
        `(phase A ${phaseAFrames} + ${echoesA} echoes, phase B ${expectedFramesB})`,
    );
    console.log(`  server stats ${JSON.stringify(stats)}`);
    console.log(`  close reasons ${JSON.stringify(counters)}`);
    assert.ok(phaseAFrames >= 100_000);
  } finally {
    for (const c of clients) c.socket.end();
    await Promise.all(clients.map((c) => c.done));
    await waitFor(() => open.size === 0, "server connections closed");
    await new Promise<void>((r) => server.close(() => r()));
  }
});
