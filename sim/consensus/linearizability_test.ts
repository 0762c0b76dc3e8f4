import assert from "node:assert/strict";
import fc from "fast-check";
import { checkLinearizable, type CheckResult, type HistoryEntry } from "./linearizability.ts";

type Res = HistoryEntry["result"];

function put(
  client: string,
  key: string,
  value: string,
  invoke: number,
  complete: number | null,
): HistoryEntry {
  return {
    client,
    op: "put",
    key,
    value,
    invoke,
    complete,
    ...(complete === null ? {} : { result: { ok: true } }),
  };
}

function get(
  client: string,
  key: string,
  value: string | null,
  invoke: number,
  complete: number | null,
): HistoryEntry {
  return {
    client,
    op: "get",
    key,
    invoke,
    complete,
    ...(complete === null ? {} : { result: { ok: true, value } }),
  };
}

function cas(
  client: string,
  key: string,
  expect: string | null,
  value: string,
  invoke: number,
  complete: number | null,
  result?: Res,
): HistoryEntry {
  return { client, op: "cas", key, expect, value, invoke, complete, result };
}

function assertOk(r: CheckResult): void {
  assert.deepEqual(r, { ok: true }, JSON.stringify(r));
}

function assertFails(r: CheckResult, key: string): Extract<CheckResult, { ok: false }> {
  assert.equal(r.ok, false, JSON.stringify(r));
  if (r.ok !== false) throw new Error("unreachable");
  assert.equal(r.key, key);
  assert.ok(r.ops.length > 0);
  assert.ok(r.reason.length > 0);
  // The witness is itself a failing history.
  assert.equal(checkLinearizable(r.ops).ok, false);
  return r;
}

Deno.test("linearizability: empty and sequential histories pass", () => {
  assertOk(checkLinearizable([]));
  assertOk(checkLinearizable([
    get("a", "k", null, 0, 1),
    put("a", "k", "1", 2, 3),
    get("b", "k", "1", 4, 5),
    cas("b", "k", "1", "2", 6, 7, { ok: true }),
    cas("a", "k", "1", "3", 8, 9, { ok: false, value: "2" }),
    get("a", "k", "2", 10, 11),
    put("c", "j", "x", 0, 1),
    get("c", "j", "x", 12, 13),
  ]));
});

Deno.test("linearizability: concurrent ops with a valid overlapping order pass", () => {
  // put 1 and put 2 overlap; reads see 2 then 2 => order put1, put2.
  assertOk(checkLinearizable([
    put("a", "k", "1", 0, 10),
    put("b", "k", "2", 1, 9),
    get("c", "k", "1", 2, 3), // linearized after put1, before put2
    get("c", "k", "2", 11, 12),
  ]));
  // A read concurrent with a write may see either value.
  for (const seen of [null, "1"]) {
    assertOk(checkLinearizable([put("a", "k", "1", 0, 10), get("b", "k", seen, 5, 6)]));
  }
  // Reads of one client can observe the second of two concurrent writes first, then stay.
  assertOk(checkLinearizable([
    put("a", "k", "1", 0, 10),
    put("b", "k", "2", 0, 10),
    get("c", "k", "2", 1, 2),
    get("c", "k", "1", 3, 4),
    get("d", "k", "1", 11, 12),
  ]));
});

Deno.test("linearizability: a stale read fails", () => {
  const r = assertFails(
    checkLinearizable([
      put("a", "k", "1", 0, 1),
      put("a", "k", "2", 2, 3),
      get("b", "k", "1", 4, 5), // put 2 completed before the get was invoked
    ]),
    "k",
  );
  assert.equal(r.ops.length, 3);
  assert.match(r.reason, /get/);
});

