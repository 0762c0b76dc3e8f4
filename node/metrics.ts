/**
 * The core's Metrics interface on prom-client (DESIGN.md section 6), with its own Registry
 * so that two nodes in one process (tests) never share counters.
 *
 * Metrics are created on first use: `inc` makes a counter, `set` a gauge, `observe` a
 * histogram. Names must match /^mycelium_[a-z0-9_]+$/; counters end in `_total`, other kinds
 * must not (nor in `_bucket`, `_sum`, `_count`, `_created`, which histograms and the
 * exposition format use). The label names of a metric are fixed by its first use. Misuse is
 * a bug in our code and throws MyceliumError kind "internal" naming the metric.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Metrics } from "../core/host.ts";
import { MyceliumError } from "../core/errors.ts";

/** Counters the core's SWIM increments (core/membership/swim.ts), pre-registered at 0. */
export const SWIM_METRIC_NAMES = [
  "mycelium_swim_probes_total",
  "mycelium_swim_probe_failures_total",
  "mycelium_swim_suspicions_total",
  "mycelium_swim_refutations_total",
  "mycelium_swim_deaths_total",
  "mycelium_swim_reconnects_total",
  "mycelium_swim_misdirected_total",
] as const;

/** Help texts of known metrics; others get a generic one. */
export const METRIC_HELP: Readonly<Record<string, string>> = {
  mycelium_swim_probes_total: "SWIM failure-detector probes started by this node",
  mycelium_swim_probe_failures_total:
    "SWIM probes that got no ack, direct or indirect, before the next probe",
  mycelium_swim_suspicions_total: "Members this node's table moved to suspect",
  mycelium_swim_refutations_total:
    "Suspicions or death claims about this node that it refuted with a higher incarnation",
  mycelium_swim_deaths_total: "Members this node's table moved to dead (not counting leaves)",
  mycelium_swim_reconnects_total: "Attempts to reach a dead member again (serf-style reconnect)",
  mycelium_swim_misdirected_total: "Pings received that were addressed to another node id",
  mycelium_ram_buffer_level: "RAM replication buffer level b (unacknowledged bytes / max buffer)",
  mycelium_ram_intensity: "RAM throttle intensity I(b) applied to the guest",
  mycelium_ram_replication_lag_ms: "Age of the oldest cut epoch not yet applied by every backup",
  mycelium_ram_epoch_commit_ms: "Time from an epoch's cut to its application by every backup",
  mycelium_replications_total: "Pages of epochs applied by every live backup (primary side)",
  mycelium_ram_bytes_replicated_total: "Page bytes acknowledged as applied, summed over backups",
  mycelium_ram_pauses_total: "Emergency pauses of the guest",
  mycelium_ram_paused_ms_total: "Time the guest spent in emergency pauses, ms",
  mycelium_ram_failover_ms: "Promotion time minus the last frame from the old primary, ms",
  mycelium_ram_dropped_frames_total: "RAM frames dropped as malformed, by reason",
  mycelium_storage_chunks_stored: "Object chunk files on this node's disk",
  mycelium_storage_bytes_stored: "Bytes of the object chunk files on this node's disk",
  mycelium_storage_manifests_stored: "Object manifests stored on this node",
  mycelium_storage_pending_requests: "Object storage requests to peers awaiting an answer",
  mycelium_storage_chunk_writes_total:
    "Chunk writes this node acknowledged (fsync'd, or already held intact), for itself or peers",
  mycelium_storage_written_bytes_total: "Chunk bytes this node wrote to disk",
  mycelium_storage_chunk_reads_total: "Chunk reads from this node's disk (for itself or peers)",
  mycelium_storage_corrupt_chunks_total:
    "Chunk files whose bytes did not match their id on read (moved aside, treated as missing)",
  mycelium_storage_puts_total: "Object PUTs coordinated by this node, by outcome",
  mycelium_storage_gets_total: "Object GETs coordinated by this node, by outcome",
  mycelium_storage_put_bytes_total: "Object bytes acknowledged to PUT clients",
  mycelium_storage_get_bytes_total: "Object bytes returned to GET clients",
  mycelium_spores_accepted_total: "Latent spore entries accepted from gossip",
  mycelium_spores_discarded_total:
    "Latent spore entries discarded, by reason (forged, stale, future-dated, wrong-network, ...)",
  mycelium_spores_dropped_frames_total: "Spore frames dropped as malformed",
  mycelium_spores_messages_sent_total: "Latent gossip messages sent",
  mycelium_spores_bytes_sent_total:
    "Bytes of Latent gossip frame bodies sent (stream framing and TLS excluded)",
  mycelium_spores_latent_entries: "Node entries held in the Latent spore map",
  mycelium_spores_seed_writes_total: "Seed spore snapshots this node signed and wrote",
  mycelium_spores_seed_version: "Version of the seed spore this node wrote last",
  mycelium_spores_seed_problems_total:
    "Seed spores read and skipped, by problem (missing, truncated, tampered, stale, ...)",
  mycelium_bootstrap_attempts_total: "Discovery attempts at start, by source and result",
  mycelium_bootstrap_seconds: "Time from start to the end of discovery, by the source that worked",
  mycelium_storage_put_seconds: "Time from a PUT's body to its acknowledgement, seconds",
  mycelium_storage_get_seconds: "Time to find, fetch, verify (and decrypt) an object, seconds",
  mycelium_storage_fetch_seconds:
    "Time to fetch one chunk from a peer, request to verified bytes, seconds",
  mycelium_storage_failures_total:
    "Failed requests to replicas, by operation and reason (timeout, unreachable, busy, ...)",
  mycelium_storage_dropped_frames_total: "Object storage frames dropped, by reason",
  mycelium_storage_unsent_total: "Object storage replies that found no stream to the peer",
  mycelium_storage_deletes_total: "Object DELETEs coordinated by this node, by outcome",
  mycelium_storage_repairs_total:
    "Re-replication copies this node made after failures, by kind (chunk, manifest)",
  mycelium_storage_repair_bytes_total: "Chunk bytes copied by re-replication",
  mycelium_storage_repair_failures_total: "Re-replication copies that failed",
  mycelium_storage_repair_scans_total: "Repair scans this node ran",
  mycelium_storage_under_replicated_chunks:
    "Chunks of objects this node coordinates with fewer live replicas than their target " +
    "(last repair scan)",
};

