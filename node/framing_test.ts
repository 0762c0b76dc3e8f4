import assert from "node:assert/strict";
import net from "node:net";
import fc from "fast-check";
import { DecodeError, MyceliumError } from "../core/errors.ts";
import {
  allocFrame,
  attachFramedSocket,
  closeReasonOf,
  encodeFrame,
  type Frame,
  FrameDecoder,
  type FramedSocket,
  FrameError,
} from "./framing.ts";

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function plain(frames: Frame[]): Array<{ type: number; body: number[] }> {
  return frames.map((f) => ({ type: f.type, body: [...f.body] }));
}

const frameArb = fc.record({
  type: fc.integer({ min: 0, max: 255 }),
  body: fc.uint8Array({ maxLength: 300 }),
});

Deno.test("frame layout: u32 big-endian length of type+body, type, body", () => {
  const f = encodeFrame(7, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...f], [0, 0, 0, 4, 7, 1, 2, 3]);
  assert.deepEqual([...encodeFrame(255, new Uint8Array(0))], [0, 0, 0, 1, 255]);
  const big = encodeFrame(1, new Uint8Array(0x10203));
  assert.deepEqual([...big.subarray(0, 5)], [0, 1, 2, 4, 1]);
  assert.throws(() => encodeFrame(256, new Uint8Array(0)), RangeError);
  assert.throws(() => encodeFrame(-1, new Uint8Array(0)), RangeError);
});

