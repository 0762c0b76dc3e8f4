/**
 * The latency profile a simulated VM runs with. A fixed `config.profile` is taken as is; for
 * "auto" the profile comes from the network model's *mean* round trip between the primary
 * and its slowest backup at the start (the link that drains the buffer last), through the
 * core's RttProfileSelector. The profile then stays fixed for the run (the replicator's
 * parameters are per VM and do not switch while it runs).
 */
import type { RamConfig } from "../../core/ram/config.ts";
import type { LatencyProfileName } from "../../core/ram/params.ts";
import { RttProfileSelector } from "../../core/ram/profiles.ts";
import { MAX_LATENCY_MS } from "../network.ts";
import type { Latency, Scenario } from "../scenario.ts";

/** The mean of a latency distribution, ms (as the network model samples it, capped). */
export function meanLatencyMs(l: Latency): number {
  switch (l.dist) {
    case "constant":
      return l.value;
    case "uniform":
      return (l.min + l.max) / 2;
    case "normal":
      // Samples are clamped at 0; for sd << mean this is the mean.
      return Math.max(0, l.mean);
    case "lognormal":
      return Math.min(MAX_LATENCY_MS, l.median * Math.exp((l.sigma * l.sigma) / 2));
    case "pareto":
      return l.shape > 1
        ? Math.min(MAX_LATENCY_MS, (l.scale * l.shape) / (l.shape - 1))
        : MAX_LATENCY_MS;
  }
}

/** One-way base latency between regions as the network model reads its matrix. */
export function regionLatencyMs(
  regions: Scenario["network"]["regions"],
  from: string,
  to: string,
): number {
  return regions[from]?.[to] ?? regions[to]?.[from] ?? 0;
}

/**
 * Mean round trip between nodes in regions `a` and `b`: twice the mean latency plus the
 * region latencies both ways plus the mean jitter each way. (Serialisation delay is left
 * out: it depends on the load, not the path.)
 */
export function meanRttMs(net: Scenario["network"], a: string, b: string): number {
  const oneWay = meanLatencyMs(net.latency) + net.jitter / 2;
  return 2 * oneWay + regionLatencyMs(net.regions, a, b) + regionLatencyMs(net.regions, b, a);
}

/** The profile for a VM whose backups have these mean RTTs (none: Low, nothing to wait for). */
export function chooseProfile(
  config: RamConfig,
  backupRttsMs: readonly number[],
): LatencyProfileName {
  if (config.profile !== "auto") return config.profile;
  if (backupRttsMs.length === 0) return "low";
  const sel = new RttProfileSelector(config.rtt);
  return sel.observe(Math.max(...backupRttsMs));
}
