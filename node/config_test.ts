import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { ConfigError } from "../core/errors.ts";
import { defaultSwimConfig } from "../core/membership/config.ts";
import {
  formatConfig,
  loadNodeConfig,
  type LoadNodeConfigOptions,
  type NodeConfig,
  nodeConfigEnvVars,
  parseHostPort,
  parseNodeConfig,
  TIER_DEFAULTS,
} from "./config.ts";

const TEMP_ROOT = Deno.makeTempDirSync({ prefix: "mycelium-config-" });
globalThis.addEventListener("unload", () => Deno.removeSync(TEMP_ROOT, { recursive: true }));

function tempDir(): string {
  return Deno.makeTempDirSync({ dir: TEMP_ROOT });
}

/** Writes `text` to a file named `name` in a fresh temp dir and returns its path. */
function writeTemp(name: string, text: string): string {
  const path = join(tempDir(), name);
  Deno.writeTextFileSync(path, text);
  return path;
}

async function configErrorOf(opts: LoadNodeConfigOptions): Promise<ConfigError> {
  try {
    await loadNodeConfig(opts);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.kind, "config");
    return e;
  }
  assert.fail(`expected a ConfigError for ${JSON.stringify(opts)}`);
}

function assertIncludes(text: string, ...parts: string[]): void {
  for (const p of parts) assert.ok(text.includes(p), `${JSON.stringify(p)} not in: ${text}`);
}

// ---------------------------------------------------------------------------------------
// Defaults and tiers

Deno.test("config: defaults", async () => {
  const cfg = await loadNodeConfig({});
  assert.deepEqual(cfg.node, {
    tier: "sclerotia",
    dataDir: "./data",
    identityDir: join("./data", "identity"),
  });
  assert.deepEqual(cfg.gossip, { bind: "127.0.0.1", port: 7946, maxDatagramBytes: 1400 });
  assert.deepEqual(cfg.streams, {
    bind: "127.0.0.1",
    port: 7947,
    maxFrameBytes: 8 * 1024 * 1024,
    reconnect: { baseMs: 100, maxMs: 30000 },
    heartbeat: { intervalMs: 1000, timeoutMs: 4000, connectTimeoutMs: 3000 },
  });
  assert.deepEqual(cfg.admin, { bind: "127.0.0.1", port: 8080 });
  assert.deepEqual(cfg.join, { seeds: [], rhizomorphs: [], attemptTimeoutMs: 2000, retryMs: 1000 });
  assert.deepEqual(cfg.membership, defaultSwimConfig);
  assert.deepEqual(cfg.log, { level: "info" });
  assert.deepEqual(parseNodeConfig(undefined), cfg);
});

Deno.test("config: rhizomorph has the backbone defaults", async () => {
  const base = await loadNodeConfig({});
  const rhizo = await loadNodeConfig({ env: { MYCELIUM_NODE_TIER: "rhizomorph" } });
  assert.deepEqual(rhizo, { ...base, node: { ...base.node, tier: "rhizomorph" } });
});

Deno.test("config: hypha defaults to ephemeral ports and no reconnects to dead members", async () => {
  const cfg = await loadNodeConfig({ env: { MYCELIUM_NODE_TIER: "hypha" } });
  assert.equal(cfg.gossip.port, 0);
  assert.equal(cfg.streams.port, 0);
  assert.equal(cfg.membership.reconnectIntervalMs, 0);
  assert.equal(cfg.membership.probing, true, "a hypha still takes part in failure detection");
  assert.equal(cfg.admin.port, 8080);
  assert.deepEqual(TIER_DEFAULTS.sclerotia, {});
});

Deno.test("config: explicit values win over tier defaults", async () => {
  const file = writeTemp("c.yaml", "node:\n  tier: hypha\ngossip:\n  port: 7000\n");
  const cfg = await loadNodeConfig({
    file,
    env: { MYCELIUM_MEMBERSHIP_RECONNECT_INTERVAL_MS: "5000" },
  });
  assert.equal(cfg.node.tier, "hypha");
  assert.equal(cfg.gossip.port, 7000);
  assert.equal(cfg.streams.port, 0);
  assert.equal(cfg.membership.reconnectIntervalMs, 5000);
});

Deno.test("config: identityDir defaults below dataDir unless set", async () => {
  const a = await loadNodeConfig({ overrides: { node: { dataDir: "/var/lib/mycelium" } } });
  assert.equal(a.node.identityDir, "/var/lib/mycelium/identity");
  const b = await loadNodeConfig({
    overrides: { node: { dataDir: "/var/lib/mycelium", identityDir: "/etc/mycelium/id" } },
  });
  assert.equal(b.node.identityDir, "/etc/mycelium/id");
});