const NAME_RE = /^mycelium_[a-z0-9_]+$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const RESERVED_SUFFIX_RE = /_(total|bucket|sum|count|created)$/;

/** Latency buckets for `*_seconds` histograms: 1 ms to 30 s. */
export const SECONDS_BUCKETS = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];
/** Latency buckets for `*_ms` histograms (the RAM replicator's): 0.5 ms to 30 s. */
export const MS_BUCKETS = [
  0.5,
  1,
  2.5,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10000,
  30000,
];
/** Size buckets for `*_bytes` histograms: 64 B to 16 MiB, x4 per step. */
export const BYTES_BUCKETS = Array.from({ length: 10 }, (_, i) => 64 * 4 ** i);
/** Buckets for other histograms (counts, ratios): prom-client's defaults. */
export const GENERIC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type Kind = "counter" | "gauge" | "histogram";
type AnyMetric = Counter<string> | Gauge<string> | Histogram<string>;
interface Entry {
  kind: Kind;
  labelNames: readonly string[];
  /** Sorted label names joined by ",": the shape later calls must match. */
  labelKey: string;
  metric: AnyMetric;
}

export interface PromMetricsOptions {
  /** Help texts beyond METRIC_HELP. */
  help?: Record<string, string>;
  /** Histogram buckets by metric name (default: by unit suffix, see *_BUCKETS). */
  buckets?: Record<string, number[]>;
  /** Labels added to every series (e.g. `{ node: "alpha" }`). */
  defaultLabels?: Record<string, string>;
}

export class PromMetrics implements Metrics {
  readonly registry: Registry;
  private readonly entries = new Map<string, Entry>();
  private readonly help: Record<string, string>;
  private readonly buckets: Record<string, number[]>;

  constructor(opts: PromMetricsOptions = {}) {
    this.registry = new Registry();
    this.help = { ...METRIC_HELP, ...opts.help };
    this.buckets = { ...opts.buckets };
    if (opts.defaultLabels) {
      for (const l of Object.keys(opts.defaultLabels)) checkLabel("(default labels)", l, "gauge");
      this.registry.setDefaultLabels(opts.defaultLabels);
    }
  }

