/**
 * Node configuration (DESIGN.md sections 4 and 6): one zod schema per section with the
 * defaults in the schema, read from a YAML or JSON file, then `MYCELIUM_*` environment
 * overrides, then programmatic overrides (CLI flags), validated with errors that name the
 * field and where its value came from.
 *
 * Precedence, lowest first: schema defaults < tier defaults < file < environment < overrides.
 *
 * Tier defaults (`TIER_DEFAULTS`), applied under everything the user sets:
 * - sclerotia (backbone) and rhizomorph (relay): the schema defaults; both need stable,
 *   well-known ports because other nodes use them as seeds and relays.
 * - hypha (pure client): `gossip.port` and `streams.port` are 0 (ephemeral: a client
 *   is never a seed, and several may run on one host), and `membership.reconnectIntervalMs`
 *   is 0 (reaching out to dead members is backbone work). It still probes and gossips
 *   like every SWIM member.
 *
 * Environment overrides: `MYCELIUM_<SECTION>_<FIELD>`, the field path in UPPER_SNAKE case
 * (`MYCELIUM_ADMIN_PORT`, `MYCELIUM_STREAMS_RECONNECT_BASE_MS`,
 * `MYCELIUM_MEMBERSHIP_PROBE_INTERVAL_MS`). Values are read as YAML scalars (`9000` is a
 * number, `true` a boolean), except for string fields, which take the text as is; array
 * fields take a comma-separated list (`MYCELIUM_JOIN_SEEDS=10.0.0.1:7946,10.0.0.2:7946`;
 * empty items are dropped). Any other `MYCELIUM_*` variable is an error naming it, except
 * `MYCELIUM_CONFIG` (reserved for the config file path, read by the CLI).
 */
import { readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { formatPath, formatZodError } from "../core/config_errors.ts";
import { ConfigError, MyceliumError } from "../core/errors.ts";
import { swimConfigSchema } from "../core/membership/config.ts";
import { consensusConfigSchema } from "../core/consensus/config.ts";
import { isNodeId } from "../core/ids.ts";
import { maxChunkPages, ramChunkFrameBytes } from "./ram_codec.ts";
import { ramSectionSchema } from "./ram_config.ts";
import { storageSectionSchema } from "./objects_config.ts";
import { sporeGossipConfigSchema } from "../core/spores/gossip.ts";
import { latentConfigSchema } from "../core/spores/latent.ts";
import { seedConfigSchema } from "../core/spores/seed.ts";

// ---------------------------------------------------------------------------------------
// Addresses

const HOSTNAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;
const IPV6_RE = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$/;
const HOST_PORT_RE = /^(?:\[([0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;

/** A hostname, an IPv4 address or an IPv6 address (unbracketed, e.g. `::`). */
export function isHost(s: string): boolean {
  return HOSTNAME_RE.test(s) || IPV6_RE.test(s);
}

/** Splits `host:port` (IPv6 as `[addr]:port`); port 1..65535. */
export function parseHostPort(s: string): { host: string; port: number } | undefined {
  const m = HOST_PORT_RE.exec(s);
  if (!m) return undefined;
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (port < 1 || port > 65535 || !isHost(host)) return undefined;
  return { host, port };
}

const hostSchema = z.string().refine(isHost, {
  error: "invalid host",
  params: { expected: "a hostname, IPv4 or IPv6 address" },
});
const hostPortSchema = z.string().refine((s) => parseHostPort(s) !== undefined, {
  error: "invalid address",
  params: { expected: "host:port with port 1-65535, IPv6 as [addr]:port" },
});
const portSchema = (def: number, what: string) =>
  z.int().min(0).max(65535).default(def).describe(`${what} (0 = ephemeral)`);

// ---------------------------------------------------------------------------------------
// Sections

export const NODE_TIERS = ["sclerotia", "rhizomorph", "hypha"] as const;
export type NodeTier = typeof NODE_TIERS[number];

export const nodeSectionSchema = z.strictObject({
  name: z.string().min(1).max(128).optional().describe("human-readable node name"),
  tier: z.enum(NODE_TIERS).default("sclerotia").describe("node tier"),
  dataDir: z.string().min(1).default("./data").describe("durable state directory"),
  identityDir: z.string().min(1).optional().describe(
    "node identity (keys, certificates); default <dataDir>/identity",
  ),
});

export const gossipSectionSchema = z.strictObject({
  bind: hostSchema.default("127.0.0.1").describe("UDP bind address for SWIM gossip"),
  port: portSchema(7946, "UDP gossip port"),
  advertise: hostPortSchema.optional().describe(
    "host:port other nodes use to reach us (default: the bound address)",
  ),
  maxDatagramBytes: z.int().min(128).max(65507).default(1400).describe("largest UDP datagram"),
});

export const streamsSectionSchema = z.strictObject({
  bind: hostSchema.default("127.0.0.1").describe("TCP bind address for mutual-TLS streams"),
  port: portSchema(7947, "TCP stream port"),
  // 8 MiB: a 4 MiB storage chunk travels in one frame (a smaller limit shrinks the chunks).
  maxFrameBytes: z.int().min(1024).max(256 * 1024 * 1024).default(8 * 1024 * 1024).describe(
    "largest stream frame",
  ),
  reconnect: z.strictObject({
    baseMs: z.number().positive().finite().default(100).describe("first reconnect delay (ms)"),
    maxMs: z.number().positive().finite().default(30000).describe("reconnect delay cap (ms)"),
  }).refine((r) => r.maxMs >= r.baseMs, {
    error: (iss) => {
      const r = iss.input as { baseMs: number; maxMs: number };
      return `maxMs (${r.maxMs}) is below baseMs (${r.baseMs})`;
    },
  }).prefault({}),
  heartbeat: z.strictObject({
    intervalMs: z.number().positive().finite().default(1000).describe(
      "ping an idle established stream this often (ms)",
    ),
    timeoutMs: z.number().positive().finite().default(4000).describe(
      "close and reconnect a stream that returned no frame for this long (ms)",
    ),
    connectTimeoutMs: z.number().positive().finite().default(3000).describe(
      "give up one connection attempt after this long (ms)",
    ),
  }).refine((h) => h.timeoutMs > h.intervalMs, {
    error: (iss) => {
      const h = iss.input as { intervalMs: number; timeoutMs: number };
      return `timeoutMs (${h.timeoutMs}) must exceed intervalMs (${h.intervalMs})`;
    },
  }).prefault({}),
});

export const adminSectionSchema = z.strictObject({
  bind: hostSchema.default("127.0.0.1").describe("admin HTTP bind address"),
  port: portSchema(8080, "admin HTTP port"),
});

export const joinSectionSchema = z.strictObject({
  seeds: z.array(hostPortSchema).default([]).describe(
    "Latent entry points: gossip addresses of any member, tried last (node/bootstrap.ts)",
  ),
  rhizomorphs: z.array(hostPortSchema).default([]).describe(
    "Rhizomorph contacts (gossip addresses), tried after the cached spore",
  ),
  attemptTimeoutMs: z.number().positive().finite().default(2000).describe(
    "a discovery attempt with no member answering is given up after this long (ms)",
  ),
  retryMs: z.number().positive().finite().default(1000).describe(
    "after every discovery source failed, start over after this long (ms)",
  ),
});

export const sporesSectionSchema = z.strictObject({
  gossip: sporeGossipConfigSchema.prefault({}),
  latent: latentConfigSchema.prefault({}),
  seed: seedConfigSchema.extend({
    write: z.array(
      z.string().min(1).max(4096).refine((p) => !p.includes("://"), "expected a file path"),
    ).max(16).default([]).describe(
      "file paths this node writes its seed spore to (it always keeps one in its data dir)",
    ),
  }).prefault({}),
});

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export const logSectionSchema = z.strictObject({
  level: z.enum(LOG_LEVELS).default("info").describe("minimum level written"),
});

export const consensusSectionSchema = consensusConfigSchema.extend({
  voters: z.array(z.string().refine(isNodeId, "expected a node id (32 hex characters)"))
    .default([])
    .describe("the genesis voter set (node ids); empty: consensus is off on this node"),
  commitWindow: z.int().min(1).default(4).describe("commit-reveal: heights for commits"),
  revealWindow: z.int().min(1).default(4).describe("commit-reveal: heights for reveals"),
  requestTimeoutMs: z.number().positive().finite().default(10_000).describe(
    "how long a client request waits for its commit before answering 504 (ms)",
  ),
});

export const nodeConfigSchema = z.strictObject({
  node: nodeSectionSchema.prefault({}),
  gossip: gossipSectionSchema.prefault({}),
  streams: streamsSectionSchema.prefault({}),
  admin: adminSectionSchema.prefault({}),
  join: joinSectionSchema.prefault({}),
  membership: swimConfigSchema.prefault({}),
  consensus: consensusSectionSchema.prefault({}),
  log: logSectionSchema.prefault({}),
  ram: ramSectionSchema.prefault({}).describe("distributed RAM (VM memory replication)"),
  storage: storageSectionSchema.prefault({}).describe("object storage (chunks, replicas)"),
  spores: sporesSectionSchema.prefault({}).describe("Latent gossip and Seed spore files"),
}).superRefine((cfg, ctx) => {
  // Epoch chunks travel as stream frames (NodeRam shrinks chunks to fit): one page must fit.
  const max = cfg.streams?.maxFrameBytes;
  if ((cfg.ram?.vms?.length ?? 0) > 0 && typeof max === "number" && maxChunkPages(max) < 1) {
    ctx.addIssue({
      code: "custom",
      path: ["streams", "maxFrameBytes"],
      message: `too small for a RAM epoch chunk of one page (needs >= ${
        1 + ramChunkFrameBytes(1)
      })`,
    });
  }
});

type ParsedNodeConfig = z.output<typeof nodeConfigSchema>;
/** The effective configuration: `node.identityDir` is always resolved. */
export type NodeConfig = Omit<ParsedNodeConfig, "node"> & {
  node: ParsedNodeConfig["node"] & { identityDir: string };
};
export type NodeConfigInput = z.input<typeof nodeConfigSchema>;

/** Defaults that depend on the tier (see the module comment). */
export const TIER_DEFAULTS: Readonly<Record<NodeTier, NodeConfigInput>> = {
  sclerotia: {},
  rhizomorph: {},
  hypha: {
    gossip: { port: 0 },
    streams: { port: 0 },
    membership: { reconnectIntervalMs: 0 },
  },
};

// ---------------------------------------------------------------------------------------
// Layers and provenance

type Raw = Record<string, unknown>;
/** One source of values; `labels` maps a field path (`admin.port`) to where it came from. */
interface Layer {
  raw: Raw;
  labels: Map<string, string>;
}

function isPlainObject(v: unknown): v is Raw {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    !(v instanceof Uint8Array) && !(v instanceof Date);
}

function setOwn(obj: Raw, key: string, value: unknown): void {
  // defineProperty: a "__proto__" key stays a plain (unknown) field instead of a prototype.
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function deepMerge(base: Raw, over: Raw): Raw {
  const out: Raw = {};
  for (const [k, v] of Object.entries(base)) setOwn(out, k, v);
  for (const [k, v] of Object.entries(over)) {
    const b = Object.hasOwn(out, k) ? out[k] : undefined;
    setOwn(out, k, isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v);
  }
  return out;
}

/** Labels every leaf (scalar, array or empty object) of `raw` with `label`. */
function labelLeaves(raw: Raw, label: string): Map<string, string> {
  const labels = new Map<string, string>();
  const walk = (v: unknown, path: string[]) => {
    if (isPlainObject(v) && Object.keys(v).length > 0) {
      for (const [k, c] of Object.entries(v)) walk(c, [...path, k]);
    } else {
      labels.set(formatPath("", path), label);
    }
  };
  walk(raw, []);
  return labels;
}

function sourcesOf(path: string, labels: Map<string, string>): string[] {
  const out = new Set<string>();
  for (const [p, label] of labels) {
    const related = path === "(root)" || p === path ||
      path.startsWith(`${p}.`) || path.startsWith(`${p}[`) ||
      p.startsWith(`${path}.`) || p.startsWith(`${path}[`);
    if (related) out.add(label);
  }
  return [...out];
}

// ---------------------------------------------------------------------------------------
// Environment

export const ENV_PREFIX = "MYCELIUM_";
/** Not a config field: the CLI reads the config file path from it. */
export const CONFIG_FILE_ENV = "MYCELIUM_CONFIG";

type LeafKind = "string" | "array-of-string" | "array" | "scalar";
interface EnvField {
  path: string[];
  kind: LeafKind;
}

type AnySchema = z.core.$ZodType;
const WRAPPERS = new Set(["default", "prefault", "optional", "nullable", "readonly", "catch"]);

function unwrap(s: AnySchema): AnySchema {
  let cur = s;
  while (WRAPPERS.has(cur._zod.def.type)) {
    cur = (cur._zod.def as unknown as { innerType: AnySchema }).innerType;
  }
  return cur;
}

function isStringy(s: AnySchema): boolean {
  const t = unwrap(s)._zod.def.type;
  if (t === "string") return true;
  if (t === "enum") {
    const entries = (unwrap(s)._zod.def as unknown as { entries: Record<string, unknown> }).entries;
    return Object.values(entries).every((v) => typeof v === "string");
  }
  return false;
}

function upperSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

function buildEnvTable(): Map<string, EnvField> {
  const table = new Map<string, EnvField>();
  const walk = (schema: AnySchema, path: string[]) => {
    const base = unwrap(schema);
    const def = base._zod.def;
    if (def.type === "object") {
      const shape = (def as unknown as { shape: Record<string, AnySchema> }).shape;
      for (const [k, child] of Object.entries(shape)) walk(child, [...path, k]);
      return;
    }
    let kind: LeafKind = isStringy(base) ? "string" : "scalar";
    if (def.type === "array") {
      const element = (def as unknown as { element: AnySchema }).element;
      kind = isStringy(element) ? "array-of-string" : "array";
    }
    const name = ENV_PREFIX + path.map(upperSnake).join("_");
    const clash = table.get(name);
    if (clash) {
      throw new MyceliumError(
        "internal",
        `fields ${clash.path.join(".")} and ${path.join(".")} map to the same variable`,
        { input: name },
      );
    }
    table.set(name, { path, kind });
  };
  walk(nodeConfigSchema, []);
  return table;
}

const ENV_TABLE = buildEnvTable();
const SECTIONS = Object.keys(nodeConfigSchema.shape);

/** Every supported `MYCELIUM_*` variable and the field it sets (`admin.port`). */
export function nodeConfigEnvVars(): Array<{ name: string; field: string }> {
  return [...ENV_TABLE].map(([name, f]) => ({ name, field: f.path.join(".") }));
}

/** A YAML scalar (`9000`, `true`, `1.5`), else the text itself. */
function yamlScalar(text: string): unknown {
  try {
    const v = YAML.parse(text);
    return typeof v === "object" && v !== null ? text : v;
  } catch {
    return text;
  }
}

function envValue(kind: LeafKind, text: string): unknown {
  switch (kind) {
    case "string":
      return text;
    case "scalar":
      return yamlScalar(text);
    case "array-of-string":
    case "array": {
      const items = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
      return kind === "array" ? items.map(yamlScalar) : items;
    }
  }
}

function unknownEnvError(name: string): ConfigError {
  const rest = name.slice(ENV_PREFIX.length);
  const section = SECTIONS.find((s) => rest.startsWith(`${upperSnake(s)}_`));
  if (section === undefined) {
    return new ConfigError(
      `unknown configuration variable: no section matches (sections: ${SECTIONS.join(", ")})`,
      name,
    );
  }
  const known = [...ENV_TABLE].filter(([, f]) => f.path[0] === section).map(([n]) => n);
  return new ConfigError(
    `unknown configuration variable: section ${section} has no such field (known: ${
      known.join(", ")
    })`,
    name,
  );
}

function envLayer(env: Record<string, string>): Layer {
  const raw: Raw = {};
  const labels = new Map<string, string>();
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_PREFIX) || name === CONFIG_FILE_ENV) continue;
    const field = ENV_TABLE.get(name);
    if (!field) throw unknownEnvError(name);
    let obj = raw;
    for (const k of field.path.slice(0, -1)) {
      if (!isPlainObject(obj[k])) obj[k] = {};
      obj = obj[k] as Raw;
    }
    obj[field.path[field.path.length - 1]] = envValue(field.kind, env[name]);
    labels.set(formatPath("", field.path), `env ${name}`);
  }
  return { raw, labels };
}

// ---------------------------------------------------------------------------------------
// Files

/** Reads a YAML (.yaml/.yml) or JSON (.json) config file; errors name the path. */
export async function readConfigFile(path: string): Promise<Raw> {
  const ext = extname(path).toLowerCase();
  if (ext !== ".yaml" && ext !== ".yml" && ext !== ".json") {
    throw new ConfigError(
      `unsupported config file extension ${JSON.stringify(ext)} (expected .yaml, .yml or .json)`,
      path,
    );
  }
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read config file: ${(e as Error).message}`, path, e);
  }
  let parsed: unknown;
  try {
    parsed = ext === ".json" ? JSON.parse(text) : YAML.parse(text, { prettyErrors: true });
  } catch (e) {
    const what = ext === ".json" ? "JSON" : "YAML";
    throw new ConfigError(`invalid ${what}: ${(e as Error).message}`, path, e);
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isPlainObject(parsed)) {
    const got = Array.isArray(parsed) ? "a list" : typeof parsed;
    throw new ConfigError(`expected a mapping of sections at the top level, got ${got}`, path);
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------
// Resolution

type Issue = z.core.$ZodIssue;

function formatIssues(err: z.ZodError, labels: Map<string, string>): string {
  const lines: string[] = [];
  for (const issue of err.issues as Issue[]) {
    const parts: Issue[] = issue.code === "unrecognized_keys"
      ? issue.keys.map((k) => ({ ...issue, keys: [k] }))
      : [issue];
    for (const part of parts) {
      const path = part.code === "unrecognized_keys" ? [...part.path, part.keys[0]] : part.path;
      const sources = sourcesOf(formatPath("", path), labels);
      const text = formatZodError(new z.ZodError([part]), "");
      lines.push(sources.length > 0 ? `${text} (from ${sources.join(", ")})` : text);
    }
  }
  return lines.join("; ");
}

function resolve(layers: Layer[]): NodeConfig {
  let user: Raw = {};
  const labels = new Map<string, string>();
  for (const layer of layers) {
    user = deepMerge(user, layer.raw);
    for (const [p, l] of layer.labels) labels.set(p, l);
  }
  const tierRaw = isPlainObject(user.node) ? user.node.tier : undefined;
  const tier: NodeTier = NODE_TIERS.find((t) => t === tierRaw) ?? "sclerotia";
  const r = nodeConfigSchema.safeParse(deepMerge(TIER_DEFAULTS[tier] as Raw, user));
  if (!r.success) {
    throw new ConfigError(
      `invalid node configuration: ${formatIssues(r.error, labels)}`,
      undefined,
      r.error,
    );
  }
  const cfg = r.data;
  return {
    ...cfg,
    node: { ...cfg.node, identityDir: cfg.node.identityDir ?? join(cfg.node.dataDir, "identity") },
  };
}

export interface LoadNodeConfigOptions {
  /** YAML (.yaml, .yml) or JSON (.json) file. */
  file?: string;
  /** Environment to read `MYCELIUM_*` overrides from (none when absent: pass `process.env`). */
  env?: Record<string, string>;
  /** Highest-precedence values in the file's shape, e.g. from CLI flags. */
  overrides?: unknown;
}

/**
 * Loads the effective node configuration: defaults, tier defaults, file, environment,
 * overrides. Throws ConfigError naming the field and the source of the bad value.
 */
export async function loadNodeConfig(opts: LoadNodeConfigOptions = {}): Promise<NodeConfig> {
  const layers: Layer[] = [];
  if (opts.file !== undefined) {
    const raw = await readConfigFile(opts.file);
    layers.push({ raw, labels: labelLeaves(raw, `file ${opts.file}`) });
  }
  layers.push(envLayer(opts.env ?? {}));
  if (opts.overrides !== undefined) {
    if (!isPlainObject(opts.overrides)) {
      throw new ConfigError("overrides must be an object of sections", "overrides");
    }
    layers.push({ raw: opts.overrides, labels: labelLeaves(opts.overrides, "overrides") });
  }
  return resolve(layers);
}

/** Validates an in-memory configuration object (same rules, no file or environment). */
export function parseNodeConfig(input: unknown, source = "input"): NodeConfig {
  if (input === undefined || input === null) return resolve([]);
  if (!isPlainObject(input)) throw new ConfigError("expected an object of sections", source);
  return resolve([{ raw: input, labels: labelLeaves(input, source) }]);
}

/** The effective configuration as YAML (`mycelium node --print-config`); loads back as is. */
export function formatConfig(cfg: NodeConfig): string {
  return YAML.stringify(cfg, { lineWidth: 0 });
}
