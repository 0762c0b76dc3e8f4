/**
 * Encryption of Critical and Sensitive objects (DESIGN.md section 5: "encryption for Critical
 * and Sensitive"): AES-256-GCM (node:crypto) over the whole object before it is split, so
 * chunk ids address ciphertext and a chunk file reveals nothing about the plaintext.
 *
 * Key: HKDF-SHA256 of the network's isolation key (32 random bytes made at genesis, held by
 * every node of the network, never sent on the wire), salt "mycelium/objects/v1", info
 * "aes-256-gcm object key". Any node of the network can therefore decrypt any object, and
 * nobody without a node identity of the network can: it protects chunk files on disk and
 * in transit beyond TLS, not against a member node. There is no key rotation (a new
 * isolation key is a new network).
 *
 * Format: iv (12 random bytes) | ciphertext | tag (16 bytes). The additional authenticated
 * data binds the ciphertext to its object id and class, so chunks of one object cannot be
 * passed off as another's.
 */
import crypto from "node:crypto";
import type { StorageClass } from "../core/storage/classes.ts";

export const IV_BYTES = 12;
export const TAG_BYTES = 16;
/** Bytes encryption adds to an object. */
export const ENCRYPTION_OVERHEAD = IV_BYTES + TAG_BYTES;

const SALT = "mycelium/objects/v1";
const INFO = "aes-256-gcm object key";

export function deriveObjectKey(isolationKey: Uint8Array): Uint8Array {
  if (isolationKey.length < 16) throw new RangeError("isolation key shorter than 16 bytes");
  return new Uint8Array(crypto.hkdfSync("sha256", isolationKey, SALT, INFO, 32));
}

function aad(objectId: string, cls: StorageClass): Uint8Array {
  return new TextEncoder().encode(`mycelium/object/v1\n${cls}\n${objectId}`);
}

export function encryptObject(
  key: Uint8Array,
  objectId: string,
  cls: StorageClass,
  plain: Uint8Array,
): Uint8Array {
  const iv = crypto.randomBytes(IV_BYTES);
  const cipher = crypto.createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(aad(objectId, cls));
  const out = new Uint8Array(IV_BYTES + plain.length + TAG_BYTES);
  out.set(iv, 0);
  let at = IV_BYTES;
  const body = cipher.update(plain);
  out.set(body, at);
  at += body.length;
  const rest = cipher.final();
  out.set(rest, at);
  at += rest.length;
  out.set(cipher.getAuthTag(), at);
  return out;
}

/** The plaintext; throws when the blob is too short or does not authenticate. */
export function decryptObject(
  key: Uint8Array,
  objectId: string,
  cls: StorageClass,
  blob: Uint8Array,
): Uint8Array {
  if (blob.length < ENCRYPTION_OVERHEAD) {
    throw new RangeError(`encrypted object of ${blob.length} bytes is shorter than iv and tag`);
  }
  const iv = blob.subarray(0, IV_BYTES);
  const tag = blob.subarray(blob.length - TAG_BYTES);
  const decipher = crypto.createDecipheriv("aes-256-gcm", key, iv);
  decipher.setAAD(aad(objectId, cls));
  decipher.setAuthTag(tag);
  const out = new Uint8Array(blob.length - ENCRYPTION_OVERHEAD);
  const body = decipher.update(blob.subarray(IV_BYTES, blob.length - TAG_BYTES));
  out.set(body, 0);
  const rest = decipher.final(); // throws when the tag does not verify
  out.set(rest, body.length);
  return out;
}
