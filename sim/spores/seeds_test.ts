import assert from "node:assert/strict";
import type { NodeId } from "../../core/ids.ts";
import { modelSigner, modelVerify, testNode } from "../../core/spores/testing.ts";
import { SEED_ACTIONS } from "../scenario.ts";
import { SeedFiles } from "./seeds.ts";

const NET = "a".repeat(32);
const writer = testNode(1);
const entries = [2, 3].map((i) => ({
  node: testNode(i),
  tier: "sclerotia" as const,
  trust: 0.9,
  addrs: [`s-${i}`],
}));
const read = (f: SeedFiles, loc: string, now = 1000) =>
  f.read(loc, { network: NET, verify: modelVerify, now, maxAgeMs: 60_000, maxSkewMs: 5000 });

Deno.test("seed files: written by members with increasing versions, read back verified", () => {
  const f = new SeedFiles(["/a", "https://seeds.example/b"]);
  const member = (id: NodeId) => id === writer;
  f.writeAll(
    { network: NET, writer, created: 500, primaryHeight: 1, entries },
    modelSigner(writer),
    member,
  );
  f.writeAll(
    { network: NET, writer, created: 900, primaryHeight: 2, entries },
    modelSigner(writer),
    member,
  );
  for (const loc of f.locations) {
    const r = read(f, loc);
    assert.ok(r.ok);
    assert.equal(r.seed.version, 2);
    assert.deepEqual(r.seed.entries.map((e) => e.addrs[0]), ["s-2", "s-3"]);
  }
  assert.throws(() =>
    f.writeAll(
      { network: NET, writer: testNode(7), created: 1, primaryHeight: 1, entries },
      modelSigner(testNode(7)),
      member,
    )
  );
});

Deno.test("every seed action is reported by readSeed as its problem, never trusted", () => {
  const expected: Record<(typeof SEED_ACTIONS)[number], string> = {
    corrupt: "tampered",
    truncate: "truncated",
    stale: "stale",
    forge: "tampered",
    delete: "missing",
    "wrong-network": "wrong-network",
  };
  for (const action of SEED_ACTIONS) {
    const f = new SeedFiles(["/a"]);
    // (Late enough that a file older than maxAgeMs can exist: created is never negative.)
    const now = 500_000;
    f.writeAll(
      { network: NET, writer, created: now - 100, primaryHeight: 1, entries },
      modelSigner(writer),
      () => true,
    );
    f.tamper("/a", action, {
      network: NET,
      otherNetwork: "b".repeat(32),
      now,
      maxAgeMs: 60_000,
      writer,
      sign: modelSigner(writer),
      attacker: modelSigner(testNode(66)),
      entries,
    });
    const r = read(f, "/a", now);
    assert.ok(!r.ok, action);
    assert.equal(r.problem, expected[action], action);
  }
});
