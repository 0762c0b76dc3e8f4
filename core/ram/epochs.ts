/**
 * Epoch bookkeeping shared by both sides of RAM replication: the primary's dirty-page set,
 * captured epochs and their merging, and the backup's staging of chunks until an epoch is
 * complete and applicable.
 */
import type { EpochChunk } from "./messages.ts";
import { PAGE_SIZE } from "./params.ts";

/**
 * Pages written since the last cut: a bitmap (re-dirtied pages merge) plus the list of set
 * pages, so a cut costs O(dirty pages) rather than O(image).
 */
export class DirtyPages {
  private readonly bits: Uint8Array;
  private list: number[] = [];

  constructor(readonly pageCount: number) {
    this.bits = new Uint8Array((pageCount + 7) >>> 3);
  }

  get count(): number {
    return this.list.length;
  }

  has(page: number): boolean {
    return (this.bits[page >>> 3] & (1 << (page & 7))) !== 0;
  }

  /** Marks `page` dirty; false if it already was. Throws on a page outside the image. */
  mark(page: number): boolean {
    if (!Number.isInteger(page) || page < 0 || page >= this.pageCount) {
      throw new RangeError(`page ${page} outside the image (0..${this.pageCount - 1})`);
    }
    const m = 1 << (page & 7);
    const i = page >>> 3;
    if (this.bits[i] & m) return false;
    this.bits[i] |= m;
    this.list.push(page);
    return true;
  }

  /** The dirty pages in ascending order; clears the set. */
  take(): number[] {
    const out = this.list;
    for (const p of out) this.bits[p >>> 3] = 0;
    this.list = [];
    return out.sort((a, b) => a - b);
  }
}

/** A captured epoch: page contents as of the cut (or as of the newest epoch merged in). */
export interface Epoch<C> {
  readonly term: number;
  readonly epoch: number;
  /** Ascending, distinct. */
  readonly pages: readonly number[];
  readonly contents: readonly C[];
  /** Whether this is a full image (a resync) rather than a delta. */
  readonly resync: boolean;
}

export const epochBytes = (e: { pages: readonly number[] }): number => e.pages.length * PAGE_SIZE;

/**
 * Merges a queued epoch with a newer one, keyed by page: the newer content wins and the
 * result carries the newer number, so applying it on top of `older`'s base reaches exactly
 * the state of `newer`. Neither input is modified (captured epochs are shared by backups).
 */
export function mergeEpochs<C>(older: Epoch<C>, newer: Epoch<C>): Epoch<C> {
  const pages: number[] = [];
  const contents: C[] = [];
  let i = 0;
  let j = 0;
  // Both page lists are ascending: a linear merge keeps the result ascending.
  while (i < older.pages.length || j < newer.pages.length) {
    const a = i < older.pages.length ? older.pages[i] : Infinity;
    const b = j < newer.pages.length ? newer.pages[j] : Infinity;
    if (b <= a) {
      pages.push(b);
      contents.push(newer.contents[j++]);
      if (a === b) i++;
    } else {
      pages.push(a);
      contents.push(older.contents[i++]);
    }
  }
  return { term: newer.term, epoch: newer.epoch, pages, contents, resync: older.resync };
}

/** Pages per chunk for a chunk payload limit of `chunkBytes` (at least one page). */
export function pagesPerChunk(chunkBytes: number): number {
  return Math.max(1, Math.floor(chunkBytes / PAGE_SIZE));
}

/** Number of chunks an epoch of `pages` pages is split into (an empty epoch is one chunk). */
export function chunkCount(pages: number, perChunk: number): number {
  return Math.max(1, Math.ceil(pages / perChunk));
}

interface Staged<C> {
  term: number;
  epoch: number;
  baseTerm: number;
  baseEpoch: number;
  resync: boolean;
  parts: Array<{ pages: number[]; contents: C[] } | undefined>;
  got: number;
}

export type StageResult = "new" | "duplicate" | "malformed";

/**
 * Backup-side staging: chunks are kept per (term, epoch) until all have arrived; an epoch is
 * applicable only when complete and based on the backup's current state (a resync applies
 * on anything newer). Incomplete epochs never touch the image.
 */
export class EpochStager<C> {
  private readonly staged = new Map<string, Staged<C>>();

  get size(): number {
    return this.staged.size;
  }

  add(m: EpochChunk<C>): StageResult {
    if (
      !(m.chunks >= 1) || !(m.chunk >= 0) || m.chunk >= m.chunks ||
      m.pages.length !== m.contents.length
    ) return "malformed";
    const key = `${m.term}/${m.epoch}/${m.resync ? "r" : "d"}`;
    let s = this.staged.get(key);
    if (!s) {
      s = {
        term: m.term,
        epoch: m.epoch,
        baseTerm: m.baseTerm,
        baseEpoch: m.baseEpoch,
        resync: m.resync,
        parts: new Array(m.chunks).fill(undefined),
        got: 0,
      };
      this.staged.set(key, s);
    } else if (s.parts.length !== m.chunks) return "malformed";
    if (s.parts[m.chunk]) return "duplicate";
    s.parts[m.chunk] = { pages: m.pages, contents: m.contents };
    s.got++;
    return "new";
  }

  /**
   * The next complete epoch that applies to state (appliedTerm, applied): the newest complete
   * resync that moves the state forward (or any, if the image is not valid), else a delta
   * based exactly on the current state.
   */
  next(appliedTerm: number, applied: number, valid: boolean): Epoch<C> | undefined {
    let best: Staged<C> | undefined;
    for (const s of this.staged.values()) {
      if (s.got !== s.parts.length) continue;
      if (s.resync) {
        const ahead = !valid || s.term > appliedTerm ||
          (s.term === appliedTerm && s.epoch > applied);
        if (ahead && (!best || !best.resync || s.epoch > best.epoch)) best = s;
      } else if (
        valid && !best && s.baseTerm === appliedTerm && s.baseEpoch === applied
      ) best = s;
    }
    if (!best) return undefined;
    const pages: number[] = [];
    const contents: C[] = [];
    for (const p of best.parts) {
      for (let i = 0; i < p!.pages.length; i++) {
        pages.push(p!.pages[i]);
        contents.push(p!.contents[i]);
      }
    }
    return { term: best.term, epoch: best.epoch, pages, contents, resync: best.resync };
  }

  /** Drops what can never apply: older terms, and epochs at or before the applied state. */
  prune(term: number, appliedTerm: number, applied: number): void {
    for (const [k, s] of this.staged) {
      if (s.term < term || (s.term === appliedTerm && s.epoch <= applied)) this.staged.delete(k);
    }
  }

  clear(): void {
    this.staged.clear();
  }
}
