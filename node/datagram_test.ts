import assert from "node:assert/strict";
import dgram from "node:dgram";
import fc from "fast-check";
import type { NodeId } from "../core/ids.ts";
import { MyceliumError } from "../core/errors.ts";
import {
  DATAGRAM_HEADER_BYTES,
  DATAGRAM_OVERHEAD,
  DATAGRAM_TAG_BYTES,
  DATAGRAM_VERSION,
  DatagramTransport,
  openDatagram,
  parseHostPort,
  sealDatagram,
} from "./datagram.ts";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";

const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
const idArb = fc
  .uint8Array({ minLength: 16, maxLength: 16 })
  .map((b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("") as NodeId);
const payloadArb = fc.uint8Array({ maxLength: 600 });

const KEY = new Uint8Array(32).map((_, i) => i + 1);
const OTHER_KEY = new Uint8Array(32).map((_, i) => 200 - i);
const A = "0123456789abcdef0123456789abcdef" as NodeId;
const B = "fedcba9876543210fedcba9876543210" as NodeId;

Deno.test("envelope layout: version | from | payload | truncated HMAC-SHA256 tag", () => {
  const payload = new Uint8Array([9, 8, 7]);
  const d = sealDatagram(KEY, A, payload);
  assert.equal(DATAGRAM_OVERHEAD, 33);
  assert.equal(d.length, payload.length + DATAGRAM_OVERHEAD);
  assert.equal(d[0], DATAGRAM_VERSION);
  assert.equal(
    Array.from(d.subarray(1, 17), (x) => x.toString(16).padStart(2, "0")).join(""),
    A,
  );
  assert.deepEqual(d.subarray(DATAGRAM_HEADER_BYTES, DATAGRAM_HEADER_BYTES + 3), payload);
  const tag = hmac(sha256, KEY, d.subarray(0, d.length - DATAGRAM_TAG_BYTES)).subarray(0, 16);
  assert.deepEqual(d.subarray(d.length - DATAGRAM_TAG_BYTES), tag);
  const r = openDatagram(KEY, d);
  assert.ok(!("drop" in r));
  assert.equal(r.from, A);
  assert.deepEqual(r.payload, payload);
});

Deno.test("open(seal(x)) round-trips (property)", () => {
  fc.assert(
    fc.property(keyArb, idArb, payloadArb, (key, from, payload) => {
      const r = openDatagram(key, sealDatagram(key, from, payload));
      assert.ok(!("drop" in r), "dropped a valid datagram");
      assert.equal(r.from, from);
      assert.deepEqual(r.payload, payload);
    }),
    { numRuns: 500 },
  );
});

Deno.test("any single-bit flip is dropped with 'mac' (property)", () => {
  fc.assert(
    fc.property(keyArb, idArb, payloadArb, fc.nat(), fc.integer({ min: 0, max: 7 }), (
      key,
      from,
      payload,
      pos,
      bit,
    ) => {
      const d = sealDatagram(key, from, payload);
      const i = pos % d.length;
      d[i] ^= 1 << bit;
      assert.deepEqual(openDatagram(key, d), { drop: "mac" });
    }),
    { numRuns: 1000 },
  );
});

Deno.test("every single-bit flip of one datagram is dropped (exhaustive)", () => {
  const d = sealDatagram(KEY, A, new Uint8Array([1, 2, 3, 4, 5]));
  for (let i = 0; i < d.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const m = d.slice();
      m[i] ^= 1 << bit;
      assert.deepEqual(openDatagram(KEY, m), { drop: "mac" }, `byte ${i} bit ${bit}`);
    }
  }
});

Deno.test("truncation is dropped with 'mac' or 'short' (property)", () => {
  fc.assert(
    fc.property(keyArb, idArb, payloadArb, fc.nat(), (key, from, payload, cut) => {
      const d = sealDatagram(key, from, payload);
      const len = cut % d.length; // strictly shorter
      const r = openDatagram(key, d.subarray(0, len));
      assert.ok("drop" in r);
      assert.equal(r.drop, len < DATAGRAM_OVERHEAD ? "short" : "mac");
    }),
    { numRuns: 1000 },
  );
});

