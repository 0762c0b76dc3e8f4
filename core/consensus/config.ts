/** Consensus parameters (DESIGN.md section 5, Consensus): one zod schema with the defaults. */
import { z } from "zod";

const ms = (def: number, what: string) =>
  z.number().nonnegative().finite().default(def).describe(what);

export const consensusConfigSchema = z.strictObject({
  proposeTimeoutMs: ms(1000, "round-0 wait for a proposal before prevoting nil (ms)"),
  prevoteTimeoutMs: ms(1000, "round-0 wait after 2f+1 mixed prevotes (ms)"),
  precommitTimeoutMs: ms(1000, "round-0 wait after 2f+1 mixed precommits (ms)"),
  timeoutGrowth: z.number().nonnegative().max(10).default(0.5).describe(
    "each later round waits this fraction longer than the one before (0.5: +50 % per round)",
  ),
  maxBatch: z.int().min(1).max(100_000).default(256).describe("client operations per block"),
  emptyBlockDelayMs: ms(200, "a proposer with no pending operations waits this long (ms)"),
  commitDelayMs: ms(0, "pause after a commit before the next height starts (ms)"),
  syncBatch: z.int().min(1).max(1024).default(64).describe("blocks per catch-up response"),
  syncRetryMs: ms(500, "least time between two catch-up requests (ms)"),
});

export type ConsensusConfig = z.output<typeof consensusConfigSchema>;
export type ConsensusConfigInput = z.input<typeof consensusConfigSchema>;

/** The wait for a step in round r: base x (1 + growth)^r. */
export function roundTimeout(baseMs: number, growth: number, r: number): number {
  return baseMs * Math.pow(1 + growth, r);
}
