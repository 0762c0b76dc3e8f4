/**
 * Seed spore files (DESIGN.md section 5, Spore tiers): signed, versioned snapshots written
 * only by nodes to configured locations (a file path or an HTTP URL; the I/O is the host's),
 * used for bootstrap and partition recovery. A reader checks everything and never trusts a
 * file it cannot verify: `readSeed` returns the snapshot or a typed problem, never throws.
 *
 * File format (UTF-8, two lines, each ending in "\n"):
 *
 *     {"format":"mycelium-seed/1","version":7,"network":"…","scope":"master","created":…,
 *      "writer":"…","primaryHeight":…,"entries":[{"node":"…","tier":"…","trust":…,"addrs":[…]}]}
 *     {"sig":"…"}
 *
 * The first line is the header with the entries, the second the writer's signature over
 * `seedPayload` (canonical: fixed field order, so re-serialising cannot change what is
 * signed). A file is complete only when both lines and the final newline are there, so a
 * write cut short at any byte reads as `truncated`, never as a smaller valid snapshot.
 */
import { z } from "zod";
import { formatZodError, parseSection } from "../config_errors.ts";
import { MyceliumError } from "../errors.ts";
import type { NodeId } from "../ids.ts";
import {
  compareStrings,
  MASTER_SCOPE,
  networkIdSchema,
  nodeIdSchema,
  scopeSchema,
  type SignFn,
  type Tier,
  tierSchema,
  trustSchema,
  type VerifyFn,
} from "./types.ts";

export const SEED_FORMAT = "mycelium-seed/1";

/** What a seed says about one node: enough to contact it and weigh it. */
export interface SeedEntry {
  readonly node: NodeId;
  readonly tier: Tier;
  readonly trust: number;
  /** Transport addresses (host:port or URLs), at most 16. */
  readonly addrs: readonly string[];
}

export interface SeedSnapshot {
  readonly format: typeof SEED_FORMAT;
  /** Snapshot version, increasing per (network, scope): a reader refuses to go back. */
  readonly version: number;
  readonly network: string;
  readonly scope: string;
  /** The writer's clock when it wrote the snapshot (ms). */
  readonly created: number;
  readonly writer: NodeId;
  /** The Primary height the snapshot reflects (0 before the first commit). */
  readonly primaryHeight: number;
  /** Sorted by node id, one per node. */
  readonly entries: readonly SeedEntry[];
  readonly sig: string;
}

export type UnsignedSeed = Omit<SeedSnapshot, "sig" | "format">;

export function seedPayload(s: UnsignedSeed): string {
  return "seed/1" + JSON.stringify([
    SEED_FORMAT,
    s.version,
    s.network,
    s.scope,
    s.created,
    s.writer,
    s.primaryHeight,
    s.entries.map((e) => [e.node, e.tier, e.trust, e.addrs]),
  ]);
}

const count = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const seedEntrySchema = z.strictObject({
  node: nodeIdSchema,
  tier: tierSchema,
  trust: trustSchema,
  addrs: z.array(z.string().min(1).max(256)).max(16),
});
export const seedHeaderSchema = z.strictObject({
  format: z.literal(SEED_FORMAT),
  version: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
  network: networkIdSchema,
  scope: scopeSchema,
  created: count,
  writer: nodeIdSchema,
  primaryHeight: count,
  entries: z.array(seedEntrySchema).max(100_000).refine(
    (es) => es.every((e, i) => i === 0 || compareStrings(es[i - 1].node, e.node) < 0),
    { message: "entries must be sorted by node id, one per node" },
  ),
});
const seedSigSchema = z.strictObject({ sig: z.string().min(1).max(512) });

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });
/** Every seed file starts with these bytes. */
const MAGIC = enc.encode(`{"format":"${SEED_FORMAT}"`);
const NL = 0x0a;

function canonicalEntries(entries: readonly SeedEntry[]): SeedEntry[] {
  return [...entries]
    .map((e) => ({ node: e.node, tier: e.tier, trust: e.trust, addrs: [...e.addrs] }))
    .sort((a, b) => compareStrings(a.node, b.node));
}