// ---------------------------------------------------------------------------------------
// Files

Deno.test("config: YAML file", async () => {
  const file = writeTemp(
    "node.yaml",
    `# a backbone node
node:
  name: alpha
  dataDir: /srv/alpha
gossip:
  bind: 0.0.0.0
  port: 7001
  advertise: 10.0.0.1:7001
admin:
  port: 9001
join:
  seeds: [10.0.0.2:7001, "[fd00::3]:7001", seed.example.org:7946]
membership:
  probeIntervalMs: 250
  probing: false
log:
  level: debug
`,
  );
  const cfg = await loadNodeConfig({ file });
  assert.equal(cfg.node.name, "alpha");
  assert.equal(cfg.node.identityDir, "/srv/alpha/identity");
  assert.deepEqual(cfg.gossip, {
    bind: "0.0.0.0",
    port: 7001,
    advertise: "10.0.0.1:7001",
    maxDatagramBytes: 1400,
  });
  assert.equal(cfg.admin.port, 9001);
  assert.deepEqual(cfg.join.seeds, ["10.0.0.2:7001", "[fd00::3]:7001", "seed.example.org:7946"]);
  assert.equal(cfg.membership.probeIntervalMs, 250);
  assert.equal(cfg.membership.probing, false);
  assert.equal(cfg.membership.probeTimeoutMs, defaultSwimConfig.probeTimeoutMs);
  assert.equal(cfg.log.level, "debug");
});

Deno.test("config: JSON and .yml files; an empty YAML file means defaults", async () => {
  const json = writeTemp(
    "node.json",
    JSON.stringify({ admin: { port: 9100 }, streams: { reconnect: { maxMs: 5000 } } }),
  );
  const cfg = await loadNodeConfig({ file: json });
  assert.equal(cfg.admin.port, 9100);
  assert.deepEqual(cfg.streams.reconnect, { baseMs: 100, maxMs: 5000 });

  const yml = writeTemp("node.yml", "admin: {port: 9200}\n");
  assert.equal((await loadNodeConfig({ file: yml })).admin.port, 9200);

  const empty = writeTemp("empty.yaml", "# nothing here\n");
  assert.deepEqual(await loadNodeConfig({ file: empty }), await loadNodeConfig({}));
});

Deno.test("config: formatConfig output loads back to the same configuration", async () => {
  const configs: NodeConfig[] = [
    await loadNodeConfig({}),
    await loadNodeConfig({
      env: {
        MYCELIUM_NODE_TIER: "hypha",
        MYCELIUM_NODE_NAME: "h1",
        MYCELIUM_JOIN_SEEDS: "10.0.0.1:7946,10.0.0.2:7946",
        MYCELIUM_GOSSIP_ADVERTISE: "[::1]:7946",
      },
    }),
  ];
  for (const cfg of configs) {
    const text = formatConfig(cfg);
    assert.match(text, /^node:\n/);
    const file = writeTemp("printed.yaml", text);
    assert.deepEqual(await loadNodeConfig({ file }), cfg);
  }
});

// ---------------------------------------------------------------------------------------
// Environment

Deno.test("config: env overrides for scalars, nested membership fields and lists", async () => {
  const cfg = await loadNodeConfig({
    env: {
      MYCELIUM_ADMIN_PORT: "9000",
      MYCELIUM_ADMIN_BIND: "::",
      MYCELIUM_MEMBERSHIP_PROBE_INTERVAL_MS: "500",
      MYCELIUM_MEMBERSHIP_SUSPICION_MAX_TIMEOUT_MULT: "2.5",
      MYCELIUM_MEMBERSHIP_GOSSIPING: "false",
      MYCELIUM_STREAMS_RECONNECT_BASE_MS: "250",
      MYCELIUM_STREAMS_MAX_FRAME_BYTES: "1048576",
      MYCELIUM_JOIN_SEEDS: "127.0.0.1:7001, 127.0.0.1:7002,",
      MYCELIUM_NODE_TIER: "hypha",
      MYCELIUM_NODE_NAME: "007", // string fields take the text as is
      MYCELIUM_LOG_LEVEL: "warn",
      MYCELIUM_CONFIG: "/ignored.yaml", // reserved for the CLI
      PATH: "/usr/bin",
      HOME: "/root",
    },
  });
  assert.equal(cfg.admin.port, 9000);
  assert.equal(cfg.admin.bind, "::");
  assert.equal(cfg.membership.probeIntervalMs, 500);
  assert.equal(cfg.membership.suspicionMaxTimeoutMult, 2.5);
  assert.equal(cfg.membership.gossiping, false);
  assert.deepEqual(cfg.streams.reconnect, { baseMs: 250, maxMs: 30000 });
  assert.equal(cfg.streams.maxFrameBytes, 1048576);
  assert.deepEqual(cfg.join.seeds, ["127.0.0.1:7001", "127.0.0.1:7002"]);
  assert.equal(cfg.node.tier, "hypha");
  assert.equal(cfg.node.name, "007");
  assert.equal(cfg.log.level, "warn");

  const none = await loadNodeConfig({ env: { MYCELIUM_JOIN_SEEDS: "" } });
  assert.deepEqual(none.join.seeds, []);
});

