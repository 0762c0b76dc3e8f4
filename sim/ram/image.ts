/**
 * A VM memory image for the RAM simulator: one version counter per 4 KiB page (a page's
 * content is the version of its last write), with a digest that is maintained incrementally.
 *
 * The digest is a sum over pages of a 64-bit hash of (page, version), kept as two 32-bit
 * lanes mod 2^32. A sum is order-independent, so equal images have equal digests whatever
 * their history, and each write updates it in O(1): checkers can ask for a digest at every
 * epoch cut and apply without hashing whole images. Maintenance is off unless `tracked`
 * (the digest is only needed by the ram.failover-consistent check).
 */
import type { MemoryImage } from "../../core/ram/params.ts";

/** Lane 1 of the hash of page `page` holding `version` (murmur3-style finaliser). */
export function pageHash1(page: number, version: number): number {
  let h = Math.imul(page ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(version + 0x7f4a7c15, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Lane 2: independent constants, so the two lanes form a 64-bit digest. */
export function pageHash2(page: number, version: number): number {
  let h = Math.imul(version ^ 0x243f6a88, 0x27d4eb2f) ^ Math.imul(page + 0x13198a2e, 0x165667b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  h = Math.imul(h, 0x297a2d39);
  return (h ^ (h >>> 15)) >>> 0;
}

/** The digest of a whole image computed from scratch (tests compare it with the running one). */
export function fullDigest(versions: Uint32Array): string {
  let a = 0;
  let b = 0;
  for (let p = 0; p < versions.length; p++) {
    a = (a + pageHash1(p, versions[p])) >>> 0;
    b = (b + pageHash2(p, versions[p])) >>> 0;
  }
  return hex(a) + hex(b);
}

const hex = (x: number) => (x >>> 0).toString(16).padStart(8, "0");

export class SimImage implements MemoryImage<number> {
  readonly versions: Uint32Array;
  private a = 0;
  private b = 0;

  constructor(readonly pageCount: number, readonly tracked = false) {
    this.versions = new Uint32Array(pageCount);
    if (tracked) {
      // All zero: the sum of the hashes of (p, 0).
      for (let p = 0; p < pageCount; p++) {
        this.a = (this.a + pageHash1(p, 0)) >>> 0;
        this.b = (this.b + pageHash2(p, 0)) >>> 0;
      }
    }
  }

  /** The guest writes `page` (the content becomes `version`). */
  write(page: number, version: number): void {
    this.set(page, version);
  }

  capture(page: number): number {
    return this.versions[page];
  }

  apply(page: number, content: number): void {
    this.set(page, content);
  }

  digest(): string {
    return this.tracked ? hex(this.a) + hex(this.b) : fullDigest(this.versions);
  }

  private set(page: number, v: number): void {
    const vs = this.versions;
    if (this.tracked) {
      const old = vs[page];
      this.a = (this.a - pageHash1(page, old) + pageHash1(page, v)) >>> 0;
      this.b = (this.b - pageHash2(page, old) + pageHash2(page, v)) >>> 0;
    }
    vs[page] = v;
  }
}
