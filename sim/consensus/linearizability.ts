/**
 * A linearizability checker for client histories of the replicated KV store.
 *
 * The history is split by key (linearizability is compositional: a history is linearizable iff
 * every per-object sub-history is, Herlihy & Wing's locality / P-compositionality), and each
 * key's sub-history is checked against a sequential register with put, get and cas (initial
 * value null = absent) by a Wing & Gong / Lowe "just-in-time linearization" depth-first search:
 * ops are sorted by invoke time, and at each step only ops that may come next in real-time order
 * are tried, i.e. unlinearized ops whose invoke is <= the smallest completion time among the
 * unlinearized ops. Configurations (set of linearized ops, register value) already explored are
 * memoised, so low-concurrency histories of thousands of ops check in near-linear time.
 *
 * Real-time order: op a precedes op b iff a.complete < b.invoke (equal times are concurrent).
 *
 * Interpretation of entries:
 * - `complete: null` (never acknowledged): the op may take effect at any point after its invoke,
 *   or never. A pending `get` carries no information and is ignored.
 * - `get` with `result.ok === true` read `result.value` (missing = null). A completed `get`
 *   without a result, or with `ok: false`, read nothing known and is ignored.
 * - `put` with `ok: false` is indeterminate (treated like a pending put); otherwise it took effect.
 * - `cas` with `ok: true` succeeded (so the value was `expect`, null = absent). With `ok: false` it
 *   did not apply (the value was not `expect`) and, when `result.value` is present, the value was
 *   `result.value` (null = absent). A completed `cas` without a result may have gone either way,
 *   which for a register is fully determined by the value at its linearization point.
 */

/** One client operation as observed by the client. */
export interface HistoryEntry {
  readonly client: string;
  readonly op: "put" | "get" | "cas";
  readonly key: string;
  /** put / cas: the value written. */
  readonly value?: string;
  /** cas: the expected current value (null or missing = absent). */
  readonly expect?: string | null;
  readonly invoke: number;
  /** null = never acknowledged (crashed / timed out): may or may not have taken effect. */
  readonly complete: number | null;
  readonly result?: { readonly ok: boolean; readonly value?: string | null };
}

export interface CheckOptions {
  /** Search budget per key: distinct configurations memoised before giving up. */
  readonly maxStates?: number;
}

export type CheckResult =
  | { ok: true }
  | {
    ok: false;
    key: string;
    reason: string;
    /** A small sub-history of `key` that is itself not linearizable, sorted by invoke. */
    ops: HistoryEntry[];
  }
  | { ok: "unknown"; key: string; reason: string };

export const DEFAULT_MAX_STATES = 1_000_000;

/** The register value: null = absent. */
type Val = string | null;

/** How one op acts on the register. */
type Step =
  | { t: "put"; value: string }
  | { t: "read"; value: Val }
  | { t: "cas-ok"; expect: Val; value: string }
  | { t: "cas-fail"; expect: Val; seen: Val | undefined }
  | { t: "cas-any"; expect: Val; value: string };

interface Node {
  /** Index in invoke order. */
  readonly idx: number;
  readonly invoke: number;
  /** Infinity for optional (pending / indeterminate) ops. */
  readonly ret: number;
  readonly optional: boolean;
  readonly step: Step;
  readonly entry: HistoryEntry;
  prev: Node | null;
  next: Node | null;
}

/** Next register value, or undefined when the op cannot take effect on `s`. */
function apply(step: Step, s: Val): Val | undefined {
  switch (step.t) {
    case "put":
      return step.value;
    case "read":
      return s === step.value ? s : undefined;
    case "cas-ok":
      return s === step.expect ? step.value : undefined;
    case "cas-fail":
      if (s === step.expect) return undefined;
      return step.seen === undefined || step.seen === s ? s : undefined;
    case "cas-any":
      return s === step.expect ? step.value : s;
  }
}

