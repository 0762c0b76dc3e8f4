/**
 * The `ram:` section of a scenario: defaults, expansion of VM names, and errors that name
 * the bad field; every scenarios/ram-*.yaml file parses.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../../core/errors.ts";
import { loadScenarioFile, parseScenario, ramVmNames } from "../scenario.ts";
import { placeVms } from "./placement.ts";
import { Rng } from "../rng.ts";
import { scenarioNodeInfo } from "../scenario.ts";

const base = (ram: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  name: "r",
  duration: "10s",
  nodes: [{ group: "n", count: 4 }],
  ram,
  ...extra,
});

function rejects(doc: unknown, pattern: RegExp): void {
  assert.throws(() => parseScenario(doc, "s.yaml"), (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match((e as Error).message, pattern);
    return true;
  });
}

Deno.test("ram section: defaults, and no membership checks by default", () => {
  const s = parseScenario(base({ vms: [{ name: "web" }] }));
  const r = s.ram!;
  assert.equal(r.policy, "mycelium");
  assert.equal(r.remus.checkpointPauseMs, 2);
  assert.equal(r.outputBuffering, true);
  assert.equal(r.guestTickMs, 5);
  assert.equal(r.config.backupNodeCount, 2);
  assert.equal(r.config.profile, "auto");
  const vm = r.vms[0];
  assert.equal(vm.count, 1);
  assert.equal(vm.memoryMiB, 64);
  assert.equal(vm.primaries, "all");
  assert.equal(vm.backups, undefined);
  assert.deepEqual(vm.workload, { kind: "web-server", ratePagesPerSec: 12000 });
  assert.deepEqual(r.migrations, []);
  assert.deepEqual(s.checks, []);
});

Deno.test("ram section: VM names expand; placement is round-robin with the next nodes as backups", () => {
  assert.deepEqual(ramVmNames({ name: "web", count: 1 }), ["web"]);
  assert.deepEqual(ramVmNames({ name: "vm", count: 3 }), ["vm-0", "vm-1", "vm-2"]);
  const s = parseScenario(base({
    vms: [{ name: "vm", count: 5, memoryMiB: 1 }, { name: "db", primaries: "n-3", backups: 1 }],
  }));
  const placed = placeVms(s.ram!, scenarioNodeInfo(s), Rng.fromSeed(1));
  assert.deepEqual(
    placed.map((p) => [p.name, p.primary, p.backups]),
    [
      ["vm-0", 0, [1, 2]],
      ["vm-1", 1, [2, 3]],
      ["vm-2", 2, [3, 0]],
      ["vm-3", 3, [0, 1]],
      ["vm-4", 0, [1, 2]],
      ["db", 3, [0]],
    ],
  );
  assert.equal(placed[0].pageCount, 256);
});

Deno.test("ram section: errors name the field", () => {
  rejects(base({ vms: [] }), /ram\.vms: a ram section needs at least one VM/);
  rejects(base({ vms: [{ name: "web", primaries: "m-0" }] }), /ram\.vms\[0\]\.primaries: "m-0"/);
  rejects(
    base({ vms: [{ name: "web", backupsFrom: ["n-1", "x"] }] }),
    /ram\.vms\[0\]\.backupsFrom\[1\]: "x" is neither/,
  );
  rejects(
    base({ vms: [{ name: "a" }, { name: "a" }] }),
    /ram\.vms\[1\]\.name: duplicate VM name "a"/,
  );
  rejects(
    base({ vms: [{ name: "a", count: 2 }, { name: "a-1" }] }),
    /ram\.vms\[1\]\.name: duplicate VM name "a-1"/,
  );
  rejects(
    base({ vms: [{ name: "web" }], migrations: [{ at: "1s", vm: "db" }] }),
    /ram\.migrations\[0\]\.vm: no VM named "db"/,
  );
  rejects(
    base({ vms: [{ name: "web" }], migrations: [{ at: "1s", vm: "web", to: "n-9" }] }),
    /ram\.migrations\[0\]\.to: no node named "n-9"/,
  );
  rejects(
    base({ vms: [{ name: "web" }], migrations: [{ at: "20s", vm: "web" }] }),
    /ram\.migrations\[0\]\.at: 20000 ms is after the end/,
  );
  rejects(
    base({ vms: [{ name: "web" }], policy: "remus", remus: { checkpointPauseMs: 6 } }),
    /ram\.remus\.checkpointPauseMs: 6 ms exceeds the low profile's interval \(5 ms\)/,
  );
  rejects(base({ vms: [{ name: "web" }], policy: "qemu" }), /ram\.policy/);
  rejects(base({ vms: [{ name: "web", workload: { kind: "db" } }] }), /ram\.vms\[0\]\.workload/);
  rejects(
    base({ vms: [{ name: "web" }], config: { profiles: { low: { curve: { threshold: 1 } } } } }),
    /ram\.config\.profiles\.low\.curve\.threshold/,
  );
  rejects(
    base({ vms: [{ name: "web" }] }, { consensus: {} }),
    /a scenario has either a consensus or a ram section/,
  );
  rejects(
    {
      name: "m",
      duration: "1s",
      nodes: [{ group: "n", count: 2 }],
      checks: [{ type: "ram.intensity" }],
    },
    /checks\[0\]: ram\.intensity needs a ram section/,
  );
  rejects(
    base({ vms: [{ name: "web" }] }, { checks: [{ type: "ram.migration", expect: "maybe" }] }),
    /checks\[0\]\.expect/,
  );
});

Deno.test("every scenarios/ram-*.yaml parses, has a description and ram checks", async () => {
  const dir = new URL("../../scenarios/", import.meta.url).pathname;
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.startsWith("ram-") || !e.name.endsWith(".yaml")) continue;
    const s = await loadScenarioFile(dir + e.name);
    assert.ok(s.ram, e.name);
    assert.ok(s.description.length > 40, `${e.name} needs a description`);
    assert.ok(s.checks.some((c) => c.type.startsWith("ram.")), `${e.name} has no ram check`);
    n++;
  }
  assert.ok(n >= 13, `only ${n} ram scenarios`);
});
