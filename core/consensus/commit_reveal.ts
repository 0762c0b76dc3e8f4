/**
 * Commit-reveal execution of critical operations (DESIGN.md section 5). A deterministic state
 * machine driven only by committed operations and the height they committed at, so every
 * replica computes the same outcomes, verdicts and evidence. Windows are measured in committed
 * heights (replicas share no clock).
 *
 * Timeline of a task opened at height `o` (C = commitWindow, R = revealWindow):
 *   - commits are accepted at heights o < h <= o + C (the commit deadline), only from
 *     executors named by the `cr.open`;
 *   - reveals are accepted at heights o + C < h <= o + C + R (the reveal deadline), only from
 *     executors with exactly one commit. Reveals are not accepted while commits still are, so
 *     no executor can commit to a result it read from another's reveal. An early reveal is
 *     ignored (and an honest executor never sends one).
 *
 * Decisions are taken at the end of a height (`tick(h)`: "height h is complete"), never in the
 * middle of one, so the order of operations within a height does not matter:
 *   - Timeout at the commit deadline when fewer than q executors hold a single valid commit;
 *   - Approved(result) at the end of the first height where q valid reveals agree on a result;
 *   - Rejected at the reveal deadline without such a quorum, or earlier once no result can
 *     reach q even if every pending committer reveals it.
 * q = `quorum(k)` from types.ts for k executors: 2f+1 (f = floor((k-1)/3)) when k = 3f+1,
 * floor(2k/3)+1 in general for k >= 4, a simple majority below 4. It is always more than k/2,
 * so at most one result can reach it.
 *
 * Verdicts, one per executor, sorted by node id:
 *   - an equivocator (two different commits, or a reveal that does not match its commit) is
 *     "wrong" whatever the outcome, and yields `commit-reveal` evidence;
 *   - Approved(r): "correct" for a valid reveal of r, "wrong" for a valid reveal of another
 *     result, "absent" for no commit or no reveal by the end of the deciding height (approval
 *     waits for every valid committer's reveal or the reveal deadline, so late is not absent);
 *   - Rejected / Timeout: nobody is rewarded or punished for a result, since none was agreed:
 *     "neutral" for an executor that did everything the phase allowed (committed, and revealed
 *     if the reveal phase was reached), "absent" otherwise.
 * "neutral" is a no-op for `TrustTable.applyDelta`; evidence is for slashing and exclusion.
 *
 * Operations for unknown or decided tasks, from non-executors, outside their window, or
 * malformed (digest not 64 lowercase hex characters) are ignored. A `cr.open` for a task id
 * already seen (open or decided) is ignored, as is one with no executors.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { NodeId } from "../ids.ts";
import { type Evidence, type NetOp, type Operation, quorum } from "./types.ts";

export const CR_DOMAIN = "mycelium/cr/v1";

export interface CommitRevealConfig {
  /** Heights after the open during which commits are accepted (T_commit). */
  readonly commitWindow: number;
  /** Heights after the commit deadline during which reveals are accepted (T_reveal). */
  readonly revealWindow: number;
}

export type CrOutcome =
  | { readonly kind: "Approved"; readonly result: string }
  | { readonly kind: "Rejected" }
  | { readonly kind: "Timeout" };

export type CrVerdict = "correct" | "wrong" | "absent" | "neutral";

export interface CrDecision {
  readonly task: string;
  /** The height at whose end the task was decided. */
  readonly height: number;
  readonly outcome: CrOutcome;
  /** One entry per executor, sorted by node id. */
  readonly verdicts: Array<[NodeId, CrVerdict]>;
  /** `commit-reveal` evidence, sorted by node id (double commit before mismatched reveal). */
  readonly evidence: Evidence[];
}

/** Hex sha256 of the canonical commitment to (task, node, result, salt). */
export function commitDigest(task: string, node: NodeId, result: string, salt: string): string {
  return bytesToHex(sha256(utf8ToBytes(JSON.stringify([CR_DOMAIN, task, node, result, salt]))));
}

/** Matching reveals needed to approve a result among k executors. */
export function crQuorum(k: number): number {
  return quorum(k);
}

const DIGEST_RE = /^[0-9a-f]{64}$/;

