/**
 * The replicated key-value store (DESIGN.md section 5): the state machine every replica applies
 * committed blocks to, one `ClientOp` at a time, in log order. It is pure and deterministic: the
 * same op sequence yields the same results and the same `digest()` on every replica.
 *
 * Semantics of the KV operations (`KvOp`):
 * - `put` sets the key and returns `{ ok: true }`.
 * - `get` returns `{ ok: true, value }`, with `value` null when the key is absent.
 * - `cas` sets the key to `value` and returns `{ ok: true }` when the current value equals
 *   `expect` (null meaning absent); otherwise it changes nothing and returns
 *   `{ ok: false, value: current }`.
 * - Anything else (a `NetOp`, or a KV op with malformed fields) is rejected with
 *   `{ ok: false, error }`; `apply` never throws on op content and rejected ops change nothing
 *   (they are not recorded for deduplication either).
 *
 * Deduplication (client sessions). A client's op ids are `client/seq`, where `client` is the
 * op's `client` field and `seq` a non-negative integer the client increases with every new op
 * (one op at a time, as in Raft's client sessions). The store keeps, per client, only the highest
 * seq applied and that op's result, so the record is bounded by the number of clients:
 * - seq greater than the client's highest: applied, and becomes the client's new record;
 * - seq equal to the highest: a replay; returns the recorded (first) result, changes nothing;
 * - seq lower than the highest: an old replay whose result is no longer kept; changes nothing
 *   and returns `{ ok: false, error }` saying it was superseded. A client that pipelines ops
 *   must therefore expect an op overtaken in the log by a later seq of its own to be refused.
 * Ids not of the form `client/seq` are still deduplicated, exactly, by remembering each such id
 * and its result; that record is unbounded, so well-behaved clients should use `client/seq`.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { ClientOp, KvOp } from "./types.ts";

/** The result of applying one client op. */
export interface KvResult {
  readonly ok: boolean;
  /** `get`: the value read (null = absent). Failed `cas`: the current value. */
  readonly value?: string | null;
  /** Set only when the op was rejected (not a KV op, malformed, or a superseded replay). */
  readonly error?: string;
}

/** A client's dedup record: the highest seq applied and the result it produced. */
export interface KvSession {
  readonly client: string;
  readonly seq: number;
  readonly result: KvResult;
}

/** The dedup record of an op whose id is not of the form `client/seq`. */
export interface KvIdRecord {
  readonly client: string;
  readonly id: string;
  readonly result: KvResult;
}

/** A plain, JSON-able copy of the whole store (data and dedup records), for catch-up. */
export interface KvSnapshot {
  readonly version: 1;
  /** [key, value] pairs, sorted by key (UTF-16 code unit order). */
  readonly entries: ReadonlyArray<readonly [string, string]>;
  /** Sorted by client. */
  readonly sessions: readonly KvSession[];
  /** Sorted by (client, id). */
  readonly ids: readonly KvIdRecord[];
}

const SEQ = /^(0|[1-9][0-9]*)$/;

