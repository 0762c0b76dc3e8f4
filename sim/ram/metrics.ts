/**
 * The `Metrics` every simulated RAM replicator reports to: counters by name (labels folded
 * away), the per-VM counters vms.csv needs, and histograms for epoch commit latency and
 * replication lag. Called on every tick of every VM, so it does no allocation per call.
 */
import type { Metrics } from "../../core/host.ts";
import { Histogram } from "./histogram.ts";

/** Per-VM totals (vms.csv). */
export interface VmCounters {
  pagesReplicated: number;
  bytesReplicated: number;
  epochs: number;
  drops: number;
  resyncs: number;
  /** The latest replication lag reported for the VM, ms. */
  lagMs: number;
}

export class RamMetrics implements Metrics {
  readonly counters = new Map<string, number>();
  readonly commitMs = new Histogram();
  /** Every lag sample, and those outside fault windows (ram.replication-lag). */
  readonly lagMs = new Histogram();
  readonly steadyLagMs = new Histogram();

  constructor(
    private readonly vmOf: (vmId: string) => VmCounters | undefined,
    /** Whether a lag sample taken now counts as steady state. */
    private readonly steady: () => boolean,
    /** Every VM's counters (for totals). */
    private readonly allVms: () => Iterable<VmCounters>,
  ) {}

  private sumVms(f: (v: VmCounters) => number): number {
    let s = 0;
    for (const v of this.allVms()) s += f(v);
    return s;
  }

  inc(name: string, by = 1, labels?: Record<string, string>): void {
    // The per-epoch counters are kept per VM only (summed on demand); the rest by name.
    const v = labels?.vm === undefined ? undefined : this.vmOf(labels.vm);
    switch (name) {
      case "mycelium_replications_total":
        if (v) v.pagesReplicated += by;
        else this.add(name, by);
        return;
      case "mycelium_ram_bytes_replicated_total":
        if (v) v.bytesReplicated += by;
        else this.add(name, by);
        return;
      case "mycelium_ram_epochs_total":
        if (v) v.epochs += by;
        else this.add(name, by);
        return;
      case "mycelium_ram_drops_total":
        if (v) v.drops += by;
        break;
      case "mycelium_ram_resyncs_total":
        if (v) v.resyncs += by;
        break;
    }
    this.add(name, by);
  }

  private add(name: string, by: number): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  set(name: string, value: number, labels?: Record<string, string>): void {
    if (name !== "mycelium_ram_replication_lag_ms" || !labels?.vm) return;
    const v = this.vmOf(labels.vm);
    if (v) v.lagMs = value;
    this.lagMs.add(value);
    if (this.steady()) this.steadyLagMs.add(value);
  }

  observe(name: string, value: number): void {
    if (name === "mycelium_ram_epoch_commit_ms") this.commitMs.add(value);
  }

  /** A counter's total over every VM and node. */
  counter(name: string): number {
    const own = this.counters.get(name) ?? 0;
    switch (name) {
      case "mycelium_replications_total":
        return own + this.sumVms((v) => v.pagesReplicated);
      case "mycelium_ram_bytes_replicated_total":
        return own + this.sumVms((v) => v.bytesReplicated);
      case "mycelium_ram_epochs_total":
        return own + this.sumVms((v) => v.epochs);
      default:
        return own;
    }
  }
}
