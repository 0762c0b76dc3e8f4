import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError, MyceliumError } from "../core/errors.ts";
import type { Logger } from "../core/host.ts";
import { JsonLogger, type JsonLoggerOptions, toJsonSafe } from "./log.ts";

const FIXED = new Date("2024-05-06T07:08:09.010Z");

function memoryLogger(opts: JsonLoggerOptions = {}) {
  const lines: string[] = [];
  const logger = new JsonLogger({ clock: () => FIXED, sink: (l) => lines.push(l), ...opts });
  const records = () =>
    lines.map((l) => {
      assert.ok(l.endsWith("\n") && !l.slice(0, -1).includes("\n"), `one line: ${l}`);
      return JSON.parse(l) as Record<string, unknown>;
    });
  return { logger, lines, records };
}

Deno.test("JsonLogger: one JSON object per line with the standard fields first", () => {
  const { logger, lines, records } = memoryLogger({ node: "alpha", component: "swim" });
  const asCore: Logger = logger;
  asCore.log("info", "member_joined", { member: "beta", incarnation: 3 });
  assert.equal(lines.length, 1);
  assert.deepEqual(records()[0], {
    level: "info",
    time: "2024-05-06T07:08:09.010Z",
    node: "alpha",
    component: "swim",
    event: "member_joined",
    member: "beta",
    incarnation: 3,
  });
  assert.ok(lines[0].startsWith(`{"level":"info","time":"2024-05-06T07:08:09.010Z","node":`));
});

Deno.test("JsonLogger: minimum level filters lower levels", () => {
  const { logger, records } = memoryLogger({ level: "warn" });
  logger.log("debug", "d");
  logger.log("info", "i");
  logger.log("warn", "w");
  logger.log("error", "e");
  logger.debug("d2");
  logger.error("e2");
  assert.deepEqual(records().map((r) => [r.level, r.event]), [
    ["warn", "w"],
    ["error", "e"],
    ["error", "e2"],
  ]);
  assert.equal(logger.enabled("info"), false);
  assert.equal(logger.enabled("error"), true);

  const all = memoryLogger({ level: "debug" });
  all.logger.debug("x");
  assert.equal(all.records().length, 1);
  const dflt = memoryLogger();
  dflt.logger.debug("x");
  dflt.logger.info("y");
  assert.deepEqual(dflt.records().map((r) => r.event), ["y"]);
});

Deno.test("JsonLogger: child() keeps node, level and sink and sets the component", () => {
  const { logger, records } = memoryLogger({ node: "n1", level: "warn" });
  const child = logger.child("admin");
  child.info("ignored");
  child.warn("slow_request", { path: "/status" });
  logger.warn("root");
  const [a, b] = records();
  assert.deepEqual([a.node, a.component, a.event, a.path], [
    "n1",
    "admin",
    "slow_request",
    "/status",
  ]);
  assert.deepEqual([b.component, b.event], ["node", "root"]);
  assert.equal(child.child("x").component, "x");
});

Deno.test("JsonLogger: no node field when no node is set; undefined fields are left out", () => {
  const { logger, records } = memoryLogger();
  logger.info("e", { a: undefined, b: null });
  const r = records()[0];
  assert.ok(!("node" in r));
  assert.ok(!("a" in r));
  assert.equal(r.b, null);
});

Deno.test("JsonLogger: fields cannot overwrite the standard keys", () => {
  const { logger, records } = memoryLogger({ node: "n" });
  logger.info("real", { level: "error", event: "fake", node: "other", time: 0, component: "c" });
  const r = records()[0];
  assert.equal(r.level, "info");
  assert.equal(r.event, "real");
  assert.equal(r.node, "n");
  assert.equal(r["field.level"], "error");
  assert.equal(r["field.event"], "fake");
  assert.equal(r["field.component"], "c");
});

Deno.test("JsonLogger: errors are rendered as {name, message, kind, input, cause}", () => {
  const { logger, records } = memoryLogger();
  const root = new Error("disk full");
  const err = new MyceliumError("storage", "sync failed", { input: "/data/kv.db", cause: root });
  logger.error("sync_failed", { err, cfg: new ConfigError("bad port", "admin.port") });
  const r = records()[0];
  assert.deepEqual(r.err, {
    name: "MyceliumError",
    message: "/data/kv.db: sync failed",
    kind: "storage",
    input: "/data/kv.db",
    cause: { name: "Error", message: "disk full" },
  });
  assert.deepEqual(r.cfg, {
    name: "ConfigError",
    message: "admin.port: bad port",
    kind: "config",
    input: "admin.port",
  });
});

