/**
 * The throttle policy each replica of a simulated VM runs (`ram.policy`), and what the
 * ram.intensity checker must hold it to.
 *
 * Remus: the core policy answers `pause: true` at every epoch boundary, meaning "stop the
 * guest for checkpointPauseMs to capture the checkpoint"; the replicator would read that as a
 * pause lasting until the next tick. The simulator therefore hands the replicator a view of it
 * that never pauses and charges the checkpoint itself: after every tick the guest loses
 * checkpointPauseMs of running time (counted as paused time).
 */
import type { ReplicationParams, ThrottlePolicy } from "../../core/ram/params.ts";
import { autoConvergePolicy, myceliumPolicy, remusPolicy } from "../../core/ram/policies.ts";
import type { RamScenario } from "../scenario.ts";
import type { VmCheckInfo } from "./checkers.ts";

export type PolicyKind = RamScenario["policy"];

/** QEMU's max-cpu-throttle, the auto-converge policy's default M. */
export const AUTO_CONVERGE_MAX = 0.99;

export function makePolicy(
  kind: PolicyKind,
  params: ReplicationParams,
  checkpointPauseMs: number,
): ThrottlePolicy {
  switch (kind) {
    case "mycelium":
      return myceliumPolicy({
        curve: params.curve,
        pauseEnabled: params.pauseEnabled,
        resumeLevel: params.resumeLevel,
        convergenceTimeoutMs: params.convergenceTimeoutMs,
      });
    case "auto-converge":
      return autoConvergePolicy({ max: AUTO_CONVERGE_MAX });
    case "remus": {
      const inner = remusPolicy({ checkpointPauseMs, intervalMs: params.intervalMs });
      return {
        name: "remus",
        tick: (s) => ({ intensity: inner.tick(s).intensity, pause: false }),
        reset: () => inner.reset(),
      };
    }
  }
}

export function checkInfo(kind: PolicyKind, params: ReplicationParams): VmCheckInfo {
  return {
    curve: kind === "mycelium" ? params.curve : null,
    maxIntensity: kind === "mycelium"
      ? params.curve.maxIntensity
      : kind === "auto-converge"
      ? AUTO_CONVERGE_MAX
      : 0,
    convergenceTimeoutMs: params.convergenceTimeoutMs,
    intervalMs: params.intervalMs,
  };
}
