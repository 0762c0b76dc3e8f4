/**
 * The node config's `storage` section (object storage, DESIGN.md section 5, Storage): the
 * core's storage parameters (core/storage/config.ts: chunk size, replication factor,
 * failure-domain level, default class and consistency) plus what only a real node needs:
 * request timeouts, size limits, flow-control windows and this node's failure-domain labels.
 *
 * Every chunk travels in one FRAME_OBJECTS stream frame: with `streams.maxFrameBytes` too
 * small for `chunkSize` plus the frame overhead (8 KiB), the node writes smaller chunks (the
 * largest multiple of 4 KiB that fits) and says so in its log, as distributed RAM shrinks its
 * epoch chunks. The default frame limit (8 MiB) carries the default 4 MiB chunks.
 */
import { z } from "zod";
import { storageConfigSchema } from "../core/storage/config.ts";

const MiB = 1024 * 1024;

/** A failure-domain label: it travels in the announced address, so no '#', '/' or spaces. */
export const LABEL_RE = /^[A-Za-z0-9._-]{1,64}$/;
const label = (what: string) =>
  z.string().regex(LABEL_RE, { error: "expected 1-64 letters, digits, '.', '_' or '-'" })
    .optional().describe(what);

export const storageLabelsSchema = z.strictObject({
  region: label("region of this node (failure domain)"),
  zone: label("zone of this node within its region (failure domain)"),
  host: label("host of this node (failure domain; default: the node id)"),
});

export const storageRepairSchema = z.strictObject({
  enabled: z.boolean().default(true).describe(
    "re-replicate chunks and manifests after members die (periodic scans and after a death)",
  ),
  intervalMs: z.int().min(100).max(86_400_000).default(10_000).describe(
    "a repair scan of this node's manifests runs this often (ms)",
  ),
  afterDeathMs: z.int().min(0).max(3_600_000).default(2000).describe(
    "a repair scan runs this long after a member is declared dead or left (ms; deaths in " +
      "between share one scan)",
  ),
  maxConcurrentCopies: z.int().min(1).max(256).default(2).describe(
    "chunk copies a repair scan runs at once (bounded so it does not starve foreground writes)",
  ),
  extraProbes: z.int().min(0).max(64).default(2).describe(
    "nodes beyond the placement targets (in rendezvous order) asked whether they hold a chunk",
  ),
});

export const storageSectionSchema = storageConfigSchema.extend({
  requestTimeoutMs: z.number().positive().finite().default(10_000).describe(
    "a chunk or manifest request to a replica fails after this long (ms)",
  ),
  maxObjectBytes: z.int().min(1).max(4096 * MiB).default(256 * MiB).describe(
    "largest object a PUT accepts (the object is held in memory while it is stored)",
  ),
  peerWindowBytes: z.int().min(1).max(1024 * MiB).default(24 * MiB).describe(
    "most request bytes in flight to one peer (a larger request still goes out alone)",
  ),
  writeWindowChunks: z.int().min(1).max(256).default(6).describe(
    "chunks of one object being replicated at once",
  ),
  readWindowChunks: z.int().min(1).max(256).default(6).describe(
    "chunks of one object being fetched at once",
  ),
  hedgeMs: z.number().min(0).finite().default(2000).describe(
    "ask the next replica for a chunk when the first has not answered after this long (ms)",
  ),
  maxConcurrentDiskWrites: z.int().min(1).max(1024).default(8).describe(
    "chunk files being written at once on this node; more wait in a queue",
  ),
  maxConcurrentDiskReads: z.int().min(1).max(1024).default(8).describe(
    "chunk files being read at once on this node (for itself or peers); more wait in a queue",
  ),
  maxQueuedDiskOps: z.int().min(0).max(100_000).default(64).describe(
    "chunk reads (and, separately, writes) waiting for the disk before more are refused (busy)",
  ),
  repair: storageRepairSchema.prefault({}).describe(
    "re-replication after failures (objects_repair.ts); copies per scan: repairMaxCopiesPerStep",
  ),
  labels: storageLabelsSchema.prefault({}).describe(
    "this node's failure-domain labels, announced to the others",
  ),
});

export type StorageSection = z.output<typeof storageSectionSchema>;