interface Task {
  readonly task: string;
  readonly input: string;
  readonly open: number;
  readonly commitDeadline: number;
  readonly revealDeadline: number;
  /** Sorted, deduplicated. */
  readonly executors: readonly NodeId[];
  readonly executorSet: ReadonlySet<NodeId>;
  readonly q: number;
  /** Distinct commit digests per node. */
  readonly commits: Map<NodeId, Set<string>>;
  /** The result of a reveal matching the node's single commit. */
  readonly reveals: Map<NodeId, string>;
  /** Digests of reveals that did not match the node's commit. */
  readonly mismatches: Map<NodeId, Set<string>>;
}

/** What one replica knows about a task still being decided. */
export interface CrTaskView {
  readonly task: string;
  readonly input: string;
  readonly open: number;
  readonly commitDeadline: number;
  readonly revealDeadline: number;
  readonly executors: readonly NodeId[];
  readonly quorum: number;
}

export class CommitReveal {
  readonly config: CommitRevealConfig;
  private readonly tasks = new Map<string, Task>();
  private readonly decided = new Map<string, CrOutcome>();
  /** Highest height declared complete by `tick`; ops must come at a later height. */
  private completed = -1;

  constructor(config: CommitRevealConfig) {
    for (const k of ["commitWindow", "revealWindow"] as const) {
      const v = config[k];
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new RangeError(`${k} must be a positive integer number of heights, got ${v}`);
      }
    }
    this.config = Object.freeze({
      commitWindow: config.commitWindow,
      revealWindow: config.revealWindow,
    });
  }

  /**
   * Applies one committed operation at `height`. Heights are non-decreasing; an operation at a
   * new height first completes every earlier height (`tick(height - 1)`), and the decisions
   * that produces are returned. Non-`cr.*` operations are ignored.
   */
  apply(op: Operation | NetOp, height: number): CrDecision[] {
    checkHeight(height);
    if (height <= this.completed) {
      throw new RangeError(`op at height ${height}, but height ${this.completed} is complete`);
    }
    const out = this.tick(height - 1);
    switch (op.kind) {
      case "cr.open":
        this.open(op.task, op.input, op.executors, height);
        break;
      case "cr.commit": {
        const t = this.tasks.get(op.task);
        if (!t || !t.executorSet.has(op.node) || !DIGEST_RE.test(op.digest)) break;
        if (height <= t.open || height > t.commitDeadline) break;
        let set = t.commits.get(op.node);
        if (!set) t.commits.set(op.node, set = new Set());
        set.add(op.digest);
        break;
      }
      case "cr.reveal": {
        const t = this.tasks.get(op.task);
        if (!t) break;
        if (height <= t.commitDeadline || height > t.revealDeadline) break;
        const commits = t.commits.get(op.node);
        if (!commits || commits.size !== 1) break; // no commit, or already an equivocator
        const [commit] = commits;
        const d = commitDigest(op.task, op.node, op.result, op.salt);
        if (d === commit) {
          t.reveals.set(op.node, op.result);
        } else {
          let set = t.mismatches.get(op.node);
          if (!set) t.mismatches.set(op.node, set = new Set());
          set.add(d);
        }
        break;
      }
    }
    return out;
  }

  /**
   * Declares every height up to `height` complete and decides the tasks that can be decided:
   * deadlines passed, quorum reached, or quorum impossible. Decisions sorted by task id.
   * Ticking a height already complete returns nothing.
   */
  tick(height: number): CrDecision[] {
    if (!Number.isSafeInteger(height) || height < -1) {
      throw new RangeError(`height must be an integer >= -1, got ${height}`);
    }
    if (height <= this.completed) return [];
    this.completed = height;
    const out: CrDecision[] = [];
    const ids = [...this.tasks.keys()].sort(cmp);
    for (const id of ids) {
      const t = this.tasks.get(id)!;
      const outcome = decide(t, height);
      if (!outcome) continue;
      this.tasks.delete(id);
      this.decided.set(id, outcome);
      out.push({
        task: id,
        height,
        outcome,
        verdicts: verdicts(t, outcome),
        evidence: evidence(t),
      });
    }
    return out;
  }

  /** The outcome of a decided task, or undefined if it is pending or unknown. */
  outcome(task: string): CrOutcome | undefined {
    return this.decided.get(task);
  }

  /** Tasks still being decided, sorted by task id. */
  pending(): CrTaskView[] {
    return [...this.tasks.values()].sort((a, b) => cmp(a.task, b.task)).map((t) => ({
      task: t.task,
      input: t.input,
      open: t.open,
      commitDeadline: t.commitDeadline,
      revealDeadline: t.revealDeadline,
      executors: t.executors,
      quorum: t.q,
    }));
  }

  private open(task: string, input: string, executors: readonly NodeId[], height: number): void {
    if (this.tasks.has(task) || this.decided.has(task)) return;
    const sorted = [...new Set(executors)].sort(cmp);
    if (sorted.length === 0) return;
    const commitDeadline = height + this.config.commitWindow;
    this.tasks.set(task, {
      task,
      input,
      open: height,
      commitDeadline,
      revealDeadline: commitDeadline + this.config.revealWindow,
      executors: Object.freeze(sorted),
      executorSet: new Set(sorted),
      q: crQuorum(sorted.length),
      commits: new Map(),
      reveals: new Map(),
      mismatches: new Map(),
    });
  }
}

