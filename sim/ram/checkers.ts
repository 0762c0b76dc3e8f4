/**
 * The RAM simulator's online checkers, fed every replicator event (stamped with virtual time)
 * and every output the simulator releases to clients. The first violation is kept; the
 * simulator stops there.
 *
 * - ram.intensity: every tick's intensity is in [0, M] and what the policy must decide
 *   (Mycelium: I(b), or M during migration catch-up, via core `intensityProblem`; the
 *   baselines: within their own bound), and the replicator applied exactly that decision.
 * - ram.single-primary: one node per VM per term; no two nodes primary at the same time
 *   (the intervals of core `twoPrimariesProblem`, checked as they open).
 * - ram.failover-consistent: every applied epoch and every promoted state has the digest the
 *   primary recorded when it cut that epoch (core `appliedStateProblem`, online).
 * - ram.output-buffering: a promoted state contains every output released so far.
 * - ram.pause-bounded: no emergency pause outlasts convergenceTimeoutMs + one interval.
 */
import type { ThrottleCurve } from "../../core/throttle.ts";
import type { RamEvent } from "../../core/ram/events.ts";
import type { TickStats } from "../../core/ram/params.ts";
import { intensityProblem } from "../../core/ram/policies.ts";
import type { Violation } from "../membership_observer.ts";

export const RAM_ONLINE_CHECKS = [
  "ram.intensity",
  "ram.single-primary",
  "ram.failover-consistent",
  "ram.output-buffering",
  "ram.pause-bounded",
] as const;

/** What the checkers need to know about a VM's policy and profile. */
export interface VmCheckInfo {
  /** The Mycelium curve; null for a baseline policy (checked against `maxIntensity` only). */
  curve: ThrottleCurve | null;
  /** M: the policy's largest intensity. */
  maxIntensity: number;
  convergenceTimeoutMs: number;
  intervalMs: number;
}

interface VmState {
  info: VmCheckInfo;
  catchUp: boolean;
  /** Node-clock time the current emergency pause began (null: not paused). */
  pauseStart: number | null;
  readonly termOwner: Map<number, string>;
  /** Nodes primary now, with their term and start time. */
  readonly open: Map<string, { term: number; at: number }>;
  readonly cuts: Map<string, string>;
  /** The newest released output's (term, epoch). */
  released: { term: number; epoch: number; at: number } | null;
}

const cmp = (t1: number, e1: number, t2: number, e2: number) => t1 !== t2 ? t1 - t2 : e1 - e2;

export class RamCheckers {
  violation: Violation | null = null;
  ticks = 0;
  promotions = 0;
  applied = 0;
  releasedOutputs = 0;
  pauses = 0;
  private readonly vms = new Map<string, VmState>();
  /** Reused for every tick (what intensityProblem reads of it: now, b, migrating). */
  private readonly stats: TickStats = {
    now: 0,
    bufferLevel: 0,
    dirtiedBytes: 0,
    transferredBytes: 0,
    migrating: false,
  };

  /**
   * `enabled`: the check names to run. `defer(fn)` runs `fn` once every event queued for the
   * current instant has run (a primary fenced at the very instant another is promoted is fine).
   * `name` turns node ids into names for messages.
   */
  constructor(
    private readonly enabled: ReadonlySet<string>,
    private readonly defer: (fn: () => void) => void = (fn) => fn(),
    private readonly name: (node: string) => string = (n) => n,
  ) {}

  /** The VM switched latency profile: later ticks are judged by the new curve and bounds. */
  updateInfo(vmId: string, info: VmCheckInfo): void {
    const st = this.vms.get(vmId);
    if (st) st.info = info;
  }

  addVm(vmId: string, info: VmCheckInfo): void {
    this.vms.set(vmId, {
      info,
      catchUp: false,
      pauseStart: null,
      termOwner: new Map(),
      open: new Map(),
      cuts: new Map(),
      released: null,
    });
  }

  /** Whether digests are needed (ram.failover-consistent is on). */
  get wantsDigests(): boolean {
    return this.enabled.has("ram.failover-consistent");
  }

  private fail(check: string, detail: string): void {
    if (!this.violation && this.enabled.has(check)) this.violation = { check, detail };
  }

  /** An output of `vmId` cut in epoch (term, epoch) was released to clients at `at`. */
  outputReleased(vmId: string, term: number, epoch: number, at: number): void {
    const st = this.vms.get(vmId);
    if (!st) return;
    this.releasedOutputs++;
    const r = st.released;
    if (!r || cmp(term, epoch, r.term, r.epoch) > 0) st.released = { term, epoch, at };
  }

