/**
 * Wire codec of Latent spore gossip on the real node: FRAME_SPORES frames on the mutual-TLS
 * streams, body = UTF-8 JSON of a `SporeMessage` (core/spores/gossip.ts), validated with zod
 * on decode (entries with `latentEntrySchema`).
 *
 * The node carries the three Latent messages (push, digest, entries). The Primary messages
 * (`primary-pull`, `primary`) are not on this wire: the node has no certified Primary to
 * hand out (see node/spores.ts), so every node announces Primary height 0 and nobody pulls.
 * Anything malformed, or a Primary message, throws `DecodeError`; nothing else escapes.
 */
import { z } from "zod";
import { formatZodError } from "../core/config_errors.ts";
import { DecodeError } from "../core/errors.ts";
import type { SporeMessage } from "../core/spores/gossip.ts";
import { latentEntrySchema } from "../core/spores/latent.ts";
import { networkIdSchema, nodeIdSchema } from "../core/spores/types.ts";

export const FRAME_SPORES = 6;
/** Entries per message accepted (the gossip sends at most `latent.maxEntries`). */
const MAX_ENTRIES = 100_000;

const height = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const digestItem = z.tuple([
  nodeIdSchema,
  z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  z.int().min(0).max(Number.MAX_SAFE_INTEGER),
]);
const entries = z.array(latentEntrySchema).max(MAX_ENTRIES);

const sporeWireSchema = z.discriminatedUnion("t", [
  z.strictObject({ t: z.literal("spore-push"), net: networkIdSchema, ph: height, entries }),
  z.strictObject({
    t: z.literal("spore-digest"),
    net: networkIdSchema,
    ph: height,
    digest: z.array(digestItem).max(MAX_ENTRIES),
  }),
  z.strictObject({
    t: z.literal("spore-entries"),
    net: networkIdSchema,
    ph: height,
    entries,
    want: z.array(nodeIdSchema).max(MAX_ENTRIES),
  }),
]);

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** The frame body of a Latent message; throws for a Primary message (not on this wire). */
export function encodeSpores(msg: SporeMessage): Uint8Array {
  if (msg.t === "primary" || msg.t === "primary-pull") {
    throw new DecodeError(`spores: ${msg.t} is not carried by the node's wire`, 0);
  }
  return enc.encode(JSON.stringify(msg));
}

/** Decodes and validates a frame body; throws `DecodeError` naming the bad field. */
export function decodeSpores(body: Uint8Array): SporeMessage {
  let doc: unknown;
  try {
    doc = JSON.parse(dec.decode(body));
  } catch (e) {
    throw new DecodeError(`spores: not UTF-8 JSON: ${(e as Error).message}`, 0);
  }
  const r = sporeWireSchema.safeParse(doc);
  if (!r.success) throw new DecodeError(`spores: ${formatZodError(r.error, "message")}`, 0);
  return r.data as SporeMessage;
}