Deno.test("config: every field has an env var named MYCELIUM_<SECTION>_<FIELD>", () => {
  const vars = new Map(nodeConfigEnvVars().map((v) => [v.name, v.field]));
  assert.equal(vars.get("MYCELIUM_ADMIN_PORT"), "admin.port");
  assert.equal(vars.get("MYCELIUM_MEMBERSHIP_PROBE_INTERVAL_MS"), "membership.probeIntervalMs");
  assert.equal(vars.get("MYCELIUM_STREAMS_RECONNECT_MAX_MS"), "streams.reconnect.maxMs");
  assert.equal(vars.get("MYCELIUM_NODE_IDENTITY_DIR"), "node.identityDir");
  for (const k of Object.keys(defaultSwimConfig)) {
    assert.ok([...vars.values()].includes(`membership.${k}`), `membership.${k} has no env var`);
  }
  for (const name of vars.keys()) assert.match(name, /^MYCELIUM_[A-Z0-9_]+$/);
});

Deno.test("config: integer env values round-trip for every port field", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("GOSSIP", "STREAMS", "ADMIN"),
      fc.integer({ min: 0, max: 65535 }),
      async (section, port) => {
        const cfg = await loadNodeConfig({ env: { [`MYCELIUM_${section}_PORT`]: String(port) } });
        const key = section.toLowerCase() as "gossip" | "streams" | "admin";
        assert.equal(cfg[key].port, port);
      },
    ),
    { numRuns: 50 },
  );
});

Deno.test("config: precedence is file < env < overrides; lists are replaced, not merged", async () => {
  const file = writeTemp(
    "p.yaml",
    "admin:\n  port: 9001\n  bind: 10.0.0.1\njoin:\n  seeds: [a:1, b:2]\ngossip:\n  port: 7001\n",
  );
  const cfg = await loadNodeConfig({
    file,
    env: { MYCELIUM_ADMIN_PORT: "9002", MYCELIUM_JOIN_SEEDS: "c:3", MYCELIUM_GOSSIP_PORT: "7002" },
    overrides: { gossip: { port: 7003 } },
  });
  assert.equal(cfg.admin.port, 9002, "env over file");
  assert.equal(cfg.admin.bind, "10.0.0.1", "fields env does not set stay from the file");
  assert.deepEqual(cfg.join.seeds, ["c:3"]);
  assert.equal(cfg.gossip.port, 7003, "overrides over env");
});

// ---------------------------------------------------------------------------------------
// Errors

Deno.test("config error: a bad file value names the field and the file", async () => {
  const file = writeTemp("bad.yaml", "admin:\n  port: 70000\n");
  const e = await configErrorOf({ file });
  assertIncludes(e.message, "admin.port:", "<=65535", `from file ${file}`);
});

Deno.test("config error: bad values in JSON, nested and list fields", async () => {
  const file = writeTemp(
    "bad.json",
    JSON.stringify({
      node: { tier: "spore" },
      join: { seeds: ["10.0.0.1:7946", "10.0.0.2"] },
      streams: { reconnect: { baseMs: 5000, maxMs: 100 } },
      membership: { indirectChecks: 1.5 },
    }),
  );
  const e = await configErrorOf({ file });
  assertIncludes(
    e.message,
    `node.tier: `,
    `"hypha"`,
    "join.seeds[1]: invalid address",
    "streams.reconnect: maxMs (100) is below baseMs (5000)",
    "membership.indirectChecks:",
    `(from file ${file})`,
  );
  assert.ok(!e.message.includes("join.seeds[0]"));
});

