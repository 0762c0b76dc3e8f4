import assert from "node:assert/strict";
import fc from "fast-check";
import { BroadcastQueue } from "./broadcasts.ts";
import type { GossipItem } from "./messages.ts";

// ---------------------------------------------------------------------------------------
// Helpers

let serial = 0;
/** A fresh item object per call: the queue is checked by object identity. */
function item(member: number): GossipItem {
  return { k: "alive", node: `m${member}#${serial++}` as never, inc: serial, addr: "" };
}

type Op =
  | { op: "enqueue"; member: number; size: number }
  | { op: "take"; budget: number }
  | { op: "clear" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("enqueue" as const),
      member: fc.integer({ min: 0, max: 6 }),
      size: fc.integer({ min: 1, max: 40 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("take" as const),
      budget: fc.integer({ min: 0, max: 100 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: "clear" as const }) },
);
const opsArb = fc.array(opArb, { maxLength: 60, size: "max" });
const limitArb = fc.integer({ min: 1, max: 5 });

/**
 * Reference model: live entries ordered by transmits ascending, then newest (highest enqueue
 * sequence) first, as memberlist orders its btree; a take walks that order and stops at the
 * first entry that does not fit the remaining budget (no skipping ahead to smaller items).
 */
class RefQueue {
  private entries: Array<{
    item: GossipItem;
    member: number;
    size: number;
    transmits: number;
    seq: number;
    live: boolean;
  }> = [];
  private counter = 0;

  get size(): number {
    return this.entries.filter((e) => e.live).length;
  }

  enqueue(member: number, it: GossipItem, size: number): void {
    for (const e of this.entries) if (e.member === member) e.live = false;
    const seq = this.counter++;
    this.entries.push({ item: it, member, size, transmits: 0, seq, live: true });
  }

  take(budget: number, limit: number): GossipItem[] {
    const live = this.entries.filter((e) => e.live).sort((a, b) =>
      a.transmits - b.transmits || b.seq - a.seq
    );
    const taken = [];
    let left = budget;
    for (const e of live) {
      if (e.size > left) break;
      left -= e.size;
      taken.push(e);
    }
    for (const e of taken) if (++e.transmits >= limit) e.live = false;
    return taken.map((e) => e.item);
  }

  clear(): void {
    this.entries = [];
  }
}

// ---------------------------------------------------------------------------------------
// Properties

Deno.test("BroadcastQueue: no item is returned more than `limit` times", () => {
  fc.assert(
    fc.property(opsArb, limitArb, (ops, limit) => {
      const q = new BroadcastQueue();
      const count = new Map<GossipItem, number>();
      for (const o of ops) {
        if (o.op === "enqueue") q.enqueue(o.member, item(o.member), o.size);
        else if (o.op === "clear") q.clear();
        else {
          for (const it of q.take(o.budget, limit)) {
            const c = (count.get(it) ?? 0) + 1;
            assert.ok(c <= limit, `item returned ${c} times with limit ${limit}`);
            count.set(it, c);
          }
        }
      }
    }),
  );
});

Deno.test("BroadcastQueue: a take never exceeds its byte budget and returns distinct items", () => {
  fc.assert(
    fc.property(opsArb, limitArb, (ops, limit) => {
      const q = new BroadcastQueue();
      const sizeOf = new Map<GossipItem, number>();
      for (const o of ops) {
        if (o.op === "enqueue") {
          const it = item(o.member);
          sizeOf.set(it, o.size);
          q.enqueue(o.member, it, o.size);
        } else if (o.op === "clear") q.clear();
        else {
          const got = q.take(o.budget, limit);
          const total = got.reduce((s, it) => s + sizeOf.get(it)!, 0);
          assert.ok(total <= o.budget, `took ${total} bytes with a budget of ${o.budget}`);
          assert.equal(new Set(got).size, got.length, "an item was returned twice in one take");
        }
      }
    }),
  );
});

Deno.test("BroadcastQueue: a newer item about the same member invalidates the older one", () => {
  fc.assert(
    fc.property(opsArb, limitArb, (ops, limit) => {
      const q = new BroadcastQueue();
      const current = new Map<number, GossipItem>();
      const superseded = new Set<GossipItem>();
      const cleared = new Set<GossipItem>();
      for (const o of ops) {
        if (o.op === "enqueue") {
          const old = current.get(o.member);
          if (old) superseded.add(old);
          const it = item(o.member);
          current.set(o.member, it);
          q.enqueue(o.member, it, o.size);
        } else if (o.op === "clear") {
          for (const it of current.values()) cleared.add(it);
          current.clear();
          q.clear();
        } else {
          for (const it of q.take(o.budget, limit)) {
            assert.ok(!superseded.has(it), "a superseded item was returned");
            assert.ok(!cleared.has(it), "an item was returned after clear()");
          }
        }
      }
    }),
  );
});

Deno.test("BroadcastQueue: size counts members whose latest item has transmits left", () => {
  fc.assert(
    fc.property(opsArb, limitArb, (ops, limit) => {
      const q = new BroadcastQueue();
      const latest = new Map<number, GossipItem>();
      const sent = new Map<GossipItem, number>();
      const expected = () =>
        [...latest.values()].filter((it) => (sent.get(it) ?? 0) < limit).length;
      for (const o of ops) {
        if (o.op === "enqueue") {
          const it = item(o.member);
          latest.set(o.member, it);
          q.enqueue(o.member, it, o.size);
        } else if (o.op === "clear") {
          latest.clear();
          q.clear();
        } else {
          for (const it of q.take(o.budget, limit)) sent.set(it, (sent.get(it) ?? 0) + 1);
        }
        assert.equal(q.size, expected());
      }
    }),
  );
});

Deno.test("BroadcastQueue: takes match the reference model exactly (order included)", () => {
  fc.assert(
    fc.property(opsArb, limitArb, (ops, limit) => {
      const q = new BroadcastQueue();
      const ref = new RefQueue();
      for (const o of ops) {
        if (o.op === "enqueue") {
          const it = item(o.member);
          q.enqueue(o.member, it, o.size);
          ref.enqueue(o.member, it, o.size);
        } else if (o.op === "clear") {
          q.clear();
          ref.clear();
        } else {
          const got = q.take(o.budget, limit);
          const want = ref.take(o.budget, limit);
          assert.deepEqual([...got], want);
        }
        assert.equal(q.size, ref.size);
      }
    }),
  );
});

Deno.test("BroadcastQueue: among items never sent, the newest goes first", () => {
  // With a limit of 1 every take sees only unsent items (all in bucket 0, in enqueue order).
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          adds: fc.array(
            fc.record({
              member: fc.integer({ min: 0, max: 6 }),
              size: fc.integer({ min: 1, max: 40 }),
            }),
            { maxLength: 8, size: "max" },
          ),
          budget: fc.integer({ min: 0, max: 150 }),
        }),
        { maxLength: 10, size: "max" },
      ),
      (rounds) => {
        const q = new BroadcastQueue();
        const ref = new RefQueue();
        for (const r of rounds) {
          for (const a of r.adds) {
            const it = item(a.member);
            q.enqueue(a.member, it, a.size);
            ref.enqueue(a.member, it, a.size);
          }
          assert.deepEqual([...q.take(r.budget, 1)], ref.take(r.budget, 1));
        }
      },
    ),
  );
});

