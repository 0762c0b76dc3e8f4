/**
 * The node config's `ram` section (distributed RAM, DESIGN.md section 5): the replication
 * parameters (core/ram/config.ts), the per-VM epoch log and digest policy, and the VMs this
 * node replicates at start. The same VM schema validates `POST /v1/ram/vms` bodies.
 */
import { z } from "zod";
import { isNodeId } from "../core/ids.ts";
import { ramConfigSchema } from "../core/ram/config.ts";
import { PAGE_SIZE } from "../core/ram/params.ts";
import { makeWorkload, type Workload, type WorkloadSpec } from "../core/ram/workloads.ts";
import { VM_ID_RE } from "./ram_codec.ts";

const MiB = 1024 * 1024;
export const RAM_WORKLOADS = ["uniform", "hot-set", "web-server"] as const;

const nodeIdSchema = z.string().refine(isNodeId, {
  error: "invalid node id",
  params: { expected: "a node id (32 hex characters)" },
});

const workloadSchema = z
  .preprocess(
    (v) => (typeof v === "string" ? { kind: v } : v),
    z.strictObject({
      kind: z.enum(RAM_WORKLOADS),
      hotPages: z.int().min(1).optional().describe(
        "hot-set only: hot pages (default 10 % of the image)",
      ),
      zipfS: z.number().min(0).finite().optional().describe("hot-set only: Zipf exponent (1)"),
    }),
  )
  .default({ kind: "uniform" })
  .describe('guest workload: "uniform", "hot-set", "web-server" or {kind, hotPages, zipfS}');

export const ramVmSchema = z
  .strictObject({
    id: z.string().regex(VM_ID_RE, { error: "expected 1-64 letters, digits, '.', '_' or '-'" })
      .describe("VM id, the same on every replica"),
    memoryMiB: z.int().min(1).max(65536).describe("size of the memory image, MiB"),
    role: z.enum(["primary", "backup"]).describe("this node's role at creation"),
    primary: nodeIdSchema.describe("the primary's node id"),
    backups: z.array(nodeIdSchema).max(16).default([]).describe("the backups' node ids"),
    term: z.int().min(1).max(Number.MAX_SAFE_INTEGER).default(1).describe("initial term"),
    synced: z.boolean().default(true).describe(
      "the image holds the VM's state at (term, epoch 0); false for a replica that joins " +
        "later and waits for a full resync",
    ),
    dirtyPagesPerSec: z.number().min(0).finite().default(0).describe(
      "synthetic guest: pages dirtied per second unthrottled (0: no guest)",
    ),
    workload: workloadSchema,
  })
  .superRefine((vm, ctx) => {
    if (vm.backups.includes(vm.primary)) {
      ctx.addIssue({ code: "custom", path: ["backups"], message: "must not list the primary" });
    }
    if (new Set(vm.backups).size !== vm.backups.length) {
      ctx.addIssue({ code: "custom", path: ["backups"], message: "lists a node twice" });
    }
    const w = vm.workload;
    if (w.kind !== "hot-set") {
      for (const k of ["hotPages", "zipfS"] as const) {
        if (w[k] !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["workload", k],
            message: `only for the hot-set workload, not ${w.kind}`,
          });
        }
      }
    }
    const pages = vm.memoryMiB * (MiB / PAGE_SIZE);
    if (w.hotPages !== undefined && w.hotPages > pages) {
      ctx.addIssue({
        code: "custom",
        path: ["workload", "hotPages"],
        message: `must be <= the image's ${pages} pages`,
      });
    }
  });

export type RamVmSpec = z.output<typeof ramVmSchema>;

/** The guest's workload model for a VM spec (validated: cannot throw). */
export function vmWorkload(vm: RamVmSpec): Workload {
  const w = vm.workload;
  const rate = vm.dirtyPagesPerSec;
  const spec: WorkloadSpec = w.kind === "hot-set"
    ? { kind: w.kind, ratePagesPerSec: rate, hotPages: w.hotPages, zipfS: w.zipfS ?? 1 }
    : { kind: w.kind, ratePagesPerSec: rate };
  return makeWorkload(spec, vm.memoryMiB * (MiB / PAGE_SIZE));
}

export const ramSectionSchema = z
  .strictObject({
    replication: ramConfigSchema.prefault({}),
    epochLog: z
      .strictObject({
        size: z.int().min(1).max(65536).default(1024).describe(
          "cut epochs kept per VM for GET /v1/ram/vms/{id}/epochs",
        ),
        digestWhilePolledMs: z.number().min(0).finite().default(5000).describe(
          "digest every cut epoch while /epochs was read within this long (ms); 0: never",
        ),
        digestEveryMs: z.number().min(0).finite().default(0).describe(
          "also digest a cut epoch at least this often (ms); 0: off",
        ),
      })
      .prefault({})
      .describe("the primary's log of cut epochs (sha256 of the image at each costs ~1 ms/MiB)"),
    digestOnPromotion: z.boolean().default(true).describe(
      "digest the image when a backup is promoted (logged and shown in the VM's status)",
    ),
    guestTickMs: z.number().min(1).max(1000).default(2).describe(
      "period of the synthetic guests' write steps (ms)",
    ),
    vms: z.array(ramVmSchema).default([]).describe("VMs replicated from start (file only)"),
  })
  .superRefine((ram, ctx) => {
    const seen = new Set<string>();
    ram.vms.forEach((vm, i) => {
      if (seen.has(vm.id)) {
        ctx.addIssue({ code: "custom", path: ["vms", i, "id"], message: `duplicate VM id` });
      }
      seen.add(vm.id);
    });
  });

export type RamSection = z.output<typeof ramSectionSchema>;
