import assert from "node:assert/strict";
import { MyceliumError } from "../core/errors.ts";
import type { Metrics } from "../core/host.ts";
import { METRIC_HELP, PromMetrics, SWIM_METRIC_NAMES } from "./metrics.ts";

function internalErrorOf(f: () => unknown): MyceliumError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof MyceliumError, `expected MyceliumError, got ${e}`);
    assert.equal(e.kind, "internal");
    return e;
  }
  assert.fail("expected an internal error");
}

/** A metrics object with every kind of metric, labelled and not. */
function populated(): PromMetrics {
  const m = new PromMetrics();
  m.preregister(SWIM_METRIC_NAMES);
  const core: Metrics = m;
  core.inc("mycelium_swim_probes_total");
  core.inc("mycelium_swim_probes_total", 2);
  core.inc("mycelium_messages_dropped_total", 1, { reason: "oversized", transport: "udp" });
  core.inc("mycelium_messages_dropped_total", 3, { transport: "udp", reason: "bad_mac" });
  core.set("mycelium_members", 5, { state: "alive" });
  core.set("mycelium_members", 1, { state: "suspect" });
  core.set("mycelium_uptime_seconds", 12.5);
  core.observe("mycelium_probe_rtt_seconds", 0.004);
  core.observe("mycelium_probe_rtt_seconds", 0.2);
  core.observe("mycelium_frame_bytes", 1500, { stream: "consensus" });
  core.observe("mycelium_batch_size", 3);
  return m;
}

Deno.test("PromMetrics: render has counters, gauges and histograms with their labels", async () => {
  const m = populated();
  const text = await m.render();
  const lines = text.split("\n");
  const has = (line: string) => assert.ok(lines.includes(line), `missing ${line} in\n${text}`);
  has("# TYPE mycelium_swim_probes_total counter");
  has(`# HELP mycelium_swim_probes_total ${METRIC_HELP.mycelium_swim_probes_total}`);
  has("mycelium_swim_probes_total 3");
  has('mycelium_messages_dropped_total{reason="oversized",transport="udp"} 1');
  has('mycelium_messages_dropped_total{reason="bad_mac",transport="udp"} 3');
  has(
    "# HELP mycelium_messages_dropped_total mycelium_messages_dropped_total " +
      "(no description registered)",
  );
  has("# TYPE mycelium_members gauge");
  has('mycelium_members{state="alive"} 5');
  has('mycelium_members{state="suspect"} 1');
  has("mycelium_uptime_seconds 12.5");
  has("# TYPE mycelium_probe_rtt_seconds histogram");
  has('mycelium_probe_rtt_seconds_bucket{le="0.005"} 1');
  has('mycelium_probe_rtt_seconds_bucket{le="+Inf"} 2');
  has("mycelium_probe_rtt_seconds_count 2");
  has('mycelium_frame_bytes_bucket{le="1024",stream="consensus"} 0');
  has('mycelium_frame_bytes_bucket{le="4096",stream="consensus"} 1');
  has('mycelium_batch_size_bucket{le="5"} 1');
  assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
});

Deno.test("PromMetrics: pre-registered SWIM counters show up at 0", async () => {
  const m = new PromMetrics();
  m.preregister(SWIM_METRIC_NAMES);
  m.preregister(["mycelium_members_alive"]);
  const text = await m.render();
  for (const name of SWIM_METRIC_NAMES) {
    assert.ok(text.includes(`\n${name} 0\n`) || text.startsWith(`# HELP ${name}`), name);
    assert.ok(text.includes(`# TYPE ${name} counter`), name);
    assert.ok(METRIC_HELP[name], `help text for ${name}`);
  }
  assert.ok(text.includes("# TYPE mycelium_members_alive gauge"));
  m.inc("mycelium_swim_deaths_total");
  assert.ok((await m.render()).includes("\nmycelium_swim_deaths_total 1\n"));
});

