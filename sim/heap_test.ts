import assert from "node:assert/strict";
import fc from "fast-check";
import { EventHeap } from "./heap.ts";

type Op = { push: number } | { pop: true } | { peek: true };

/** Naive reference: linear scan for the minimum (time, insertion seq). */
class RefQueue {
  private items: { t: number; seq: number; id: number }[] = [];
  private seq = 0;
  push(t: number, id: number): void {
    this.items.push({ t, seq: this.seq++, id });
  }
  private minIndex(): number {
    let m = 0;
    for (let i = 1; i < this.items.length; i++) {
      const x = this.items[i], y = this.items[m];
      if (x.t < y.t || (x.t === y.t && x.seq < y.seq)) m = i;
    }
    return m;
  }
  peekTime(): number {
    return this.items.length === 0 ? Infinity : this.items[this.minIndex()].t;
  }
  pop(): { t: number; id: number } | undefined {
    if (this.items.length === 0) return undefined;
    return this.items.splice(this.minIndex(), 1)[0];
  }
  get size(): number {
    return this.items.length;
  }
}

const timeArb = fc.oneof(
  fc.integer({ min: 0, max: 4 }), // many exact ties
  fc.constantFrom(0.5, 1.25, 1e9, 0),
  fc.double({ min: 0, max: 10, noNaN: true }),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: timeArb.map((t) => ({ push: t })) },
  { weight: 3, arbitrary: fc.constant({ pop: true as const }) },
  { weight: 1, arbitrary: fc.constant({ peek: true as const }) },
);

function check(ops: Op[], capacity: number): void {
  const heap = new EventHeap(capacity);
  const ref = new RefQueue();
  let id = 0;
  for (const op of ops) {
    if ("push" in op) {
      const obj = { id };
      heap.push(op.push, id % 7, id, -id, obj);
      ref.push(op.push, id);
      id++;
    } else if ("pop" in op) {
      const want = ref.pop();
      const s = heap.pop();
      if (want === undefined) {
        assert.equal(s, -1);
      } else {
        assert.equal(heap.lastTime, want.t);
        assert.equal(heap.as[s], want.id);
        assert.equal(heap.bs[s], -want.id | 0);
        assert.equal(heap.kinds[s], want.id % 7);
        assert.deepEqual(heap.objs[s], { id: want.id });
      }
    } else {
      assert.equal(heap.peekTime(), ref.peekTime());
    }
    assert.equal(heap.size, ref.size);
  }
  // Drain: the rest must come out in stable (time, seq) order.
  for (let want = ref.pop(); want !== undefined; want = ref.pop()) {
    assert.equal(heap.peekTime(), want.t);
    const s = heap.pop();
    assert.equal(heap.lastTime, want.t);
    assert.equal(heap.as[s], want.id);
  }
  assert.equal(heap.size, 0);
  assert.equal(heap.pop(), -1);
  assert.equal(heap.peekTime(), Infinity);
}

Deno.test("heap: pop order equals a stable sort by (time, insertion seq)", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 400 }), fc.constantFrom(1, 4, 1024), check),
    { numRuns: 300 },
  );
});

Deno.test("heap: all-equal times come out in insertion order, across growth", () => {
  const heap = new EventHeap(4);
  for (let i = 0; i < 5000; i++) heap.push(3, 0, i, 0, undefined);
  for (let i = 0; i < 2500; i++) assert.equal(heap.as[heap.pop()], i);
  for (let i = 5000; i < 6000; i++) heap.push(3, 0, i, 0, undefined);
  for (let i = 2500; i < 6000; i++) assert.equal(heap.as[heap.pop()], i);
  assert.equal(heap.size, 0);
  assert.equal(heap.pushes, 6000);
});

Deno.test("heap: hold pattern (pop then push) stays ordered", () => {
  const heap = new EventHeap();
  let x = 12345;
  const rand = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 1000; i++) heap.push(rand() * 10, 0, i, 0, undefined);
  let last = -Infinity;
  for (let i = 0; i < 20000; i++) {
    const s = heap.pop();
    assert.ok(heap.lastTime >= last);
    last = heap.lastTime;
    heap.push(last + Math.floor(rand() * 3), 0, heap.as[s], 0, undefined);
  }
  assert.equal(heap.size, 1000);
});

Deno.test("heap: clear empties the queue", () => {
  const heap = new EventHeap();
  for (let i = 0; i < 10; i++) heap.push(i, 0, i, 0, { i });
  heap.pop();
  heap.clear();
  assert.equal(heap.size, 0);
  assert.equal(heap.peekTime(), Infinity);
  heap.push(1, 0, 42, 0, undefined);
  assert.equal(heap.as[heap.pop()], 42);
});
