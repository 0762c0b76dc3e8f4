/**
 * The distributed RAM admin API (see node/README.md):
 *   POST /v1/ram/vms                  create a VM replica here (body: a VM spec)
 *   GET  /v1/ram/vms                  list
 *   GET  /v1/ram/vms/{id}             status (?digest=1: image digest, ?lagWindowMs=N)
 *   GET  /v1/ram/vms/{id}/epochs      the primary's recent cut epochs (turns digests on)
 *   POST /v1/ram/vms/{id}/migrate     {"to": NODE_ID}: planned migration
 * Input errors answer 400 with `field: problem`.
 */
import { z } from "zod";
import { formatZodError } from "../core/config_errors.ts";
import { isNodeId, type NodeId } from "../core/ids.ts";
import { type NodeRam, RamApiError } from "./ram.ts";
import { ramVmSchema } from "./ram_config.ts";

type Reply = { status: number; body: unknown };

const migrateSchema = z.strictObject({
  to: z.string().refine(isNodeId, {
    error: "invalid node id",
    params: { expected: "a node id (32 hex characters)" },
  }),
});

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new RamApiError(400, "(root): expected a JSON object");
  }
}

function validate<T>(schema: z.ZodType<T>, input: unknown): T {
  const r = schema.safeParse(input);
  if (!r.success) throw new RamApiError(400, formatZodError(r.error, ""));
  return r.data;
}

/** Handles `/v1/ram/...`; null for other paths. */
export async function ramApi(ram: NodeRam, method: string, url: URL, body: string): Promise<Reply> {
  try {
    return await route(ram, method, url, body);
  } catch (e) {
    if (e instanceof RamApiError) return { status: e.status, body: { error: e.message } };
    throw e;
  }
}

async function route(ram: NodeRam, method: string, url: URL, body: string): Promise<Reply> {
  const parts = url.pathname.split("/").slice(3); // ["vms", id?, sub?]
  if (parts[0] !== "vms" || parts.length > 3) throw new RamApiError(404, "no such endpoint");
  const allow = (...methods: string[]) => {
    if (!methods.includes(method)) {
      throw new RamApiError(405, `method ${method} not allowed on ${url.pathname}`);
    }
  };
  if (parts.length === 1) {
    allow("GET", "POST");
    if (method === "GET") return { status: 200, body: ram.list() };
    const spec = validate(ramVmSchema, parseJson(body));
    return { status: 201, body: await ram.addVm(spec) };
  }
  let id: string;
  try {
    id = decodeURIComponent(parts[1]);
  } catch {
    throw new RamApiError(400, "id: not valid percent-encoding");
  }
  if (parts.length === 2) {
    allow("GET");
    const window = Number(url.searchParams.get("lagWindowMs") ?? 10_000);
    if (!(window > 0)) throw new RamApiError(400, "lagWindowMs: expected a number > 0");
    const status = ram.status(id, window);
    if (url.searchParams.get("digest") !== "1") return { status: 200, body: status };
    const digest = await ram.digest(id);
    return { status: 200, body: { ...status, digest } };
  }
  switch (parts[2]) {
    case "epochs":
      allow("GET");
      return { status: 200, body: ram.epochs(id) };
    case "migrate": {
      allow("POST");
      const { to } = validate(migrateSchema, parseJson(body));
      return { status: 202, body: ram.migrate(id, to as NodeId) };
    }
  }
  throw new RamApiError(404, `no such endpoint ${url.pathname}`);
}
