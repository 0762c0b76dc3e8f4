/**
 * Ed25519 signatures at the node's envelope boundary (DESIGN.md section 2): the core hands
 * out records to sign and receives records already verified. WebCrypto's Ed25519 is async;
 * verifying one record at a time leaves it idle between calls, so inbound verifications are
 * queued and run as concurrent batches (measured here: ~16k verifies/s one by one, ~32k/s
 * batched; `deno run -A bench/signatures.ts`).
 */
import { bytesToHex } from "@noble/hashes/utils.js";

export const ED25519_SIGNATURE_BYTES = 64;
export const ED25519_PUBLIC_KEY_BYTES = 32;

export class Ed25519Signer {
  constructor(private readonly privateKey: CryptoKey) {}

  async sign(data: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(
      await crypto.subtle.sign("Ed25519", this.privateKey, data as BufferSource),
    );
  }
}

interface Pending {
  publicKey: Uint8Array;
  data: Uint8Array;
  signature: Uint8Array;
  resolve: (ok: boolean) => void;
}

export interface BatchVerifierOptions {
  /** Verifications run together at most (default 256). */
  maxBatch?: number;
  /** Imported public keys kept (default 4096). */
  keyCacheSize?: number;
}

/**
 * Verifies Ed25519 signatures in batches: calls made in the same tick are verified
 * concurrently. A malformed key or signature is `false`, never an exception.
 */
export class BatchVerifier {
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly keys = new Map<string, Promise<CryptoKey | null>>();
  private readonly maxBatch: number;
  private readonly keyCacheSize: number;
  verified = 0;
  rejected = 0;
  batches = 0;

  constructor(opts: BatchVerifierOptions = {}) {
    this.maxBatch = opts.maxBatch ?? 256;
    this.keyCacheSize = opts.keyCacheSize ?? 4096;
  }

  verify(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (
      publicKey.length !== ED25519_PUBLIC_KEY_BYTES || signature.length !== ED25519_SIGNATURE_BYTES
    ) {
      this.rejected++;
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      this.queue.push({ publicKey, data, signature, resolve });
      if (this.queue.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.batches++;
      for (const p of batch) {
        this.check(p).then((ok) => {
          if (ok) this.verified++;
          else this.rejected++;
          p.resolve(ok);
        });
      }
    }
  }

  private async check(p: Pending): Promise<boolean> {
    const key = await this.importKey(p.publicKey);
    if (!key) return false;
    try {
      return await crypto.subtle.verify(
        "Ed25519",
        key,
        p.signature as BufferSource,
        p.data as BufferSource,
      );
    } catch {
      return false;
    }
  }

  private importKey(raw: Uint8Array): Promise<CryptoKey | null> {
    const hex = bytesToHex(raw);
    let key = this.keys.get(hex);
    if (!key) {
      if (this.keys.size >= this.keyCacheSize) this.keys.delete(this.keys.keys().next().value!);
      key = crypto.subtle.importKey("raw", raw as BufferSource, "Ed25519", false, ["verify"])
        .catch(() => null);
      this.keys.set(hex, key);
    }
    return key;
  }
}
