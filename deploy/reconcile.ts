/**
 * One reconcile step of the VMReplication controller: a custom resource in, the status it
 * should have (and the node calls made) out. Pure apart from the node calls, which go through
 * `NodeApi` (fetch to the nodes' admin APIs in a cluster, real node processes in tests).
 *
 * 1. The spec is validated by `vmReplicationSpecSchema` (crd.ts): an invalid one gives
 *    `Valid=False` (reason `InvalidSpec`, the message names the field, e.g.
 *    `spec.replicationConfig.profiles.low.curve.threshold: ...`) and no node call.
 * 2. Every node reference (a node id or a pod name) is resolved to an admin endpoint and its
 *    node id read from `GET /status`; each node's replica from `GET /v1/ram/vms/{vmId}`.
 * 3. Missing replicas are created (`POST /v1/ram/vms`): the backups first, then the primary
 *    (only once every backup holds its replica), with the spec's memoryMiB, the primary's and
 *    backups' ids and term 1 (a backup created after its primary: `synced: false`, so that it
 *    waits for a full resync). An existing replica is never recreated, and nothing is created
 *    while a node is unreachable or once the VM has moved on (a replica at term > 1 or naming
 *    another primary: after a failover, a term-1 replica would be a stale rival).
 * 4. The status is read from the current primary: the spec's primary, or after a failover or
 *    migration the replica of the highest term that says it is primary (found through the
 *    `primary` the replicas report, resolved through `NodeApi` when it is not in the spec).
 *
 * Status: `observedGeneration`, `primary` (the spec's reference of the node running the VM,
 * or its node id when the spec does not name it), `term`, `epoch`, `bufferLevel`, and the
 * conditions `Valid`, `Ready` (the primary runs the VM, every backup holds its replica and
 * none awaits a resync or lags by dropped epochs) and `Degraded` (a node is unreachable, a
 * backup is missing, or a creation failed). A condition's `lastTransitionTime` changes only
 * when its `status` does (Kubernetes' `meta.SetStatusCondition`).
 *
 * Not carried to the nodes: `replicationConfig` (validated here, but the node's RAM API takes
 * no per-VM replication config: the nodes run their own `ram.replication`), and spec changes
 * after creation (the API has no update; a replica is never recreated).
 */
import type { z } from "zod";
import { formatZodError } from "../core/config_errors.ts";
import { isNodeId } from "../core/ids.ts";
import { vmReplicationSpecSchema } from "./crd.ts";

// ---- the custom resource ----

export type ConditionStatus = "True" | "False" | "Unknown";
export type ConditionType = "Valid" | "Ready" | "Degraded";

export interface Condition {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface VMReplicationStatus {
  observedGeneration?: number;
  primary?: string;
  term?: number;
  epoch?: number;
  bufferLevel?: number;
  conditions: Condition[];
}

export interface VMReplication {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    generation?: number;
    resourceVersion?: string;
    uid?: string;
  };
  spec: unknown;
  status?: Partial<VMReplicationStatus>;
}

// ---- the nodes ----

export interface NodeReply {
  status: number;
  body: unknown;
}

/** A node could not be reached (connection refused, timeout, unknown name). */
export class NodeUnreachableError extends Error {
  override name = "NodeUnreachableError";
}

/**
 * The nodes' admin APIs. `endpoint` resolves a node reference (a 32-hex node id or a pod
 * name) to an admin endpoint (`http://host:port`); `request` performs one JSON call there.
 * Both throw `NodeUnreachableError` when the node cannot be reached.
 */
export interface NodeApi {
  endpoint(ref: string): Promise<string>;
  request(
    endpoint: string,
    method: "GET" | "POST",
    path: string,
    body?: unknown,
  ): Promise<NodeReply>;
}

/**
 * `NodeApi` over fetch. `candidates(ref)` lists the endpoints that may be `ref`; the first
 * whose `/status` names it (its node id or its identity name) wins and is remembered until a
 * request to it fails.
 */
export class HttpNodeApi implements NodeApi {
  private readonly known = new Map<string, string>();

  constructor(
    private readonly candidates: (ref: string) => Promise<string[]>,
    private readonly timeoutMs = 5000,
  ) {}

