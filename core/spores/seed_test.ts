import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError, MyceliumError } from "../errors.ts";
import type { NodeId } from "../ids.ts";
import {
  encodeSeed,
  genesisSeed,
  parseSeedConfig,
  readSeed,
  type ReadSeedOptions,
  type SeedEntry,
  seedLocationKind,
  seedPayload,
  type SeedRead,
  writeSeed,
} from "./seed.ts";
import { modelSigner, modelVerify, OTHER_NETWORK, TEST_NETWORK, testNode } from "./testing.ts";
import { TIERS } from "./types.ts";

const WRITER = testNode(1);
const members = new Set<NodeId>([testNode(1), testNode(2)]);
const isMember = (n: NodeId) => members.has(n);

const entryArb: fc.Arbitrary<SeedEntry> = fc.record({
  node: fc.nat(40).map(testNode),
  tier: fc.constantFrom(...TIERS),
  trust: fc.integer({ min: 0, max: 100 }).map((x) => x / 100),
  addrs: fc.array(fc.string({ minLength: 1, maxLength: 20 }), { maxLength: 3 }),
});
const entriesArb = fc.uniqueArray(entryArb, { selector: (e) => e.node, maxLength: 8 });

function write(over: Partial<Parameters<typeof writeSeed>[0]> = {}) {
  return writeSeed({
    version: 3,
    network: TEST_NETWORK,
    scope: "master",
    created: 10_000,
    writer: WRITER,
    primaryHeight: 42,
    entries: [
      { node: testNode(2), tier: "sclerotia", trust: 0.9, addrs: ["10.0.0.2:7000"] },
      { node: testNode(1), tier: "sclerotia", trust: 0.9, addrs: ["10.0.0.1:7000"] },
    ],
    ...over,
  }, { sign: modelSigner(over.writer ?? WRITER), isMember: () => true });
}

const opts: ReadSeedOptions = {
  network: TEST_NETWORK,
  verify: modelVerify,
  now: 11_000,
  maxAgeMs: 60_000,
};