Deno.test("config error: a bad env value names the field and the variable", async () => {
  const cases: Array<[Record<string, string>, string, string]> = [
    [{ MYCELIUM_ADMIN_PORT: "eighty" }, "admin.port:", "MYCELIUM_ADMIN_PORT"],
    [{ MYCELIUM_ADMIN_PORT: "-1" }, "admin.port:", "MYCELIUM_ADMIN_PORT"],
    [
      { MYCELIUM_MEMBERSHIP_PROBE_INTERVAL_MS: "0" },
      "membership.probeIntervalMs:",
      "MYCELIUM_MEMBERSHIP_PROBE_INTERVAL_MS",
    ],
    [
      { MYCELIUM_MEMBERSHIP_PROBING: "maybe" },
      "membership.probing:",
      "MYCELIUM_MEMBERSHIP_PROBING",
    ],
    [{ MYCELIUM_JOIN_SEEDS: "a:1,b:99999" }, "join.seeds[1]:", "MYCELIUM_JOIN_SEEDS"],
    [{ MYCELIUM_NODE_TIER: "Hypha" }, "node.tier:", "MYCELIUM_NODE_TIER"],
    [{ MYCELIUM_GOSSIP_BIND: "not a host" }, "gossip.bind:", "MYCELIUM_GOSSIP_BIND"],
    [{ MYCELIUM_NODE_NAME: "" }, "node.name:", "MYCELIUM_NODE_NAME"],
  ];
  for (const [env, field, variable] of cases) {
    const e = await configErrorOf({ env });
    assertIncludes(e.message, field, `from env ${variable}`);
  }
});

Deno.test("config error: an env value that breaks a file value names both sources", async () => {
  const file = writeTemp("r.yaml", "streams:\n  reconnect:\n    baseMs: 1000\n");
  const e = await configErrorOf({ file, env: { MYCELIUM_STREAMS_RECONNECT_MAX_MS: "500" } });
  assertIncludes(
    e.message,
    "streams.reconnect: maxMs (500) is below baseMs (1000)",
    `file ${file}`,
    "env MYCELIUM_STREAMS_RECONNECT_MAX_MS",
  );
});

Deno.test("config error: unknown fields and sections", async () => {
  const file = writeTemp("u.yaml", "admin:\n  prot: 9000\nadmni:\n  port: 1\n");
  const e = await configErrorOf({ file });
  assertIncludes(e.message, "admin.prot: unknown field", "admni: unknown field", `file ${file}`);

  const o = await configErrorOf({ overrides: { membership: { probeIntervalMillis: 5 } } });
  assertIncludes(o.message, "membership.probeIntervalMillis: unknown field (from overrides)");
});

Deno.test("config error: unknown MYCELIUM_* variables are named", async () => {
  const field = await configErrorOf({ env: { MYCELIUM_ADMIN_PROT: "9000" } });
  assert.equal(field.input, "MYCELIUM_ADMIN_PROT");
  assertIncludes(field.message, "MYCELIUM_ADMIN_PROT:", "MYCELIUM_ADMIN_PORT");

  const section = await configErrorOf({ env: { MYCELIUM_ADMINN_PORT: "9000" } });
  assert.equal(section.input, "MYCELIUM_ADMINN_PORT");
  assertIncludes(section.message, "no section", "membership");

  const obj = await configErrorOf({ env: { MYCELIUM_STREAMS_RECONNECT: "1" } });
  assert.equal(obj.input, "MYCELIUM_STREAMS_RECONNECT");
});

Deno.test("config error: missing and unreadable files name the path", async () => {
  const dir = tempDir();
  const missing = join(dir, "missing.yaml");
  const e1 = await configErrorOf({ file: missing });
  assert.equal(e1.input, missing);
  assertIncludes(e1.message, missing, "cannot read config file");

  const isDir = join(dir, "dir.yaml");
  Deno.mkdirSync(isDir);
  const e2 = await configErrorOf({ file: isDir });
  assert.equal(e2.input, isDir);
  assertIncludes(e2.message, isDir, "cannot read config file");

  const txt = writeTemp("node.toml", "x = 1\n");
  const e3 = await configErrorOf({ file: txt });
  assertIncludes(e3.message, txt, "unsupported config file extension");
});

