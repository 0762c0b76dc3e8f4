/**
 * The node's RAM parts in process: the `ram` config section (defaults, errors that name the
 * field, chunk size against the stream frame size), the buffer image, the synthetic guest,
 * and NodeRam dropping malformed frames with a counted, logged reason.
 */
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { ConfigError } from "../core/errors.ts";
import { MemoryStore } from "../core/host.ts";
import { IdInterner, type NodeId } from "../core/ids.ts";
import { PAGE_SIZE } from "../core/ram/params.ts";
import { uniformWorkload } from "../core/ram/workloads.ts";
import { loadNodeConfig, parseNodeConfig } from "./config.ts";
import { JsonLogger } from "./log.ts";
import { PromMetrics } from "./metrics.ts";
import { NodeRam, RamApiError } from "./ram.ts";
import { ramApi } from "./ram_api.ts";
import { encodeRam } from "./ram_codec.ts";
import { ramVmSchema } from "./ram_config.ts";
import { SyntheticGuest } from "./ram_guest.ts";
import { BufferImage } from "./ram_image.ts";

const A = "a".repeat(32) as NodeId;
const B = "b".repeat(32) as NodeId;

function configError(input: unknown): string {
  try {
    parseNodeConfig(input);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("ram config: defaults replicate no VM; env overrides reach the replication params", async () => {
  const cfg = parseNodeConfig({});
  assert.deepEqual(cfg.ram.vms, []);
  assert.equal(cfg.ram.replication.backupNodeCount, 2);
  assert.equal(cfg.ram.replication.profiles.low.intervalMs, 5);
  const env = await loadNodeConfig({
    env: {
      MYCELIUM_RAM_REPLICATION_PROFILE: "low",
      MYCELIUM_RAM_REPLICATION_PROFILES_LOW_INTERVAL_MS: "50",
      MYCELIUM_RAM_EPOCH_LOG_SIZE: "16",
    },
  });
  assert.equal(env.ram.replication.profile, "low");
  assert.equal(env.ram.replication.profiles.low.intervalMs, 50);
  assert.equal(env.ram.epochLog.size, 16);
  const vm = parseNodeConfig({
    ram: { vms: [{ id: "v", memoryMiB: 4, role: "primary", primary: A, backups: [B] }] },
  }).ram.vms[0];
  assert.deepEqual(
    [vm.term, vm.synced, vm.dirtyPagesPerSec, vm.workload],
    [1, true, 0, { kind: "uniform" }],
  );
});

Deno.test("ram config: errors name the field", () => {
  const vm = { id: "v", memoryMiB: 4, role: "primary", primary: A, backups: [B] };
  const cases: Array<[unknown, string]> = [
    [{ ...vm, memoryMiB: 0 }, "ram.vms[0].memoryMiB"],
    [{ ...vm, role: "leader" }, "ram.vms[0].role"],
    [{ ...vm, primary: "x" }, "ram.vms[0].primary"],
    [{ ...vm, backups: [A] }, "ram.vms[0].backups: must not list the primary"],
    [{ ...vm, id: "a b" }, "ram.vms[0].id"],
    [{ ...vm, workload: "zipf" }, "ram.vms[0].workload.kind"],
    [{ ...vm, workload: { kind: "hot-set", hotPages: 5000 } }, "ram.vms[0].workload.hotPages"],
    [{ ...vm, workload: { kind: "uniform", zipfS: 1 } }, "ram.vms[0].workload.zipfS"],
  ];
  for (const [bad, field] of cases) {
    assert.ok(configError({ ram: { vms: [bad] } }).includes(field), field);
  }
  assert.ok(configError({ ram: { vms: [vm, vm] } }).includes("ram.vms[1].id: duplicate"));
  assert.ok(
    configError({ ram: { replication: { profiles: { low: { intervalMs: 0 } } } } })
      .includes("ram.replication.profiles.low.intervalMs"),
  );
  // One chunk is one stream frame: a VM needs room for one page (NodeRam shrinks chunks).
  const small = configError({ streams: { maxFrameBytes: 4096 }, ram: { vms: [vm] } });
  assert.ok(small.includes("streams.maxFrameBytes: too small"), small);
  parseNodeConfig({ streams: { maxFrameBytes: 4096 } }); // fine without VMs
  // The API validates bodies with the same schema (field paths from the body's root).
  const r = ramVmSchema.safeParse({ ...vm, memoryMiB: "big" });
  assert.equal(r.success, false);
});

Deno.test("buffer image: capture is a snapshot, apply writes a page, digest is sha256", () => {
  const img = new BufferImage(8 * PAGE_SIZE);
  assert.equal(img.pageCount, 8);
  img.page(3).fill(7);
  const snap = img.capture(3);
  img.page(3).fill(9);
  assert.ok(snap.every((b) => b === 7), "capture copied the page");
  const other = new BufferImage(8 * PAGE_SIZE);
  other.apply(3, img.capture(3));
  assert.equal(other.digest(), img.digest());
  assert.equal(img.digest(), crypto.createHash("sha256").update(img.bytes).digest("hex"));
  assert.equal(other.pagesApplied, 1);
  assert.throws(() => img.capture(8), RangeError);
  assert.throws(() => img.apply(0, new Uint8Array(10)), RangeError);
  assert.throws(() => new BufferImage(PAGE_SIZE + 1), RangeError);
  // Captures share 64 KiB slabs but never overlap.
  const pages = Array.from({ length: 20 }, (_, i) => img.capture(i % 8));
  pages.forEach((p, i) => p.fill(i));
  pages.forEach((p, i) => assert.ok(p.every((b) => b === i)));
});

Deno.test("synthetic guest: writes the pages the workload picks, at r0 * (1 - I)", () => {
  const img = new BufferImage(64 * PAGE_SIZE);
  const before = img.digest();
  const g = new SyntheticGuest(img, uniformWorkload({ pageCount: 64, ratePagesPerSec: 10_000 }));
  assert.equal(g.step(0, 0).length, 0, "the first step only starts the clock");
  const pages = [...g.step(10, 0)];
  assert.equal(pages.length, 100);
  assert.ok(pages.every((p) => p >= 0 && p < 64));
  assert.notEqual(img.digest(), before);
  assert.equal(g.step(20, 0.5).length, 50);
  g.halt();
  assert.equal(g.step(1000, 0).length, 0, "no catch-up burst after a halt");
  assert.equal(g.writes, 150);
});

Deno.test("NodeRam: malformed frames are dropped, counted and logged; the API names fields", async () => {
  const metrics = new PromMetrics();
  const lines: string[] = [];
  const log = new JsonLogger({ node: "t", sink: (l) => lines.push(l) });
  const ram = new NodeRam({
    self: A,
    ids: new IdInterner(),
    config: parseNodeConfig({ ram: { replication: { profile: "low" } } }).ram,
    maxFrameBytes: 256 * 1024, // a 1 MiB chunk is shrunk to fit
    store: new MemoryStore(),
    metrics,
    log,
    sendFrame: () => false,
  });
  ram.start();
  try {
    const url = (path: string) => new URL(`http://admin${path}`);
    const created = await ramApi(
      ram,
      "POST",
      url("/v1/ram/vms"),
      JSON.stringify({ id: "v", memoryMiB: 1, role: "backup", primary: B, backups: [A] }),
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
    ram.onFrame(B, new TextEncoder().encode("\x01\x00\x02{}"));
    ram.onFrame(B, new Uint8Array([9, 9, 9]));
    ram.onFrame(
      B,
      encodeRam({
        t: "ram-epoch",
        vmId: "v",
        term: 1,
        epoch: 1,
        baseTerm: 1,
        baseEpoch: 0,
        resync: false,
        chunk: 0,
        chunks: 1,
        pages: [256], // a 1 MiB image has pages 0..255
        contents: [new Uint8Array(PAGE_SIZE)],
      }),
    );
    const text = await metrics.render();
    assert.match(text, /^mycelium_ram_dropped_frames_total\{reason="decode"\} 2$/m);
    assert.match(text, /^mycelium_ram_dropped_frames_total\{reason="page-range"\} 1$/m);
    // Logged at most once per reason and second (the decode drops: one line).
    const dropped = lines.filter((l) => l.includes('"ram_frame_dropped"'));
    assert.equal(dropped.length, 2);
    assert.ok(dropped.every((l) => l.includes('"reason"') && l.includes('"error"')));
    const st = await ramApi(ram, "GET", url("/v1/ram/vms/v"), "");
    assert.equal(st.status, 200);
    const chunk = (st.body as { chunkBytes: number }).chunkBytes;
    assert.ok(chunk <= 256 * 1024 - 8192 && chunk % PAGE_SIZE === 0 && chunk > 0, `${chunk}`);

    const bad = async (method: string, path: string, body: string, re: RegExp, code = 400) => {
      const r = await ramApi(ram, method, url(path), body);
      assert.equal(r.status, code, JSON.stringify(r.body));
      assert.match((r.body as { error: string }).error, re);
    };
    await bad("POST", "/v1/ram/vms", JSON.stringify({ id: "w" }), /memoryMiB: /);
    await bad("POST", "/v1/ram/vms", "[1]", /\(root\): /);
    await bad(
      "POST",
      "/v1/ram/vms",
      JSON.stringify({ id: "w", memoryMiB: 1, role: "backup", primary: B, backups: [] }),
      /^backups: must include this node/,
    );
    await bad("POST", "/v1/ram/vms/v/migrate", JSON.stringify({ to: 3 }), /^to: /);
    await bad("POST", "/v1/ram/vms/v/migrate", JSON.stringify({ to: B }), /not primary/, 409);
    await bad("GET", "/v1/ram/vms/zz", "", /no VM zz/, 404);
    await bad("DELETE", "/v1/ram/vms/v", "", /not allowed/, 405);
    await bad("GET", "/v1/ram/vms/v?lagWindowMs=-1", "", /^lagWindowMs: /);
    assert.ok(new RamApiError(400, "x") instanceof Error);
  } finally {
    ram.stop();
  }
});

Deno.test("NodeRam: VMs from the config are added at start; a bad one is refused and logged", async () => {
  const lines: string[] = [];
  const vm = { id: "cfg", memoryMiB: 1, role: "backup", primary: B, backups: [A] };
  const ram = new NodeRam({
    self: A,
    ids: new IdInterner(),
    config: parseNodeConfig({
      ram: {
        replication: { profile: "low" },
        vms: [vm, { ...vm, id: "mine", role: "primary" }], // primary B: not this node
      },
    }).ram,
    maxFrameBytes: 1 << 22,
    store: new MemoryStore(),
    metrics: new PromMetrics(),
    log: new JsonLogger({ node: "t", sink: (l) => lines.push(l) }),
    sendFrame: () => false,
  });
  ram.start();
  try {
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(ram.list().map((v) => [v.vmId, v.role]), [["cfg", "backup"]]);
    const refused = lines.find((l) => l.includes('"ram_vm_refused"'));
    assert.ok(refused?.includes("ram.vms[1]") && refused.includes("primary: must be this node"));
  } finally {
    ram.stop();
  }
});
