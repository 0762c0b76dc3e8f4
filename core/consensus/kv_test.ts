import assert from "node:assert/strict";
import fc from "fast-check";
import { type KvSnapshot, KvStore, parseSeq } from "./kv.ts";
import type { ClientOp, KvOp, Operation } from "./types.ts";

function op(client: string, seq: number, o: Operation): ClientOp {
  return { id: `${client}/${seq}`, client, op: o };
}

// Small alphabets so random ops collide on keys and cas expectations sometimes hold.
const keyArb = fc.constantFrom("a", "b", "c");
const valArb = fc.constantFrom("x", "y", "z");
const kvOpArb: fc.Arbitrary<KvOp> = fc.oneof(
  fc.record({ kind: fc.constant("put" as const), key: keyArb, value: valArb }),
  fc.record({ kind: fc.constant("get" as const), key: keyArb }),
  fc.record({
    kind: fc.constant("cas" as const),
    key: keyArb,
    expect: fc.option(valArb, { nil: null }),
    value: valArb,
  }),
);
/** A sequence of client ops with per-client increasing seqs. */
const opsArb: fc.Arbitrary<ClientOp[]> = fc
  .array(fc.tuple(fc.constantFrom("c1", "c2", "c3"), kvOpArb), { maxLength: 60 })
  .map((xs) => {
    const next = new Map<string, number>();
    return xs.map(([client, o]) => {
      const seq = next.get(client) ?? 1;
      next.set(client, seq + 1);
      return op(client, seq, o);
    });
  });

function run(ops: readonly ClientOp[], s = new KvStore()): KvStore {
  for (const o of ops) s.apply(o);
  return s;
}

Deno.test("KvStore: put, get and cas basics", () => {
  const s = new KvStore();
  assert.deepEqual(s.apply(op("c", 1, { kind: "get", key: "k" })), { ok: true, value: null });
  assert.deepEqual(s.apply(op("c", 2, { kind: "put", key: "k", value: "v1" })), { ok: true });
  assert.deepEqual(s.apply(op("c", 3, { kind: "get", key: "k" })), { ok: true, value: "v1" });
  assert.deepEqual(
    s.apply(op("c", 4, { kind: "cas", key: "k", expect: "nope", value: "v2" })),
    { ok: false, value: "v1" },
  );
  assert.equal(s.read("k"), "v1");
  assert.deepEqual(
    s.apply(op("c", 5, { kind: "cas", key: "k", expect: "v1", value: "v2" })),
    { ok: true },
  );
  assert.equal(s.read("k"), "v2");
  // cas with expect null creates only when absent.
  assert.deepEqual(
    s.apply(op("c", 6, { kind: "cas", key: "n", expect: null, value: "new" })),
    { ok: true },
  );
  assert.deepEqual(
    s.apply(op("c", 7, { kind: "cas", key: "n", expect: null, value: "again" })),
    { ok: false, value: "new" },
  );
  assert.equal(s.read("n"), "new");
  assert.equal(s.size, 2);
});

Deno.test("KvStore: a replayed id returns the first result and changes nothing", () => {
  const s = new KvStore();
  const put = op("c", 1, { kind: "put", key: "k", value: "a" });
  assert.deepEqual(s.apply(put), { ok: true });
  s.apply(op("d", 1, { kind: "put", key: "k", value: "b" }));
  assert.deepEqual(s.apply(put), { ok: true });
  assert.equal(s.read("k"), "b", "replay must not re-apply the put");

  const cas = op("c", 2, { kind: "cas", key: "k", expect: "b", value: "c" });
  assert.deepEqual(s.apply(cas), { ok: true });
  s.apply(op("d", 2, { kind: "put", key: "k", value: "b" }));
  assert.deepEqual(s.apply(cas), { ok: true }, "replay returns the first (successful) result");
  assert.equal(s.read("k"), "b");

  // An id below the client's highest seq is refused without effect.
  const old = s.apply(op("c", 1, { kind: "put", key: "k", value: "zzz" }));
  assert.equal(old.ok, false);
  assert.match(old.error ?? "", /superseded/);
  assert.equal(s.read("k"), "b");
});

Deno.test("KvStore: ids not of the form client/seq are deduplicated exactly", () => {
  const s = new KvStore();
  const a = { id: "free-form", client: "c", op: { kind: "put", key: "k", value: "1" } } as const;
  assert.deepEqual(s.apply(a), { ok: true });
  s.apply(op("c", 5, { kind: "put", key: "k", value: "2" }));
  assert.deepEqual(s.apply(a), { ok: true });
  assert.equal(s.read("k"), "2");
  assert.equal(parseSeq("c/12", "c"), 12);
  assert.equal(parseSeq("c/012", "c"), undefined);
  assert.equal(parseSeq("d/1", "c"), undefined);
  assert.equal(parseSeq("a/b/3", "a/b"), 3);
  assert.equal(parseSeq("c/", "c"), undefined);
});

Deno.test("KvStore: non-KV and malformed ops are rejected with an error result, not thrown", () => {
  const s = new KvStore();
  const net = s.apply(op("c", 1, { kind: "node.leave", node: "n1" as never }));
  assert.equal(net.ok, false);
  assert.match(net.error ?? "", /not a KV op/);
  const bad = s.apply({ id: "c/2", client: "c", op: { kind: "put", key: "k" } as never });
  assert.equal(bad.ok, false);
  assert.match(bad.error ?? "", /value/);
  // Rejected ops are not recorded: the same seq can still carry a real op.
  assert.deepEqual(s.apply(op("c", 1, { kind: "put", key: "k", value: "v" })), { ok: true });
  assert.equal(s.size, 1);
  assert.equal(s.snapshot().sessions.length, 1);
});

