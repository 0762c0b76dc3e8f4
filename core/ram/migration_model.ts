/**
 * A deterministic, tick-based model of live-migrating one VM, for comparing throttle policies
 * on a workload (`deno task bench:throttle`). Both policies first copy all of memory to a
 * fresh target while the guest keeps dirtying pages (tracked in a dirty bitmap); then:
 *
 * - "mycelium": b = (dirtied bytes not yet sent) / maxBufferBytes and the intensity is the
 *   Mycelium policy's (emergency pause off) during the bulk copy too. During the bulk copy the
 *   re-dirtied pages go first, capped at `dirtyShare` of each tick's bandwidth (the rest goes
 *   to the bulk copy; unused share flows to the other stream), so the buffer drains while the
 *   link keeps up and the throttle engages only when it does not; `dirtyShare` 0 is a strict
 *   bulk-first copy. Pages dirtied ahead of the bulk cursor need no resend. After the bulk
 *   copy: catch-up at I = M until b <= catchUpLevel and the estimated blackout
 *   (dirty bytes / bandwidth + rtt) fits downtimeBudgetMs, then the blackout.
 * - "auto-converge": QEMU pre-copy. Pass 0 sends every page; each later pass sends the pages
 *   in the dirty log when the previous pass ended (in address order). At each pass end (QEMU's
 *   bitmap sync) the auto-converge policy is ticked with the pass's unique dirtied bytes (as
 *   QEMU counts at sync) and transferred bytes. Stop-and-copy once the remaining dirty bytes
 *   can be sent within downtimeBudgetMs (QEMU's threshold: bandwidth * downtime limit; no
 *   rtt); the blackout then lasts that transfer plus one rtt. As in QEMU (dirty logging is on
 *   from the start), a page dirtied during a pass is resent in the next one even if the
 *   current pass had not reached it yet.
 *
 * Both abort (converged = false) `abortMs` after the first copy completes without
 * converging; migrationMs is then the time given up at and downtimeMs 0. Because b is read at
 * tick boundaries, one tick's dirtying at I = M is always in the buffer: catch-up can only end
 * if r0 * (1 - M) * tickMs is below catchUpLevel * maxBufferBytes, else it aborts.
 *
 * Simplifications: the link is a fixed-rate pipe (no slow start, loss or protocol overhead,
 * no compression or zero-page detection); latency matters only in the final handshake (one
 * rtt added to the blackout); sending, dirtying and the policy act at tick granularity (each
 * tick sends first, then the guest dirties its pages for the tick, so a tick's pages are sent
 * from the next tick on and count towards a blackout decided at its end); the blackout is
 * computed, not ticked, and the guest dirties nothing during it; device state is free; the
 * guest's dirty rate is exactly r0 * (1 - I) (vCPU throttling is perfectly proportional).
 * integratedThrottle sums intensity * dt over the run before the blackout (paused ticks count
 * as 1); the blackout is reported as downtimeMs, not in it.
 */
import { parseThrottleCurve, type ThrottleCurve } from "../throttle.ts";
import { PAGE_SIZE } from "./params.ts";
import { type AutoConvergeParams, autoConvergePolicy, myceliumPolicy } from "./policies.ts";
import type { Workload } from "./workloads.ts";

export type MigrationPolicyName = "mycelium" | "auto-converge" | "remus";

/**
 * Remus-style fixed epochs (Cully et al., NSDI 2008): no throttling; at every epoch the guest
 * is paused while its dirty pages are copied to a staging buffer, which then drains to the
 * target in the background. The pause is `pauseFixedMs + pages * pausePerPageUs` (model
 * constants, not measurements: defaults 0.5 ms and 1 us per 4 KiB page copied).
 */
export interface RemusModelParams {
  epochMs?: number;
  pauseFixedMs?: number;
  pausePerPageUs?: number;
}

export interface MigrationModelParams {
  pageCount: number;
  bandwidthBytesPerSec: number;
  /** Round trip time, ms (added once to the blackout). Default 1. */
  rttMs?: number;
  /** Default 5. */
  tickMs?: number;
  /** A fresh workload: it keeps state (carry, cursors), so use a new one per run. */
  workload: Workload;
  /** The workload's random source in [0, 1); a fresh seeded stream per run. */
  random: () => number;
  /** Mycelium's max_buffer_size. Default 64 MiB. */
  maxBufferBytes?: number;
  /** Mycelium's I(b). Default: the linear curve (threshold 0.6, M 0.9). */
  curve?: ThrottleCurve;
  /** Catch-up ends at b <= this. Default 0.05. */
  catchUpLevel?: number;
  /** Default 300. */
  downtimeBudgetMs?: number;
  /** Give up this long after the first copy. Default 5000 (LAN). */
  abortMs?: number;
  /** Mycelium: share of bandwidth re-dirtied pages may take during the bulk copy, [0, 1). */
  dirtyShare?: number;
  /** Auto-converge parameters (QEMU defaults). */
  autoConverge?: AutoConvergeParams;
  /** Remus-style epochs (default 25 ms epochs). */
  remus?: RemusModelParams;
}

