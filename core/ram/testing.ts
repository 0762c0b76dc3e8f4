/**
 * A tiny deterministic harness for RAM replication tests (and for the simulator if handy):
 * a virtual clock, a timer/event heap, a network with per-link delay, jitter and bandwidth
 * (bytes/ms, serialised per link), partitions and crashes, a version-counter `MemoryImage`,
 * a guest that writes pages at a rate throttled by the replicator, and a curve policy.
 * Everything is driven by virtual time; nothing here reads a clock.
 */
import { type Host, type Logger, MemoryStore, type Metrics, type Protocol } from "../host.ts";
import { IdInterner, type NodeId } from "../ids.ts";
import { type ThrottleCurve, throttleIntensity } from "../throttle.ts";
import type { TimedRamEvent } from "./checks.ts";
import type { RamObserver } from "./events.ts";
import { fnv1aBytes, hex32 } from "./hash.ts";
import { type RamWire, ramWireBytes } from "./multipath.ts";
import {
  type MemoryImage,
  PAGE_SIZE,
  type ReplicationParams,
  type ThrottlePolicy,
} from "./params.ts";
import { RamReplicator } from "./replicator.ts";

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An image of page version numbers: page content is the version of its last write. */
export class VersionImage implements MemoryImage<number> {
  readonly versions: Uint32Array;
  constructor(readonly pageCount: number) {
    this.versions = new Uint32Array(pageCount);
  }
  write(page: number, version: number): void {
    this.versions[page] = version;
  }
  capture(page: number): number {
    return this.versions[page];
  }
  apply(page: number, content: number): void {
    this.versions[page] = content;
  }
  digest(): string {
    const bytes = new Uint8Array(this.versions.buffer, 0, this.versions.byteLength);
    return hex32(fnv1aBytes(bytes));
  }
}

/** Replication parameters for tests: small buffers, short intervals and leases. */
export function testParams(over: Partial<ReplicationParams> = {}): ReplicationParams {
  return {
    intervalMs: 10,
    curve: { curve: "linear", threshold: 0.6, maxIntensity: 0.9 },
    pauseEnabled: true,
    convergenceTimeoutMs: 200,
    migrationAbortMs: 1000,
    backupCount: 2,
    maxBufferBytes: 64 * PAGE_SIZE,
    resumeLevel: 0.8,
    windowBytes: 16 * PAGE_SIZE,
    chunkBytes: 4 * PAGE_SIZE,
    migrationCatchUpLevel: 0.05,
    downtimeBudgetMs: 300,
    leaseMs: 200,
    leaseRenewMs: 50,
    ...over,
  };
}

/**
 * The curve alone as a policy: I(b) (M while migrating), and with pause enabled an
 * emergency pause from b >= 1 until b <= resumeLevel or the convergence timeout.
 */
export function curvePolicy(
  curve: ThrottleCurve,
  p: Pick<ReplicationParams, "pauseEnabled" | "resumeLevel" | "convergenceTimeoutMs">,
): ThrottlePolicy {
  let pausing = false;
  let since = 0;
  return {
    name: "test-curve",
    tick(s) {
      const intensity = s.migrating ? curve.maxIntensity : throttleIntensity(curve, s.bufferLevel);
      if (p.pauseEnabled) {
        if (!pausing && s.bufferLevel >= 1) {
          pausing = true;
          since = s.now;
        } else if (
          pausing && (s.bufferLevel <= p.resumeLevel || s.now - since >= p.convergenceTimeoutMs)
        ) pausing = false;
      }
      return { intensity, pause: pausing };
    },
    reset() {
      pausing = false;
    },
  };
}

