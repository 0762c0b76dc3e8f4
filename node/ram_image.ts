/**
 * A VM memory image for the node's RAM replicator: one ArrayBuffer of 4 KiB pages.
 *
 * `capture` copies a page when an epoch is cut. The copies come from 64 KiB slabs handed out
 * page by page (16 pages each): one allocation per 16 captures instead of one per page. The
 * replicator keeps captured pages until every backup has them and gives no release signal,
 * so a slab is freed by the GC once none of its pages is referenced any more.
 *
 * `digest` is sha256 of the whole image (about 1 ms per MiB): call it only when needed.
 */
import crypto from "node:crypto";
import type { MemoryImage } from "../core/ram/params.ts";
import { PAGE_SIZE } from "../core/ram/params.ts";

const SLAB_PAGES = 16;

export class BufferImage implements MemoryImage<Uint8Array> {
  readonly bytes: Uint8Array;
  readonly pageCount: number;
  /** Pages written by `apply` (a backup applying epochs), for throughput figures. */
  pagesApplied = 0;
  private slab = new Uint8Array(0);
  private slabUsed = 0;

  constructor(sizeBytes: number) {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < PAGE_SIZE || sizeBytes % PAGE_SIZE) {
      throw new RangeError(
        `image size must be a positive multiple of ${PAGE_SIZE}, got ${sizeBytes}`,
      );
    }
    this.bytes = new Uint8Array(sizeBytes);
    this.pageCount = sizeBytes / PAGE_SIZE;
  }

  /** Page `page` of the live image (a view: writes go to the image). */
  page(page: number): Uint8Array {
    this.check(page);
    return this.bytes.subarray(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  }

  capture(page: number): Uint8Array {
    this.check(page);
    if (this.slabUsed === this.slab.length) {
      this.slab = new Uint8Array(SLAB_PAGES * PAGE_SIZE);
      this.slabUsed = 0;
    }
    const out = this.slab.subarray(this.slabUsed, this.slabUsed + PAGE_SIZE);
    this.slabUsed += PAGE_SIZE;
    out.set(this.bytes.subarray(page * PAGE_SIZE, (page + 1) * PAGE_SIZE));
    return out;
  }

  apply(page: number, content: Uint8Array): void {
    this.check(page);
    if (content.length !== PAGE_SIZE) {
      throw new RangeError(`page ${page}: content of ${content.length} bytes, not ${PAGE_SIZE}`);
    }
    this.bytes.set(content, page * PAGE_SIZE);
    this.pagesApplied++;
  }

  digest(): string {
    return crypto.createHash("sha256").update(this.bytes).digest("hex");
  }

  private check(page: number): void {
    if (!Number.isInteger(page) || page < 0 || page >= this.pageCount) {
      throw new RangeError(`page ${page} outside the image (0..${this.pageCount - 1})`);
    }
  }
}