export interface MigrationResult {
  policy: MigrationPolicyName;
  /** Start to end of the blackout (or to the abort), ms. */
  migrationMs: number;
  /** The blackout, ms (0 when aborted). */
  downtimeMs: number;
  /** Sum of intensity * dt before the blackout, s (paused time counts as intensity 1). */
  integratedThrottle: number;
  converged: boolean;
  /** Page bytes sent, including resends and the blackout. */
  bytesSent: number;
  /** The largest intensity applied. */
  peakIntensity: number;
}

interface Resolved {
  pageCount: number;
  bw: number;
  rttMs: number;
  tickMs: number;
  workload: Workload;
  random: () => number;
  maxBufferBytes: number;
  curve: ThrottleCurve;
  catchUpLevel: number;
  downtimeBudgetMs: number;
  abortMs: number;
  dirtyShare: number;
  autoConverge: AutoConvergeParams;
  remus: Required<RemusModelParams>;
}

function resolve(p: MigrationModelParams): Resolved {
  const r: Resolved = {
    pageCount: p.pageCount,
    bw: p.bandwidthBytesPerSec,
    rttMs: p.rttMs ?? 1,
    tickMs: p.tickMs ?? 5,
    workload: p.workload,
    random: p.random,
    maxBufferBytes: p.maxBufferBytes ?? 64 * 1024 * 1024,
    curve: p.curve ?? parseThrottleCurve({ curve: "linear" }),
    catchUpLevel: p.catchUpLevel ?? 0.05,
    downtimeBudgetMs: p.downtimeBudgetMs ?? 300,
    abortMs: p.abortMs ?? 5000,
    dirtyShare: p.dirtyShare ?? 0.5,
    autoConverge: p.autoConverge ?? {},
    remus: {
      epochMs: p.remus?.epochMs ?? 25,
      pauseFixedMs: p.remus?.pauseFixedMs ?? 0.5,
      pausePerPageUs: p.remus?.pausePerPageUs ?? 1,
    },
  };
  const positive = (name: string, v: number) => {
    if (!(v > 0) || v === Infinity) throw new RangeError(`${name} must be > 0, got ${v}`);
  };
  const nonNegative = (name: string, v: number) => {
    if (!(v >= 0) || v === Infinity) throw new RangeError(`${name} must be >= 0, got ${v}`);
  };
  if (!Number.isSafeInteger(r.pageCount) || r.pageCount < 1) {
    throw new RangeError(`pageCount must be an integer >= 1, got ${r.pageCount}`);
  }
  positive("bandwidthBytesPerSec", r.bw);
  positive("tickMs", r.tickMs);
  positive("maxBufferBytes", r.maxBufferBytes);
  nonNegative("rttMs", r.rttMs);
  nonNegative("catchUpLevel", r.catchUpLevel);
  nonNegative("downtimeBudgetMs", r.downtimeBudgetMs);
  nonNegative("abortMs", r.abortMs);
  if (!(r.dirtyShare >= 0 && r.dirtyShare < 1)) {
    throw new RangeError(`dirtyShare must be in [0, 1), got ${r.dirtyShare}`);
  }
  return r;
}

/** Whole pages the link may send each tick, with the fractional remainder carried. */
function linkPages(p: Resolved): () => number {
  const perTick = p.bw * p.tickMs / 1000;
  let credit = 0;
  return () => {
    credit += perTick;
    const n = Math.floor(credit / PAGE_SIZE);
    credit -= n * PAGE_SIZE; // unused whole pages are lost: an idle link does not bank credit
    return n;
  };
}

function outcome(
  policy: MigrationPolicyName,
  migrationMs: number,
  downtimeMs: number,
  integratedThrottle: number,
  converged: boolean,
  pages: number,
  peakIntensity: number,
): MigrationResult {
  return {
    policy,
    migrationMs,
    downtimeMs,
    integratedThrottle,
    converged,
    bytesSent: pages * PAGE_SIZE,
    peakIntensity,
  };
}

/** Runs one migration of the model under `policy`. Deterministic given the inputs. */
export function simulateMigration(
  policy: MigrationPolicyName,
  params: MigrationModelParams,
): MigrationResult {
  const p = resolve(params);
  if (policy === "remus") {
    if (!(p.remus.epochMs >= p.tickMs)) {
      throw new RangeError(`remus.epochMs must be >= tickMs (${p.tickMs}), got ${p.remus.epochMs}`);
    }
    return runRemus(p);
  }
  return policy === "mycelium" ? runMycelium(p) : runAutoConverge(p);
}

