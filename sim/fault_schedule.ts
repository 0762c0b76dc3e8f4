/**
 * The fault schedule of a scenario, shared by every simulator: crashes and restarts, link
 * faults (partitions, one-way cuts, slowed and jammed links, degraded nodes) as rules of the
 * network model in their window, and clock faults. Each fault gets an account whose
 * `fired` counts the times it took effect.
 */
import { ConfigError } from "../core/errors.ts";
import { declared, type FaultAccount } from "./checks.ts";
import type { LinkRule, NetworkModel } from "./network.ts";
import type { Rng } from "./rng.ts";
import type { Fault } from "./scenario.ts";
import { type NodeInfo, resolveSelector, validateSelector } from "./selectors.ts";

/** What a simulator offers the schedule. */
export interface FaultTarget {
  readonly durationMs: number;
  readonly rootRng: Rng;
  readonly network: NetworkModel;
  /** The nodes selectors resolve against (index = network index). */
  nodesInfo(): readonly NodeInfo[];
  /** Runs `fn` at virtual time `t`. */
  at(t: number, fn: () => void): void;
  now(): number;
  isUp(i: number): boolean;
  crash(i: number, loseUnsynced: boolean): void;
  restart(i: number): void;
  /** Node i's clock: local = offset + now x (1 + drift). */
  clock(i: number): { offset: number; drift: number };
  setClock(i: number, offset: number, drift: number): void;
  /** Called when any fault first acts (the membership observer closes formation). */
  onFaultStart?(): void;
  trace?(obj: Record<string, unknown>): void;
}

function mask(n: number, indices: number[]): Uint8Array {
  const m = new Uint8Array(n);
  for (const i of indices) m[i] = 1;
  return m;
}

/**
 * Validates every selector up front and schedules the faults; pushes one account per fault
 * to `accounts`; returns when the last fault ends (heal or restart).
 */
export function scheduleFaults(
  faults: readonly Fault[],
  target: FaultTarget,
  accounts: FaultAccount[],
): number {
  let lastEnd = 0;
  const info = target.nodesInfo();
  const n = info.length;
  const started = () => target.onFaultStart?.();
  faults.forEach((f, fi) => {
    const path = `faults[${fi}]`;
    if (f.at > target.durationMs) {
      throw new ConfigError(
        `at (${f.at} ms) is after the end of the run (${target.durationMs} ms)`,
        `${path}.at`,
      );
    }
    const account = declared(f.type, f.at, f.name);
    accounts.push(account);
    const rng = target.rootRng.derive(`fault/${fi}`);
    const until = "until" in f && f.until !== undefined
      ? Math.min(f.until, target.durationMs)
      : target.durationMs;
    const isUp = (i: number) => target.isUp(i);
    const resolve = (sel: Parameters<typeof resolveSelector>[0], p: string) => {
      validateSelector(sel, info, p);
      return resolveSelector(sel, info, rng);
    };
    const windowRule = (rule: LinkRule) => {
      target.at(f.at, () => {
        started();
        target.network.addRule(rule);
        target.trace?.({ ev: "fault", fault: account.name, action: "start" });
      });
      target.at(until, () => {
        target.network.removeRule(rule, target.now());
        account.fired += rule.affected;
        target.trace?.({ ev: "fault", fault: account.name, action: "end" });
      });
      lastEnd = Math.max(lastEnd, until);
    };
    switch (f.type) {
      case "crash": {
        validateSelector(f.nodes, info, `${path}.nodes`);
        target.at(f.at, () => {
          started();
          // (Random atoms draw among live nodes; fixed ones may name nodes already down.)
          const victims = resolveSelector(f.nodes, info, rng, isUp).filter(isUp);
          for (const i of victims) {
            target.crash(i, f.loseUnsynced);
            account.fired++;
            if (f.restartAfter !== undefined) {
              target.at(target.now() + f.restartAfter, () => target.restart(i));
            }
          }
        });
        lastEnd = Math.max(lastEnd, f.at + (f.restartAfter ?? 0));
        break;
      }
      case "partition": {
        const groupOf = new Int32Array(n).fill(-1);
        f.groups.forEach((g, gi) => {
          for (const i of resolve(g, `${path}.groups[${gi}]`)) groupOf[i] = gi;
        });
        windowRule({ kind: "partition", groupOf, loss: 1, addLatency: 0, affected: 0 });
        break;
      }
      case "oneway":
        windowRule({
          kind: "oneway",
          a: mask(n, resolve(f.from, `${path}.from`)),
          b: mask(n, resolve(f.to, `${path}.to`)),
          loss: f.loss,
          addLatency: 0,
          affected: 0,
        });
        break;
      case "slow":
      case "jam":
        windowRule({
          kind: f.type,
          a: mask(n, resolve(f.between[0], `${path}.between[0]`)),
          b: mask(n, resolve(f.between[1], `${path}.between[1]`)),
          loss: f.type === "jam" ? f.loss : 0,
          addLatency: f.type === "slow" ? f.addLatency : 0,
          affected: 0,
        });
        break;
      case "degrade":
        windowRule({
          kind: "degrade",
          a: mask(n, resolve(f.nodes, `${path}.nodes`)),
          loss: f.loss,
          addLatency: f.addLatency,
          direction: f.direction,
          affected: 0,
        });
        break;
      case "clock": {
        validateSelector(f.nodes, info, `${path}.nodes`);
        target.at(f.at, () => {
          for (const i of resolveSelector(f.nodes, info, rng)) {
            const c = target.clock(i);
            const now = target.now();
            // Keep the local clock continuous: it jumps by f.offset, then runs at the new rate.
            const local = c.offset + now * (1 + c.drift);
            target.setClock(i, local + f.offset - now * (1 + f.drift), f.drift);
            account.fired++;
          }
        });
        break;
      }
    }
  });
  return lastEnd;
}
