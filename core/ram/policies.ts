/**
 * Throttle policies (DESIGN.md section 5): the Mycelium policy I(b) and the two baselines the
 * simulator compares it with, QEMU auto-converge and Remus-style fixed epochs. All implement
 * `ThrottlePolicy`; each is ticked once per epoch (Mycelium, Remus) or per bitmap sync
 * (auto-converge) by whoever runs it.
 */
import { type ThrottleCurve, throttleIntensity } from "../throttle.ts";
import type { ThrottleDecision, ThrottlePolicy, TickStats } from "./params.ts";

function requireUnit(name: string, v: number): void {
  if (!(v >= 0 && v <= 1)) throw new RangeError(`${name} must be in [0, 1], got ${v}`);
}
function requireNonNegative(name: string, v: number): void {
  if (!(v >= 0) || v === Infinity) throw new RangeError(`${name} must be >= 0, got ${v}`);
}

// ---------------------------------------------------------------------------------------
// Mycelium

export interface MyceliumPolicyParams {
  curve: ThrottleCurve;
  /** Emergency pause at b >= 1; off: the replicator drops and re-marks instead (`shouldDrop`). */
  pauseEnabled: boolean;
  /** b at or below which an emergency pause ends (0.8). */
  resumeLevel: number;
  /** Longest an emergency pause may last, ms. */
  convergenceTimeoutMs: number;
  /** M: the catch-up intensity and a cap on the curve; defaults to `curve.maxIntensity`. */
  maxIntensity?: number;
}

export interface MyceliumPolicy extends ThrottlePolicy {
  /** With pause disabled: whether queued payload must be dropped (b >= 1; NaN counts as 1). */
  shouldDrop(bufferLevel: number): boolean;
  /** Whether the last decision paused the guest. */
  readonly paused: boolean;
}

/**
 * The Mycelium policy. Each tick: intensity = min(I(b), M), or M while a migration is in
 * catch-up; applied every tick, also when it falls to 0.
 *
 * Emergency pause (pauseEnabled): at b >= 1 the guest is paused (from `stats.now`) until
 * b <= resumeLevel. A pause that reaches convergenceTimeoutMs ends anyway, and the policy then
 * stays *disarmed* (no new pause) until b has dropped to resumeLevel at least once. Without
 * this, a link that cannot drain the buffer would alternate one-tick runs with full-length
 * pauses, so the timeout would bound each pause but not the guest's total stall; disarmed,
 * the guest runs at I = M and the replicator's drop-and-re-mark path takes over.
 *
 * A pause is reported at ticks with now - start < convergenceTimeoutMs only, so with ticks
 * `intervalMs` apart the guest is paused for at most convergenceTimeoutMs + intervalMs.
 * `stats.now` must not go backwards. NaN buffer levels count as 1 (fail safe).
 */
export function myceliumPolicy(params: MyceliumPolicyParams): MyceliumPolicy {
  const { curve, pauseEnabled, resumeLevel, convergenceTimeoutMs } = params;
  const m = params.maxIntensity ?? curve.maxIntensity;
  requireUnit("maxIntensity", m);
  requireNonNegative("resumeLevel", resumeLevel);
  requireNonNegative("convergenceTimeoutMs", convergenceTimeoutMs);
  let paused = false;
  let pauseStart = 0;
  let armed = true;
  return {
    name: "mycelium",
    get paused() {
      return paused;
    },
    tick(stats: TickStats): ThrottleDecision {
      const b = Number.isNaN(stats.bufferLevel) ? 1 : stats.bufferLevel;
      if (pauseEnabled && !paused) {
        if (!armed && b <= resumeLevel) armed = true;
        if (armed && b >= 1) {
          paused = true;
          pauseStart = stats.now;
        }
      }
      if (paused) {
        if (b <= resumeLevel) paused = false;
        else if (stats.now - pauseStart >= convergenceTimeoutMs) {
          paused = false;
          armed = false;
        }
      }
      const i = stats.migrating ? m : Math.min(throttleIntensity(curve, b), m);
      return { intensity: i, pause: paused };
    },
    shouldDrop(bufferLevel: number): boolean {
      return !pauseEnabled && !(bufferLevel < 1);
    },
    reset() {
      paused = false;
      armed = true;
    },
  };
}

/**
 * The Mycelium intensity contract, as a predicate shared by tests and the simulator's
 * checker: undefined when `decision` is what the policy must decide for `stats`, else a
 * description of the violation. `maxIntensity` is the policy's M (default the curve's).
 */