function runMycelium(p: Resolved): MigrationResult {
  const n = p.pageCount;
  const dt = p.tickMs;
  const policy = myceliumPolicy({
    curve: p.curve,
    pauseEnabled: false,
    resumeLevel: 0.8,
    convergenceTimeoutMs: 0,
  });
  const dirty = new Uint8Array(n);
  const queue = new Int32Array(n); // FIFO ring of dirty pages; each page at most once
  let head = 0;
  let size = 0;
  let cursor = 0; // bulk copy: pages [0, cursor) sent
  const link = linkPages(p);
  let now = 0;
  let catchUpStart = -1;
  let integrated = 0;
  let peak = 0;
  let sentPages = 0;
  let dirtiedBytes = 0;
  let sentBytes = 0;
  const out: number[] = [];
  const result = (migrationMs: number, downtimeMs: number, converged: boolean, pages: number) =>
    outcome("mycelium", migrationMs, downtimeMs, integrated, converged, pages, peak);
  const sendDirty = (max: number): number => {
    const k = max < size ? max : size;
    for (let j = 0; j < k; j++) {
      dirty[queue[head]] = 0;
      if (++head === n) head = 0;
    }
    size -= k;
    return k;
  };
  for (;;) {
    const dirtyBytes = size * PAGE_SIZE;
    const b = dirtyBytes / p.maxBufferBytes;
    const catchUp = cursor === n;
    if (catchUp) {
      const blackout = dirtyBytes / p.bw * 1000 + p.rttMs;
      if (b <= p.catchUpLevel && blackout <= p.downtimeBudgetMs) {
        return result(now + blackout, blackout, true, sentPages + size);
      }
      if (now - catchUpStart >= p.abortMs) return result(now, 0, false, sentPages);
    }
    const d = policy.tick({
      now,
      bufferLevel: b,
      dirtiedBytes,
      transferredBytes: sentBytes,
      migrating: catchUp,
    });
    const i = d.pause ? 1 : d.intensity;
    if (i > peak) peak = i;
    integrated += i * dt / 1000;
    let allowed = link();
    let sent = sendDirty(cursor < n ? Math.floor(allowed * p.dirtyShare) : allowed);
    allowed -= sent;
    const bulk = Math.min(allowed, n - cursor);
    cursor += bulk;
    sent += bulk + sendDirty(allowed - bulk);
    sentPages += sent;
    sentBytes = sent * PAGE_SIZE;
    out.length = 0;
    if (!d.pause) p.workload.pages(dt, d.intensity, p.random, out);
    for (const pg of out) {
      if (pg < cursor && dirty[pg] === 0) {
        dirty[pg] = 1;
        queue[(head + size) % n] = pg;
        size++;
      }
    }
    dirtiedBytes = out.length * PAGE_SIZE;
    now += dt;
    if (cursor === n && catchUpStart < 0) catchUpStart = now;
  }
}

function runAutoConverge(p: Resolved): MigrationResult {
  const n = p.pageCount;
  const dt = p.tickMs;
  const policy = autoConvergePolicy(p.autoConverge);
  const queued = new Uint8Array(n).fill(1); // in the current pass's send set (pass 0: all)
  const logged = new Uint8Array(n); // in the dirty log since the last sync
  let sendList = new Int32Array(n);
  let logList = new Int32Array(n);
  for (let k = 0; k < n; k++) sendList[k] = k;
  let sendLen = n;
  let sendPos = 0;
  let logLen = 0;
  let pending = n; // pages queued or logged (the union)
  let passSent = 0;
  let throttle = 0;
  let firstPassEnd = -1;
  const link = linkPages(p);
  let now = 0;
  let integrated = 0;
  let peak = 0;
  let sentPages = 0;
  const out: number[] = [];
  const result = (migrationMs: number, downtimeMs: number, converged: boolean, pages: number) =>
    outcome("auto-converge", migrationMs, downtimeMs, integrated, converged, pages, peak);
  /** Bitmap sync at `at`: a finished pass ticks the policy; the dirty log becomes the pass. */
  const sync = (at: number) => {
    if (sendLen > 0) {
      throttle = policy.tick({
        now: at,
        bufferLevel: pending * PAGE_SIZE / p.maxBufferBytes,
        dirtiedBytes: logLen * PAGE_SIZE,
        transferredBytes: passSent * PAGE_SIZE,
        migrating: true,
      }).intensity;
      if (firstPassEnd < 0) firstPassEnd = at;
    }
    for (let j = 0; j < logLen; j++) {
      const pg = logList[j];
      logged[pg] = 0;
      queued[pg] = 1;
    }
    [sendList, logList] = [logList, sendList];
    sendList.subarray(0, logLen).sort(); // QEMU walks the bitmap in address order
    sendLen = logLen;
    sendPos = 0;
    logLen = 0;
    passSent = 0;
  };
  for (;;) {
    if (firstPassEnd >= 0) {
      const transfer = pending * PAGE_SIZE / p.bw * 1000;
      if (transfer <= p.downtimeBudgetMs) {
        const blackout = transfer + p.rttMs;
        return result(now + blackout, blackout, true, sentPages + pending);
      }
      if (now - firstPassEnd >= p.abortMs) return result(now, 0, false, sentPages);
    }
    if (throttle > peak) peak = throttle;
    integrated += throttle * dt / 1000;
    const end = now + dt;
    let allowed = link();
    while (allowed > 0) {
      if (sendLen === 0) { // idle: start a pass as soon as anything is dirty
        if (logLen === 0) break;
        sync(end);
      }
      const k = Math.min(allowed, sendLen - sendPos);
      for (let j = 0; j < k; j++) {
        const pg = sendList[sendPos++];
        queued[pg] = 0;
        if (logged[pg] === 0) pending--;
      }
      allowed -= k;
      passSent += k;
      sentPages += k;
      if (sendPos === sendLen) sync(end);
    }
    out.length = 0;
    p.workload.pages(dt, throttle, p.random, out);
    for (const pg of out) {
      if (logged[pg] === 0) {
        logged[pg] = 1;
        logList[logLen++] = pg;
        if (queued[pg] === 0) pending++;
      }
    }
    now = end;
  }
}

