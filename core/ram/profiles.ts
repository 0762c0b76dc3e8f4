/**
 * Latency profile selection (DESIGN.md section 5): EWMA-smoothed RTT mapped to Low
 * (< lowBelowMs), Medium (< mediumBelowMs) or High, switched with hysteresis so an RTT
 * hovering around a boundary does not flap between profiles (each switch changes the epoch
 * length and the throttle curve).
 *
 * Hysteresis h is a relative margin around each boundary B: moving up across B needs a
 * smoothed RTT >= B*(1+h), moving down needs < B*(1-h). (">=" rather than ">" so that with
 * h = 0 the selection is exactly the plain mapping, where Low means < lowBelowMs.) The
 * config guarantees the bands of the two boundaries do not overlap.
 */
import type { RamConfig } from "./config.ts";
import type { LatencyProfileName } from "./params.ts";

export type RttConfig = RamConfig["rtt"];

const ORDER: readonly LatencyProfileName[] = ["low", "medium", "high"];

/** The profile a smoothed RTT maps to with no hysteresis (no current profile). */
export function plainProfile(smoothedRttMs: number, rtt: RttConfig): LatencyProfileName {
  return smoothedRttMs < rtt.lowBelowMs
    ? "low"
    : smoothedRttMs < rtt.mediumBelowMs
    ? "medium"
    : "high";
}

/**
 * The profile to run given the smoothed RTT and the `current` profile: move up while the
 * RTT reaches the next boundary plus the margin, down while it falls below the previous
 * boundary minus the margin, else stay. Monotone in `smoothedRttMs` for a fixed `current`.
 * A NaN RTT keeps `current`.
 */
export function profileFor(
  smoothedRttMs: number,
  current: LatencyProfileName,
  rtt: RttConfig,
): LatencyProfileName {
  const bounds = [rtt.lowBelowMs, rtt.mediumBelowMs];
  const up = 1 + rtt.hysteresis;
  const down = 1 - rtt.hysteresis;
  let level = ORDER.indexOf(current);
  while (level < bounds.length && smoothedRttMs >= bounds[level] * up) level++;
  while (level > 0 && smoothedRttMs < bounds[level - 1] * down) level--;
  return ORDER[level];
}

/** Tracks the smoothed RTT of a VM's replication links and the latency profile to use. */
export class RttProfileSelector {
  readonly #rtt: RttConfig;
  #profile: LatencyProfileName;
  #smoothed: number | undefined;
  readonly #fixedInitial: boolean;
  #switches = 0;

  /**
   * With `initial`, selection starts from that profile and the first sample is subject to
   * hysteresis. Without it the profile reads "medium" until the first sample, which then
   * picks the plain mapping (nothing to be hysteretic about yet; not counted as a switch).
   */
  constructor(rtt: RttConfig, initial?: LatencyProfileName) {
    this.#rtt = rtt;
    this.#profile = initial ?? "medium";
    this.#fixedInitial = initial !== undefined;
  }

  /** Feeds one RTT sample (ms); NaN, negative and non-finite samples are ignored. */
  observe(rttMs: number): LatencyProfileName {
    if (!Number.isFinite(rttMs) || rttMs < 0) return this.#profile;
    const prev = this.#smoothed;
    let s: number;
    if (prev === undefined) {
      s = rttMs;
      this.#smoothed = s;
      if (!this.#fixedInitial) {
        this.#profile = plainProfile(s, this.#rtt);
        return this.#profile;
      }
    } else {
      // prev + a*(x - prev) keeps a constant input exactly constant; the clamp keeps
      // rounding from stepping outside [prev, x], so samples inside a band never leave it.
      const e = prev + this.#rtt.ewmaAlpha * (rttMs - prev);
      const lo = prev < rttMs ? prev : rttMs;
      const hi = prev < rttMs ? rttMs : prev;
      s = e < lo ? lo : e > hi ? hi : e;
      this.#smoothed = s;
    }
    const next = profileFor(s, this.#profile, this.#rtt);
    if (next !== this.#profile) {
      this.#profile = next;
      this.#switches++;
    }
    return next;
  }

  get profile(): LatencyProfileName {
    return this.#profile;
  }

  /** The EWMA of the accepted samples; undefined before the first one. */
  get smoothedRttMs(): number | undefined {
    return this.#smoothed;
  }

  /** Profile changes made by hysteresis decisions so far. */
  get switches(): number {
    return this.#switches;
  }
}