  onEvent(at: number, e: RamEvent): void {
    const st = this.vms.get(e.vmId);
    if (!st) return;
    const node = e.node as string;
    switch (e.kind) {
      case "tick":
        this.ticks++;
        this.checkIntensity(st, e);
        this.checkPause(st, e.vmId, e.pause, e.now);
        return;
      case "epochCut":
        if (e.digest !== undefined) st.cuts.set(`${e.term}/${e.epoch}`, e.digest);
        return;
      case "epochApplied": {
        if (e.digest === undefined) return;
        this.applied++;
        const want = st.cuts.get(`${e.term}/${e.epoch}`);
        if (want === undefined) {
          this.fail(
            "ram.failover-consistent",
            `VM ${e.vmId}: ${this.name(node)} applied epoch ${e.epoch} of term ${e.term}, ` +
              `which was never cut`,
          );
        } else if (want !== e.digest) {
          this.fail(
            "ram.failover-consistent",
            `VM ${e.vmId}: ${this.name(node)} applied epoch ${e.epoch} of term ${e.term} with ` +
              `digest ${e.digest}, but the primary cut it with ${want}`,
          );
        }
        return;
      }
      case "promoted":
        this.promotions++;
        this.onPromoted(st, at, e);
        return;
      case "fenced":
      case "demoted":
      case "stopped":
        if (st.open.has(node)) {
          st.open.delete(node);
          st.catchUp = false;
          st.pauseStart = null;
        }
        return;
      case "migrationStarted":
        st.catchUp = true;
        return;
      case "migrationBlackout":
      case "migrationAborted":
      case "migrationCompleted":
        st.catchUp = false;
        return;
      default:
        return;
    }
  }

  private checkIntensity(st: VmState, e: Extract<RamEvent, { kind: "tick" }>): void {
    if (!this.enabled.has("ram.intensity")) return;
    const d = e.decision;
    const m = st.info.maxIntensity;
    let problem: string | undefined;
    if (st.info.curve) {
      const stats = this.stats;
      stats.now = e.now;
      stats.bufferLevel = e.b;
      stats.migrating = st.catchUp;
      problem = intensityProblem(st.info.curve, stats, d, m);
    } else if (!(d.intensity >= 0 && d.intensity <= m)) {
      problem = `intensity ${d.intensity} outside [0, ${m}] (b = ${e.b})`;
    }
    if (!problem) {
      const i = d.intensity;
      const applied = Number.isNaN(i) ? 1 : i < 0 ? 0 : i > 1 ? 1 : i;
      if (e.intensity !== applied) {
        problem = `applied intensity ${e.intensity} differs from the decision ${i}`;
      }
    }
    if (problem) {
      this.fail("ram.intensity", `VM ${e.vmId} on ${this.name(e.node)} term ${e.term}: ${problem}`);
    }
  }

  private checkPause(st: VmState, vmId: string, pause: boolean, now: number): void {
    const bound = st.info.convergenceTimeoutMs + st.info.intervalMs;
    if (pause && st.pauseStart === null) {
      st.pauseStart = now;
      this.pauses++;
      return;
    }
    if (st.pauseStart === null) return;
    const lasted = now - st.pauseStart;
    if (lasted > bound) {
      this.fail(
        "ram.pause-bounded",
        `VM ${vmId}: an emergency pause has lasted ${lasted.toFixed(1)} ms ` +
          `(bound ${bound} ms = convergence timeout + one interval)`,
      );
    }
    if (!pause) st.pauseStart = null;
  }

  private onPromoted(st: VmState, at: number, e: Extract<RamEvent, { kind: "promoted" }>): void {
    const node = e.node as string;
    const vm = e.vmId;
    st.catchUp = false;
    st.pauseStart = null;
    if (e.digest !== undefined) {
      if (e.reason !== "initial") {
        const want = st.cuts.get(`${e.baseTerm}/${e.epoch}`);
        if (want !== undefined && want !== e.digest) {
          this.fail(
            "ram.failover-consistent",
            `VM ${vm}: ${this.name(node)} became primary of term ${e.term} from epoch ` +
              `${e.epoch} of term ${e.baseTerm} with digest ${e.digest}, but that epoch was cut ` +
              `with ${want}`,
          );
        }
      }
      st.cuts.set(`${e.term}/${e.epoch}`, e.digest);
    }
    const owner = st.termOwner.get(e.term);
    if (owner !== undefined && owner !== node) {
      this.fail(
        "ram.single-primary",
        `VM ${vm}: two primaries in term ${e.term} (${this.name(owner)} and ${this.name(node)})`,
      );
    }
    st.termOwner.set(e.term, node);
    if (e.reason !== "initial" && this.enabled.has("ram.output-buffering")) {
      const r = st.released;
      if (r && cmp(r.term, r.epoch, e.baseTerm, e.epoch) > 0) {
        this.fail(
          "ram.output-buffering",
          `VM ${vm}: ${this.name(node)} became primary of term ${e.term} from epoch ${e.epoch} ` +
            `of term ${e.baseTerm}, but an output of epoch ${r.epoch} of term ${r.term} was ` +
            `already released to clients (at ${r.at.toFixed(1)} ms): it is lost`,
        );
      }
    }
    st.open.set(node, { term: e.term, at });
    if (st.open.size > 1 && this.enabled.has("ram.single-primary")) {
      this.defer(() => {
        for (const [other, o] of st.open) {
          if (other === node || !st.open.has(node)) continue;
          this.fail(
            "ram.single-primary",
            `VM ${vm}: ${this.name(other)} (term ${o.term}, primary since ${o.at.toFixed(1)} ms) ` +
              `and ${this.name(node)} (term ${e.term}, from ${at.toFixed(1)} ms) were primary ` +
              `at the same time`,
          );
        }
      });
    }
  }
}
