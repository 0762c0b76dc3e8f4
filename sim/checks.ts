/**
 * The end-of-run evaluation of a scenario's checks, shared by the simulator and the real
 * cluster runner: both hand over the same observer, fault accounting and convergence data.
 */
import type { MembershipObserver, Violation } from "./membership_observer.ts";
import type { Scenario } from "./scenario.ts";

export interface FaultAccount {
  name: string;
  type:
    | Scenario["faults"][number]["type"]
    | "leave"
    | "task"
    | "migration"
    | "spore-event"
    | "storage-event";
  at: number;
  declared: number;
  fired: number;
}

/** A fault or workload operation as declared, before it has fired. */
export function declared(type: FaultAccount["type"], at: number, name?: string): FaultAccount {
  return { name: name ?? `${type}@${at}ms`, type, at, declared: 1, fired: 0 };
}

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

/** What a run (simulated or real) knows at its end. */
export interface CheckInput {
  readonly scenario: Scenario;
  readonly observer: MembershipObserver;
  readonly nodes: readonly { readonly name: string }[];
  readonly faults: readonly FaultAccount[];
  readonly workload: readonly FaultAccount[];
  readonly violation: (Violation & { event: number; t: number }) | null;
  /** First sample time after the last fault from which the views stayed converged. */
  readonly convergedAt: number | null;
  readonly lastFaultEnd: number;
}

/** Every declared fault (or workload operation) must have taken effect at least once. */
export function firedCheck(
  name: string,
  accounts: readonly FaultAccount[],
  what: string,
): CheckResult {
  const idle = accounts.filter((a) => a.fired === 0);
  return {
    name,
    ok: idle.length === 0,
    detail: idle.length === 0
      ? `all ${accounts.length} ${what} took effect`
      : `declared but never took effect: ${idle.map((a) => a.name).join(", ")}`,
  };
}

/** The failed check of a run stopped by an online violation (with where, for replay). */
export function violationResult(
  v: { check: string; detail: string; event: number; t: number },
): CheckResult {
  return {
    name: v.check,
    ok: false,
    detail: `${v.detail} (event ${v.event}, t=${v.t.toFixed(1)} ms)`,
  };
}

export function evaluateChecks(run: CheckInput): CheckResult[] {
  const o = run.observer;
  const out: CheckResult[] = [];
  if (run.violation) out.push(violationResult(run.violation));
  out.push(firedCheck("faults.fired", run.faults, "declared faults"));
  if (run.workload.length > 0) {
    out.push(firedCheck("workload.fired", run.workload, "workload operations"));
  }
  for (const c of run.scenario.checks) {
    switch (c.type) {
      case "membership.converged": {
        const ok = run.convergedAt !== null && run.convergedAt - run.lastFaultEnd <= c.within;
        out.push({
          name: c.type,
          ok,
          detail: run.convergedAt === null
            ? `not converged at the end: ${o.divergence()}`
            : `converged ${
              ((run.convergedAt - run.lastFaultEnd) / 1000).toFixed(1)
            } s after the last fault ended (bound ${c.within / 1000} s)`,
        });
        break;
      }
      case "membership.detection": {
        const done = o.detections.filter((d) => !d.restartedBefore);
        const missed = done.filter((d) => d.allDeclaredAt === null);
        const worst = Math.max(
          0,
          ...done.filter((d) => d.allDeclaredAt !== null).map((d) => d.allDeclaredAt! - d.crashAt),
        );
        const ok = done.length > 0 && missed.length === 0 && worst <= c.maxMs;
        out.push({
          name: c.type,
          ok,
          detail: done.length === 0
            ? "no crash to detect (the check needs a crash fault)"
            : missed.length > 0
            ? `${missed.length} of ${done.length} crashes never detected by every live node (e.g. ${
              run.nodes[missed[0].target].name
            })`
            : `${done.length} crashes, slowest detected by all in ${
              (worst / 1000).toFixed(2)
            } s (bound ${c.maxMs / 1000} s)`,
        });
        break;
      }
      case "membership.false-positives":
        out.push({
          name: c.type,
          ok: o.falsePositives <= c.max,
          detail: `${o.falsePositives} live nodes declared dead (max ${c.max})${
            o.falsePositiveSamples.length ? `; e.g. ${o.falsePositiveSamples[0]}` : ""
          }`,
        });
        break;
      case "membership.formation":
        out.push({
          name: c.type,
          ok: o.formationAt !== null && o.formationAt <= c.within,
          detail: o.formationAt === null
            ? "never formed (before the first fault)"
            : `formed at ${(o.formationAt / 1000).toFixed(2)} s (bound ${c.within / 1000} s)`,
        });
        break;
      case "membership.join-dissemination": {
        const pending = o.joins.filter((j) => j.allAliveAt === null);
        const worst = Math.max(
          0,
          ...o.joins.filter((j) => j.allAliveAt !== null).map((j) => j.allAliveAt! - j.joinAt),
        );
        out.push({
          name: c.type,
          ok: o.joins.length > 0 && pending.length === 0 && worst <= c.within,
          detail: o.joins.length === 0
            ? "no joiner (the check needs a node group that starts later)"
            : `${o.joins.length} joins, ${pending.length} never seen by all; slowest ${
              (worst / 1000).toFixed(2)
            } s (bound ${c.within / 1000} s)`,
        });
        break;
      }
      case "membership.sides-serving":
      case "membership.incarnation-monotonic":
        if (run.violation?.check !== c.type) {
          out.push({
            name: c.type,
            ok: true,
            detail: c.type === "membership.sides-serving"
              ? `held at every sample${
                run.faults.some((f) => f.type === "partition")
                  ? ""
                  : " (no partition in this scenario)"
              }`
              : "held at every view change",
          });
        }
        break;
    }
  }
  return out;
}
