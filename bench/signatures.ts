/**
 * Ed25519 verification rate with WebCrypto: one at a time vs batched (BatchVerifier).
 * Prints: signatures one_by_one_per_s=X batched_per_s=Y
 */
import { BatchVerifier, Ed25519Signer } from "../node/signatures.ts";

export async function measureSignatures(
  n = 20_000,
): Promise<{ oneByOne: number; batched: number }> {
  const k = await crypto.subtle.generateKey("Ed25519", true, ["sign", "verify"]) as CryptoKeyPair;
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", k.publicKey));
  const signer = new Ed25519Signer(k.privateKey);
  const msgs = Array.from({ length: n }, (_, i) => new TextEncoder().encode(`record ${i}`));
  const sigs = await Promise.all(msgs.map((m) => signer.sign(m)));
  let t = performance.now();
  for (let i = 0; i < n; i++) {
    await crypto.subtle.verify("Ed25519", k.publicKey, sigs[i] as BufferSource, msgs[i]);
  }
  const oneByOne = n / ((performance.now() - t) / 1000);
  const v = new BatchVerifier();
  t = performance.now();
  await Promise.all(msgs.map((m, i) => v.verify(pub, m, sigs[i])));
  const batched = n / ((performance.now() - t) / 1000);
  return { oneByOne, batched };
}

if (import.meta.main) {
  const r = await measureSignatures();
  console.log(
    `signatures one_by_one_per_s=${r.oneByOne.toFixed(0)} batched_per_s=${r.batched.toFixed(0)}`,
  );
}
