/**
 * The seed's `VMReplication` custom resource (group `mycelium.network`, version `v1`): which
 * VM to replicate, with which distributed-RAM config and onto which backup nodes. The spec's
 * zod schema (`vmReplicationSpecSchema`) is the one source: the controller validates with it
 * (errors name the field) and the CRD's OpenAPI schema is generated from it, made structural
 * as Kubernetes requires (unions merged into one object, no `additionalProperties` beside
 * `properties`, no defaults: the zod schema applies those).
 */
import { z } from "zod";
import { CustomResourceDefinition } from "kubernetes-models/apiextensions.k8s.io/v1";
import { ramConfigSchema } from "../core/ram/config.ts";

export const GROUP = "mycelium.network";
export const VERSION = "v1";
export const KIND = "VMReplication";
export const PLURAL = "vmreplications";

const NODE_REF = z.string().min(1).max(253).describe(
  "a node: its id (32 hex digits) or its pod name (resolved through the node's /status)",
);

export const vmReplicationSpecSchema = z.strictObject({
  vmId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
    error: "expected 1-64 letters, digits, '.', '_' or '-'",
  }).describe("the VM's id on the nodes"),
  primaryNode: NODE_REF.describe("the node the VM runs on (its primary)"),
  memoryMiB: z.number().positive().max(1024 * 1024).default(256).describe(
    "guest memory to replicate, MiB",
  ),
  replicationConfig: ramConfigSchema.prefault({}).describe(
    "the distributed-RAM replication config (core/ram/config.ts)",
  ),
  backupNodes: z.array(NODE_REF).min(1).max(16).describe("nodes holding backups"),
});
export type VMReplicationSpec = z.infer<typeof vmReplicationSpecSchema>;

type Json = Record<string, unknown>;

/** JSON schema (OpenAPI 3.0 flavour) to a Kubernetes structural schema. */
export function structural(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(structural);
  if (!s || typeof s !== "object") return s;
  const src = s as Json;
  const union = (src.oneOf ?? src.anyOf) as Json[] | undefined;
  if (union && union.every((b) => b.type === "object")) {
    // Merge the branches: every property any branch has; required = what all require.
    const props: Record<string, Json> = {};
    for (const b of union) {
      for (const [k, v] of Object.entries((b.properties ?? {}) as Record<string, Json>)) {
        const prev = props[k];
        if (prev && Array.isArray(prev.enum) && Array.isArray(v.enum)) {
          const { description: _d, ...rest } = prev; // a branch's text no longer fits
          props[k] = { ...rest, enum: [...new Set([...prev.enum, ...v.enum])] };
        } else if (!prev) props[k] = v;
      }
    }
    const required = union.map((b) => (b.required ?? []) as string[])
      .reduce((a, r) => a.filter((x) => r.includes(x)));
    const merged: Json = { type: "object", properties: props };
    if (required.length) merged.required = required;
    if (src.description) merged.description = src.description;
    return structural(merged);
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(src)) {
    if (k === "default" || k === "$schema" || k === "additionalProperties") continue;
    if (k === "properties") {
      out[k] = Object.fromEntries(Object.entries(v as Json).map(([p, x]) => [p, structural(x)]));
    } else out[k] = structural(v);
  }
  return out;
}

const conditionSchema = {
  type: "object",
  required: ["type", "status"],
  properties: {
    type: { type: "string" },
    status: { type: "string", enum: ["True", "False", "Unknown"] },
    reason: { type: "string" },
    message: { type: "string" },
    lastTransitionTime: { type: "string", format: "date-time" },
    observedGeneration: { type: "integer" },
  },
};

export function vmReplicationCrd(): CustomResourceDefinition {
  const spec = structural(
    z.toJSONSchema(vmReplicationSpecSchema, { target: "openapi-3.0", io: "input" }),
  ) as Json;
  const crd = new CustomResourceDefinition({
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: { kind: KIND, plural: PLURAL, singular: "vmreplication", shortNames: ["vmr"] },
      versions: [{
        name: VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { name: "VM", type: "string", jsonPath: ".spec.vmId" },
          { name: "Primary", type: "string", jsonPath: ".status.primary" },
          {
            name: "Ready",
            type: "string",
            jsonPath: '.status.conditions[?(@.type=="Ready")].status',
          },
          { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
        ],
        schema: {
          openAPIV3Schema: {
            type: "object",
            required: ["spec"],
            properties: {
              spec: spec as never,
              status: {
                type: "object",
                properties: {
                  observedGeneration: { type: "integer" },
                  primary: { type: "string" },
                  term: { type: "integer" },
                  epoch: { type: "integer" },
                  bufferLevel: { type: "number" },
                  conditions: { type: "array", items: conditionSchema as never },
                },
              },
            },
          },
        },
      }],
    },
  });
  crd.validate();
  return crd;
}
