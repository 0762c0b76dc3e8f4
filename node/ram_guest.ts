/**
 * A synthetic guest for a VM image on its primary: each step it writes a 16-byte record
 * (a write counter and random bytes) at a random offset of every page a workload model
 * (core/ram/workloads.ts) picks for the elapsed time at the throttled rate r0 * (1 - I).
 * The caller steps it only while the replicator lets the VM run, and marks the pages dirty.
 */
import type { Workload } from "../core/ram/workloads.ts";
import { PAGE_SIZE } from "../core/ram/params.ts";
import type { BufferImage } from "./ram_image.ts";

/** A step covers at most this long: after a stall the guest does not write a burst. */
const MAX_STEP_MS = 50;
const RECORD_BYTES = 16;

export class SyntheticGuest {
  /** Page writes so far. */
  writes = 0;
  private last: number | null = null;
  private readonly out: number[] = [];
  private readonly view: DataView;

  constructor(
    image: BufferImage,
    readonly workload: Workload,
    private readonly random: () => number = Math.random,
  ) {
    const b = image.bytes;
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  /**
   * Runs the guest from the previous step to `now` (ms) at throttle `intensity`; returns the
   * pages written (reused by the next step: consume it before).
   */
  step(now: number, intensity: number): readonly number[] {
    const dt = this.last === null ? 0 : Math.min(now - this.last, MAX_STEP_MS);
    this.last = now;
    const out = this.out;
    out.length = 0;
    if (dt <= 0) return out;
    this.workload.pages(dt, intensity, this.random, out);
    const slots = PAGE_SIZE / RECORD_BYTES;
    for (const page of out) {
      const at = page * PAGE_SIZE + Math.floor(this.random() * slots) * RECORD_BYTES;
      this.view.setUint32(at, ++this.writes);
      this.view.setUint32(at + 4, (this.random() * 0x100000000) >>> 0);
      this.view.setFloat64(at + 8, this.random());
    }
    return out;
  }

  /** The guest was stopped: the next step starts afresh instead of catching up. */
  halt(): void {
    this.last = null;
  }
}