function checkHeight(h: number): void {
  if (!Number.isSafeInteger(h) || h < 0) {
    throw new RangeError(`height must be a non-negative integer, got ${h}`);
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isEquivocator(t: Task, n: NodeId): boolean {
  return (t.commits.get(n)?.size ?? 0) > 1 || t.mismatches.has(n);
}

/** A valid commit: exactly one digest and no mismatched reveal. */
function validCommit(t: Task, n: NodeId): boolean {
  return t.commits.get(n)?.size === 1 && !t.mismatches.has(n);
}

function validReveal(t: Task, n: NodeId): string | undefined {
  return validCommit(t, n) ? t.reveals.get(n) : undefined;
}

function decide(t: Task, height: number): CrOutcome | null {
  if (height < t.commitDeadline) return null;
  const committed = t.executors.filter((n) => t.commits.get(n)?.size === 1).length;
  if (committed < t.q) return { kind: "Timeout" };
  // Count valid reveals per result; results in sorted order for determinism.
  const counts = new Map<string, number>();
  let pending = 0;
  for (const n of t.executors) {
    if (!validCommit(t, n)) continue;
    const r = t.reveals.get(n);
    if (r === undefined) pending++;
    else counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  let best = 0;
  // Approval waits for every valid committer's reveal (or the deadline), so an honest
  // executor that reveals a height after the quorum formed is still credited, not "absent".
  const settled = pending === 0 || height >= t.revealDeadline;
  for (const r of [...counts.keys()].sort(cmp)) {
    const c = counts.get(r)!;
    if (c >= t.q && settled) return { kind: "Approved", result: r };
    if (c > best) best = c;
  }
  if (height >= t.revealDeadline || best + pending < t.q) return { kind: "Rejected" };
  return null;
}

function verdicts(t: Task, o: CrOutcome): Array<[NodeId, CrVerdict]> {
  return t.executors.map((n): [NodeId, CrVerdict] => {
    if (isEquivocator(t, n)) return [n, "wrong"];
    const r = validReveal(t, n);
    if (o.kind === "Approved") {
      return [n, r === undefined ? "absent" : r === o.result ? "correct" : "wrong"];
    }
    if (!validCommit(t, n)) return [n, "absent"];
    // Timeout: decided before any reveal could count. Rejected: the reveal phase was open.
    return [n, o.kind === "Timeout" || r !== undefined ? "neutral" : "absent"];
  });
}

function evidence(t: Task): Evidence[] {
  const out: Evidence[] = [];
  for (const n of t.executors) {
    const commits = t.commits.get(n);
    if (commits && commits.size > 1) {
      out.push({
        kind: "commit-reveal",
        task: t.task,
        node: n,
        detail: `double commit: ${[...commits].sort(cmp).join(",")}`,
      });
    }
    const bad = t.mismatches.get(n);
    if (bad && commits) {
      const [commit] = commits;
      out.push({
        kind: "commit-reveal",
        task: t.task,
        node: n,
        detail: `reveal mismatches commit ${commit}: ${[...bad].sort(cmp).join(",")}`,
      });
    }
  }
  return out;
}
