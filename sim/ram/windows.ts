/**
 * Fault windows: the spans of virtual time during which a declared fault acts, each extended
 * by a settling time, merged into disjoint sorted intervals. The ram.replication-lag check
 * leaves samples inside them out (a crash or a partition is allowed to stall replication).
 */
import type { Fault } from "../scenario.ts";

export type Interval = readonly [start: number, end: number];

/** When a fault stops acting: its `until` (or the end), a crash's restart, a clock jump at once. */
export function faultEnd(f: Fault, durationMs: number): number {
  switch (f.type) {
    case "crash":
      return f.restartAfter !== undefined ? f.at + f.restartAfter : f.at;
    case "clock":
      return f.at;
    default:
      return f.until ?? durationMs;
  }
}

/** Sorts and merges intervals (touching ones merge). */
export function mergeIntervals(list: readonly Interval[]): Interval[] {
  const sorted = list.filter(([a, b]) => b >= a).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const out: Array<[number, number]> = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

export function faultWindows(
  faults: readonly Fault[],
  durationMs: number,
  settleMs: number,
): Interval[] {
  return mergeIntervals(faults.map((f) => [f.at, faultEnd(f, durationMs) + settleMs] as const));
}

/**
 * Answers "is t inside a window?" for non-decreasing t in O(1) amortised (a cursor walks the
 * sorted windows once).
 */
export class WindowCursor {
  private i = 0;
  constructor(private readonly windows: readonly Interval[]) {}
  contains(t: number): boolean {
    const w = this.windows;
    while (this.i < w.length && w[this.i][1] < t) this.i++;
    return this.i < w.length && w[this.i][0] <= t;
  }
}