Deno.test("JsonLogger: bigint, cycles, bytes, maps, sets, dates and odd numbers are safe", () => {
  const { logger, records } = memoryLogger();
  const cyclic: Record<string, unknown> = { name: "loop" };
  cyclic.self = cyclic;
  const shared = { x: 1 };
  const bigBytes = new Uint8Array(100).fill(0xab);
  logger.info("odd", {
    big: 2n ** 70n,
    cyclic,
    twice: [shared, shared],
    bytes: new Uint8Array([0, 1, 255]),
    bigBytes,
    map: new Map<unknown, unknown>([["a", 1], [2, 3n]]),
    set: new Set([1, "two"]),
    date: FIXED,
    nan: NaN,
    inf: -Infinity,
    fn: function probe() {},
    sym: Symbol("s"),
    nested: { deeper: { list: [1n, undefined] } },
  });
  const r = records()[0];
  assert.equal(r.big, "1180591620717411303424");
  assert.deepEqual(r.cyclic, { name: "loop", self: "[Circular]" });
  assert.deepEqual(r.twice, [{ x: 1 }, { x: 1 }]);
  assert.deepEqual(r.bytes, { bytes: 3, hex: "0001ff" });
  assert.deepEqual(r.bigBytes, { bytes: 100, hex: "ab".repeat(32) + "..." });
  assert.deepEqual(r.map, { a: 1, "2": "3" });
  assert.deepEqual(r.set, [1, "two"]);
  assert.equal(r.date, FIXED.toISOString());
  assert.equal(r.nan, "NaN");
  assert.equal(r.inf, "-Infinity");
  assert.equal(r.fn, "[Function probe]");
  assert.equal(r.sym, "Symbol(s)");
  assert.deepEqual(r.nested, { deeper: { list: ["1", null] } });
});

Deno.test("JsonLogger: deep and large values are truncated", () => {
  let deep: unknown = "bottom";
  for (let i = 0; i < 20; i++) deep = { d: deep };
  const rendered = JSON.stringify(toJsonSafe(deep));
  assert.ok(rendered.includes("[Truncated]"));
  assert.ok(!rendered.includes("bottom"));
  const long = toJsonSafe(Array.from({ length: 150 }, (_, i) => i)) as unknown[];
  assert.equal(long.length, 101);
  assert.equal(long[100], "... 50 more");
});

Deno.test("JsonLogger: hostile fields and a failing sink never throw", () => {
  const { logger, records } = memoryLogger();
  const hostile = {
    get boom(): never {
      throw new Error("getter");
    },
  };
  logger.warn("hostile", { hostile });
  assert.deepEqual(records()[0].log_error, "fields could not be rendered");
  assert.equal(records()[0].event, "hostile");

  const broken = new JsonLogger({
    sink: () => {
      throw new Error("EPIPE");
    },
  });
  broken.error("still fine");
  const badClock = new JsonLogger({
    sink: () => {},
    clock: () => new Date(NaN),
  });
  badClock.info("clock");
});

Deno.test("JsonLogger: any JSON-like or odd field value yields one parseable line", () => {
  fc.assert(
    fc.property(
      fc.string(),
      fc.dictionary(fc.string(), fc.anything({ withBigInt: true, withMap: true, withSet: true })),
      (event, fields) => {
        const { logger, lines } = memoryLogger();
        logger.info(event, fields);
        assert.equal(lines.length, 1);
        const r = JSON.parse(lines[0]);
        assert.equal(r.event, event);
        assert.equal(lines[0].indexOf("\n"), lines[0].length - 1);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("JsonLogger: the default sink writes lines to stderr", async () => {
  const mod = new URL("./log.ts", import.meta.url).href;
  const code = `import { JsonLogger } from ${JSON.stringify(mod)};
const log = new JsonLogger({ node: "n1" });
log.warn("to_stderr", { n: 1 });
log.debug("filtered");`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout), "");
  const lines = new TextDecoder().decode(out.stderr).split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1);
  const r = JSON.parse(lines[0]);
  assert.deepEqual([r.level, r.node, r.component, r.event, r.n], [
    "warn",
    "n1",
    "node",
    "to_stderr",
    1,
  ]);
});