Deno.test("linearizability: a lost acknowledged write fails", () => {
  assertFails(
    checkLinearizable([
      put("a", "k", "old", 0, 1),
      get("x", "other", null, 0, 1),
      put("b", "k", "new", 2, 3), // acknowledged
      get("c", "k", "old", 10, 11), // no concurrent writer could restore "old"
    ]),
    "k",
  );
  // Read of the initial value after an acknowledged write.
  assertFails(checkLinearizable([put("a", "k", "v", 0, 1), get("b", "k", null, 2, 3)]), "k");
  // Two clients each read the other's order: non-linearizable.
  assertFails(
    checkLinearizable([
      put("a", "k", "1", 0, 100),
      put("b", "k", "2", 0, 100),
      get("c", "k", "1", 10, 11),
      get("c", "k", "2", 20, 21),
      get("d", "k", "1", 30, 31),
    ]),
    "k",
  );
});

Deno.test("linearizability: a cas whose outcome contradicts the state fails", () => {
  // cas succeeded expecting "1" though the value was "2".
  assertFails(
    checkLinearizable([
      put("a", "k", "1", 0, 1),
      put("a", "k", "2", 2, 3),
      cas("b", "k", "1", "3", 4, 5, { ok: true }),
    ]),
    "k",
  );
  // cas failed reporting "2" though nothing ever wrote "2".
  assertFails(
    checkLinearizable([
      put("a", "k", "1", 0, 1),
      cas("b", "k", "1", "3", 4, 5, { ok: false, value: "2" }),
    ]),
    "k",
  );
  // cas failed (correctly: "1" !== "5") but reported a value the register did not hold.
  assertFails(
    checkLinearizable([
      put("a", "k", "1", 0, 1),
      put("a", "k", "2", 2, 3),
      cas("b", "k", "5", "3", 4, 5, { ok: false, value: "1" }),
    ]),
    "k",
  );
  assertOk(checkLinearizable([
    put("a", "k", "1", 0, 1),
    put("a", "k", "2", 2, 3),
    cas("b", "k", "5", "3", 4, 5, { ok: false, value: "2" }),
  ]));
  // cas failed though the value was exactly the expected one.
  assertFails(
    checkLinearizable([
      put("a", "k", "1", 0, 1),
      cas("b", "k", "1", "3", 4, 5, { ok: false }),
    ]),
    "k",
  );
  // Two successful cas from the same expected value cannot both win.
  assertFails(
    checkLinearizable([
      cas("a", "k", null, "a", 0, 10, { ok: true }),
      cas("b", "k", null, "b", 0, 10, { ok: true }),
    ]),
    "k",
  );
  // ...but a concurrent cas chain is fine.
  assertOk(checkLinearizable([
    cas("a", "k", "b", "c", 0, 10, { ok: true }),
    cas("b", "k", null, "b", 0, 10, { ok: true }),
    get("c", "k", "c", 11, 12),
  ]));
});

Deno.test("linearizability: pending ops may take effect or not", () => {
  // Took effect (even long after its invoke).
  assertOk(checkLinearizable([
    put("a", "k", "1", 0, null),
    get("b", "k", null, 5, 6),
    get("b", "k", "1", 100, 101),
  ]));
  // Never took effect.
  assertOk(checkLinearizable([put("a", "k", "1", 0, null), get("b", "k", null, 100, 101)]));
  // But not before it was invoked.
  assertFails(
    checkLinearizable([get("b", "k", "1", 0, 1), put("a", "k", "1", 5, null)]),
    "k",
  );
  // And once taken effect and overwritten, it cannot come back.
  assertFails(
    checkLinearizable([
      put("a", "k", "1", 0, null),
      get("b", "k", "1", 5, 6),
      put("b", "k", "2", 7, 8),
      get("b", "k", "1", 9, 10),
    ]),
    "k",
  );
  // A pending cas, either way.
  assertOk(checkLinearizable([
    put("a", "k", "1", 0, 1),
    cas("b", "k", "1", "2", 2, null),
    get("c", "k", "2", 3, 4),
  ]));
  assertOk(checkLinearizable([
    put("a", "k", "1", 0, 1),
    cas("b", "k", "1", "2", 2, null),
    get("c", "k", "1", 3, 4),
  ]));
  // A pending cas whose expectation never held cannot have written.
  assertFails(
    checkLinearizable([
      put("a", "k", "1", 0, 1),
      cas("b", "k", "9", "2", 2, null),
      get("c", "k", "2", 3, 4),
    ]),
    "k",
  );
  // A put reported failed may still take effect later (like a timeout), or never.
  assertOk(checkLinearizable([
    { ...put("a", "k", "1", 0, 1), result: { ok: false } },
    get("c", "k", null, 2, 3),
    get("c", "k", "1", 4, 5),
  ]));
  // A completed cas without a result, or a put reported failed, is indeterminate.
  assertOk(checkLinearizable([
    put("a", "k", "1", 0, 1),
    cas("b", "k", "1", "2", 2, 3),
    get("c", "k", "2", 4, 5),
  ]));
  assertOk(checkLinearizable([
    { ...put("a", "k", "1", 0, 1), result: { ok: false } },
    get("c", "k", null, 4, 5),
  ]));
  // A pending get constrains nothing.
  assertOk(checkLinearizable([put("a", "k", "1", 0, 1), get("c", "k", null, 4, null)]));
});

