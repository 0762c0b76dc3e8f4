/**
 * Test helper for node/store_test.ts: writes to a SqliteStore and waits to be killed.
 *
 *   store_writer.ts once PATH N   puts k0..k{N-1}, syncs, prints "synced", then puts u0..u{N-1},
 *                                 overwrites and deletes some synced keys without syncing,
 *                                 prints "pending" and waits.
 *   store_writer.ts loop PATH N   forever: puts batch b (keys b/0..b/{N-1}), syncs, prints
 *                                 "synced b".
 */
import { SqliteStore } from "../store.ts";

const [mode, path, nText] = Deno.args;
const n = Number(nText);
const enc = new TextEncoder();
const store = SqliteStore.open(path);

function say(line: string): void {
  const bytes = enc.encode(line + "\n");
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

if (mode === "once") {
  for (let i = 0; i < n; i++) store.put(`k${i}`, enc.encode(`v${i}`));
  store.sync();
  say("synced");
  for (let i = 0; i < n; i++) store.put(`u${i}`, enc.encode(`unsynced${i}`));
  for (let i = 0; i < n; i += 2) store.put(`k${i}`, enc.encode(`overwritten${i}`));
  for (let i = 1; i < n; i += 2) store.delete(`k${i}`);
  say("pending");
  setInterval(() => {}, 1 << 30);
} else if (mode === "loop") {
  for (let b = 0;; b++) {
    for (let i = 0; i < n; i++) store.put(`${b}/${i}`, enc.encode(`${b}:${i}`));
    store.sync();
    say(`synced ${b}`);
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