function problem(r: SeedRead): string {
  return r.ok ? "ok" : r.problem;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("a written seed reads back, entries in node order, signature over the canonical form", () => {
  fc.assert(
    fc.property(entriesArb, fc.nat(1000), (entries, version) => {
      const { seed, bytes } = write({ entries, version: version + 1 });
      const r = readSeed(bytes, opts);
      assert.ok(r.ok, r.ok ? "" : `${r.problem}: ${r.detail}`);
      assert.deepEqual(r.seed, seed);
      const nodes = r.seed.entries.map((e) => e.node);
      assert.deepEqual(nodes, [...nodes].sort());
      // Same content in another order: same bytes, same signature.
      assert.deepEqual(
        write({ entries: [...entries].reverse(), version: version + 1 }).bytes,
        bytes,
      );
    }),
    { numRuns: 100 },
  );
});

Deno.test("genesis writes the Master Seed spore at version 1", () => {
  const { seed } = genesisSeed({ network: TEST_NETWORK, writer: WRITER, created: 0, entries: [] }, {
    sign: modelSigner(WRITER),
    isMember,
  });
  assert.equal(seed.version, 1);
  assert.equal(seed.scope, "master");
  assert.equal(seed.primaryHeight, 0);
});

Deno.test("only member nodes write seeds", () => {
  assert.throws(
    () =>
      writeSeed({
        version: 1,
        network: TEST_NETWORK,
        scope: "master",
        created: 0,
        writer: testNode(7),
        primaryHeight: 0,
        entries: [],
      }, { sign: modelSigner(testNode(7)), isMember }),
    (e: unknown) => e instanceof MyceliumError && e.kind === "protocol",
  );
  assert.throws(
    () => write({ entries: [{ node: testNode(2), tier: "sclerotia", trust: 2, addrs: [] }] }),
    (e: unknown) => e instanceof MyceliumError && /seed\.entries\[0\]\.trust/.test(e.message),
  );
});

Deno.test("a missing file is reported as missing", () => {
  assert.equal(problem(readSeed(undefined, opts)), "missing");
  assert.equal(problem(readSeed(null, opts)), "missing");
});

Deno.test("every cut of a seed file short of its end reads as truncated", () => {
  const { bytes } = write();
  for (let n = 0; n < bytes.length; n++) {
    const r = readSeed(bytes.subarray(0, n), opts);
    assert.equal(problem(r), "truncated", `cut at ${n}`);
  }
  assert.equal(problem(readSeed(bytes, opts)), "ok");
});

Deno.test("files that are not seeds, or malformed ones, are unparsable", () => {
  const { bytes } = write();
  const text = dec.decode(bytes);
  const [header, sig] = text.split("\n");
  const bad = [
    "hello\n",
    '{"format":"mycelium-seed/2"}\n{"sig":"x"}\n',
    `${header}\n${sig}\n\n`,
    `${header.slice(0, -1)},\n${sig}\n`, // JSON error with intact framing
    `${header}\n{"sig":""}\n`,
    header.replace('"trust":0.9', '"trust":9') + `\n${sig}\n`,
  ];
  for (const b of bad) assert.equal(problem(readSeed(enc.encode(b), opts)), "unparsable", b);
  const r = readSeed(enc.encode(header.replace('"trust":0.9', '"trust":9') + `\n${sig}\n`), opts);
  assert.ok(!r.ok && /seed\.entries\[0\]\.trust/.test(r.detail));
  assert.equal(problem(readSeed(new Uint8Array([0x7b, 0x22, 0xff, 0x0a]), opts)), "unparsable");
});

Deno.test("a seed whose content was changed is tampered, never trusted", () => {
  const { bytes } = write();
  const text = dec.decode(bytes);
  const header = text.slice(0, text.indexOf("\n"));
  const digits = [...header].flatMap((ch, i) => (ch >= "0" && ch <= "9" ? [i] : []));
  fc.assert(
    fc.property(fc.constantFrom(...digits), fc.integer({ min: 1, max: 9 }), (i, d) => {
      const ch = String((Number(header[i]) + d) % 10);
      const changed = text.slice(0, i) + ch + text.slice(i + 1);
      const r = readSeed(enc.encode(changed), { ...opts, now: 10_000 });
      assert.ok(!r.ok, `changed byte ${i} was accepted`);
      assert.notEqual(r.problem, "truncated");
    }),
  );
  const retrust = text.replace('"trust":0.9', '"trust":1');
  assert.equal(problem(readSeed(enc.encode(retrust), opts)), "tampered");
  const resigned = text.replace(/"sig":"[^"]*"/, `"sig":"${modelSigner(testNode(2))("x")}"`);
  assert.equal(problem(readSeed(enc.encode(resigned), opts)), "tampered");
});

Deno.test("wrong network, wrong scope and an unauthorized writer are reported", () => {
  assert.equal(
    problem(readSeed(write({ network: OTHER_NETWORK }).bytes, opts)),
    "wrong-network",
  );
  assert.equal(problem(readSeed(write({ scope: "service:db" }).bytes, opts)), "wrong-scope");
  assert.equal(
    problem(readSeed(write({ scope: "service:db" }).bytes, { ...opts, scope: "service:db" })),
    "ok",
  );
  const byOutsider = write({ writer: testNode(9) }).bytes;
  assert.equal(problem(readSeed(byOutsider, { ...opts, isMember })), "unauthorized");
  assert.equal(problem(readSeed(byOutsider, opts)), "ok", "membership not checked when not given");
});

Deno.test("stale (too old or an older version) and future-dated seeds are reported", () => {
  const { bytes } = write({ created: 10_000, version: 3 });
  assert.equal(problem(readSeed(bytes, { ...opts, now: 70_000 })), "ok", "exactly maxAge old");
  assert.equal(problem(readSeed(bytes, { ...opts, now: 70_001 })), "stale");
  assert.equal(problem(readSeed(bytes, { ...opts, heldVersion: 4 })), "stale");
  assert.equal(problem(readSeed(bytes, { ...opts, heldVersion: 3 })), "ok");
  assert.equal(
    problem(readSeed(bytes, { ...opts, now: 5000 })),
    "ok",
    "5 s ahead: the default skew",
  );
  assert.equal(problem(readSeed(bytes, { ...opts, now: 4999 })), "future-dated");
  assert.equal(problem(readSeed(bytes, { ...opts, now: 9000, maxSkewMs: 500 })), "future-dated");
});

Deno.test("the signed payload is built from the fields; a file must start with its format tag", () => {
  const { seed } = write();
  const text = dec.decode(encodeSeed(seed));
  const [header, sig] = text.split("\n");
  const h = JSON.parse(header);
  const reordered = JSON.stringify(Object.fromEntries(Object.entries(h).reverse()));
  // The magic prefix is part of the format, so reordering makes the file unparsable...
  assert.equal(problem(readSeed(enc.encode(`${reordered}\n${sig}\n`), opts)), "unparsable");
  // ...but the signed payload is built from the fields, not the bytes.
  assert.equal(seedPayload({ ...h }), seedPayload(seed));
});

Deno.test("seed config: file paths and http(s) URLs; anything else is named", () => {
  const c = parseSeedConfig({ locations: ["/var/lib/mycelium/seed", "https://seed.example/m"] });
  assert.deepEqual(c.locations.map(seedLocationKind), ["file", "url"]);
  assert.equal(c.maxAgeMs, 24 * 3600 * 1000);
  for (const bad of ["ftp://x/seed", "http://", ""]) {
    assert.throws(
      () => parseSeedConfig({ locations: ["/ok", bad] }),
      (e: unknown) => e instanceof ConfigError && /spores\.seed\.locations\[1\]/.test(e.message),
      bad,
    );
  }
});