/** The seq of `id` when it is `${client}/${seq}` with a safe non-negative integer seq. */
export function parseSeq(id: string, client: string): number | undefined {
  if (!id.startsWith(client + "/")) return undefined;
  const tail = id.slice(client.length + 1);
  if (!SEQ.test(tail)) return undefined;
  const n = Number(tail);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Code-unit order; never locale-dependent. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function result(ok: boolean, value?: string | null): KvResult {
  return Object.freeze(value === undefined ? { ok } : { ok, value });
}

function rejected(error: string): KvResult {
  return Object.freeze({ ok: false, error });
}

/** Why `op` is not a well-formed KV op, or undefined when it is one. */
function kvProblem(op: unknown): string | undefined {
  if (typeof op !== "object" || op === null) return "op is not an object";
  const o = op as Record<string, unknown>;
  const kind = o.kind;
  if (kind !== "put" && kind !== "get" && kind !== "cas") {
    return `not a KV op: kind ${JSON.stringify(kind)} is not put, get or cas`;
  }
  if (typeof o.key !== "string") return `${kind}: key must be a string`;
  if (kind !== "get" && typeof o.value !== "string") return `${kind}: value must be a string`;
  if (kind === "cas" && o.expect !== null && typeof o.expect !== "string") {
    return "cas: expect must be a string or null";
  }
  return undefined;
}

function idKey(client: string, id: string): string {
  return JSON.stringify([client, id]);
}

function copyResult(r: KvResult): KvResult {
  const out: { ok: boolean; value?: string | null; error?: string } = { ok: r.ok };
  if (r.value !== undefined) out.value = r.value;
  if (r.error !== undefined) out.error = r.error;
  return Object.freeze(out);
}

function isResult(r: unknown): r is KvResult {
  if (typeof r !== "object" || r === null) return false;
  const o = r as Record<string, unknown>;
  return typeof o.ok === "boolean" &&
    (o.value === undefined || o.value === null || typeof o.value === "string") &&
    (o.error === undefined || typeof o.error === "string");
}

export class KvStore {
  #data = new Map<string, string>();
  #sessions = new Map<string, { seq: number; result: KvResult }>();
  #ids = new Map<string, KvIdRecord>();

  /** Rebuilds a store from `snapshot` (see `restore`). */
  static fromSnapshot(snapshot: KvSnapshot): KvStore {
    const s = new KvStore();
    s.restore(snapshot);
    return s;
  }

  /** Number of keys present. */
  get size(): number {
    return this.#data.size;
  }

  /** The current value of `key` (null = absent); a local read, not ordered through the log. */
  read(key: string): string | null {
    return this.#data.get(key) ?? null;
  }

  /**
   * Whether `op` is a well-formed KV op that `apply` would execute (not a replay of an op
   * already applied): what a proposer may put in a block.
   */
  fresh(op: ClientOp): boolean {
    if (kvProblem(op?.op) !== undefined) return false;
    if (typeof op.id !== "string" || typeof op.client !== "string") return false;
    const seq = parseSeq(op.id, op.client);
    if (seq !== undefined) {
      const session = this.#sessions.get(op.client);
      return session === undefined || seq > session.seq;
    }
    return !this.#ids.has(idKey(op.client, op.id));
  }

  /** The highest seq applied for `client` (undefined: none yet). */
  sessionSeq(client: string): number | undefined {
    return this.#sessions.get(client)?.seq;
  }

  /** The recorded result of the client's op `seq`, if it is the client's last applied op. */
  sessionResult(client: string, seq: number): KvResult | undefined {
    const s = this.#sessions.get(client);
    return s !== undefined && s.seq === seq ? s.result : undefined;
  }

  /** Applies one committed client op and returns its result (deduplicated by `op.id`). */
  apply(op: ClientOp): KvResult {
    const problem = kvProblem(op?.op);
    if (problem !== undefined) return rejected(problem);
    if (typeof op.id !== "string" || typeof op.client !== "string") {
      return rejected("op id and client must be strings");
    }
    const kv = op.op as KvOp;
    const seq = parseSeq(op.id, op.client);
    if (seq !== undefined) {
      const session = this.#sessions.get(op.client);
      if (session !== undefined && seq <= session.seq) {
        if (seq === session.seq) return session.result;
        return rejected(
          `duplicate: ${op.id} is superseded by ${op.client}/${session.seq}; result not retained`,
        );
      }
      const r = this.#exec(kv);
      this.#sessions.set(op.client, { seq, result: r });
      return r;
    }
    const k = idKey(op.client, op.id);
    const seen = this.#ids.get(k);
    if (seen !== undefined) return seen.result;
    const r = this.#exec(kv);
    this.#ids.set(k, { client: op.client, id: op.id, result: r });
    return r;
  }

  #exec(op: KvOp): KvResult {
    switch (op.kind) {
      case "put":
        this.#data.set(op.key, op.value);
        return result(true);
      case "get":
        return result(true, this.#data.get(op.key) ?? null);
      case "cas": {
        const current = this.#data.get(op.key) ?? null;
        if (current !== op.expect) return result(false, current);
        this.#data.set(op.key, op.value);
        return result(true);
      }
    }
  }

  /** [key, value] pairs sorted by key. */
  entries(): Array<[string, string]> {
    return [...this.#data.entries()].sort((a, b) => cmp(a[0], b[0]));
  }

  /**
   * Hex sha256 of the data: canonical JSON of the key-sorted [key, value] pairs. Dedup records
   * are not included (replicas that applied the same log hold the same ones anyway).
   */
  digest(): string {
    return bytesToHex(sha256(utf8ToBytes(JSON.stringify(this.entries()))));
  }

  /** A deep, JSON-able copy of the store: data and dedup records, in canonical order. */
  snapshot(): KvSnapshot {
    const sessions = [...this.#sessions.entries()]
      .sort((a, b) => cmp(a[0], b[0]))
      .map(([client, s]) => ({ client, seq: s.seq, result: copyResult(s.result) }));
    const ids = [...this.#ids.values()]
      .sort((a, b) => cmp(a.client, b.client) || cmp(a.id, b.id))
      .map((r) => ({ client: r.client, id: r.id, result: copyResult(r.result) }));
    return { version: 1, entries: this.entries(), sessions, ids };
  }

  /**
   * Replaces the whole state with `snapshot`'s. The snapshot may come from a peer, so it is
   * validated first; on a malformed snapshot this throws and leaves the store unchanged.
   */
  restore(snapshot: KvSnapshot): void {
    const fail = (why: string): never => {
      throw new Error(`invalid KV snapshot: ${why}`);
    };
    if (typeof snapshot !== "object" || snapshot === null) fail("not an object");
    if (snapshot.version !== 1) fail(`unsupported version ${JSON.stringify(snapshot.version)}`);
    if (!Array.isArray(snapshot.entries)) fail("entries is not an array");
    if (!Array.isArray(snapshot.sessions)) fail("sessions is not an array");
    if (!Array.isArray(snapshot.ids)) fail("ids is not an array");
    const data = new Map<string, string>();
    for (const e of snapshot.entries) {
      if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== "string") fail("bad entry");
      if (typeof e[1] !== "string") fail(`bad value for key ${JSON.stringify(e[0])}`);
      if (data.has(e[0])) fail(`duplicate key ${JSON.stringify(e[0])}`);
      data.set(e[0], e[1]);
    }
    const sessions = new Map<string, { seq: number; result: KvResult }>();
    for (const s of snapshot.sessions) {
      if (typeof s !== "object" || s === null || typeof s.client !== "string") fail("bad session");
      if (!Number.isSafeInteger(s.seq) || s.seq < 0) fail(`bad seq for ${s.client}`);
      if (!isResult(s.result)) fail(`bad result for ${s.client}`);
      if (sessions.has(s.client)) fail(`duplicate session ${JSON.stringify(s.client)}`);
      sessions.set(s.client, { seq: s.seq, result: copyResult(s.result) });
    }
    const ids = new Map<string, KvIdRecord>();
    for (const r of snapshot.ids) {
      if (typeof r !== "object" || r === null) fail("bad id record");
      if (typeof r.client !== "string" || typeof r.id !== "string") fail("bad id record");
      if (!isResult(r.result)) fail(`bad result for ${r.id}`);
      const k = idKey(r.client, r.id);
      if (ids.has(k)) fail(`duplicate id ${JSON.stringify(r.id)}`);
      ids.set(k, { client: r.client, id: r.id, result: copyResult(r.result) });
    }
    this.#data = data;
    this.#sessions = sessions;
    this.#ids = ids;
  }
}