Deno.test("linearizability: failures are reported per key and the witness is small", () => {
  const history: HistoryEntry[] = [];
  // A long valid prefix on key "k", a valid key "z", then one stale read at the end of "k".
  for (let i = 0; i < 500; i++) {
    history.push(put("a", "k", `v${i}`, 4 * i, 4 * i + 1));
    history.push(get("b", "k", `v${i}`, 4 * i + 2, 4 * i + 3));
    history.push(put("c", "z", `w${i}`, 4 * i, 4 * i + 3));
  }
  assertOk(checkLinearizable(history));
  history.push(get("b", "k", "v10", 5000, 5001));
  const r = assertFails(checkLinearizable(history), "k");
  assert.ok(r.ops.length <= 4, `witness too large: ${r.ops.length}`);
  assert.ok(r.ops.some((e) => e.op === "get" && e.invoke === 5000));
});

Deno.test("linearizability: exhausting the budget reports unknown, not ok", () => {
  // Many concurrent writers with reads in between: a large search space for a tiny budget.
  const h: HistoryEntry[] = [];
  for (let i = 0; i < 12; i++) h.push(put(`w${i}`, "k", `${i}`, 0, 100));
  for (let i = 0; i < 12; i++) h.push(get("r", "k", `${i}`, 1 + 2 * i, 2 + 2 * i));
  h.push(get("r", "k", "never", 50, 51));
  const r = checkLinearizable(h, { maxStates: 20 });
  assert.equal(r.ok, "unknown");
  assert.equal(r.ok === "unknown" && r.key, "k");
  assert.equal(checkLinearizable(h).ok, false);
});

Deno.test("linearizability: thousands of ops per key with low concurrency check quickly", () => {
  // Deterministic generator; time is not asserted, but states are bounded by the budget.
  let seed = 42;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const h = simulate(
    Array.from({ length: 5000 }, (_, i) => ({
      client: `c${i % 4}`,
      kind: (["put", "get", "cas"] as const)[rnd(3)],
      value: `${rnd(5)}`,
      expect: rnd(4) === 0 ? null : `${rnd(5)}`,
      pending: rnd(50) === 0,
      span: 1 + rnd(6),
    })),
  );
  assertOk(checkLinearizable(h, { maxStates: 200_000 }));
});

// ---------------------------------------------------------------------------------------
// Property tests: histories from a real sequential register.

interface Gen {
  client: string;
  kind: "put" | "get" | "cas";
  value: string;
  expect: string | null;
  pending: boolean;
  span: number;
}

/**
 * Runs the ops against a sequential register. Op i takes effect at time 10*i + 5; its interval
 * is [10*i + 5 - span, 10*i + 5 + span], so intervals overlap when span > 5 but every op's
 * linearization point lies inside its interval (the history is linearizable by construction).
 * Pending ops take effect but are never acknowledged.
 */