Deno.test("config error: invalid YAML or JSON names the file", async () => {
  const yaml = writeTemp("broken.yaml", "admin:\n  port: [9000\n");
  const e1 = await configErrorOf({ file: yaml });
  assert.equal(e1.input, yaml);
  assertIncludes(e1.message, yaml, "invalid YAML");

  const dup = writeTemp("dup.yaml", "admin:\n  port: 1\nadmin:\n  port: 2\n");
  assertIncludes((await configErrorOf({ file: dup })).message, dup, "invalid YAML");

  const json = writeTemp("broken.json", '{"admin": ');
  const e2 = await configErrorOf({ file: json });
  assertIncludes(e2.message, json, "invalid JSON");

  const list = writeTemp("list.yaml", "- admin\n- gossip\n");
  assertIncludes((await configErrorOf({ file: list })).message, list, "mapping");
});

Deno.test("config error: overrides that are not an object", async () => {
  const e = await configErrorOf({ overrides: [1, 2] });
  assert.equal(e.input, "overrides");
});

// ---------------------------------------------------------------------------------------
// Addresses

Deno.test("parseHostPort", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:7946"), { host: "127.0.0.1", port: 7946 });
  assert.deepEqual(parseHostPort("seed-1.example.org:1"), { host: "seed-1.example.org", port: 1 });
  assert.deepEqual(parseHostPort("[::1]:65535"), { host: "::1", port: 65535 });
  for (const bad of ["127.0.0.1", "::1:7946", "host:0", "host:65536", ":7946", "a b:1", "[x]:1"]) {
    assert.equal(parseHostPort(bad), undefined, bad);
  }
});

Deno.test("config: the storage section: defaults, env overrides, errors naming the field", async () => {
  const cfg = await loadNodeConfig({});
  assert.deepEqual(cfg.storage, {
    chunkSize: 4 * 1024 * 1024,
    replicationFactor: 3,
    failureDomain: "host",
    repairMaxCopiesPerStep: 64,
    defaultClass: "Standard",
    defaultConsistency: "strong",
    requestTimeoutMs: 10_000,
    maxObjectBytes: 256 * 1024 * 1024,
    peerWindowBytes: 24 * 1024 * 1024,
    writeWindowChunks: 6,
    readWindowChunks: 6,
    hedgeMs: 2000,
    maxConcurrentDiskWrites: 8,
    maxConcurrentDiskReads: 8,
    maxQueuedDiskOps: 64,
    repair: {
      enabled: true,
      intervalMs: 10_000,
      afterDeathMs: 2000,
      maxConcurrentCopies: 2,
      extraProbes: 2,
    },
    labels: {},
  });
  // A default chunk and its frame overhead fit the default stream frame.
  assert.ok(cfg.storage.chunkSize + 8196 <= cfg.streams.maxFrameBytes);
  const env = await loadNodeConfig({
    env: {
      MYCELIUM_STORAGE_CHUNK_SIZE: "262144",
      MYCELIUM_STORAGE_DEFAULT_CLASS: "Sensitive",
      MYCELIUM_STORAGE_DEFAULT_CONSISTENCY: "eventual",
      MYCELIUM_STORAGE_LABELS_REGION: "eu-1",
      MYCELIUM_STORAGE_LABELS_HOST: "h7",
      MYCELIUM_STORAGE_FAILURE_DOMAIN: "region",
    },
  });
  assert.equal(env.storage.chunkSize, 262144);
  assert.equal(env.storage.defaultClass, "Sensitive");
  assert.equal(env.storage.defaultConsistency, "eventual");
  assert.deepEqual(env.storage.labels, { region: "eu-1", host: "h7" });
  assert.equal(env.storage.failureDomain, "region");
  // A frame limit below the chunk size is allowed: the node writes smaller chunks.
  await loadNodeConfig({ env: { MYCELIUM_STREAMS_MAX_FRAME_BYTES: "1048576" } });
  for (
    const [name, value, field] of [
      ["MYCELIUM_STORAGE_REPLICATION_FACTOR", "0", "storage.replicationFactor"],
      ["MYCELIUM_STORAGE_DEFAULT_CLASS", "Gold", "storage.defaultClass"],
      ["MYCELIUM_STORAGE_LABELS_ZONE", "a/b", "storage.labels.zone"],
      ["MYCELIUM_STORAGE_CHUNK_SIZE", "0", "storage.chunkSize"],
      ["MYCELIUM_STORAGE_HEDGE_MS", "-1", "storage.hedgeMs"],
    ]
  ) {
    const e = await configErrorOf({ env: { [name]: value } });
    assertIncludes(e.message, `${field}: `, `env ${name}`);
  }
});
