/**
 * Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014): a timestamp is
 * (physical ms, logical counter). It stays close to the physical clock, never goes backwards,
 * and a received timestamp is always dominated by the receiver's next one, so it orders the
 * Latent spore's last-writer-wins entries causally even when clocks are skewed.
 *
 * The clock is a value: `hlcTick` (a local event or a send) and `hlcReceive` return the next
 * value from the current one and the host's `now()`. A remote timestamp far in the future
 * would drag the receiver's clock with it, so callers reject those first (latent.ts checks
 * the skew bound before it ever calls `hlcReceive`).
 */
import { z } from "zod";

export interface Hlc {
  /** Physical component: milliseconds on the issuing node's clock (an integer). */
  readonly ms: number;
  /** Logical component: orders events within one physical millisecond. */
  readonly c: number;
}

export const HLC_ZERO: Hlc = Object.freeze({ ms: 0, c: 0 });

const counter = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
export const hlcSchema = z.strictObject({ ms: counter, c: counter });

/** Total order: physical first, then logical. */
export function compareHlc(a: Hlc, b: Hlc): number {
  if (a.ms !== b.ms) return a.ms < b.ms ? -1 : 1;
  if (a.c !== b.c) return a.c < b.c ? -1 : 1;
  return 0;
}

export function maxHlc(a: Hlc, b: Hlc): Hlc {
  return compareHlc(a, b) >= 0 ? a : b;
}

function physical(now: number): number {
  if (!Number.isFinite(now)) throw new RangeError(`clock reading must be finite: ${now}`);
  return now <= 0 ? 0 : Math.floor(now);
}

/** The timestamp of a local event or a send at physical time `now`: strictly after `local`. */
export function hlcTick(local: Hlc, now: number): Hlc {
  const pt = physical(now);
  if (pt > local.ms) return { ms: pt, c: 0 };
  return { ms: local.ms, c: local.c + 1 };
}

/**
 * The receiver's timestamp after receiving `remote` at physical time `now`: strictly after
 * both `local` and `remote`, and never behind the physical clock.
 */
export function hlcReceive(local: Hlc, remote: Hlc, now: number): Hlc {
  const pt = physical(now);
  const ms = Math.max(local.ms, remote.ms, pt);
  let c: number;
  if (ms === local.ms && ms === remote.ms) c = Math.max(local.c, remote.c) + 1;
  else if (ms === local.ms) c = local.c + 1;
  else if (ms === remote.ms) c = remote.c + 1;
  else c = 0;
  return { ms, c };
}

/** Canonical text form for signed payloads and logs: `ms.c`. */
export function formatHlc(h: Hlc): string {
  return `${h.ms}.${h.c}`;
}