  /** The Content-Type of `render()`'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  inc(name: string, by = 1, labels: Record<string, string> = {}): void {
    if (!Number.isFinite(by) || by < 0) {
      throw fail(name, `counter increment must be a finite number >= 0, got ${by}`);
    }
    const c = this.entry(name, "counter", labels).metric as Counter<string>;
    if (isEmpty(labels)) c.inc(by);
    else c.inc(sorted(labels), by);
  }

  set(name: string, value: number, labels: Record<string, string> = {}): void {
    if (typeof value !== "number") throw fail(name, `gauge value must be a number`);
    const g = this.entry(name, "gauge", labels).metric as Gauge<string>;
    if (isEmpty(labels)) g.set(value);
    else g.set(sorted(labels), value);
  }

  observe(name: string, value: number, labels: Record<string, string> = {}): void {
    if (!Number.isFinite(value)) throw fail(name, `observation must be finite, got ${value}`);
    const h = this.entry(name, "histogram", labels).metric as Histogram<string>;
    if (isEmpty(labels)) h.observe(value);
    else h.observe(sorted(labels), value);
  }

  /**
   * Creates label-less metrics now so they show up at 0 before their first use:
   * counters for `*_total` names, gauges for the others (e.g. SWIM_METRIC_NAMES).
   */
  preregister(names: readonly string[]): void {
    for (const name of names) this.entry(name, name.endsWith("_total") ? "counter" : "gauge", {});
  }

  /** Every metric in the Prometheus text exposition format (version 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  private entry(name: string, kind: Kind, labels: Record<string, string>): Entry {
    const found = this.entries.get(name);
    const labelNames = Object.keys(labels).sort();
    const labelKey = labelNames.join(",");
    if (found) {
      if (found.kind !== kind) throw fail(name, `is a ${found.kind}, not a ${kind}`);
      if (found.labelKey !== labelKey) {
        throw fail(name, `has labels {${found.labelKey}}, got {${labelKey}}`);
      }
      return found;
    }
    checkName(name, kind);
    for (const l of labelNames) checkLabel(name, l, kind);
    const help = this.help[name] ?? `${name} (no description registered)`;
    const common = { name, help, labelNames, registers: [this.registry] };
    let metric: AnyMetric;
    switch (kind) {
      case "counter":
        metric = new Counter(common);
        break;
      case "gauge":
        metric = new Gauge(common);
        break;
      case "histogram":
        metric = new Histogram({ ...common, buckets: this.buckets[name] ?? bucketsFor(name) });
        break;
    }
    const e: Entry = { kind, labelNames, labelKey, metric };
    this.entries.set(name, e);
    return e;
  }
}

function bucketsFor(name: string): number[] {
  if (name.endsWith("_seconds")) return SECONDS_BUCKETS;
  if (name.endsWith("_ms")) return MS_BUCKETS;
  if (name.endsWith("_bytes")) return BYTES_BUCKETS;
  return GENERIC_BUCKETS;
}

function checkName(name: string, kind: Kind): void {
  if (!NAME_RE.test(name)) throw fail(name, `metric names must match ${NAME_RE}`);
  if (kind === "counter" && !name.endsWith("_total")) {
    throw fail(name, "counter names must end in _total");
  }
  if (kind !== "counter" && RESERVED_SUFFIX_RE.test(name)) {
    throw fail(name, `${kind} names must not end in _total, _bucket, _sum, _count or _created`);
  }
}

function checkLabel(name: string, label: string, kind: Kind): void {
  if (!LABEL_RE.test(label) || label.startsWith("__")) {
    throw fail(name, `invalid label name ${JSON.stringify(label)}`);
  }
  if (kind === "histogram" && label === "le") {
    throw fail(name, `label "le" is reserved for histogram buckets`);
  }
}

function fail(name: string, message: string): MyceliumError {
  return new MyceliumError("internal", message, { input: name });
}

/** The labels with their keys in sorted order, so series render the same whatever the caller's order. */
function sorted(labels: Record<string, string>): Record<string, string> {
  const keys = Object.keys(labels);
  if (keys.length < 2) return labels;
  const out: Record<string, string> = {};
  for (const k of keys.sort()) out[k] = labels[k];
  return out;
}

function isEmpty(o: Record<string, string>): boolean {
  for (const _ in o) return false;
  return true;
}
