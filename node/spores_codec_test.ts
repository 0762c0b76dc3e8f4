import assert from "node:assert/strict";
import fc from "fast-check";
import { DecodeError } from "../core/errors.ts";
import type { NodeId } from "../core/ids.ts";
import type { SporeMessage } from "../core/spores/gossip.ts";
import { HEALTH, type LatentEntry } from "../core/spores/latent.ts";
import { TIERS } from "../core/spores/types.ts";
import { decodeSpores, encodeSpores } from "./spores_codec.ts";

const hex32 = fc.stringMatching(/^[0-9a-f]{32}$/);
const frac = fc.double({ min: 0, max: 1, noNaN: true });
const count = fc.nat();
const entry: fc.Arbitrary<LatentEntry> = fc.record({
  network: hex32,
  scope: fc.constant("master"),
  node: hex32.map((s) => s as NodeId),
  tier: fc.constantFrom(...TIERS),
  health: fc.constantFrom(...HEALTH),
  trust: frac,
  usage: fc.record({ cpu: frac, memory: frac, storage: frac, bandwidth: frac }),
  uptimeDiffMs: count,
  processingVolume: count,
  conn: fc.record({
    up: fc.boolean(),
    connects: count,
    disconnects: count,
    flaps: count,
    lastUpMs: fc.option(count, { nil: null }),
    lastDownMs: fc.option(count, { nil: null }),
  }),
  hlc: fc.record({ ms: count, c: count }),
  sig: fc.string({ maxLength: 128 }),
});
const message: fc.Arbitrary<SporeMessage> = fc.oneof(
  fc.record({
    t: fc.constant("spore-push" as const),
    net: hex32,
    ph: count,
    entries: fc.array(entry, { maxLength: 4 }),
  }),
  fc.record({
    t: fc.constant("spore-digest" as const),
    net: hex32,
    ph: count,
    digest: fc.array(
      fc.tuple(hex32.map((s) => s as NodeId), count, count).map((x) =>
        x as readonly [NodeId, number, number]
      ),
      { maxLength: 4 },
    ),
  }),
  fc.record({
    t: fc.constant("spore-entries" as const),
    net: hex32,
    ph: count,
    entries: fc.array(entry, { maxLength: 4 }),
    want: fc.array(hex32.map((s) => s as NodeId), { maxLength: 4 }),
  }),
);

Deno.test("spores codec: every Latent message round-trips", () => {
  // fast-check makes null-prototype records: compare with the plain JSON value.
  fc.assert(
    fc.property(
      message,
      (m) => assert.deepEqual(decodeSpores(encodeSpores(m)), JSON.parse(JSON.stringify(m))),
    ),
  );
});

Deno.test("spores codec: random and mutated bodies fail only with DecodeError", () => {
  const decodeOrError = (b: Uint8Array) => {
    try {
      return decodeSpores(b);
    } catch (e) {
      assert.ok(e instanceof DecodeError, String(e));
      return e;
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (b) => void decodeOrError(b)));
  fc.assert(
    fc.property(
      message,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      (m, flips) => {
        const body = encodeSpores(m);
        for (const [at, x] of flips) body[at % body.length] ^= x;
        decodeOrError(body);
      },
    ),
  );
});

Deno.test("spores codec: bad fields are named; Primary messages are not on the node's wire", () => {
  const bad = new TextEncoder().encode(
    JSON.stringify({ t: "spore-push", net: "nope", ph: 0, entries: [] }),
  );
  assert.throws(
    () => decodeSpores(bad),
    (e: Error) => e instanceof DecodeError && /net/.test(e.message),
  );
  const pull = new TextEncoder().encode(
    JSON.stringify({ t: "primary-pull", net: "0".repeat(32), have: 0 }),
  );
  assert.throws(() => decodeSpores(pull), DecodeError);
  assert.throws(
    () => encodeSpores({ t: "primary-pull", net: "0".repeat(32), have: 0 }),
    DecodeError,
  );
});