function validate(e: HistoryEntry, i: number): void {
  const where = `history[${i}]`;
  if (e.op !== "put" && e.op !== "get" && e.op !== "cas") {
    throw new TypeError(`${where}: unknown op ${JSON.stringify(e.op)}`);
  }
  if (typeof e.key !== "string") throw new TypeError(`${where}: key must be a string`);
  if (!Number.isFinite(e.invoke)) throw new TypeError(`${where}: invoke must be a finite number`);
  if (e.complete !== null) {
    if (!Number.isFinite(e.complete)) {
      throw new TypeError(`${where}: complete must be a finite number or null`);
    }
    if (e.complete < e.invoke) throw new RangeError(`${where}: complete < invoke`);
  }
  if (e.op !== "get" && typeof e.value !== "string") {
    throw new TypeError(`${where}: ${e.op} needs a string value`);
  }
}

/** The op's effect and whether it is optional; null when the op constrains nothing. */
function classify(e: HistoryEntry): { step: Step; optional: boolean } | null {
  const pending = e.complete === null;
  const r = e.result;
  switch (e.op) {
    case "get":
      if (pending || r === undefined || !r.ok) return null;
      return { step: { t: "read", value: r.value ?? null }, optional: false };
    case "put":
      return { step: { t: "put", value: e.value! }, optional: pending || r?.ok === false };
    case "cas": {
      const expect = e.expect ?? null;
      if (pending || r === undefined) {
        return { step: { t: "cas-any", expect, value: e.value! }, optional: pending };
      }
      if (r.ok) return { step: { t: "cas-ok", expect, value: e.value! }, optional: false };
      return { step: { t: "cas-fail", expect, seen: r.value }, optional: false };
    }
  }
}

function byInvoke(a: HistoryEntry, b: HistoryEntry): number {
  return a.invoke - b.invoke || (a.complete ?? Infinity) - (b.complete ?? Infinity);
}

/** Drops pending puts that cannot matter (see `prune`) and builds the sorted node list. */
function buildNodes(entries: readonly HistoryEntry[]): Node[] {
  const items: Array<{ e: HistoryEntry; step: Step; optional: boolean }> = [];
  for (const e of entries) {
    const c = classify(e);
    if (c !== null) items.push({ e, ...c });
  }
  const kept = prune(items);
  kept.sort((a, b) => byInvoke(a.e, b.e));
  return kept.map((it, idx) => ({
    idx,
    invoke: it.e.invoke,
    ret: it.optional ? Infinity : it.e.complete!,
    optional: it.optional,
    step: it.step,
    entry: it.e,
    prev: null,
    next: null,
  }));
}

/**
 * An optional put whose value nothing ever observes (no read returns it, no cas expects it or
 * reports it) can be dropped, provided no op can observe the register by inequality alone (a
 * failed cas without a reported value, or a cas of unknown outcome). Proof sketch: in any
 * linearization that includes such a put, the ops between it and the next write can only be
 * observations of its value, of which there are none; so the next op is a put (or nothing), and
 * removing the dropped put leaves every other op's view unchanged. This keeps histories with many
 * crashed writers tractable.
 */
function prune<T extends { step: Step; optional: boolean }>(items: T[]): T[] {
  const observed = new Set<Val>();
  for (const { step } of items) {
    switch (step.t) {
      case "read":
        observed.add(step.value);
        break;
      case "cas-ok":
        observed.add(step.expect);
        break;
      case "cas-fail":
        if (step.seen === undefined) return items;
        observed.add(step.seen);
        observed.add(step.expect);
        break;
      case "cas-any":
        return items;
    }
  }
  return items.filter((it) =>
    !(it.optional && it.step.t === "put" && !observed.has(it.step.value))
  );
}

type KeyOutcome =
  | { t: "ok" }
  | { t: "fail" }
  | { t: "unknown"; states: number };