Deno.test("PromMetrics: SWIM_METRIC_NAMES lists exactly the counters swim.ts increments", () => {
  const src = Deno.readTextFileSync(new URL("../core/membership/swim.ts", import.meta.url));
  const used = new Set([...src.matchAll(/metrics\.inc\(\s*"([^"]+)"/g)].map((m) => m[1]));
  assert.ok(used.size > 0);
  assert.deepEqual([...SWIM_METRIC_NAMES].sort(), [...used].sort());
});

Deno.test("PromMetrics: each instance has its own registry", async () => {
  const a = new PromMetrics();
  const b = new PromMetrics();
  a.inc("mycelium_a_total");
  b.inc("mycelium_a_total", 5);
  assert.ok((await a.render()).includes("mycelium_a_total 1"));
  assert.ok((await b.render()).includes("mycelium_a_total 5"));
});

Deno.test("PromMetrics: default labels apply to every series", async () => {
  const m = new PromMetrics({ defaultLabels: { node: "alpha" } });
  m.inc("mycelium_x_total", 1, { kind: "k" });
  assert.ok((await m.render()).includes('mycelium_x_total{kind="k",node="alpha"} 1'));
});

Deno.test("PromMetrics: invalid metric names are rejected with the name", () => {
  const m = new PromMetrics();
  const cases: Array<[() => void, string, RegExp]> = [
    [() => m.inc("swim_probes_total"), "swim_probes_total", /must match/],
    [() => m.inc("mycelium_Probes_total"), "mycelium_Probes_total", /must match/],
    [() => m.inc("mycelium-probes_total"), "mycelium-probes_total", /must match/],
    [() => m.inc("mycelium_"), "mycelium_", /must match|_total/],
    [() => m.inc("mycelium_probes"), "mycelium_probes", /must end in _total/],
    [() => m.set("mycelium_members_total", 1), "mycelium_members_total", /must not end/],
    [() => m.observe("mycelium_rtt_count", 1), "mycelium_rtt_count", /must not end/],
    [() => m.set("mycelium_queue_bucket", 1), "mycelium_queue_bucket", /must not end/],
  ];
  for (const [f, name, re] of cases) {
    const e = internalErrorOf(f);
    assert.equal(e.input, name);
    assert.ok(e.message.startsWith(`${name}: `), e.message);
    assert.match(e.message, re);
  }
});

Deno.test("PromMetrics: misuse of a metric is rejected with the name", () => {
  const m = new PromMetrics();
  m.inc("mycelium_c_total", 1, { a: "x" });
  let e = internalErrorOf(() => m.inc("mycelium_c_total", 1, { b: "x" }));
  assert.match(e.message, /^mycelium_c_total: has labels \{a\}, got \{b\}/);
  internalErrorOf(() => m.inc("mycelium_c_total"));
  e = internalErrorOf(() => m.inc("mycelium_c_total", -1, { a: "x" }));
  assert.match(e.message, />= 0/);
  internalErrorOf(() => m.inc("mycelium_c_total", NaN, { a: "x" }));
  m.set("mycelium_g", 1);
  e = internalErrorOf(() => m.observe("mycelium_g", 1));
  assert.match(e.message, /^mycelium_g: is a gauge, not a histogram/);
  internalErrorOf(() => m.observe("mycelium_h_seconds", Infinity));
  internalErrorOf(() => m.observe("mycelium_h2_seconds", 1, { le: "1" }));
  internalErrorOf(() => m.inc("mycelium_l_total", 1, { "bad-label": "x" }));
  internalErrorOf(() => m.inc("mycelium_l_total", 1, { __name: "x" }));
  // A failed first use does not register anything.
  m.inc("mycelium_l_total", 1, { good: "x" });
});

Deno.test("PromMetrics: label values are escaped", async () => {
  const m = new PromMetrics();
  m.inc("mycelium_e_total", 1, { v: 'quote" backslash\\ newline\n' });
  assert.ok(
    (await m.render()).includes('mycelium_e_total{v="quote\\" backslash\\\\ newline\\n"} 1'),
  );
});

// ---------------------------------------------------------------------------------------
// promtool (Debian package "prometheus"): the exposition must pass its parser and linter.

function havePromtool(): boolean {
  try {
    return new Deno.Command("promtool", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}
const PROMTOOL = havePromtool();

Deno.test({
  name: PROMTOOL
    ? "promtool check metrics accepts the rendered text"
    : "promtool check metrics (skipped: promtool not installed)",
  ignore: !PROMTOOL,
  fn: async () => {
    const m = populated();
    m.inc("mycelium_e_total", 1, { v: 'quote" and \\ and\nnewline' });
    const text = await m.render();
    const child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(text));
    await w.close();
    const out = await child.output();
    const report = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `promtool check metrics failed:\n${report}\n--- input ---\n${text}`);
    assert.equal(report.trim(), "", `promtool reported problems:\n${report}`);
  },
});
