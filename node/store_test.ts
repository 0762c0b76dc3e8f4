import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { MemoryStore } from "../core/host.ts";
import { MyceliumError } from "../core/errors.ts";
import { SqliteStore } from "./store.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const WRITER = new URL("./testdata/store_writer.ts", import.meta.url).pathname;

function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "mycelium-store-" });
}

function text(v: Uint8Array | undefined): string | undefined {
  return v === undefined ? undefined : dec.decode(v);
}

function storageErrorOf(f: () => unknown): MyceliumError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof MyceliumError, `expected MyceliumError, got ${e}`);
    assert.equal(e.kind, "storage");
    return e;
  }
  assert.fail("expected a storage error");
}

Deno.test("SqliteStore: pending writes are visible before sync, deletes hide values", () => {
  const dir = tempDir();
  const s = SqliteStore.open(join(dir, "kv.db"));
  try {
    assert.equal(s.get("a"), undefined);
    s.put("a", enc.encode("1"));
    assert.equal(text(s.get("a")), "1");
    assert.equal(s.pendingCount, 1);
    s.sync();
    assert.equal(s.pendingCount, 0);
    assert.equal(text(s.get("a")), "1");
    s.delete("a");
    assert.equal(s.get("a"), undefined, "pending delete hides the synced value");
    s.put("a", enc.encode("2"));
    assert.equal(text(s.get("a")), "2");
    s.delete("missing");
    s.sync();
    assert.equal(text(s.get("a")), "2");
    s.delete("a");
    s.sync();
    assert.equal(s.get("a"), undefined);
  } finally {
    s.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("SqliteStore: put copies its input and get returns copies", () => {
  const dir = tempDir();
  const s = SqliteStore.open(join(dir, "kv.db"));
  try {
    const buf = enc.encode("abc");
    s.put("k", buf);
    buf[0] = 0x7a;
    assert.equal(text(s.get("k")), "abc");
    s.get("k")![0] = 0x7a;
    assert.equal(text(s.get("k")), "abc");
    s.put("empty", new Uint8Array(0));
    s.sync();
    assert.deepEqual(s.get("empty"), new Uint8Array(0));
  } finally {
    s.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("SqliteStore: synced data survives reopening; close() syncs by default", () => {
  const dir = tempDir();
  const path = join(dir, "nested", "dir", "kv.db");
  try {
    const s1 = SqliteStore.open(path);
    s1.put("synced", enc.encode("s"));
    s1.sync();
    s1.put("flushed-by-close", enc.encode("c"));
    s1.close();
    s1.close(); // idempotent

    const s2 = SqliteStore.open(path);
    assert.equal(text(s2.get("synced")), "s");
    assert.equal(text(s2.get("flushed-by-close")), "c");
    s2.put("discarded", enc.encode("d"));
    s2.delete("synced");
    s2.close({ discardPending: true });

    const s3 = SqliteStore.open(path);
    assert.equal(s3.get("discarded"), undefined);
    assert.equal(text(s3.get("synced")), "s");
    s3.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("SqliteStore: the database is in WAL mode with synchronous=FULL", async () => {
  const dir = tempDir();
  const path = join(dir, "kv.db");
  try {
    const s = SqliteStore.open(path);
    s.put("k", enc.encode("v"));
    s.sync();
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(path);
    assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
    db.close();
    s.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("SqliteStore: using a closed store is a storage error", () => {
  const dir = tempDir();
  const path = join(dir, "kv.db");
  try {
    const s = SqliteStore.open(path);
    s.close();
    const e = storageErrorOf(() => s.get("k"));
    assert.match(e.message, /closed/);
    assert.ok(e.message.includes(path));
    storageErrorOf(() => s.put("k", new Uint8Array(1)));
    storageErrorOf(() => s.sync());
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("SqliteStore.open: a directory at the path is a storage error naming the path", () => {
  const dir = tempDir();
  try {
    const e = storageErrorOf(() => SqliteStore.open(dir));
    assert.equal(e.input, dir);
    assert.ok(e.message.startsWith(`${dir}: cannot open store`), e.message);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("SqliteStore.open: a file that is not SQLite is a storage error naming the path", () => {
  const dir = tempDir();
  const path = join(dir, "not-a-db");
  try {
    Deno.writeTextFileSync(path, "this is not a SQLite database\n".repeat(100));
    const e = storageErrorOf(() => SqliteStore.open(path));
    assert.equal(e.input, path);
    assert.ok(e.message.includes(path));
    assert.match(e.message, /not a database/);
    assert.ok(e.cause instanceof Error);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------
// Crash safety with a real process and SIGKILL.

/** Spawns the writer and returns its stdout as lines plus the child. */
function spawnWriter(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WRITER, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  async function nextLine(): Promise<string> {
    for (;;) {
      const nl = buffered.indexOf("\n");
      if (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        return line;
      }
      const { value, done } = await reader.read();
      if (done) {
        const err = await new Response(child.stderr).text();
        throw new Error(`writer exited before printing a line; stderr: ${err}`);
      }
      buffered += value;
    }
  }
  async function kill(): Promise<Deno.CommandStatus> {
    child.kill("SIGKILL");
    await reader.cancel();
    await child.stderr.cancel();
    return await child.status;
  }
  return { nextLine, kill };
}

Deno.test("SqliteStore: kill -9 after sync loses nothing synced and keeps nothing unsynced", async () => {
  const dir = tempDir();
  const path = join(dir, "kv.db");
  const n = 200;
  try {
    const w = spawnWriter(["once", path, String(n)]);
    assert.equal(await w.nextLine(), "synced");
    assert.equal(await w.nextLine(), "pending");
    const status = await w.kill();
    assert.equal(status.signal, "SIGKILL");

    const s = SqliteStore.open(path);
    try {
      for (let i = 0; i < n; i++) {
        assert.equal(text(s.get(`k${i}`)), `v${i}`, `synced key k${i}`);
        assert.equal(s.get(`u${i}`), undefined, `unsynced key u${i}`);
      }
    } finally {
      s.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("SqliteStore: kill -9 during a stream of syncs keeps every sync whole", async () => {
  const dir = tempDir();
  const path = join(dir, "kv.db");
  const n = 50;
  try {
    const w = spawnWriter(["loop", path, String(n)]);
    let last = -1;
    while (last < 30) {
      const line = await w.nextLine();
      const m = /^synced (\d+)$/.exec(line);
      assert.ok(m, `unexpected line ${JSON.stringify(line)}`);
      last = Number(m[1]);
    }
    await w.kill();

    const s = SqliteStore.open(path);
    try {
      // Batches present form a prefix 0..k with k >= last; each batch is all-or-nothing.
      let b = 0;
      for (;; b++) {
        const present = Array.from({ length: n }, (_, i) => s.get(`${b}/${i}`));
        const count = present.filter((v) => v !== undefined).length;
        assert.ok(count === 0 || count === n, `batch ${b} is torn: ${count} of ${n} keys`);
        if (count === 0) break;
        present.forEach((v, i) => assert.equal(text(v), `${b}:${i}`));
      }
      assert.ok(b > last, `batch ${last} was reported synced but batches end at ${b - 1}`);
      for (let i = 0; i < n; i++) assert.equal(s.get(`${b + 1}/${i}`), undefined);
    } finally {
      s.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------
// Model-based property test against core's MemoryStore.

type Op =
  | { op: "put"; key: string; value: Uint8Array }
  | { op: "delete"; key: string }
  | { op: "sync" }
  | { op: "reopen" } // close() (which syncs) and open again
  | { op: "crash" }; // lose pending writes, then open again

const KEYS = ["a", "b", "c", "d", "k/1", "k/2", "", "ünï"];
const keyArb = fc.constantFrom(...KEYS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      key: keyArb,
      value: fc.uint8Array({ maxLength: 16 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.constant({ op: "sync" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "reopen" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "crash" as const }) },
);

Deno.test("SqliteStore: behaves like MemoryStore over put/delete/sync/reopen/crash", () => {
  const dir = tempDir();
  let run = 0;
  try {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const path = join(dir, `p${run++}.db`);
        const model = new MemoryStore();
        let store = SqliteStore.open(path);
        try {
          for (const o of ops) {
            switch (o.op) {
              case "put":
                model.put(o.key, o.value);
                store.put(o.key, o.value);
                break;
              case "delete":
                model.delete(o.key);
                store.delete(o.key);
                break;
              case "sync":
                model.sync();
                store.sync();
                break;
              case "reopen":
                model.crash(false);
                store.close();
                store = SqliteStore.open(path);
                break;
              case "crash":
                model.crash(true);
                store.close({ discardPending: true });
                store = SqliteStore.open(path);
                break;
            }
            for (const k of KEYS) assert.deepEqual(store.get(k), model.get(k), `key ${k}`);
          }
        } finally {
          store.close({ discardPending: true });
        }
      }),
      { numRuns: 60 },
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
