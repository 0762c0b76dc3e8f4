/** Storage parameters (DESIGN.md section 5, Storage): one zod schema with the defaults. */
import { z } from "zod";
import { parseSection } from "../config_errors.ts";
import { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE } from "./chunks.ts";
import { storageClassSchema } from "./classes.ts";
import { consistencySchema } from "./consistency.ts";
import { DEFAULT_REPLICATION_FACTOR } from "./placement.ts";

export const storageConfigSchema = z.strictObject({
  chunkSize: z.int().min(1).max(MAX_CHUNK_SIZE).default(DEFAULT_CHUNK_SIZE).describe(
    "object chunk size (bytes)",
  ),
  replicationFactor: z.int().min(1).max(16).default(DEFAULT_REPLICATION_FACTOR).describe(
    "replicas per chunk, each on a distinct failure domain",
  ),
  failureDomain: z.enum(["region", "zone", "host"]).default("host").describe(
    "the label level replicas must not share",
  ),
  repairMaxCopiesPerStep: z.int().min(1).max(1_000_000).default(64).describe(
    "chunk copies one re-replication step may start",
  ),
  defaultClass: storageClassSchema.default("Standard").describe(
    "class of objects stored without one",
  ),
  defaultConsistency: consistencySchema.default("strong").describe(
    "consistency of objects stored without one",
  ),
});
export type StorageConfig = z.output<typeof storageConfigSchema>;
export type StorageConfigInput = z.input<typeof storageConfigSchema>;

export function parseStorageConfig(input: unknown, path = "storage"): StorageConfig {
  return parseSection(storageConfigSchema, input, path);
}