/** The WGL / Lowe search over one key's nodes (sorted by invoke). */
function search(nodes: Node[], maxStates: number): KeyOutcome {
  let mandatoryLeft = 0;
  for (const n of nodes) if (!n.optional) mandatoryLeft++;
  if (mandatoryLeft === 0) return { t: "ok" };
  // Doubly linked list of unlinearized nodes in invoke order, with a sentinel head.
  const head: Node = {
    idx: -1,
    invoke: -Infinity,
    ret: Infinity,
    optional: true,
    step: { t: "read", value: null },
    entry: undefined as unknown as HistoryEntry,
    prev: null,
    next: null,
  };
  let last = head;
  for (const n of nodes) {
    n.prev = last;
    n.next = null;
    last.next = n;
    last = n;
  }
  const lift = (n: Node) => {
    n.prev!.next = n.next;
    if (n.next) n.next.prev = n.prev;
  };
  const unlift = (n: Node) => {
    n.prev!.next = n;
    if (n.next) n.next.prev = n;
  };
  /** Unlinearized nodes that may be linearized next. */
  const candidates = (): Node[] => {
    let minRet = Infinity;
    const walked: Node[] = [];
    for (let n = head.next; n !== null && n.invoke <= minRet; n = n.next) {
      walked.push(n);
      if (n.ret < minRet) minRet = n.ret;
    }
    return walked.filter((n) => n.invoke <= minRet);
  };
  /**
   * Canonical key of (linearized set, value): the linearized set is [0, hi) minus the
   * unlinearized nodes below hi, which are few when concurrency is low.
   */
  const configKey = (hi: number, s: Val): string => {
    let k = `${hi}`;
    for (let n = head.next; n !== null && n.idx < hi; n = n.next) k += `,${n.idx}`;
    return k + "|" + (s === null ? "-" : "+" + s);
  };

  interface Frame {
    readonly cands: Node[];
    i: number;
    readonly state: Val;
    readonly hi: number;
    readonly via: Node | null;
  }
  const seen = new Set<string>();
  const stack: Frame[] = [{ cands: candidates(), i: 0, state: null, hi: 0, via: null }];
  while (stack.length > 0) {
    const f = stack[stack.length - 1];
    if (f.i >= f.cands.length) {
      stack.pop();
      if (f.via !== null) {
        unlift(f.via);
        if (!f.via.optional) mandatoryLeft++;
      }
      continue;
    }
    const c = f.cands[f.i++];
    const next = apply(c.step, f.state);
    if (next === undefined) continue;
    lift(c);
    if (!c.optional) mandatoryLeft--;
    if (mandatoryLeft === 0) return { t: "ok" };
    const hi = Math.max(f.hi, c.idx + 1);
    const key = configKey(hi, next);
    if (seen.has(key)) {
      unlift(c);
      if (!c.optional) mandatoryLeft++;
      continue;
    }
    seen.add(key);
    if (seen.size > maxStates) return { t: "unknown", states: seen.size };
    stack.push({ cands: candidates(), i: 0, state: next, hi, via: c });
  }
  return { t: "fail" };
}

function checkKey(entries: readonly HistoryEntry[], maxStates: number): KeyOutcome {
  return search(buildNodes(entries), maxStates);
}

/**
 * The history as observed at time `t`: ops invoked after `t` are dropped, ops completing after
 * `t` become pending. Linearizable histories stay linearizable under this truncation, so the
 * first failing `t` locates the violation.
 */
function truncate(entries: readonly HistoryEntry[], t: number): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const e of entries) {
    if (e.invoke > t) continue;
    if (e.complete !== null && e.complete > t) {
      const { result: _result, ...rest } = e;
      out.push({ ...rest, complete: null });
    } else out.push(e);
  }
  return out;
}

function show(v: Val | undefined): string {
  return v === null || v === undefined ? "null" : JSON.stringify(v);
}

export function describe(e: HistoryEntry): string {
  const r = e.result;
  const res = e.complete === null
    ? "pending"
    : r === undefined
    ? "no result"
    : r.ok
    ? (e.op === "get" ? `-> ${show(r.value)}` : "-> ok")
    : `-> fail${r.value !== undefined ? ` (${show(r.value)})` : ""}`;
  const args = e.op === "get"
    ? ""
    : e.op === "put"
    ? ` ${show(e.value)}`
    : ` ${show(e.expect ?? null)}->${show(e.value)}`;
  return `${e.client} ${e.op}${args} [${e.invoke}, ${e.complete ?? "∞"}] ${res}`;
}