/** The file bytes of a signed snapshot. */
export function encodeSeed(s: SeedSnapshot): Uint8Array {
  const header = {
    format: SEED_FORMAT,
    version: s.version,
    network: s.network,
    scope: s.scope,
    created: s.created,
    writer: s.writer,
    primaryHeight: s.primaryHeight,
    entries: s.entries.map((e) => ({ node: e.node, tier: e.tier, trust: e.trust, addrs: e.addrs })),
  };
  return enc.encode(`${JSON.stringify(header)}\n${JSON.stringify({ sig: s.sig })}\n`);
}

export interface WriteSeedOptions {
  readonly sign: SignFn;
  /** Whether the writer is a node of the network (per the caller's certified membership). */
  readonly isMember: (node: NodeId) => boolean;
}

/**
 * Signs and encodes a snapshot. Only nodes write seeds: throws a `protocol` MyceliumError
 * when the writer is not a member, and a `config` one when the snapshot does not validate.
 */
export function writeSeed(
  s: UnsignedSeed,
  opts: WriteSeedOptions,
): { seed: SeedSnapshot; bytes: Uint8Array } {
  if (!opts.isMember(s.writer)) {
    throw new MyceliumError("protocol", "only member nodes write seed spores", {
      input: s.writer,
    });
  }
  const unsigned: UnsignedSeed = { ...s, entries: canonicalEntries(s.entries) };
  const r = seedHeaderSchema.safeParse({ format: SEED_FORMAT, ...unsigned });
  if (!r.success) {
    throw new MyceliumError("config", formatZodError(r.error, "seed"), { input: "seed" });
  }
  const seed: SeedSnapshot = {
    format: SEED_FORMAT,
    ...unsigned,
    sig: opts.sign(seedPayload(unsigned)),
  };
  return { seed, bytes: encodeSeed(seed) };
}

/** Genesis: the Master Seed spore, version 1, written by a genesis node. */
export function genesisSeed(
  g: { network: string; writer: NodeId; created: number; entries: readonly SeedEntry[] },
  opts: WriteSeedOptions,
): { seed: SeedSnapshot; bytes: Uint8Array } {
  return writeSeed({ ...g, version: 1, scope: MASTER_SCOPE, primaryHeight: 0 }, opts);
}

export const SEED_PROBLEMS = [
  "missing",
  "truncated",
  "unparsable",
  "wrong-network",
  "wrong-scope",
  "tampered",
  "unauthorized",
  "future-dated",
  "stale",
] as const;
export type SeedProblem = typeof SEED_PROBLEMS[number];

export type SeedRead =
  | { readonly ok: true; readonly seed: SeedSnapshot }
  | { readonly ok: false; readonly problem: SeedProblem; readonly detail: string };

export interface ReadSeedOptions {
  readonly network: string;
  /** Default "master". */
  readonly scope?: string;
  readonly verify: VerifyFn;
  /** The reader's clock (ms). */
  readonly now: number;
  /** A snapshot created longer ago than this is stale. */
  readonly maxAgeMs: number;
  /** A snapshot created more than this after `now` is future-dated (default 5000). */
  readonly maxSkewMs?: number;
  /** The newest version already held for this network and scope: older ones are stale. */
  readonly heldVersion?: number;
  /** Whether the writer is a member (certified membership); omitted: not checked. */
  readonly isMember?: (node: NodeId) => boolean;
}

function problem(p: SeedProblem, detail: string): SeedRead {
  return { ok: false, problem: p, detail };
}

function startsWithMagic(bytes: Uint8Array): "yes" | "prefix" | "no" {
  const n = Math.min(bytes.length, MAGIC.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== MAGIC[i]) return "no";
  return bytes.length >= MAGIC.length ? "yes" : "prefix";
}

/**
 * Reads a seed file's bytes (`undefined`/`null`: the file or URL was not there). Checks, in
 * order: framing (truncated before unparsable), the header schema, network, scope, the
 * writer's signature (tampered), the writer's membership, then the dates and version.
 */