Deno.test("extension is dropped with 'mac' (or 'oversize' past the max) (property)", () => {
  fc.assert(
    fc.property(
      keyArb,
      idArb,
      payloadArb,
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      fc.boolean(),
      (key, from, payload, extra, atFront) => {
        const d = sealDatagram(key, from, payload);
        const m = new Uint8Array(d.length + extra.length);
        if (atFront) {
          m.set(extra);
          m.set(d, extra.length);
        } else {
          m.set(d);
          m.set(extra, d.length);
        }
        assert.deepEqual(openDatagram(key, m), { drop: "mac" });
        assert.deepEqual(openDatagram(key, m, m.length - 1), { drop: "oversize" });
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("a datagram sealed with another key is dropped with 'mac' (property)", () => {
  fc.assert(
    fc.property(keyArb, keyArb, idArb, payloadArb, (k1, k2, from, payload) => {
      fc.pre(k1.some((x, i) => x !== k2[i]));
      assert.deepEqual(openDatagram(k2, sealDatagram(k1, from, payload)), { drop: "mac" });
    }),
    { numRuns: 500 },
  );
});

Deno.test("random bytes never throw and are never accepted (property)", () => {
  fc.assert(
    fc.property(keyArb, fc.uint8Array({ maxLength: 300 }), (key, bytes) => {
      const r = openDatagram(key, bytes);
      assert.ok("drop" in r);
      assert.ok(r.drop === "short" || r.drop === "mac", `unexpected ${r.drop}`);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("authentic datagram of another envelope version is dropped with 'version'", () => {
  const d = sealDatagram(KEY, A, new Uint8Array([1, 2]));
  d[0] = 2;
  const body = d.length - DATAGRAM_TAG_BYTES;
  d.set(hmac(sha256, KEY, d.subarray(0, body)).subarray(0, 16), body);
  assert.deepEqual(openDatagram(KEY, d), { drop: "version" });
});

Deno.test("length limits: 'short' below the overhead, 'oversize' above the max", () => {
  assert.deepEqual(openDatagram(KEY, new Uint8Array(0)), { drop: "short" });
  assert.deepEqual(openDatagram(KEY, new Uint8Array(DATAGRAM_OVERHEAD - 1)), { drop: "short" });
  const empty = sealDatagram(KEY, A, new Uint8Array(0));
  assert.equal(empty.length, DATAGRAM_OVERHEAD);
  assert.ok(!("drop" in openDatagram(KEY, empty)));
  const big = sealDatagram(KEY, A, new Uint8Array(70_000));
  assert.deepEqual(openDatagram(KEY, big), { drop: "oversize" });
  assert.ok(!("drop" in openDatagram(KEY, big, big.length)));
});

Deno.test("seal rejects a bad key or sender; open rejects a bad key", () => {
  assert.throws(() => sealDatagram(new Uint8Array(16), A, new Uint8Array(1)), MyceliumError);
  assert.throws(
    () => sealDatagram(KEY, "not-an-id" as NodeId, new Uint8Array(1)),
    (e) => e instanceof MyceliumError && e.kind === "encode",
  );
  assert.throws(() => openDatagram(new Uint8Array(31), new Uint8Array(40)), MyceliumError);
});

Deno.test("parseHostPort", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:7946"), { host: "127.0.0.1", port: 7946 });
  assert.deepEqual(parseHostPort("[::1]:80"), { host: "::1", port: 80 });
  for (const bad of ["", "127.0.0.1", ":80", "h:", "h:0", "h:65536", "h:8x", "h:-1"]) {
    assert.equal(parseHostPort(bad), null, bad);
  }
});

// ---------------------------------------------------------------------------------------
// Live sockets on 127.0.0.1

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

Deno.test("DatagramTransport: two nodes exchange; foreign and garbage datagrams are counted", async () => {
  const got: Array<{ from: NodeId; payload: number[]; addr: string }> = [];
  const a = await DatagramTransport.bind({
    host: "127.0.0.1",
    port: 0,
    key: KEY,
    self: A,
    onMessage: (from, payload, addr) => got.push({ from, payload: [...payload], addr }),
  });
  const b = await DatagramTransport.bind({
    host: "127.0.0.1",
    port: 0,
    key: KEY,
    self: B,
    onMessage: (from, payload) => {
      if (payload[0] === 0xff) throw new Error("handler bug");
      // echo back
      b.send(a.address, payload.map((x) => x + 1));
      void from;
    },
  });
  const raw = dgram.createSocket("udp4");
  await new Promise<void>((r) => raw.bind(0, "127.0.0.1", () => r()));
  const rawSend = (bytes: Uint8Array, to: DatagramTransport) =>
    new Promise<void>((r) => {
      const { port } = parseHostPort(to.address)!;
      raw.send(bytes, port, "127.0.0.1", () => r());
    });
  try {
    assert.match(a.address, /^127\.0\.0\.1:\d+$/);
    a.send(b.address, new Uint8Array([1, 2, 3]));
    await waitFor(() => got.length === 1, "echo");
    assert.equal(got[0].from, B);
    assert.deepEqual(got[0].payload, [2, 3, 4]);
    assert.equal(got[0].addr, b.address);

    await rawSend(new Uint8Array([1, 2, 3]), b); // short
    await rawSend(new Uint8Array(100), b); // mac
    await rawSend(sealDatagram(OTHER_KEY, A, new Uint8Array([5])), b); // foreign network
    const tampered = sealDatagram(KEY, A, new Uint8Array([5, 6]));
    tampered[DATAGRAM_HEADER_BYTES] ^= 4;
    await rawSend(tampered, b);
    a.send(b.address, new Uint8Array([0xff])); // handler throws
    a.send(b.address, new Uint8Array([7]));
    await waitFor(() => got.length === 2, "second echo");
    assert.deepEqual(got[1].payload, [8]);
    assert.equal(b.drops.short, 1);
    assert.equal(b.drops.mac, 3);
    assert.equal(b.drops.handler, 1);
    assert.equal(b.received, 7);
    assert.equal(b.delivered, 3);
    assert.equal(a.sent, 3);
    assert.equal(a.bytesSent, 3 + 1 + 1 + 3 * DATAGRAM_OVERHEAD);
    assert.equal(a.bytesReceived, 3 + 1 + 2 * DATAGRAM_OVERHEAD);

    // Send failures are counted, never thrown.
    a.send("nonsense", new Uint8Array(1));
    a.send(b.address, new Uint8Array(70_000));
    assert.equal(a.sendErrors.address, 1);
    assert.equal(a.sendErrors.oversize, 1);
  } finally {
    await new Promise<void>((r) => raw.close(() => r()));
    await a.close();
    await b.close();
  }
  a.send(b.address, new Uint8Array(1));
  assert.equal(a.sendErrors.closed, 1);
  await a.close(); // idempotent
});

Deno.test("DatagramTransport.bind rejects bad options and a port in use", async () => {
  const onMessage = () => {};
  await assert.rejects(
    DatagramTransport.bind({
      host: "127.0.0.1",
      port: 0,
      key: new Uint8Array(3),
      self: A,
      onMessage,
    }),
    MyceliumError,
  );
  await assert.rejects(
    DatagramTransport.bind({
      host: "127.0.0.1",
      port: 0,
      key: KEY,
      self: "x" as NodeId,
      onMessage,
    }),
    MyceliumError,
  );
  const a = await DatagramTransport.bind({
    host: "127.0.0.1",
    port: 0,
    key: KEY,
    self: A,
    onMessage,
  });
  try {
    const port = parseHostPort(a.address)!.port;
    await assert.rejects(
      DatagramTransport.bind({ host: "127.0.0.1", port, key: KEY, self: B, onMessage }),
      (e) => e instanceof MyceliumError && e.kind === "network",
    );
  } finally {
    await a.close();
  }
});