/** Values a retained op needs someone to have written (null is the initial value). */
function neededValues(e: HistoryEntry): Val[] {
  const r = e.result;
  if (e.complete === null || r === undefined) return [];
  if (e.op === "get") return r.ok ? [r.value ?? null] : [];
  if (e.op === "cas") return r.ok ? [e.expect ?? null] : r.value !== undefined ? [r.value] : [];
  return [];
}

/** Every value a retained op observed still has a retained writer (or is null). */
function writersKept(ops: readonly HistoryEntry[]): boolean {
  const written = new Set<Val>([null]);
  for (const e of ops) if (e.op !== "get" && e.value !== undefined) written.add(e.value);
  return ops.every((e) => neededValues(e).every((v) => written.has(v)));
}

/**
 * Greedy delta debugging: drops chunks of ops (oldest first, halving the chunk size) while the
 * rest still fails and every observed value keeps a writer, within a budget of checks.
 */
function shrink(ops: HistoryEntry[], maxStates: number): HistoryEntry[] {
  let cur = ops;
  let budget = 4000;
  const fails = (xs: HistoryEntry[]) => {
    budget--;
    return writersKept(xs) && checkKey(xs, maxStates).t === "fail";
  };
  for (let size = Math.max(1, Math.floor(cur.length / 2)); size >= 1 && budget > 0;) {
    let removed = false;
    for (let start = 0; start < cur.length && budget > 0;) {
      const candidate = [...cur.slice(0, start), ...cur.slice(start + size)];
      if (candidate.length > 0 && fails(candidate)) {
        cur = candidate;
        removed = true;
      } else start += size;
    }
    if (!removed || size > cur.length) size = Math.floor(size / 2);
  }
  return cur;
}

function failure(key: string, entries: readonly HistoryEntry[], maxStates: number): CheckResult {
  // Find the earliest completion time at which the observed history is already non-linearizable.
  const times = [
    ...new Set(entries.filter((e) => e.complete !== null).map((e) => e.complete!)),
  ].sort((a, b) => a - b);
  let lo = 0;
  let hi = times.length - 1; // the full history fails (at the last completion)
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (checkKey(truncate(entries, times[mid]), maxStates).t === "fail") hi = mid;
    else lo = mid + 1;
  }
  const t = times[hi];
  const culprits = entries.filter((e) => e.complete === t);
  const prefix = entries.filter((e) => e.invoke <= t && e.complete !== null && e.complete <= t);
  const ops = shrink(prefix.sort(byInvoke), maxStates).sort(byInvoke);
  const blamed = culprits.filter((e) => ops.includes(e));
  const focus = (blamed.length > 0 ? blamed : culprits).map(describe).join("; ");
  return {
    ok: false,
    key,
    reason: `key ${JSON.stringify(key)} is not linearizable: the history up to time ${t} has ` +
      `no linearization once ${focus} completes (witness of ${ops.length} ops: ` +
      `${ops.map(describe).join(" | ")})`,
    ops,
  };
}

/** Checks `history` for linearizability against a KV store of registers (initially null). */
export function checkLinearizable(
  history: readonly HistoryEntry[],
  opts: CheckOptions = {},
): CheckResult {
  const maxStates = opts.maxStates ?? DEFAULT_MAX_STATES;
  const byKey = new Map<string, HistoryEntry[]>();
  history.forEach((e, i) => {
    validate(e, i);
    let list = byKey.get(e.key);
    if (list === undefined) byKey.set(e.key, list = []);
    list.push(e);
  });
  let unknown: CheckResult | undefined;
  for (const key of [...byKey.keys()].sort()) {
    const entries = byKey.get(key)!;
    const out = checkKey(entries, maxStates);
    if (out.t === "fail") return failure(key, entries, maxStates);
    if (out.t === "unknown" && unknown === undefined) {
      unknown = {
        ok: "unknown",
        key,
        reason: `search budget exhausted for key ${JSON.stringify(key)}: ` +
          `${out.states} configurations explored (maxStates ${maxStates}) among ` +
          `${entries.length} ops`,
      };
    }
  }
  return unknown ?? { ok: true };
}