  async request(
    endpoint: string,
    method: "GET" | "POST",
    path: string,
    body?: unknown,
  ): Promise<NodeReply> {
    let res: Response;
    try {
      res = await fetch(`${endpoint}${path}`, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      for (const [ref, ep] of this.known) if (ep === endpoint) this.known.delete(ref);
      const err = e as Error & { cause?: { message?: string } };
      const cause = err.cause?.message ? ` (${err.cause.message})` : "";
      throw new NodeUnreachableError(`${method} ${endpoint}${path}: ${err.message}${cause}`);
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch { /* not JSON: keep the text */ }
    return { status: res.status, body: parsed };
  }

  async endpoint(ref: string): Promise<string> {
    const cached = this.known.get(ref);
    if (cached) return cached;
    const tried: string[] = [];
    for (const ep of await this.candidates(ref)) { // may throw, saying why there are none
      try {
        const r = await this.request(ep, "GET", "/status");
        const id = identityOf(r.body);
        if (r.status === 200 && id && (id.nodeId === ref || id.name === ref)) {
          this.known.set(ref, ep);
          return ep;
        }
        tried.push(`${ep}: is ${id ? id.name || id.nodeId : `not a node (${r.status})`}`);
      } catch (e) {
        tried.push((e as Error).message);
      }
    }
    throw new NodeUnreachableError(
      `no node answers as ${ref}${tried.length ? ` (${tried.join("; ")})` : ""}`,
    );
  }
}

/** A fixed set of admin endpoints (out of a cluster, tests): every reference is probed on all. */
export function staticNodeApi(endpoints: string[], timeoutMs?: number): HttpNodeApi {
  const eps = endpoints.map((e) => (/^https?:\/\//.test(e) ? e : `http://${e}`));
  return new HttpNodeApi(() => Promise.resolve(eps), timeoutMs);
}

export interface ClusterNodesOptions {
  namespace: string;
  /** The headless Service of the pods (the Sclerotia StatefulSet's: `sclerotia`). */
  service: string;
  adminPort: number;
  /** Pods asked for the membership when a node id is to be found (default: `<service>-0..2`). */
  seeds?: string[];
  timeoutMs?: number;
}

/**
 * In a cluster: a pod name is `http://<pod>.<service>.<ns>.svc:<adminPort>` (checked against the
 * identity name in its /status: the pods' identities are issued with their pod names); a node
 * id is found in the membership of the seed pods (its gossip host, at the admin port).
 */
export function clusterNodeApi(o: ClusterNodesOptions): HttpNodeApi {
  const podEndpoint = (pod: string) =>
    `http://${pod}.${o.service}.${o.namespace}.svc:${o.adminPort}`;
  const seeds = o.seeds ?? [0, 1, 2].map((i) => `${o.service}-${i}`);
  const probe = new HttpNodeApi(() => Promise.resolve([]), o.timeoutMs);
  const candidates = async (ref: string): Promise<string[]> => {
    if (!isNodeId(ref)) return [podEndpoint(ref)];
    const problems: string[] = [];
    for (const seed of seeds) {
      try {
        const self = await probe.request(podEndpoint(seed), "GET", "/status");
        if (identityOf(self.body)?.nodeId === ref) return [podEndpoint(seed)];
        const r = await probe.request(podEndpoint(seed), "GET", "/v1/members");
        if (r.status !== 200 || !Array.isArray(r.body)) {
          problems.push(`${seed}: /v1/members answered ${r.status}`);
          continue;
        }
        const m = (r.body as Array<{ node?: string; addr?: string }>).find((x) => x.node === ref);
        const host = m?.addr ? m.addr.slice(0, m.addr.lastIndexOf(":")) : "";
        if (host) return [`http://${host}:${o.adminPort}`];
        problems.push(`${seed}: not a member it knows`);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    throw new NodeUnreachableError(`node ${ref} not found through ${problems.join("; ")}`);
  };
  return new HttpNodeApi(candidates, o.timeoutMs);
}

function identityOf(body: unknown): { nodeId: string; name: string } | null {
  const id = (body as { identity?: { nodeId?: unknown; name?: unknown } } | null)?.identity;
  if (!id || typeof id.nodeId !== "string") return null;
  return { nodeId: id.nodeId, name: typeof id.name === "string" ? id.name : "" };
}

// ---- reconcile ----

/** The fields of `GET /v1/ram/vms/{id}` used here. */
export interface ReplicaStatus {
  role: "primary" | "backup" | string;
  term: number;
  primary: string | null;
  epoch: number;
  bufferLevel: number | null;
  running: boolean;
  backups: string[];
  inconsistentBackups?: string[];
  /** A backup's image is a complete epoch (false while it awaits a full resync). */
  imageValid: boolean;
}

export interface Action {
  node: string;
  nodeId: string;
  action: "create";
  role: "primary" | "backup";
  outcome: "created" | "failed";
  error?: string;
}

export interface ReconcileResult {
  status: VMReplicationStatus;
  actions: Action[];
}

interface NodeView {
  ref: string;
  /** Where the spec names it: `spec.primaryNode` or `spec.backupNodes[i]`. */
  field: string;
  role: "primary" | "backup";
  endpoint?: string;
  nodeId?: string;
  /** The replica: its status, null when the node has none (404), undefined when unknown. */
  replica?: ReplicaStatus | null;
  error?: string;
}

/** RFC 3339 at second precision, as Kubernetes writes `metav1.Time`. */
export function kubeTime(now: Date | number | string): string {
  return new Date(now).toISOString().replace(/\.\d+Z$/, "Z");
}

/**
 * Sets `next` in `conditions` the Kubernetes way: `lastTransitionTime` is kept while the
 * condition's status stays the same (reason, message and generation are updated).
 */
export function setCondition(
  conditions: readonly Condition[],
  next: Omit<Condition, "lastTransitionTime">,
  now: Date | number | string,
): Condition[] {
  const prev = conditions.find((c) => c.type === next.type);
  const lastTransitionTime = prev && prev.status === next.status && prev.lastTransitionTime
    ? prev.lastTransitionTime
    : kubeTime(now);
  const c: Condition = { ...next, lastTransitionTime };
  return prev ? conditions.map((x) => (x.type === next.type ? c : x)) : [...conditions, c];
}

const ORDER: ConditionType[] = ["Valid", "Ready", "Degraded"];

function errorText(body: unknown): string {
  const e = (body as { error?: unknown } | null)?.error;
  return typeof e === "string" ? e : typeof body === "string" ? body : JSON.stringify(body);
}

function asReplica(body: unknown): ReplicaStatus | undefined {
  const b = body as Partial<ReplicaStatus> | null;
  if (!b || typeof b.role !== "string" || typeof b.term !== "number") return undefined;
  return {
    role: b.role,
    term: b.term,
    primary: typeof b.primary === "string" ? b.primary : null,
    epoch: typeof b.epoch === "number" ? b.epoch : 0,
    bufferLevel: typeof b.bufferLevel === "number" ? b.bufferLevel : null,
    running: b.running === true,
    backups: Array.isArray(b.backups) ? b.backups.filter((x) => typeof x === "string") : [],
    inconsistentBackups: Array.isArray(b.inconsistentBackups) ? b.inconsistentBackups : [],
    imageValid: b.imageValid !== false,
  };
}

async function readReplica(
  nodes: NodeApi,
  endpoint: string,
  vmId: string,
): Promise<ReplicaStatus | null> {
  const r = await nodes.request(endpoint, "GET", `/v1/ram/vms/${encodeURIComponent(vmId)}`);
  if (r.status === 404) return null;
  const replica = r.status === 200 ? asReplica(r.body) : undefined;
  if (!replica) {
    throw new Error(`GET /v1/ram/vms/${vmId}: ${r.status} ${errorText(r.body)}`);
  }
  return replica;
}

/** Resolves a node, its id and its replica; failures land in `view.error`. */
async function observe(nodes: NodeApi, view: NodeView, vmId: string): Promise<void> {
  try {
    view.endpoint = await nodes.endpoint(view.ref);
    const st = await nodes.request(view.endpoint, "GET", "/status");
    const id = identityOf(st.body);
    if (st.status !== 200 || !id) {
      throw new Error(`GET /status: ${st.status} ${errorText(st.body)}`);
    }
    if (isNodeId(view.ref) && id.nodeId !== view.ref) {
      throw new Error(`${view.endpoint} is node ${id.nodeId}, not ${view.ref}`);
    }
    view.nodeId = id.nodeId;
    view.replica = await readReplica(nodes, view.endpoint, vmId);
  } catch (e) {
    view.error = (e as Error).message;
  }
}

/** One reconcile pass of `cr` against the nodes; `now` stamps condition transitions. */
export async function reconcile(
  cr: VMReplication,
  nodes: NodeApi,
  now: Date | number | string,
): Promise<ReconcileResult> {
  const generation = cr.metadata.generation;
  const prev = cr.status ?? {};
  let conditions: Condition[] = Array.isArray(prev.conditions) ? [...prev.conditions] : [];
  const set = (type: ConditionType, status: ConditionStatus, reason: string, message: string) => {
    conditions = setCondition(
      conditions,
      {
        type,
        status,
        reason,
        message,
        ...(generation !== undefined ? { observedGeneration: generation } : {}),
      },
      now,
    );
  };
  const finish = (fields: Omit<VMReplicationStatus, "conditions">): VMReplicationStatus => {
    const sorted = [...conditions].sort((a, b) => ORDER.indexOf(a.type) - ORDER.indexOf(b.type));
    return {
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      ...fields,
      conditions: sorted,
    };
  };
  const rejected = (message: string): ReconcileResult => {
    set("Valid", "False", "InvalidSpec", message);
    set("Ready", "False", "InvalidSpec", "the spec is invalid: see the Valid condition");
    set("Degraded", "Unknown", "InvalidSpec", "the spec is invalid: nodes not contacted");
    return { status: finish({}), actions: [] };
  };

  // 1. The spec.
  const parsed = vmReplicationSpecSchema.safeParse(cr.spec);
  if (!parsed.success) return rejected(formatZodError(parsed.error as z.ZodError, "spec"));
  const spec = parsed.data;
  const repeated = spec.backupNodes.findIndex((b, i) =>
    b === spec.primaryNode || spec.backupNodes.indexOf(b) !== i
  );
  if (repeated >= 0) {
    return rejected(`spec.backupNodes[${repeated}]: names ${spec.backupNodes[repeated]} twice`);
  }
  set("Valid", "True", "SpecValid", "the spec is valid");

  // 2. The nodes and their replicas.
  const views: NodeView[] = [
    { ref: spec.primaryNode, field: "spec.primaryNode", role: "primary" },
    ...spec.backupNodes.map((ref, i) => ({
      ref,
      field: `spec.backupNodes[${i}]`,
      role: "backup" as const,
    })),
  ];
  await Promise.all(views.map((v) => observe(nodes, v, spec.vmId)));
  const byId = new Map<string, NodeView>();
  for (const v of views) {
    if (!v.nodeId) continue;
    const other = byId.get(v.nodeId);
    if (other) {
      return rejected(`${v.field}: is node ${v.nodeId}, the same node as ${other.field}`);
    }
    byId.set(v.nodeId, v);
  }

  // 3. Creation: the backups first, then the primary; never over an existing replica.
  const actions: Action[] = [];
  const unreachable = views.filter((v) => v.error !== undefined);
  const [primaryView, ...backupViews] = views;
  const moved = views.some((v) =>
    v.replica && (v.replica.term > 1 || v.replica.primary !== primaryView.nodeId)
  );
  if (unreachable.length === 0 && !moved) {
    const ids = {
      primary: primaryView.nodeId!,
      backups: backupViews.map((v) => v.nodeId!),
    };
    // A backup added while the primary already runs the VM holds nothing of it yet: it waits
    // for a full resync (synced: false) instead of claiming the image at epoch 0.
    const late = primaryView.replica !== null;
    const create = async (v: NodeView) => {
      const body = {
        id: spec.vmId,
        memoryMiB: spec.memoryMiB,
        role: v.role,
        primary: ids.primary,
        backups: ids.backups,
        term: 1,
        synced: v.role === "primary" || !late,
      };
      const action: Action = {
        node: v.ref,
        nodeId: v.nodeId!,
        action: "create",
        role: v.role,
        outcome: "created",
      };
      try {
        const r = await nodes.request(v.endpoint!, "POST", "/v1/ram/vms", body);
        if (r.status === 201) {
          // The reply is the replicator's view; the node's status says more (imageValid).
          v.replica = await readReplica(nodes, v.endpoint!, spec.vmId)
            .catch(() => asReplica(r.body) ?? null);
        } else if (r.status === 409) {
          // Created meanwhile (another pass or by hand): read it, do not count it as ours.
          v.replica = await readReplica(nodes, v.endpoint!, spec.vmId);
          return;
        } else {
          action.outcome = "failed";
          action.error = `${r.status} ${errorText(r.body)}`;
        }
      } catch (e) {
        action.outcome = "failed";
        action.error = (e as Error).message;
      }
      actions.push(action);
    };
    for (const v of backupViews) if (v.replica === null) await create(v); // in spec order
    if (primaryView.replica === null && backupViews.every((v) => v.replica)) {
      await create(primaryView);
    }
  }
  const failed = actions.filter((a) => a.outcome === "failed");

  // 4. The current primary: the spec's, or the one the replicas name after a failover.
  let primary: { ref: string; replica: ReplicaStatus } | undefined;
  const claims = views
    .filter((v) => v.replica?.role === "primary")
    .sort((a, b) => b.replica!.term - a.replica!.term);
  if (claims[0]) primary = { ref: claims[0].ref, replica: claims[0].replica! };
  const named = views
    .filter((v) => v.replica?.primary)
    .sort((a, b) => b.replica!.term - a.replica!.term)[0]?.replica;
  if (
    named?.primary && (!primary || named.term > primary.replica.term) &&
    !byId.has(named.primary)
  ) {
    // A primary outside the spec (a migration target): ask it.
    try {
      const ep = await nodes.endpoint(named.primary);
      const r = await readReplica(nodes, ep, spec.vmId);
      if (r?.role === "primary") primary = { ref: named.primary, replica: r };
    } catch { /* not reachable: no primary known */ }
  }

  // 5. Conditions.
  const present = (id: string) => {
    const v = byId.get(id);
    return v ? !!v.replica && v.error === undefined : undefined;
  };
  const missingBackups = primary
    ? primary.replica.backups.filter((id) => present(id) !== true)
    : backupViews.filter((v) => !v.replica).map((v) => v.nodeId ?? v.ref);
  const name = (id: string) => byId.get(id)?.ref ?? id;
  // Behind by the primary's account, or by their own (an image awaiting its full resync).
  const resyncing = primary
    ? primary.replica.backups.filter((id) =>
      (primary!.replica.inconsistentBackups ?? []).includes(id) ||
      byId.get(id)?.replica?.imageValid === false
    )
    : [];
  const list = (xs: string[]) => xs.join(", ");

  if (unreachable.length > 0) {
    set(
      "Degraded",
      "True",
      "NodeUnreachable",
      unreachable.map((v) => `${v.field} (${v.ref}): ${v.error}`).join("; "),
    );
  } else if (failed.length > 0) {
    set(
      "Degraded",
      "True",
      "CreateFailed",
      failed.map((a) => `creating the ${a.role} on ${a.node}: ${a.error}`).join("; "),
    );
  } else if (moved && views.some((v) => !v.replica)) {
    const gone = views.filter((v) => !v.replica).map((v) => v.ref);
    set(
      "Degraded",
      "True",
      "ReplicaMissing",
      `no replica on ${list(gone)}; not recreated: the VM has moved on (term ${
        primary?.replica.term ?? "?"
      })`,
    );
  } else if (primary && missingBackups.length > 0) {
    set(
      "Degraded",
      "True",
      "BackupMissing",
      `backups without the VM: ${list(missingBackups.map(name))}`,
    );
  } else {
    set("Degraded", "False", "AllReplicasPresent", `every node holds a replica of ${spec.vmId}`);
  }

  if (!primary) {
    const why = unreachable.length > 0
      ? `no primary found (unreachable: ${list(unreachable.map((v) => v.ref))})`
      : views.some((v) => !v.replica)
      ? "replicas are still being created"
      : "no replica is primary (an election may be under way)";
    set("Ready", "False", unreachable.length > 0 ? "NodeUnreachable" : "NoPrimary", why);
  } else if (!primary.replica.running) {
    set(
      "Ready",
      "False",
      "PrimaryNotRunning",
      `${primary.ref} is primary (term ${primary.replica.term}) but does not run the VM yet ` +
        "(no lease, paused or migrating)",
    );
  } else if (missingBackups.length > 0 || primary.replica.backups.length === 0) {
    set(
      "Ready",
      "False",
      "BackupMissing",
      missingBackups.length > 0
        ? `backups without the VM: ${list(missingBackups.map(name))}`
        : `${primary.ref} has no backups`,
    );
  } else if (resyncing.length > 0) {
    set(
      "Ready",
      "False",
      "BackupResyncing",
      `backups catching up (a full resync or dropped epochs): ${list(resyncing.map(name))}`,
    );
  } else {
    set(
      "Ready",
      "True",
      "Replicating",
      `${primary.ref} runs ${spec.vmId} (term ${primary.replica.term}) and replicates to ${
        list(primary.replica.backups.map(name))
      }`,
    );
  }

  const fields: Omit<VMReplicationStatus, "conditions"> = {};
  if (primary) {
    fields.primary = primary.ref;
    fields.term = primary.replica.term;
    fields.epoch = primary.replica.epoch;
    if (primary.replica.bufferLevel !== null) fields.bufferLevel = primary.replica.bufferLevel;
  }
  return { status: finish(fields), actions };
}
