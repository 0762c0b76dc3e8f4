/**
 * The VMReplication controller: lists the resources through the Kubernetes API, reconciles
 * each against the nodes (reconcile.ts) and writes the status through the status subresource
 * (`PATCH .../vmreplications/{name}/status`, `application/merge-patch+json`, only when it
 * changed), every `--resync` seconds and, between passes, right after a watch event that
 * changes a spec (or adds a resource). Logs are JSON lines on stdout.
 *
 *   deno task k8s controller [--namespace NS | --all-namespaces] [--resync S] [--once] ...
 */
import { parseArgs } from "node:util";
import { GROUP, PLURAL, VERSION } from "./crd.ts";
import {
  KubeApiError,
  KubeClient,
  type KubeConfig,
  KubeConfigError,
  resolveKubeConfig,
} from "./kube.ts";
import {
  clusterNodeApi,
  type NodeApi,
  reconcile,
  staticNodeApi,
  type VMReplication,
  type VMReplicationStatus,
} from "./reconcile.ts";

// ---- logs ----

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: LogLevel[] = ["debug", "info", "warn", "error"];

export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
}

/** JSON lines: `{"ts", "level", "event", ...fields}`. */
export function jsonLogger(
  min: LogLevel = "info",
  write: (line: string) => void = (l) => console.log(l),
): Logger {
  return {
    log(level, event, fields = {}) {
      if (LEVELS.indexOf(level) < LEVELS.indexOf(min)) return;
      write(JSON.stringify({ ts: new Date().toISOString(), level, event, ...fields }));
    },
  };
}

// ---- paths ----

export function resourcesPath(namespace: string | null): string {
  return namespace === null
    ? `/apis/${GROUP}/${VERSION}/${PLURAL}`
    : `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(namespace)}/${PLURAL}`;
}

export function statusPath(namespace: string, name: string): string {
  return `${resourcesPath(namespace)}/${encodeURIComponent(name)}/status`;
}

/**
 * The merge patch that turns status `from` into `to`: `to`'s fields, and null for the
 * top-level fields `to` no longer has (a merge patch replaces arrays whole).
 */
export function statusPatch(
  from: Partial<VMReplicationStatus> | undefined,
  to: VMReplicationStatus,
): Record<string, unknown> {
  const patch: Record<string, unknown> = { ...to };
  for (const k of Object.keys(from ?? {})) if (!(k in to)) patch[k] = null;
  return patch;
}