// ---------------------------------------------------------------------------------------
// Examples

Deno.test("BroadcastQueue: fewer transmits first, newest first, each sent `limit` times", () => {
  const q = new BroadcastQueue();
  const a = item(1), b = item(2), c = item(3);
  q.enqueue(1, a, 10);
  q.enqueue(2, b, 10);
  assert.deepEqual(q.take(10, 3), [b]);
  q.enqueue(3, c, 10);
  // c (0 transmits) before a (0 transmits, older) before b (1 transmit).
  assert.deepEqual(q.take(100, 3), [c, a, b]);
  assert.deepEqual(q.take(100, 3), [c, a, b]);
  assert.equal(q.size, 2);
  assert.deepEqual(q.take(100, 3), [c, a]);
  assert.equal(q.size, 0);
  assert.deepEqual(q.take(100, 3), []);
});

Deno.test("BroadcastQueue: a take stops at the first item that does not fit", () => {
  const q = new BroadcastQueue();
  const small = item(1), big = item(2);
  q.enqueue(1, small, 5);
  q.enqueue(2, big, 50);
  // The newest (big) does not fit: nothing behind it is sent either (no skipping ahead).
  assert.deepEqual(q.take(20, 4), []);
  assert.deepEqual(q.take(55, 4), [big, small]);
  assert.deepEqual(q.take(0, 4), []);
});

Deno.test("BroadcastQueue: re-enqueue for a member replaces the queued item; clear empties", () => {
  const q = new BroadcastQueue();
  const old = item(7), fresh = item(7);
  q.enqueue(7, old, 10);
  q.enqueue(7, fresh, 10);
  assert.equal(q.size, 1);
  assert.deepEqual(q.take(100, 2), [fresh]);
  q.clear();
  assert.equal(q.size, 0);
  assert.deepEqual(q.take(100, 2), []);
  const after = item(7);
  q.enqueue(7, after, 10);
  assert.deepEqual(q.take(100, 2), [after]);
});

Deno.test({
  name: "BroadcastQueue: newest first among equal transmit counts (memberlist order)",
  // memberlist orders by transmits, then by id descending. Re-filing used to append to the
  // next bucket, so an older item sent later overtook a newer one with the same count.
  fn() {
    const q = new BroadcastQueue();
    const y = item(1), x = item(2);
    q.enqueue(1, y, 1);
    q.enqueue(2, x, 1); // x is newer
    assert.deepEqual(q.take(1, 5), [x]); // x: 1 transmit
    assert.deepEqual(q.take(1, 5), [y]); // y: 1 transmit
    // Both have 1 transmit: the newer (x) goes first.
    assert.deepEqual(q.take(1, 5), [x]);
  },
});