export function intensityProblem(
  curve: ThrottleCurve,
  stats: TickStats,
  decision: ThrottleDecision,
  maxIntensity: number = curve.maxIntensity,
): string | undefined {
  const i = decision.intensity;
  if (typeof i !== "number" || !(i >= 0 && i <= maxIntensity)) {
    return `intensity ${i} outside [0, ${maxIntensity}] (b = ${stats.bufferLevel})`;
  }
  const want = stats.migrating
    ? maxIntensity
    : Math.min(throttleIntensity(curve, stats.bufferLevel), maxIntensity);
  if (i !== want) {
    return `intensity ${i} != ${want} expected for b = ${stats.bufferLevel}` +
      (stats.migrating ? " during migration catch-up (I = M)" : "");
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// QEMU auto-converge

export interface AutoConvergeParams {
  /** cpu-throttle-initial, as a fraction (QEMU: 20 %). */
  initial?: number;
  /** cpu-throttle-increment (QEMU: 10 %). */
  increment?: number;
  /** max-cpu-throttle (QEMU: 99 %). */
  max?: number;
  /** throttle-trigger-threshold: dirtied > ratio * transferred counts as a high pass (50 %). */
  dirtyRatio?: number;
  /** How many consecutive high passes trigger a step (QEMU: 2). */
  passes?: number;
}

export interface AutoConvergePolicy extends ThrottlePolicy {
  /** The current throttle (0 until the first step). */
  readonly throttle: number;
}

/**
 * QEMU auto-converge (migration_trigger_throttle) with ticks as passes. QEMU evaluates at each
 * dirty-bitmap sync, i.e. per RAM pass; here a pass is one `tick`, so the runtime must call
 * it once per bitmap sync (per epoch for a replicator) with that period's dirtied and
 * transferred bytes. When dirtied > dirtyRatio * transferred in `passes` consecutive ticks,
 * the throttle starts at `initial`; each further run of `passes` consecutive high ticks adds
 * `increment`, capped at `max`. The throttle never decreases until reset(), as in QEMU.
 *
 * One difference: QEMU does not reset its high-pass counter on a quiet pass (two high passes
 * anywhere since the last step trigger); we count *consecutive* high ticks, as DESIGN.md's
 * "over 2 passes" reads. Never pauses.
 */
export function autoConvergePolicy(params: AutoConvergeParams = {}): AutoConvergePolicy {
  const { initial = 0.2, increment = 0.1, max = 0.99, dirtyRatio = 0.5, passes = 2 } = params;
  requireUnit("initial", initial);
  requireUnit("max", max);
  requireNonNegative("increment", increment);
  requireNonNegative("dirtyRatio", dirtyRatio);
  if (!Number.isSafeInteger(passes) || passes < 1) {
    throw new RangeError(`passes must be an integer >= 1, got ${passes}`);
  }
  let high = 0;
  /** Number of throttle steps taken; the throttle is a function of it (no float drift). */
  let steps = 0;
  const level = () => steps === 0 ? 0 : Math.min(initial + (steps - 1) * increment, max);
  return {
    name: "auto-converge",
    get throttle() {
      return level();
    },
    tick(stats: TickStats): ThrottleDecision {
      if (stats.dirtiedBytes > dirtyRatio * stats.transferredBytes) {
        if (++high >= passes) {
          high = 0;
          // Stop counting once capped (keeps `steps` bounded; the level is the same).
          if (level() < max || steps === 0) steps++;
        }
      } else {
        high = 0;
      }
      return { intensity: level(), pause: false };
    },
    reset() {
      high = 0;
      steps = 0;
    },
  };
}

// ---------------------------------------------------------------------------------------
// Remus

export interface RemusParams {
  /** How long the guest is stopped to capture each checkpoint, ms. */
  checkpointPauseMs: number;
  /** Epoch length, ms. */
  intervalMs: number;
}

export interface RemusPolicy extends ThrottlePolicy {
  /** How long each tick's pause lasts, ms (the simulator charges it to the guest). */
  pauseMs(): number;
  /** pauseMs / intervalMs: the fraction of time the guest is stopped. */
  pauseFraction(): number;
}

/**
 * Remus-style fixed epochs: no throttle (intensity 0), but at every tick (epoch boundary) the
 * guest is paused for `checkpointPauseMs` to capture the checkpoint. The decision only says
 * `pause: true`; the runner charges `pauseMs()` for it rather than pausing until the next tick.
 *
 * Output buffering is not this policy's job: the runner holds the guest's external outputs
 * (packets, disk writes) produced during epoch k and releases them when every backup has
 * acknowledged checkpoint k, so outputs are delayed by up to one interval plus the
 * acknowledgement round trip, but never reveal state a failover could lose.
 */
export function remusPolicy(params: RemusParams): RemusPolicy {
  const { checkpointPauseMs, intervalMs } = params;
  requireNonNegative("checkpointPauseMs", checkpointPauseMs);
  if (!(intervalMs > 0) || intervalMs === Infinity) {
    throw new RangeError(`intervalMs must be > 0, got ${intervalMs}`);
  }
  if (checkpointPauseMs > intervalMs) {
    throw new RangeError(
      `checkpointPauseMs (${checkpointPauseMs}) must not exceed intervalMs (${intervalMs})`,
    );
  }
  return {
    name: "remus",
    tick: () => ({ intensity: 0, pause: true }),
    pauseMs: () => checkpointPauseMs,
    pauseFraction: () => checkpointPauseMs / intervalMs,
    reset() {},
  };
}