Deno.test("decoder: any split of a frame sequence into chunks gives the same frames (property)", () => {
  fc.assert(
    fc.property(
      fc.array(frameArb, { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (frames, cutSeeds) => {
        const stream = concat(frames.map((f) => encodeFrame(f.type, f.body)));
        const cuts = [...new Set(cutSeeds.map((c) => c % (stream.length + 1)))].sort((a, b) =>
          a - b
        );
        const dec = new FrameDecoder(1000);
        const out: Frame[] = [];
        let prev = 0;
        for (const c of [...cuts, stream.length]) {
          out.push(...dec.push(stream.subarray(prev, c)));
          prev = c;
        }
        assert.deepEqual(plain(out), frames.map((f) => ({ type: f.type, body: [...f.body] })));
        assert.equal(dec.buffered, 0);
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("decoder: a frame split at every byte boundary, and byte by byte", () => {
  const frames = [
    { type: 1, body: new Uint8Array([10, 20, 30, 40, 50]) },
    { type: 2, body: new Uint8Array(0) },
    { type: 3, body: new Uint8Array(200).map((_, i) => i) },
  ];
  const stream = concat(frames.map((f) => encodeFrame(f.type, f.body)));
  const want = plain(frames.map((f) => ({ type: f.type, body: f.body })));
  for (let cut = 0; cut <= stream.length; cut++) {
    const dec = new FrameDecoder(1000);
    const got = [...dec.push(stream.subarray(0, cut)), ...dec.push(stream.subarray(cut))];
    assert.deepEqual(plain(got), want, `cut at ${cut}`);
  }
  const dec = new FrameDecoder(1000);
  const got: Frame[] = [];
  for (let i = 0; i < stream.length; i++) got.push(...dec.push(stream.subarray(i, i + 1)));
  assert.deepEqual(plain(got), want);
});

Deno.test("decoder: bodies of reassembled frames are not clobbered by later chunks", () => {
  const dec = new FrameDecoder(100);
  const s = concat([
    encodeFrame(1, new Uint8Array([1, 1, 1])),
    encodeFrame(2, new Uint8Array([2, 2])),
  ]);
  const first = dec.push(s.subarray(0, 3));
  assert.equal(first.length, 0);
  const rest = dec.push(s.subarray(3, 10));
  assert.equal(rest.length, 1);
  const more = dec.push(s.subarray(10));
  assert.deepEqual(plain([...rest, ...more]), [{ type: 1, body: [1, 1, 1] }, {
    type: 2,
    body: [2, 2],
  }]);
});

Deno.test("decoder: zero length -> 'empty', over max -> 'oversize', then poisoned", () => {
  const dec = new FrameDecoder(10);
  assert.deepEqual(plain(dec.push(encodeFrame(1, new Uint8Array(9)))), [{
    type: 1,
    body: [0, 0, 0, 0, 0, 0, 0, 0, 0],
  }]);
  assert.throws(
    () => dec.push(encodeFrame(1, new Uint8Array(10))),
    (e) => e instanceof FrameError && e.reason === "oversize" && e.kind === "protocol",
  );
  assert.throws(() => dec.push(encodeFrame(1, new Uint8Array(0))), FrameError);

  const d2 = new FrameDecoder(10);
  d2.push(new Uint8Array([0, 0]));
  assert.throws(
    () => d2.push(new Uint8Array([0, 0, 9])),
    (e) => e instanceof FrameError && e.reason === "empty",
  );
  // Oversize is detected from the header, before the body arrives.
  const d3 = new FrameDecoder(1 << 20);
  assert.throws(() => d3.push(new Uint8Array([0xff, 0xff, 0xff, 0xff])), FrameError);
  assert.throws(() => new FrameDecoder(0), MyceliumError);
});

Deno.test("decoder: frames before a bad header in the same chunk travel in the error", () => {
  const dec = new FrameDecoder(10);
  dec.push(encodeFrame(1, new Uint8Array([1])).subarray(0, 2));
  const chunk = concat([
    encodeFrame(1, new Uint8Array([1])).subarray(2),
    encodeFrame(2, new Uint8Array([2, 2])),
    new Uint8Array([0, 0, 0, 0]),
  ]);
  try {
    dec.push(chunk);
    assert.fail("expected a FrameError");
  } catch (e) {
    assert.ok(e instanceof FrameError && e.reason === "empty");
    assert.deepEqual(plain(e.frames), [{ type: 1, body: [1] }, { type: 2, body: [2, 2] }]);
  }
  // Poisoned: later pushes throw the same reason with no frames.
  try {
    dec.push(encodeFrame(3, new Uint8Array(0)));
    assert.fail("expected a FrameError");
  } catch (e) {
    assert.ok(e instanceof FrameError && e.reason === "empty");
    assert.equal(e.frames.length, 0);
  }
});

Deno.test("decoder: random garbage decodes into frames or throws FrameError, nothing else (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }),
      fc.integer({ min: 1, max: 300 }),
      (chunks, max) => {
        const dec = new FrameDecoder(max);
        try {
          for (const c of chunks) {
            for (const f of dec.push(c)) {
              assert.ok(f.type >= 0 && f.type <= 255);
              assert.ok(f.body.length + 1 <= max);
            }
          }
        } catch (e) {
          if (!(e instanceof FrameError)) throw e;
        }
      },
    ),
    { numRuns: 3000 },
  );
});

Deno.test("closeReasonOf maps handler exceptions", () => {
  assert.equal(closeReasonOf(new FrameError("empty", "x")), "empty");
  assert.equal(closeReasonOf(new DecodeError("bad", 3)), "garbage");
  assert.equal(closeReasonOf(new MyceliumError("protocol", "bad")), "garbage");
  assert.equal(closeReasonOf(new TypeError("bug")), "handler");
});

// ---------------------------------------------------------------------------------------
// Real TCP on 127.0.0.1

const MAX = 1024;
const ECHO = 1;
const REPLY = 2;
const BOOM = 3; // handler throws a plain Error
const BAD = 4; // handler throws FrameError("garbage")

interface Server {
  port: number;
  counters: Record<string, number>;
  closes: string[];
  frames: number;
  close(): Promise<void>;
}

async function startServer(): Promise<Server> {
  const counters: Record<string, number> = {};
  const closes: string[] = [];
  const conns = new Set<FramedSocket>();
  const state = { frames: 0 };
  const server = net.createServer((socket) => {
    const conn: FramedSocket = attachFramedSocket(socket, {
      maxFrameBytes: MAX,
      counters,
      onFrame: (type, body) => {
        state.frames++;
        if (type === ECHO) conn.send(REPLY, body);
        else if (type === BOOM) throw new Error("handler bug");
        else if (type === BAD) throw new FrameError("garbage", "unknown frame type");
      },
      onClose: (reason) => {
        closes.push(reason);
        conns.delete(conn);
      },
    });
    conns.add(conn);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    counters,
    closes,
    get frames() {
      return state.frames;
    },
    close: async () => {
      for (const c of conns) c.close("shutdown");
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A raw client: writes bytes, collects reply frames, resolves `closed` when the socket is gone. */
async function rawClient(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  const dec = new FrameDecoder(MAX);
  const replies: Frame[] = [];
  let closed = false;
  socket.on("data", (c: Uint8Array) => replies.push(...dec.push(c)));
  socket.on("error", () => {}); // resets after the server closes on us are expected
  const done = new Promise<void>((r) =>
    socket.on("close", () => {
      closed = true;
      r();
    })
  );
  await new Promise<void>((r) => socket.once("connect", () => r()));
  return {
    socket,
    replies,
    done,
    get closed() {
      return closed;
    },
    write: (b: Uint8Array) => socket.write(b),
  };
}

function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs; // safety net only
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 2);
    };
    tick();
  });
}

function header(n: number): Uint8Array {
  return new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

Deno.test("TCP: bad frames close only their connection, with the right counted reason", async () => {
  const srv = await startServer();
  try {
    // A healthy connection that stays open throughout.
    const good = await rawClient(srv.port);
    good.write(encodeFrame(ECHO, new Uint8Array([1])));
    await waitFor(() => good.replies.length === 1, "first echo");

    const cases: Array<[string, (c: Awaited<ReturnType<typeof rawClient>>) => void]> = [
      ["oversize", (c) => c.write(concat([header(MAX + 1), new Uint8Array(10)]))],
      ["oversize", (c) => c.write(header(0xffffffff))],
      ["empty", (c) => c.write(concat([encodeFrame(ECHO, new Uint8Array(2)), header(0)]))],
      ["truncated", (c) => {
        c.write(concat([header(50), new Uint8Array(10)]));
        c.socket.end();
      }],
      ["truncated", (c) => {
        c.write(new Uint8Array([0, 0])); // half a header
        c.socket.end();
      }],
      ["end", (c) => {
        c.write(encodeFrame(ECHO, new Uint8Array(3)));
        c.socket.end();
      }],
      ["handler", (c) => c.write(encodeFrame(BOOM, new Uint8Array(0)))],
      ["garbage", (c) => c.write(encodeFrame(BAD, new Uint8Array(0)))],
    ];
    const expected: Record<string, number> = {};
    for (const [reason, act] of cases) {
      const before = srv.closes.length;
      const c = await rawClient(srv.port);
      act(c);
      await c.done;
      await waitFor(() => srv.closes.length === before + 1, `server close for ${reason}`);
      assert.equal(srv.closes.at(-1), reason);
      expected[reason] = (expected[reason] ?? 0) + 1;
      assert.deepEqual(srv.counters, expected);

      // The good connection still works after each bad one.
      const n = good.replies.length;
      good.write(encodeFrame(ECHO, new Uint8Array([n])));
      await waitFor(() => good.replies.length === n + 1, "echo after a bad connection");
      assert.deepEqual([...good.replies[n].body], [n]);
    }
    assert.ok(!good.closed);

    // A frame right at the maximum is fine; a frame split byte by byte is reassembled.
    const n = good.replies.length;
    good.write(encodeFrame(ECHO, new Uint8Array(MAX - 1).fill(7)));
    const split = encodeFrame(ECHO, new Uint8Array([4, 5, 6]));
    for (const b of split) good.write(new Uint8Array([b]));
    await waitFor(() => good.replies.length === n + 2, "max-size and split echoes");
    assert.equal(good.replies[n].body.length, MAX - 1);
    assert.deepEqual([...good.replies[n + 1].body], [4, 5, 6]);

    good.socket.end();
    await good.done;
    await waitFor(() => srv.closes.length === cases.length + 1, "good close");
    assert.equal(srv.counters.end, 2);
  } finally {
    await srv.close();
  }
});

Deno.test("TCP: send refuses oversize frames; close(reason) is counted once; idle timeout", async () => {
  const counters: Record<string, number> = {};
  const closes: string[] = [];
  let serverConn: FramedSocket | null = null;
  const server = net.createServer((socket) => {
    serverConn = attachFramedSocket(socket, {
      maxFrameBytes: 16,
      counters,
      onFrame: () => {},
      onClose: (r) => closes.push(r),
      idleTimeoutMs: 50,
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  try {
    const port = (server.address() as net.AddressInfo).port;
    const c1 = await rawClient(port);
    await waitFor(() => serverConn !== null, "accept");
    const conn = serverConn!;
    assert.throws(() => conn.send(1, new Uint8Array(16)), FrameError);
    assert.equal(conn.send(1, new Uint8Array(15)), true);
    conn.close("local");
    conn.close("again");
    assert.equal(conn.closed, true);
    assert.equal(conn.send(1, new Uint8Array(1)), false);
    await c1.done;
    assert.deepEqual(closes, ["local"]);

    const c2 = await rawClient(port); // says nothing: closed as idle
    await c2.done;
    await waitFor(() => closes.length === 2, "idle close");
    assert.deepEqual(closes, ["local", "idle"]);
    assert.deepEqual(counters, { local: 1, idle: 1 });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});

Deno.test("allocFrame: the same bytes as encodeFrame, body filled in place", () => {
  const { frame, body } = allocFrame(9, 3);
  body.set([1, 2, 3]);
  assert.deepEqual([...frame], [...encodeFrame(9, new Uint8Array([1, 2, 3]))]);
  assert.throws(() => allocFrame(256, 0), RangeError);
});

Deno.test("decoder: frames assembled from several chunks are owned, in-chunk ones are views", () => {
  const a = encodeFrame(1, new Uint8Array(10));
  const b = encodeFrame(2, new Uint8Array(100).fill(5));
  const stream = concat([a, b]);
  const dec = new FrameDecoder(1000);
  const first = dec.push(stream.subarray(0, a.length + 20));
  assert.deepEqual(first.map((f) => f.owned), [false]);
  assert.equal(first[0].body.buffer, stream.buffer);
  const second = dec.push(stream.subarray(a.length + 20));
  assert.deepEqual(second.map((f) => [f.type, f.owned, f.body.length]), [[2, true, 100]]);
  assert.notEqual(second[0].body.buffer, stream.buffer);
  assert.equal(second[0].body.buffer.byteLength, b.length);
});