export function readSeed(bytes: Uint8Array | null | undefined, opts: ReadSeedOptions): SeedRead {
  if (bytes === undefined || bytes === null) return problem("missing", "no seed file");
  if (bytes.length === 0) return problem("truncated", "empty file");
  const magic = startsWithMagic(bytes);
  if (magic === "no") return problem("unparsable", `not a ${SEED_FORMAT} file`);
  if (magic === "prefix" || bytes[bytes.length - 1] !== NL) {
    return problem("truncated", "the file does not end with its final newline");
  }
  const firstNl = bytes.indexOf(NL);
  if (firstNl === bytes.length - 1) return problem("truncated", "the signature line is missing");
  if (bytes.indexOf(NL, firstNl + 1) !== bytes.length - 1) {
    return problem("unparsable", "more than two lines");
  }
  let header: unknown;
  let sigDoc: unknown;
  try {
    header = JSON.parse(dec.decode(bytes.subarray(0, firstNl)));
    sigDoc = JSON.parse(dec.decode(bytes.subarray(firstNl + 1, bytes.length - 1)));
  } catch (e) {
    return problem("unparsable", `not UTF-8 JSON: ${(e as Error).message}`);
  }
  const h = seedHeaderSchema.safeParse(header);
  if (!h.success) return problem("unparsable", formatZodError(h.error, "seed"));
  const s = seedSigSchema.safeParse(sigDoc);
  if (!s.success) return problem("unparsable", formatZodError(s.error, "seed.signature"));
  const seed: SeedSnapshot = { ...h.data, sig: s.data.sig };

  if (seed.network !== opts.network) return problem("wrong-network", `network ${seed.network}`);
  const scope = opts.scope ?? MASTER_SCOPE;
  if (seed.scope !== scope) return problem("wrong-scope", `scope ${seed.scope}, not ${scope}`);
  if (!opts.verify(seed.writer, seedPayload(seed), seed.sig)) {
    return problem("tampered", `signature of ${seed.writer} does not verify`);
  }
  if (opts.isMember && !opts.isMember(seed.writer)) {
    return problem("unauthorized", `writer ${seed.writer} is not a member`);
  }
  const skew = opts.maxSkewMs ?? 5000;
  if (seed.created > opts.now + skew) {
    return problem("future-dated", `created ${seed.created - opts.now} ms ahead of ${opts.now}`);
  }
  if (opts.now - seed.created > opts.maxAgeMs) {
    return problem("stale", `${opts.now - seed.created} ms old, at most ${opts.maxAgeMs}`);
  }
  if (opts.heldVersion !== undefined && seed.version < opts.heldVersion) {
    return problem("stale", `version ${seed.version}, already hold ${opts.heldVersion}`);
  }
  return { ok: true, seed };
}

// ---- configuration ----

/** Where a seed location points: an http(s) URL or a file path. */
export function seedLocationKind(loc: string): "url" | "file" {
  return /^https?:\/\//i.test(loc) ? "url" : "file";
}

const seedLocationSchema = z.string().min(1).max(4096).refine((loc) => {
  if (seedLocationKind(loc) === "file") return !loc.includes("://");
  try {
    return new URL(loc).hostname !== "";
  } catch {
    return false;
  }
}, { message: "expected a file path or an http(s) URL" });

export const seedConfigSchema = z.strictObject({
  locations: z.array(seedLocationSchema).max(64).default([]).describe(
    "seed spore locations, tried in order: file paths and http(s) URLs",
  ),
  maxAgeMs: z.number().positive().finite().default(24 * 3600 * 1000).describe(
    "a seed created longer ago than this is stale (ms)",
  ),
  maxSkewMs: z.number().nonnegative().finite().default(5000).describe(
    "a seed created more than this ahead of the reader's clock is future-dated (ms)",
  ),
  writeIntervalMs: z.number().positive().finite().default(60_000).describe(
    "how often a member node rewrites the seeds it is configured to write (ms)",
  ),
});
export type SeedConfig = z.output<typeof seedConfigSchema>;

export function parseSeedConfig(input: unknown, path = "spores.seed"): SeedConfig {
  return parseSection(seedConfigSchema, input, path);
}
