/** FNV-1a (32-bit): a tiny deterministic hash for digests of test images and for staggers. */

const OFFSET = 0x811c9dc5;
const PRIME = 0x01000193;

export function fnv1aBytes(bytes: Uint8Array, h = OFFSET): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], PRIME) >>> 0;
  return h >>> 0;
}

/** Over the UTF-16 code units of `s` (ids are ASCII, so this equals hashing their bytes). */
export function fnv1aString(s: string, h = OFFSET): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), PRIME) >>> 0;
  return h >>> 0;
}

export function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}
