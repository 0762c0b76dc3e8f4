import assert from "node:assert/strict";
import fc from "fast-check";
import { BatchVerifier, Ed25519Signer } from "./signatures.ts";

async function keypair() {
  const k = await crypto.subtle.generateKey("Ed25519", true, ["sign", "verify"]) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", k.publicKey));
  return { signer: new Ed25519Signer(k.privateKey), publicKey: raw };
}

Deno.test("signatures: valid ones verify; tampered data, signature or key do not", async () => {
  const a = await keypair(), b = await keypair();
  const v = new BatchVerifier();
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.nat(), async (data, pick) => {
      const sig = await a.signer.sign(data);
      assert.equal(await v.verify(a.publicKey, data, sig), true);
      const badSig = sig.slice();
      badSig[pick % 64] ^= 1 << (pick % 8);
      assert.equal(await v.verify(a.publicKey, data, badSig), false);
      assert.equal(await v.verify(b.publicKey, data, sig), false);
      const badData = new Uint8Array([...data, 1]);
      assert.equal(await v.verify(a.publicKey, badData, sig), false);
    }),
    { numRuns: 40 },
  );
});

Deno.test("signatures: concurrent calls are verified in batches with the right answers", async () => {
  const a = await keypair();
  const v = new BatchVerifier({ maxBatch: 64 });
  const msgs = Array.from({ length: 300 }, (_, i) => new TextEncoder().encode(`record ${i}`));
  const sigs = await Promise.all(msgs.map((m) => a.signer.sign(m)));
  sigs[7] = sigs[8]; // one wrong signature
  const results = await Promise.all(msgs.map((m, i) => v.verify(a.publicKey, m, sigs[i])));
  assert.equal(results.filter((ok) => !ok).length, 1);
  assert.equal(results[7], false);
  assert.ok(v.batches >= 300 / 64 && v.batches < 300, `batches ${v.batches}`);
  assert.equal(v.verified, 299);
});

Deno.test("signatures: malformed keys and signatures are false, never exceptions", async () => {
  const v = new BatchVerifier();
  const data = new Uint8Array([1, 2, 3]);
  assert.equal(await v.verify(new Uint8Array(31), data, new Uint8Array(64)), false);
  assert.equal(await v.verify(new Uint8Array(32), data, new Uint8Array(63)), false);
  assert.equal(await v.verify(new Uint8Array(32).fill(255), data, new Uint8Array(64)), false);
});
