/**
 * report.html: built from a run, offline (no fetch), every chart present; and opened in
 * headless Chromium, which renders its SVGs with no console error.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { join } from "node:path";
import { parseScenario } from "../scenario.ts";
import { replayCommand } from "../summary.ts";
import { runScript } from "../testing.ts";
import { buildReport } from "./report.ts";
import { faultWindows, parseNumericCsv, setsFromReplay, writeReport } from "./from_run.ts";

const SIM_CLI = new URL("../cli.ts", import.meta.url).pathname;

function chromium(): string | null {
  for (const c of ["chromium", "chromium-browser", "google-chrome"]) {
    try {
      const r = new Deno.Command("which", { args: [c], stdout: "piped", stderr: "null" })
        .outputSync();
      if (r.success) return new TextDecoder().decode(r.stdout).trim();
    } catch { /* no which */ }
  }
  return null;
}
const CHROMIUM = chromium();

Deno.test("fault windows: crash to restart, windows to until, instants visible; sets from replay", () => {
  const s = parseScenario({
    name: "t",
    duration: "60s",
    nodes: [{ group: "n", count: 3 }],
    faults: [
      { name: "k", type: "crash", at: "10s", nodes: "n-0", restartAfter: "5s" },
      { name: "p", type: "partition", at: "20s", until: "30s", groups: ["n-0", "n-1"] },
      { name: "forever", type: "crash", at: "50s", nodes: "n-2" },
    ],
  });
  assert.deepEqual(faultWindows(s).map((f) => [f.name, f.fromMs, f.toMs]), [
    ["k", 10000, 15000],
    ["p", 20000, 30000],
    ["forever", 50000, 60000],
  ]);
  fc.assert(fc.property(fc.array(fc.string(), { maxLength: 4 }), (sets) => {
    assert.deepEqual(setsFromReplay(replayCommand("s.yaml", 1, sets)), sets);
  }));
});

Deno.test("buildReport: every chart, every check, the fault bands; nothing fetched", () => {
  const html = buildReport({
    title: "t",
    facts: [["seed", "1"]],
    checks: [{ name: "a.ok", ok: true, detail: "fine" }, {
      name: "b.bad",
      ok: false,
      detail: "<x>",
    }],
    faults: [{ name: "split", type: "partition", fromMs: 1000, toMs: 2000 }],
    durationMs: 3000,
    series: [{ title: "S", rows: parseNumericCsv("t_ms,up,name\n0,1,a\n1000,2,b\n2000,3,c\n") }],
    lamport: {
      nodes: ["a", "b"],
      fromMs: 0,
      toMs: 100,
      events: [
        { t: 1, ev: "send", from: "a", to: "b", type: "ping", at: 5 },
        { t: 2, ev: "send", from: "b", to: "a", type: "ack", at: null },
      ],
    },
  });
  // fault chart + 1 series column (`name` is text) + Lamport = 3 plots
  assert.equal((html.match(/<svg[\s>]/g) ?? []).length >= 3, true);
  assert.match(html, /class="fail"><td>FAIL<\/td><td>b\.bad<\/td><td>&lt;x&gt;/);
  assert.match(html, /split/);
  assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)=/i, "no external resource");
  assert.doesNotMatch(html, /https?:\/\/(?!www\.w3\.org)/, "no URL but SVG namespaces");
});

Deno.test({
  name:
    `report of a real simulator run opens in headless Chromium: charts render, no console error${
      CHROMIUM ? "" : " (SKIPPED: no chromium on this machine)"
    }`,
  ignore: CHROMIUM === null,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const out = join(dir, "run");
      const r = await runScript(SIM_CLI, [
        "run",
        "scenarios/cluster-5.yaml",
        "--trace",
        "--quiet",
        "--out",
        out,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const file = await writeReport(out);
      const res = await new Deno.Command(CHROMIUM!, {
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          `--user-data-dir=${join(dir, "profile")}`,
          "--enable-logging=stderr",
          "--v=0",
          "--dump-dom",
          `file://${file}`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dom = new TextDecoder().decode(res.stdout);
      const log = new TextDecoder().decode(res.stderr);
      const svgs = (dom.match(/<svg[\s>]/g) ?? []).length;
      // fault schedule, 5 membership series, the message sequence
      assert.ok(svgs >= 7, `${svgs} SVG elements rendered`);
      assert.match(log, /report ready: \d+ svg/, "the page's own script ran (console captured)");
      const errors = log.split("\n").filter((l) =>
        /CONSOLE/.test(l) && !/report (ready|first frame)/.test(l) ||
        /Uncaught|ERR_FILE|net::ERR/.test(l)
      );
      assert.deepEqual(errors, [], "console errors");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("sim CLI: run --report writes report.html; report DIR rewrites it; bad input exits 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = join(dir, "run");
    const r = await runScript(SIM_CLI, [
      "run",
      "scenarios/ram-lan.yaml",
      "--report",
      "--quiet",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const html = await Deno.readTextFile(join(out, "report.html"));
    assert.match(html, /ram-lan: all checks ok/);
    assert.match(html, /Distributed RAM over time/);
    await Deno.remove(join(out, "report.html"));
    assert.equal((await runScript(SIM_CLI, ["report", out])).code, 0);
    await Deno.stat(join(out, "report.html"));
    assert.equal((await runScript(SIM_CLI, ["report", join(dir, "none")])).code, 2);
    const bad = await runScript(SIM_CLI, ["report", out, "--lamport-window", "5s..1s"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--lamport-window: expected FROM\.\.TO/);
    assert.equal((await runScript(SIM_CLI, ["sweep", "--help"])).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