/** Counters, gauges and histograms by name and labels (`name{k=v,...}`). */
export class TestMetrics implements Metrics {
  readonly counters = new Map<string, number>();
  readonly gauges = new Map<string, number>();
  readonly histograms = new Map<string, number[]>();
  private static key(name: string, labels?: Record<string, string>): string {
    if (!labels) return name;
    const parts = Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`);
    return `${name}{${parts.join(",")}}`;
  }
  inc(name: string, by = 1, labels?: Record<string, string>): void {
    const k = TestMetrics.key(name, labels);
    this.counters.set(k, (this.counters.get(k) ?? 0) + by);
  }
  set(name: string, value: number, labels?: Record<string, string>): void {
    this.gauges.set(TestMetrics.key(name, labels), value);
  }
  observe(name: string, value: number, labels?: Record<string, string>): void {
    const k = TestMetrics.key(name, labels);
    const list = this.histograms.get(k) ?? [];
    list.push(value);
    this.histograms.set(k, list);
  }
  counter(name: string, labels?: Record<string, string>): number {
    return this.counters.get(TestMetrics.key(name, labels)) ?? 0;
  }
  gauge(name: string, labels?: Record<string, string>): number | undefined {
    return this.gauges.get(TestMetrics.key(name, labels));
  }
  histogram(name: string, labels?: Record<string, string>): number[] {
    return this.histograms.get(TestMetrics.key(name, labels)) ?? [];
  }
}

/** Min-heap of callbacks by (time, insertion order). */
class Agenda {
  private times: number[] = [];
  private seqs: number[] = [];
  private fns: Array<() => void> = [];
  private seq = 0;
  get size(): number {
    return this.times.length;
  }
  peek(): number {
    return this.times.length ? this.times[0] : Infinity;
  }
  private less(i: number, j: number): boolean {
    return this.times[i] < this.times[j] ||
      (this.times[i] === this.times[j] && this.seqs[i] < this.seqs[j]);
  }
  private swap(i: number, j: number): void {
    [this.times[i], this.times[j]] = [this.times[j], this.times[i]];
    [this.seqs[i], this.seqs[j]] = [this.seqs[j], this.seqs[i]];
    [this.fns[i], this.fns[j]] = [this.fns[j], this.fns[i]];
  }
  push(time: number, fn: () => void): void {
    let i = this.times.length;
    this.times.push(time);
    this.seqs.push(this.seq++);
    this.fns.push(fn);
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!this.less(i, up)) break;
      this.swap(i, up);
      i = up;
    }
  }
  pop(): { time: number; fn: () => void } {
    const time = this.times[0];
    const fn = this.fns[0];
    const last = this.times.length - 1;
    this.swap(0, last);
    this.times.pop();
    this.seqs.pop();
    this.fns.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.times.length && this.less(l, m)) m = l;
      if (r < this.times.length && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return { time, fn };
  }
}

export interface LinkSpec {
  /** One-way propagation delay, ms. */
  delayMs: number;
  /** Extra uniform random delay in [0, jitterMs) per message (reorders messages). */
  jitterMs?: number;
  /** Bandwidth in bytes per ms; messages on a link are serialised. Infinity by default. */
  bytesPerMs?: number;
}

export interface TestNode<C> {
  readonly id: NodeId;
  readonly rep: RamReplicator<C>;
  /** What the network drives: the replicator, or a wrapper around it (multipath). */
  readonly proto: Protocol<RamWire<C>>;
  readonly metrics: TestMetrics;
  readonly logs: Array<{ level: string; event: string; fields?: Record<string, unknown> }>;
  alive: boolean;
}

export interface NetOptions {
  seed?: number;
  link?: LinkSpec;
  /** Observers compute image digests (for `appliedStateProblem`). Default true. */
  wantsDigests?: boolean;
}

/** The test network: nodes, links, virtual time. */
export class TestNet<C> {
  now = 0;
  readonly trace: TimedRamEvent[] = [];
  readonly nodes = new Map<NodeId, TestNode<C>>();
  sentMessages = 0;
  droppedMessages = 0;
  private readonly agenda = new Agenda();
  private readonly ids = new IdInterner();
  private readonly random: () => number;
  private readonly links = new Map<string, LinkSpec>();
  private readonly busyUntil = new Map<string, number>();
  private readonly side = new Map<NodeId, number>();
  private readonly timerGen = new Map<string, number>();
  private sides = 0;
  private readonly defaultLink: LinkSpec;
  private readonly wantsDigests: boolean;

  constructor(opts: NetOptions = {}) {
    this.random = rng(opts.seed ?? 1);
    this.defaultLink = opts.link ?? { delayMs: 1 };
    this.wantsDigests = opts.wantsDigests ?? true;
  }

  addNode(
    id: NodeId,
    wrap?: (rep: RamReplicator<C>) => Protocol<RamWire<C>>,
  ): TestNode<C> {
    const observer: RamObserver<C> = {
      wantsDigests: this.wantsDigests,
      event: (e) => this.trace.push({ at: this.now, event: e }),
    };
    const metrics = new TestMetrics();
    const logs: TestNode<C>["logs"] = [];
    const log: Logger = { log: (level, event, fields) => logs.push({ level, event, fields }) };
    const rep = new RamReplicator<C>({ observer });
    const node: TestNode<C> = {
      id,
      rep,
      proto: wrap ? wrap(rep) : (rep as unknown as Protocol<RamWire<C>>),
      metrics,
      logs,
      alive: true,
    };
    this.nodes.set(id, node);
    const r = rng(fnv1aBytes(new TextEncoder().encode(id)));
    const host: Host<RamWire<C>> = {
      self: id,
      ids: this.ids,
      now: () => this.now,
      random: r,
      send: (to, msg) => this.send(id, to, msg),
      setTimer: (key, delay) => this.setTimer(id, key, delay),
      cancelTimer: (key) => this.bumpTimer(id, key),
      storage: new MemoryStore(),
      log,
      metrics,
    };
    node.proto.start(host);
    return node;
  }

  node(id: NodeId): TestNode<C> {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Sets the link from `a` to `b` (and back, unless `oneWay`). */
  setLink(a: NodeId, b: NodeId, spec: LinkSpec, oneWay = false): void {
    this.links.set(`${a}>${b}`, spec);
    if (!oneWay) this.links.set(`${b}>${a}`, spec);
  }

  /** Crash: the node stops (its replicator too) and nothing reaches it or leaves it. */
  crash(id: NodeId): void {
    const n = this.node(id);
    if (!n.alive) return;
    n.alive = false;
    n.proto.stop();
  }

  /** Cuts `id` off from everyone (it keeps running). */
  isolate(id: NodeId): void {
    this.side.set(id, ++this.sides);
  }

  /** Splits the network: nodes in different groups cannot talk; unlisted nodes form one more. */
  partition(...groups: NodeId[][]): void {
    this.side.clear();
    for (const g of groups) {
      const s = ++this.sides;
      for (const id of g) this.side.set(id, s);
    }
  }

  heal(): void {
    this.side.clear();
  }

  private readonly cuts = new Set<string>();

  /** Cuts the direct link between `a` and `b` both ways (others stay up); `uncut` restores it. */
  cut(a: NodeId, b: NodeId): void {
    this.cuts.add(`${a}>${b}`).add(`${b}>${a}`);
  }

  uncut(a: NodeId, b: NodeId): void {
    this.cuts.delete(`${a}>${b}`);
    this.cuts.delete(`${b}>${a}`);
  }

  blocked(from: NodeId, to: NodeId): boolean {
    return (this.side.get(from) ?? 0) !== (this.side.get(to) ?? 0) ||
      this.cuts.has(`${from}>${to}`) ||
      !this.nodes.get(from)?.alive || !this.nodes.get(to)?.alive;
  }

  /** Runs `fn` at virtual time `time` (>= now). */
  at(time: number, fn: () => void): void {
    this.agenda.push(Math.max(time, this.now), fn);
  }

  /** Runs `fn` every `periodMs` from `from` while it returns anything but false. */
  every(periodMs: number, fn: () => boolean | void, from = this.now + periodMs): void {
    const step = () => {
      if (fn() === false) return;
      this.at(this.now + periodMs, step);
    };
    this.at(from, step);
  }

  runUntil(time: number): void {
    while (this.agenda.size > 0 && this.agenda.peek() <= time) {
      const { time: t, fn } = this.agenda.pop();
      this.now = t;
      fn();
    }
    this.now = time;
  }

  /** Nodes currently running the VM's guest. */
  running(vmId: string): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.alive && n.rep.running(vmId)).map((n) => n.id);
  }

  private send(from: NodeId, to: NodeId, msg: RamWire<C>): void {
    this.sentMessages++;
    if (this.blocked(from, to)) {
      this.droppedMessages++;
      return;
    }
    const key = `${from}>${to}`;
    const spec = this.links.get(key) ?? this.defaultLink;
    const bw = spec.bytesPerMs ?? Infinity;
    const start = Math.max(this.now, this.busyUntil.get(key) ?? 0);
    const done = start + (bw === Infinity ? 0 : ramWireBytes(msg) / bw);
    this.busyUntil.set(key, done);
    const jitter = spec.jitterMs ? this.random() * spec.jitterMs : 0;
    this.at(done + spec.delayMs + jitter, () => {
      if (this.blocked(from, to)) {
        this.droppedMessages++;
        return;
      }
      this.node(to).proto.onMessage(from, msg);
    });
  }

  private setTimer(id: NodeId, key: string, delay: number): void {
    const k = `${id}|${key}`;
    const gen = this.bumpTimer(id, key);
    this.at(this.now + Math.max(0, delay), () => {
      const n = this.node(id);
      if (this.timerGen.get(k) !== gen || !n.alive) return;
      n.proto.onTimer(key);
    });
  }

  private bumpTimer(id: NodeId, key: string): number {
    const k = `${id}|${key}`;
    const gen = (this.timerGen.get(k) ?? 0) + 1;
    this.timerGen.set(k, gen);
    return gen;
  }
}

export interface VmSetup {
  vmId: string;
  primary: NodeId;
  backups: NodeId[];
  pageCount: number;
  params: ReplicationParams;
  term?: number;
  /** Builds each node's policy (default: `curvePolicy` of the params' curve). */
  policy?: (node: NodeId) => ThrottlePolicy;
}

/** Adds a VM on its primary and backups; returns each node's image. */
export function addTestVm(net: TestNet<number>, s: VmSetup): Map<NodeId, VersionImage> {
  const images = new Map<NodeId, VersionImage>();
  for (const id of [s.primary, ...s.backups]) {
    const image = new VersionImage(s.pageCount);
    images.set(id, image);
    net.node(id).rep.addVm({
      vmId: s.vmId,
      role: id === s.primary ? "primary" : "backup",
      image,
      params: s.params,
      policy: s.policy ? s.policy(id) : curvePolicy(s.params.curve, s.params),
      primary: s.primary,
      backups: s.backups,
      term: s.term ?? 1,
    });
  }
  return images;
}

export interface GuestOptions {
  /** Unthrottled dirty rate r0, pages per ms. */
  pagesPerMs: number;
  /** Pages written fall in [0, hotPages) (default: the whole image). */
  hotPages?: number;
  seed?: number;
  /** Stop writing at this time. */
  until?: number;
}

/**
 * A guest that writes pages every ms on whichever node runs it, at r0 * (1 - intensity).
 * Versions are unique across nodes, so diverging histories have different digests.
 */
export function startGuest(
  net: TestNet<number>,
  vmId: string,
  images: ReadonlyMap<NodeId, VersionImage>,
  o: GuestOptions,
): { writes: () => number } {
  const r = rng(o.seed ?? 7);
  let version = 0;
  const debt = new Map<NodeId, number>();
  net.every(1, () => {
    if (o.until !== undefined && net.now >= o.until) return false;
    for (const id of net.running(vmId)) {
      const img = images.get(id);
      if (!img) continue;
      const rep = net.node(id).rep;
      let acc = (debt.get(id) ?? 0) + o.pagesPerMs * (1 - rep.intensity(vmId));
      const pages: number[] = [];
      while (acc >= 1) {
        acc -= 1;
        const page = Math.floor(r() * (o.hotPages ?? img.pageCount));
        img.write(page, ++version);
        pages.push(page);
      }
      debt.set(id, acc);
      if (pages.length) rep.markDirty(vmId, pages);
    }
  });
  return { writes: () => version };
}