function simulate(gens: readonly Gen[], key = "k"): HistoryEntry[] {
  let state: string | null = null;
  return gens.map((g, i) => {
    const at = 10 * i + 5;
    const invoke = at - g.span;
    const complete = g.pending ? null : at + g.span;
    let result: { ok: boolean; value?: string | null };
    switch (g.kind) {
      case "put":
        state = g.value;
        result = { ok: true };
        break;
      case "get":
        result = { ok: true, value: state };
        break;
      case "cas":
        if (state === g.expect) {
          state = g.value;
          result = { ok: true };
        } else result = { ok: false, value: state };
    }
    const e: HistoryEntry = {
      client: g.client,
      op: g.kind,
      key,
      invoke,
      complete,
      ...(g.kind === "get" ? {} : { value: g.value }),
      ...(g.kind === "cas" ? { expect: g.expect } : {}),
      ...(complete === null ? {} : { result }),
    };
    return e;
  });
}

const genArb = (maxSpan: number): fc.Arbitrary<Gen> =>
  fc.record({
    client: fc.constantFrom("a", "b", "c"),
    kind: fc.constantFrom("put" as const, "get" as const, "cas" as const),
    value: fc.constantFrom("1", "2", "3"),
    expect: fc.constantFrom(null, "1", "2", "3"),
    pending: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    span: fc.integer({ min: 0, max: maxSpan }),
  });

Deno.test("linearizability property: sequential-register histories always pass", () => {
  fc.assert(
    fc.property(
      fc.array(genArb(4), { maxLength: 40 }), // non-overlapping
      fc.array(genArb(30), { maxLength: 40 }), // overlapping, consistent by construction
      fc.array(genArb(15), { maxLength: 30 }),
      (seq, overlap, other) => {
        assertOk(checkLinearizable(simulate(seq)));
        assertOk(checkLinearizable(simulate(overlap)));
        // Keys are independent: interleave two keys' histories.
        assertOk(checkLinearizable([...simulate(overlap, "x"), ...simulate(other, "y")]));
      },
    ),
  );
});

Deno.test("linearizability property: a read of a never-written value fails", () => {
  fc.assert(
    fc.property(
      fc.array(genArb(4), { minLength: 1, maxLength: 40 }),
      fc.nat(),
      (gens, pick) => {
        const h = simulate(gens.map((g) => ({ ...g, pending: false })));
        const reads = h.map((e, i) => [e, i] as const).filter(([e]) => e.op === "get");
        fc.pre(reads.length > 0);
        const [e, i] = reads[pick % reads.length];
        const mutated = [...h];
        mutated[i] = { ...e, result: { ok: true, value: "never-written" } };
        const r = checkLinearizable(mutated);
        assert.equal(r.ok, false, JSON.stringify(r));
        if (r.ok === false) assert.ok(r.ops.includes(mutated[i]), "witness names the bad read");
      },
    ),
  );
});

Deno.test("linearizability property: a read swapped to an overwritten value fails", () => {
  // Non-overlapping histories: reading any value other than the current one is a violation.
  fc.assert(
    fc.property(
      fc.array(genArb(4), { minLength: 1, maxLength: 40 }),
      fc.nat(),
      fc.constantFrom(null, "1", "2", "3"),
      (gens, pick, other) => {
        const h = simulate(gens.map((g) => ({ ...g, pending: false })));
        const reads = h.map((e, i) => [e, i] as const).filter(([e]) => e.op === "get");
        fc.pre(reads.length > 0);
        const [e, i] = reads[pick % reads.length];
        fc.pre(e.result?.value !== other);
        const mutated = [...h];
        mutated[i] = { ...e, result: { ok: true, value: other } };
        assert.equal(checkLinearizable(mutated).ok, false);
      },
    ),
  );
});
