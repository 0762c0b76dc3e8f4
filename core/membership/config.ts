/**
 * SWIM configuration. Defaults are hashicorp/memberlist's LAN profile (DESIGN.md section 5);
 * `reconnectIntervalMs` comes from serf (its reconnect of failed members, 30 s), sent
 * here as a two-entry push-pull so that probing a member that is really gone stays cheap.
 */
import { z } from "zod";
import { parseSection } from "../config_errors.ts";

const ms = (def: number, what: string) =>
  z.number().nonnegative().finite().default(def).describe(`${what} (ms)`);
const positiveMs = (def: number, what: string) =>
  z.number().positive().finite().default(def).describe(`${what} (ms)`);

export const swimConfigSchema = z.strictObject({
  probeIntervalMs: positiveMs(1000, "interval between failure-detector probes"),
  probeTimeoutMs: positiveMs(500, "time to wait for a direct ack before indirect probes"),
  indirectChecks: z.int().min(0).max(16).default(3).describe("relays asked to probe indirectly"),
  gossipIntervalMs: positiveMs(200, "interval between gossip rounds"),
  gossipNodes: z.int().min(1).max(32).default(3).describe("peers per gossip round"),
  retransmitMult: z.int().min(1).max(64).default(4).describe("retransmits = mult x log10(N+1)"),
  suspicionMult: z.int().min(1).max(64).default(4).describe(
    "suspicion timeout = mult x max(1, log10 N) x probe interval",
  ),
  suspicionMaxTimeoutMult: z.number().min(1).max(100).default(6).describe(
    "upper bound of the suspicion timeout as a multiple of the lower bound (Lifeguard)",
  ),
  awarenessMaxMultiplier: z.int().min(1).max(64).default(8).describe(
    "Lifeguard local-health multiplier cap",
  ),
  pushPullIntervalMs: ms(
    30000,
    "push-pull anti-entropy interval, scaled up above 32 nodes (0 = off)",
  ),
  reconnectIntervalMs: ms(30000, "interval between attempts to reach a dead member (0 = off)"),
  gossipToTheDeadMs: ms(30000, "keep gossiping to a dead member this long"),
  leavePropagateMs: positiveMs(1000, "time a leaving node keeps gossiping its leave"),
  joinRetryMs: positiveMs(2000, "retry a join that got no reply"),
  maxPacketBytes: z.int().min(128).max(65507).default(1400).describe("UDP payload budget"),
  probing: z.boolean().default(true).describe("failure detection on (false only for experiments)"),
  gossiping: z.boolean().default(true).describe("gossip rounds on (false only for experiments)"),
});

export type SwimConfig = z.infer<typeof swimConfigSchema>;
export type SwimConfigInput = z.input<typeof swimConfigSchema>;

export function parseSwimConfig(input: unknown, path = "membership"): SwimConfig {
  return parseSection(swimConfigSchema, input, path);
}

export const defaultSwimConfig: SwimConfig = swimConfigSchema.parse({});

/** memberlist's pushPullScale: above 32 nodes the interval grows with log2(N). */
export function scaledPushPullInterval(intervalMs: number, n: number): number {
  if (n <= 32) return intervalMs;
  const mult = Math.ceil(Math.log2(n) - Math.log2(32)) + 1;
  return intervalMs * mult;
}

/** Retransmit limit for a gossip item: mult x ceil(log10(N+1)). */
export function retransmitLimit(mult: number, n: number): number {
  return mult * Math.max(1, Math.ceil(Math.log10(n + 1)));
}

/** Lifeguard suspicion bounds (memberlist): min = mult x max(1, log10 N) x interval. */
export function suspicionBounds(
  cfg: Pick<SwimConfig, "suspicionMult" | "suspicionMaxTimeoutMult" | "probeIntervalMs">,
  n: number,
): { min: number; max: number } {
  const min = cfg.suspicionMult * Math.max(1, Math.log10(Math.max(1, n))) * cfg.probeIntervalMs;
  return { min, max: cfg.suspicionMaxTimeoutMult * min };
}

/**
 * Lifeguard: the suspicion timeout shrinks logarithmically from max to min as independent
 * confirmations arrive, reaching min at k confirmations.
 */
export function suspicionTimeout(min: number, max: number, k: number, confirmations: number) {
  if (k <= 0) return min;
  const frac = Math.log(confirmations + 1) / Math.log(k + 1);
  return Math.max(min, Math.floor(max - (max - min) * frac));
}