function canonical(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      x && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1)))
        : x,
  );
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((r) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      r();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

// ---- the controller ----

export interface ControllerOptions {
  kube: KubeClient;
  /** null: every namespace. */
  namespace: string | null;
  /** The node API for the resources of a namespace. */
  nodes: (namespace: string) => NodeApi;
  log: Logger;
  now?: () => Date;
  /** Resources reconciled at once. */
  concurrency?: number;
}

export interface PassResult {
  listed: number;
  patched: number;
  unchanged: number;
  failed: number;
  /** The status each resource got (namespace/name), patched or not. */
  statuses: Map<string, VMReplicationStatus>;
}

export class Controller {
  private readonly nodeApis = new Map<string, NodeApi>();

  constructor(private readonly o: ControllerOptions) {}

  private nodes(namespace: string): NodeApi {
    let api = this.nodeApis.get(namespace);
    if (!api) this.nodeApis.set(namespace, api = this.o.nodes(namespace));
    return api;
  }

  /** Lists the resources; throws (KubeApiError) when the API refuses. */
  async list(): Promise<{ items: VMReplication[]; resourceVersion?: string }> {
    const list = await this.o.kube.json<
      { items?: VMReplication[]; metadata?: { resourceVersion?: string } }
    >("GET", resourcesPath(this.o.namespace));
    return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion };
  }

  /** Reconciles one resource and writes its status if it changed; true when it worked. */
  async reconcileOne(cr: VMReplication, into?: PassResult): Promise<boolean> {
    const { log } = this.o;
    const ns = cr.metadata.namespace ?? this.o.namespace ?? "default";
    const ref = { namespace: ns, name: cr.metadata.name, generation: cr.metadata.generation };
    let status: VMReplicationStatus;
    try {
      const r = await reconcile(cr, this.nodes(ns), (this.o.now ?? (() => new Date()))());
      status = r.status;
      for (const a of r.actions) {
        log.log(a.outcome === "created" ? "info" : "warn", "node_action", { ...ref, ...a });
      }
    } catch (e) {
      log.log("error", "reconcile_failed", { ...ref, error: (e as Error).message });
      if (into) into.failed++;
      return false;
    }
    into?.statuses.set(`${ns}/${cr.metadata.name}`, status);
    const conditions = Object.fromEntries(status.conditions.map((c) => [c.type, c.status]));
    if (canonical(cr.status ?? {}) === canonical(status)) {
      log.log("debug", "status_unchanged", { ...ref, conditions });
      if (into) into.unchanged++;
      return true;
    }
    try {
      await this.o.kube.json(
        "PATCH",
        statusPath(ns, cr.metadata.name),
        { status: statusPatch(cr.status, status) },
        "application/merge-patch+json",
      );
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) {
        log.log("info", "resource_gone", { ...ref }); // deleted since the list: nothing to do
        return true;
      }
      log.log("error", "status_patch_failed", { ...ref, error: (e as Error).message });
      if (into) into.failed++;
      return false;
    }
    const changed = status.conditions
      .filter((c) => cr.status?.conditions?.find((p) => p.type === c.type)?.status !== c.status)
      .map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message }));
    log.log("info", "status_updated", {
      ...ref,
      primary: status.primary,
      term: status.term,
      conditions,
      transitions: changed,
    });
    if (into) into.patched++;
    return true;
  }

  /** One pass over every resource. Throws when listing fails. */
  async pass(): Promise<PassResult> {
    const { items } = await this.list();
    const result: PassResult = {
      listed: items.length,
      patched: 0,
      unchanged: 0,
      failed: 0,
      statuses: new Map(),
    };
    const queue = [...items];
    const worker = async () => {
      for (let cr = queue.shift(); cr; cr = queue.shift()) await this.reconcileOne(cr, result);
    };
    await Promise.all(Array.from({ length: this.o.concurrency ?? 4 }, worker));
    const { statuses: _s, ...counts } = result;
    this.o.log.log("info", "pass", counts);
    return result;
  }

  /**
   * Passes every `resyncMs` until `signal` aborts; with `watch`, a watch on the resources
   * starts a pass early when a spec changes or a resource is added.
   */
  async run(o: { resyncMs: number; signal: AbortSignal; watch?: boolean }): Promise<void> {
    let wake: (() => void) | null = null;
    let pending = false; // a kick during a pass: pass again at once
    const kick = () => {
      pending = true;
      wake?.();
    };
    o.signal.addEventListener("abort", kick);
    const watcher = o.watch ? this.watchLoop(o.signal, kick) : Promise.resolve();
    while (!o.signal.aborted) {
      pending = false;
      try {
        await this.pass();
      } catch (e) {
        this.o.log.log("error", "list_failed", { error: (e as Error).message });
      }
      if (o.signal.aborted) break;
      if (pending) continue;
      await new Promise<void>((r) => {
        const t = setTimeout(r, o.resyncMs);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
      wake = null;
    }
    o.signal.removeEventListener("abort", kick);
    await watcher;
  }

  private async watchLoop(signal: AbortSignal, kick: () => void): Promise<void> {
    const seen = new Map<string, number | undefined>(); // uid -> generation
    while (!signal.aborted) {
      try {
        const { items, resourceVersion } = await this.list();
        for (const i of items) seen.set(i.metadata.uid ?? i.metadata.name, i.metadata.generation);
        await this.o.kube.watch(
          `${resourcesPath(this.o.namespace)}?watch=1&allowWatchBookmarks=true` +
            (resourceVersion ? `&resourceVersion=${encodeURIComponent(resourceVersion)}` : ""),
          signal,
          (e) => {
            const ev = e as WatchEvent;
            if (ev.type === "ERROR") throw new Error(`watch: ${JSON.stringify(ev.object)}`);
            const m = ev.object?.metadata;
            if (!m || ev.type === "BOOKMARK") return;
            const key = m.uid ?? m.name;
            if (ev.type === "DELETED") return void seen.delete(key);
            const known = seen.has(key), before = seen.get(key);
            seen.set(key, m.generation);
            // Status writes (ours) keep the generation: only new resources and spec changes.
            if (!known || before !== m.generation) {
              this.o.log.log("debug", "watch_event", { type: ev.type, name: m.name });
              kick();
            }
          },
        );
        if (!signal.aborted) this.o.log.log("debug", "watch_ended", {});
      } catch (e) {
        if (signal.aborted) break;
        this.o.log.log("warn", "watch_restart", { error: (e as Error).message });
        await sleep(2000, signal);
      }
    }
  }
}

interface WatchEvent {
  type: string;
  object?: { metadata?: { name: string; uid?: string; generation?: number } };
}

// ---- CLI ----

export const CONTROLLER_HELP = `VMReplication controller

Usage:
  deno task k8s controller [--namespace NS | --all-namespaces] [--resync S] [--once]
                           [--no-watch] [--kubeconfig FILE] [--context NAME]
                           [--node-service NAME] [--node-namespace NS] [--admin-port PORT]
                           [--node-endpoints HOST:PORT,...] [--log-level LEVEL]

Reconciles every VMReplication (mycelium.network/v1) with the nodes' RAM API
(POST/GET /v1/ram/vms) and writes its status (primary, term, epoch, bufferLevel; conditions
Valid, Ready, Degraded) through the status subresource.

Options:
  --namespace NS       the resources of NS (default: the pod's namespace in a cluster, the
                       kubeconfig context's, else "default")
  --all-namespaces,-A  the resources of every namespace (needs a ClusterRole)
  --resync S           seconds between passes (default 10)
  --once               one pass, then exit (status 1 if a resource could not be handled)
  --no-watch           passes on the resync period only (no watch)
  --kubeconfig FILE    instead of KUBECONFIG / the in-cluster service account / ~/.kube/config
  --context NAME       the kubeconfig context (default: its current-context)
  --node-service NAME  the nodes' headless Service (default sclerotia): a pod name P is
                       reached at http://P.NAME.<ns>.svc:PORT
  --node-namespace NS  the nodes' namespace (default: the resource's)
  --admin-port PORT    the nodes' admin port (default 8080)
  --node-endpoints L   out of a cluster: the nodes' admin addresses (host:port, comma-separated);
                       a node reference is matched by its /status (id or identity name)
  --log-level LEVEL    debug, info (default), warn or error

Credentials: --kubeconfig or KUBECONFIG; else in a pod, KUBERNETES_SERVICE_HOST/PORT with the
service account in ${"/var/run/secrets/kubernetes.io/serviceaccount"}; else ~/.kube/config.
`;

export async function main(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      allowPositionals: false,
      options: {
        namespace: { type: "string", short: "n" },
        "all-namespaces": { type: "boolean", short: "A", default: false },
        resync: { type: "string", default: "10" },
        once: { type: "boolean", default: false },
        "no-watch": { type: "boolean", default: false },
        kubeconfig: { type: "string" },
        context: { type: "string" },
        "node-service": { type: "string", default: "sclerotia" },
        "node-namespace": { type: "string" },
        "admin-port": { type: "string", default: "8080" },
        "node-endpoints": { type: "string" },
        "log-level": { type: "string", default: "info" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${CONTROLLER_HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(CONTROLLER_HELP);
    return 0;
  }
  const resync = Number(values.resync);
  const port = Number(values["admin-port"]);
  const level = values["log-level"] as LogLevel;
  const problems: string[] = [];
  if (!(resync > 0)) problems.push(`--resync: expected seconds > 0, got "${values.resync}"`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    problems.push(`--admin-port: expected a port, got "${values["admin-port"]}"`);
  }
  if (!LEVELS.includes(level)) problems.push(`--log-level: expected one of ${LEVELS.join(", ")}`);
  if (values.namespace && values["all-namespaces"]) {
    problems.push("--namespace and --all-namespaces exclude each other");
  }
  if (problems.length) {
    console.error(problems.join("\n"));
    return 2;
  }
  const log = jsonLogger(level);
  let kubeConfig: KubeConfig;
  try {
    kubeConfig = resolveKubeConfig({
      kubeconfig: values.kubeconfig,
      context: values.context,
      env: Deno.env.toObject(),
    });
  } catch (e) {
    if (!(e instanceof KubeConfigError)) throw e;
    log.log("error", "no_credentials", { error: e.message });
    console.error(`controller: ${e.message}`);
    return 2;
  }
  const namespace = values["all-namespaces"]
    ? null
    : values.namespace ?? kubeConfig.namespace ?? "default";
  const endpoints = values["node-endpoints"]?.split(",").map((s) => s.trim()).filter(Boolean);
  const shared = endpoints?.length ? staticNodeApi(endpoints) : undefined;
  const controller = new Controller({
    kube: new KubeClient(kubeConfig),
    namespace,
    log,
    nodes: (ns) =>
      shared ?? clusterNodeApi({
        namespace: values["node-namespace"] ?? ns,
        service: values["node-service"],
        adminPort: port,
      }),
  });
  log.log("info", "controller_started", {
    source: kubeConfig.source,
    server: kubeConfig.server,
    namespace: namespace ?? "(all)",
    resyncS: resync,
    once: values.once,
    nodes: endpoints ?? `${values["node-service"]} pods, port ${port}`,
  });
  if (values.once) {
    try {
      const r = await controller.pass();
      return r.failed > 0 ? 1 : 0;
    } catch (e) {
      log.log("error", "list_failed", { error: (e as Error).message });
      return 1;
    }
  }
  const stop = new AbortController();
  const onSignal = () => {
    log.log("info", "stopping", {});
    stop.abort();
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    await controller.run({
      resyncMs: resync * 1000,
      signal: stop.signal,
      watch: !values["no-watch"],
    });
  } finally {
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