/**
 * Remus-style: the bulk copy (guest unthrottled, pages behind the cursor tracked dirty), then
 * checkpoint epochs. At each epoch boundary the guest pauses to stage its dirty pages; the
 * staged bytes drain at link rate. At the first boundary where nothing staged is left to send
 * the target holds a complete checkpoint: the final checkpoint's pause, its transfer and one
 * rtt are the blackout. Paused time counts as intensity 1 in integratedThrottle.
 */
function runRemus(p: Resolved): MigrationResult {
  const n = p.pageCount;
  const dt = p.tickMs;
  const r = p.remus;
  const dirty = new Uint8Array(n);
  const dirtyList = new Int32Array(n);
  let dirtyLen = 0;
  let cursor = 0;
  let staged = 0; // pages staged, not yet sent
  const link = linkPages(p);
  let now = 0;
  let integrated = 0;
  let sentPages = 0;
  let nextEpoch = -1;
  let bulkEnd = -1;
  let pauseCredit = 0; // ms of pause still to serve (the guest does not dirty while paused)
  let checkpointed = false;
  const out: number[] = [];
  const pauseMs = (pages: number) => r.pauseFixedMs + pages * r.pausePerPageUs / 1000;
  const result = (migrationMs: number, downtimeMs: number, converged: boolean, pages: number) =>
    outcome("remus", migrationMs, downtimeMs, integrated, converged, pages, integrated > 0 ? 1 : 0);
  const stage = () => {
    for (let j = 0; j < dirtyLen; j++) dirty[dirtyList[j]] = 0;
    staged += dirtyLen;
    const pause = pauseMs(dirtyLen);
    dirtyLen = 0;
    return pause;
  };
  for (;;) {
    if (bulkEnd >= 0 && now >= nextEpoch) {
      // The target holds a complete checkpoint once one was staged and has drained (the bulk
      // copy alone is one only if nothing behind the cursor was dirtied meanwhile).
      if (staged === 0 && (checkpointed || dirtyLen === 0)) {
        const pages = dirtyLen;
        const blackout = pauseMs(pages) + pages * PAGE_SIZE / p.bw * 1000 + p.rttMs;
        return result(now + blackout, blackout, true, sentPages + pages);
      }
      if (now - bulkEnd >= p.abortMs) return result(now, 0, false, sentPages);
      const pause = stage();
      checkpointed = true;
      integrated += pause / 1000;
      pauseCredit += pause;
      nextEpoch += r.epochMs;
    }
    let allowed = link();
    const fromStage = Math.min(allowed, staged);
    staged -= fromStage;
    allowed -= fromStage;
    const bulk = Math.min(allowed, n - cursor);
    cursor += bulk;
    sentPages += fromStage + bulk;
    // The guest runs for what is left of the tick after any pause.
    const paused = Math.min(dt, pauseCredit);
    pauseCredit -= paused;
    out.length = 0;
    if (paused < dt) p.workload.pages(dt - paused, 0, p.random, out);
    for (const pg of out) {
      if (pg < cursor && dirty[pg] === 0) {
        dirty[pg] = 1;
        dirtyList[dirtyLen++] = pg;
      }
    }
    now += dt;
    if (cursor === n && bulkEnd < 0) {
      bulkEnd = now;
      nextEpoch = now;
    }
  }
}