Deno.test("KvStore: digest is order-independent over keys and changes with content", () => {
  const a = run([
    op("c", 1, { kind: "put", key: "x", value: "1" }),
    op("c", 2, { kind: "put", key: "y", value: "2" }),
  ]);
  const b = run([
    op("d", 1, { kind: "put", key: "y", value: "2" }),
    op("d", 2, { kind: "put", key: "x", value: "1" }),
  ]);
  assert.equal(a.digest(), b.digest());
  assert.match(a.digest(), /^[0-9a-f]{64}$/);
  b.apply(op("d", 3, { kind: "put", key: "x", value: "3" }));
  assert.notEqual(a.digest(), b.digest());
  assert.notEqual(new KvStore().digest(), a.digest());
});

Deno.test("KvStore property: the same op sequence gives the same digest and results", () => {
  fc.assert(
    fc.property(opsArb, (ops) => {
      const s1 = new KvStore();
      const s2 = new KvStore();
      const r1 = ops.map((o) => s1.apply(o));
      const r2 = ops.map((o) => s2.apply(o));
      assert.deepEqual(r1, r2);
      assert.equal(s1.digest(), s2.digest());
      assert.deepEqual(s1.snapshot(), s2.snapshot());
    }),
  );
});

Deno.test("KvStore property: re-applying any prefix of applied ops is idempotent", () => {
  fc.assert(
    fc.property(opsArb, fc.array(fc.nat(), { maxLength: 20 }), (ops, picks) => {
      const s = new KvStore();
      const results = new Map<string, unknown>();
      for (const o of ops) results.set(o.id, s.apply(o));
      const before = s.snapshot();
      // Replay each client's latest op (the ones whose results are retained) and random others.
      const latest = new Map<string, ClientOp>();
      for (const o of ops) latest.set(o.client, o);
      for (const o of latest.values()) assert.deepEqual(s.apply(o), results.get(o.id));
      for (const p of picks) {
        if (ops.length === 0) break;
        const o = ops[p % ops.length];
        const r = s.apply(o);
        if (latest.get(o.client) === o) assert.deepEqual(r, results.get(o.id));
        else assert.equal(r.ok === false && typeof r.error === "string", true);
      }
      assert.deepEqual(s.snapshot(), before, "replays must change nothing");
      // Replaying the whole sequence (a node re-applying a block) is a no-op too.
      run(ops, s);
      assert.deepEqual(s.snapshot(), before);
    }),
  );
});

Deno.test("KvStore property: put/get/cas agree with a model Map", () => {
  fc.assert(
    fc.property(fc.array(kvOpArb, { maxLength: 80 }), (ops) => {
      const s = new KvStore();
      const model = new Map<string, string>();
      ops.forEach((o, i) => {
        const r = s.apply(op("c", i, o));
        const cur = model.get(o.key) ?? null;
        switch (o.kind) {
          case "put":
            model.set(o.key, o.value);
            assert.deepEqual(r, { ok: true });
            break;
          case "get":
            assert.deepEqual(r, { ok: true, value: cur });
            break;
          case "cas":
            if (cur === o.expect) {
              model.set(o.key, o.value);
              assert.deepEqual(r, { ok: true });
            } else {
              assert.deepEqual(r, { ok: false, value: cur });
            }
        }
      });
      assert.deepEqual(s.entries(), [...model.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
    }),
  );
});

Deno.test("KvStore property: snapshot/restore round-trips through JSON", () => {
  fc.assert(
    fc.property(opsArb, opsArb, (ops, more) => {
      const s = run(ops);
      s.apply({ id: "odd-id", client: "c9", op: { kind: "put", key: "q", value: "w" } });
      const snap = s.snapshot();
      const wire = JSON.parse(JSON.stringify(snap)) as KvSnapshot;
      const t = KvStore.fromSnapshot(wire);
      assert.equal(t.digest(), s.digest());
      assert.deepEqual(t.snapshot(), snap);
      // The restored store behaves identically afterwards, replays included.
      const all = [...ops, ...more];
      assert.deepEqual(all.map((o) => t.apply(o)), all.map((o) => s.apply(o)));
      assert.equal(t.digest(), s.digest());
      // restore() replaces state wholesale.
      const u = run(more);
      u.restore(wire);
      assert.deepEqual(u.snapshot(), snap);
    }),
  );
});

Deno.test("KvStore: restore rejects a malformed snapshot and leaves the store unchanged", () => {
  const s = run([op("c", 1, { kind: "put", key: "k", value: "v" })]);
  const before = s.snapshot();
  const bad: unknown[] = [
    null,
    { version: 2, entries: [], sessions: [], ids: [] },
    { version: 1, entries: [["k", 1]], sessions: [], ids: [] },
    { version: 1, entries: [["k", "a"], ["k", "b"]], sessions: [], ids: [] },
    {
      version: 1,
      entries: [],
      sessions: [{ client: "c", seq: -1, result: { ok: true } }],
      ids: [],
    },
    {
      version: 1,
      entries: [],
      sessions: [{ client: "c", seq: 1, result: { ok: "yes" } }],
      ids: [],
    },
    { version: 1, entries: [], sessions: [], ids: [{ client: "c", id: 3, result: { ok: true } }] },
  ];
  for (const b of bad) {
    assert.throws(() => s.restore(b as KvSnapshot), /invalid KV snapshot/, JSON.stringify(b));
    assert.deepEqual(s.snapshot(), before);
  }
});
