/**
 * A small Kubernetes API client for the controller: where the API server is and how to
 * authenticate, from a kubeconfig file or from inside a pod, and JSON requests over
 * node:https (the cluster's CA, a bearer token or a client certificate).
 *
 * Credentials, first match wins:
 * 1. `--kubeconfig FILE` or `KUBECONFIG` (several files separated by ':', merged the way kubectl
 *    does: the first file to define a name or the current context wins);
 * 2. in a pod: `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` with the service account's
 *    token, CA and namespace in /var/run/secrets/kubernetes.io/serviceaccount (the token is
 *    re-read on every request: projected tokens rotate);
 * 3. `~/.kube/config`.
 *
 * A kubeconfig user may have a `token`, a `tokenFile`, `client-certificate(-data)` with
 * `client-key(-data)`, `username`/`password`, or an `exec` credential plugin
 * (client.authentication.k8s.io ExecCredential: its token or client certificate, cached until
 * it expires). Relative file paths are relative to the kubeconfig that names them. Every
 * problem names the file and the field.
 */
import http from "node:http";
import https from "node:https";
import { Buffer } from "node:buffer";
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import YAML from "yaml";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export class KubeConfigError extends Error {
  override name = "KubeConfigError";
}

export interface ExecConfig {
  command: string;
  args: string[];
  env: Record<string, string>;
  /** The kubeconfig's directory: a relative command is looked up there first. */
  dir: string;
}

export interface KubeConfig {
  /** `https://host:port` (or `http://` for `kubectl proxy`). */
  server: string;
  /** PEM of the CA that signed the server's certificate (none: the system's roots). */
  ca?: string;
  insecureSkipTlsVerify?: boolean;
  /** TLS server name to verify instead of the server URL's host. */
  tlsServerName?: string;
  token?: string;
  /** Re-read on each request. */
  tokenFile?: string;
  cert?: string;
  key?: string;
  basic?: { username: string; password: string };
  exec?: ExecConfig;
  /** The default namespace: the context's, or the pod's. */
  namespace?: string;
  /** Where it came from, for logs: `in-cluster` or `kubeconfig FILE (context NAME)`. */
  source: string;
}

// ---- kubeconfig ----

type Named<T> = { name: string; value: T; file: string };
type Obj = Record<string, unknown>;

interface LoadedFile {
  path: string;
  doc: Obj;
}

const isObj = (v: unknown): v is Obj => !!v && typeof v === "object" && !Array.isArray(v);

function namedList<T>(f: LoadedFile, key: string, inner: string): Named<T>[] {
  const list = f.doc[key];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new KubeConfigError(`${f.path}: ${key}: expected a list`);
  return list.map((e, i) => {
    if (!isObj(e) || typeof e.name !== "string" || !e.name) {
      throw new KubeConfigError(`${f.path}: ${key}[${i}].name: missing`);
    }
    const value = e[inner] ?? {};
    if (!isObj(value)) {
      throw new KubeConfigError(`${f.path}: ${key}[name=${e.name}].${inner}: expected a mapping`);
    }
    return { name: e.name, value: value as T, file: f.path };
  });
}

/** First definition of each name wins (kubectl's merge rule). */
function merge<T>(files: LoadedFile[], key: string, inner: string): Map<string, Named<T>> {
  const out = new Map<string, Named<T>>();
  for (const f of files) {
    for (const n of namedList<T>(f, key, inner)) if (!out.has(n.name)) out.set(n.name, n);
  }
  return out;
}

function parseFile(path: string, text: string): LoadedFile {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new KubeConfigError(`${path}: not YAML: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isObj(doc)) throw new KubeConfigError(`${path}: expected a kubeconfig mapping`);
  return { path, doc };
}

export interface KubeconfigSource {
  path: string;
  text: string;
}

export interface ParseOptions {
  /** Use this context instead of `current-context`. */
  context?: string;
  /** Reads a file a kubeconfig names (certificate-authority, client-key, tokenFile, ...). */
  readFile?: (path: string) => string;
}

/**
 * The connection a kubeconfig describes (its current context, or `context`). `sources` are
 * merged in order; errors name the file and the field.
 */
export function parseKubeconfig(sources: KubeconfigSource[], o: ParseOptions = {}): KubeConfig {
  const read = o.readFile ?? ((p: string) => readFileSync(p, "utf8"));
  const files = sources.map((s) => parseFile(s.path, s.text));
  const where = files.map((f) => f.path).join(":") || "(no kubeconfig)";
  const current = o.context ??
    files.map((f) => f.doc["current-context"]).find((c) => typeof c === "string" && c !== "");
  if (typeof current !== "string") {
    throw new KubeConfigError(`${where}: current-context: not set (pick one with --context)`);
  }
  const contexts = merge<Obj>(files, "contexts", "context");
  const ctx = contexts.get(current);
  if (!ctx) {
    const known = [...contexts.keys()];
    throw new KubeConfigError(
      `${where}: context "${current}" is not defined (contexts: ${known.join(", ") || "none"})`,
    );
  }
  const at = (field: string) => `${ctx.file}: contexts[name=${current}].context.${field}`;
  const clusterName = ctx.value.cluster, userName = ctx.value.user;
  if (typeof clusterName !== "string" || !clusterName) {
    throw new KubeConfigError(`${at("cluster")}: missing`);
  }
  const cluster = merge<Obj>(files, "clusters", "cluster").get(clusterName);
  if (!cluster) {
    throw new KubeConfigError(`${at("cluster")}: names "${clusterName}", which is not defined`);
  }
  const cf = (field: string) => `${cluster.file}: clusters[name=${clusterName}].cluster.${field}`;
  const c = cluster.value;
  if (typeof c.server !== "string" || !c.server) {
    throw new KubeConfigError(`${cf("server")}: missing`);
  }
  let server: URL;
  try {
    server = new URL(c.server);
  } catch {
    throw new KubeConfigError(`${cf("server")}: not a URL: ${c.server}`);
  }
  if (server.protocol !== "https:" && server.protocol !== "http:") {
    throw new KubeConfigError(`${cf("server")}: expected https:// or http://, got ${c.server}`);
  }
  const rel = (file: string, p: string) => (isAbsolute(p) ? p : resolve(dirname(file), p));
  const fileOrData = (
    obj: Obj,
    file: string,
    key: string,
    field: (k: string) => string,
  ): string | undefined => {
    const data = obj[`${key}-data`];
    if (typeof data === "string" && data) {
      const text = Buffer.from(data, "base64").toString("utf8");
      if (!text.includes("-----BEGIN")) {
        throw new KubeConfigError(`${field(`${key}-data`)}: not base64 of a PEM block`);
      }
      return text;
    }
    const path = obj[key];
    if (typeof path === "string" && path) {
      try {
        return read(rel(file, path));
      } catch (e) {
        throw new KubeConfigError(`${field(key)}: cannot read ${path}: ${(e as Error).message}`);
      }
    }
    return undefined;
  };

  const out: KubeConfig = {
    server: server.toString().replace(/\/$/, ""),
    source: `kubeconfig ${where} (context ${current})`,
  };
  out.ca = fileOrData(c, cluster.file, "certificate-authority", cf);
  if (c["insecure-skip-tls-verify"] === true) out.insecureSkipTlsVerify = true;
  if (typeof c["tls-server-name"] === "string") out.tlsServerName = c["tls-server-name"];
  if (typeof ctx.value.namespace === "string" && ctx.value.namespace) {
    out.namespace = ctx.value.namespace;
  }

  if (typeof userName !== "string" || !userName) {
    throw new KubeConfigError(`${at("user")}: missing`);
  }
  const user = merge<Obj>(files, "users", "user").get(userName);
  if (!user) throw new KubeConfigError(`${at("user")}: names "${userName}", which is not defined`);
  const uf = (field: string) => `${user.file}: users[name=${userName}].user.${field}`;
  const u = user.value;
  if (u["auth-provider"] !== undefined) {
    throw new KubeConfigError(
      `${uf("auth-provider")}: legacy auth-provider plugins are not supported; use a token, ` +
        "a client certificate or an exec plugin",
    );
  }
  if (typeof u.token === "string" && u.token) out.token = u.token;
  else if (typeof u.tokenFile === "string" && u.tokenFile) {
    out.tokenFile = rel(user.file, u.tokenFile);
  }
  const cert = fileOrData(u, user.file, "client-certificate", uf);
  const key = fileOrData(u, user.file, "client-key", uf);
  if (cert && !key) {
    throw new KubeConfigError(
      `${uf("client-key-data")}: missing (client-certificate needs client-key or client-key-data)`,
    );
  }
  if (key && !cert) {
    throw new KubeConfigError(
      `${uf("client-certificate-data")}: missing (client-key needs client-certificate or ` +
        "client-certificate-data)",
    );
  }
  if (cert && key) Object.assign(out, { cert, key });
  if (typeof u.username === "string" && u.username) {
    if (typeof u.password !== "string") {
      throw new KubeConfigError(`${uf("password")}: missing (username needs it)`);
    }
    out.basic = { username: u.username, password: u.password };
  }
  if (u.exec !== undefined) {
    const e = u.exec;
    if (!isObj(e) || typeof e.command !== "string" || !e.command) {
      throw new KubeConfigError(`${uf("exec.command")}: missing`);
    }
    const env: Record<string, string> = {};
    if (Array.isArray(e.env)) {
      for (const v of e.env) {
        if (isObj(v) && typeof v.name === "string") env[v.name] = String(v.value ?? "");
      }
    }
    out.exec = {
      command: e.command,
      args: Array.isArray(e.args) ? e.args.map(String) : [],
      env,
      dir: dirname(user.file),
    };
  }
  if (!out.token && !out.tokenFile && !out.cert && !out.basic && !out.exec) {
    throw new KubeConfigError(
      `${user.file}: users[name=${userName}].user: no credentials (expected token, tokenFile, ` +
        "client-certificate-data with client-key-data, username/password, or exec)",
    );
  }
  return out;
}

/** Reads and merges kubeconfig files (KUBECONFIG's ':'-separated list). */
export function loadKubeconfig(paths: string[], o: ParseOptions = {}): KubeConfig {
  const sources: KubeconfigSource[] = [];
  for (const p of paths) {
    if (!p) continue;
    try {
      sources.push({ path: p, text: readFileSync(p, "utf8") });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === "ENOENT" && paths.length > 1) continue; // kubectl skips missing ones
      throw new KubeConfigError(`kubeconfig ${p}: cannot read: ${err.message}`);
    }
  }
  if (sources.length === 0) {
    throw new KubeConfigError(`kubeconfig: none of ${paths.join(":")} exists`);
  }
  return parseKubeconfig(sources, o);
}

/** The pod's own connection: the API server's service and the service account. */
export function inClusterConfig(
  env: Record<string, string | undefined>,
  dir = SERVICE_ACCOUNT_DIR,
): KubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST, port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubeConfigError(
      "not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not both set",
    );
  }
  const tokenFile = join(dir, "token");
  if (!existsSync(tokenFile)) {
    throw new KubeConfigError(
      `in-cluster: ${tokenFile} does not exist (is a service account token mounted? ` +
        "automountServiceAccountToken may be false)",
    );
  }
  const caFile = join(dir, "ca.crt");
  let ca: string;
  try {
    ca = readFileSync(caFile, "utf8");
  } catch (e) {
    throw new KubeConfigError(`in-cluster: cannot read ${caFile}: ${(e as Error).message}`);
  }
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(dir, "namespace"), "utf8").trim() || undefined;
  } catch { /* optional */ }
  const h = host.includes(":") ? `[${host}]` : host; // IPv6
  return { server: `https://${h}:${port}`, ca, tokenFile, namespace, source: "in-cluster" };
}

export interface ResolveOptions {
  kubeconfig?: string;
  context?: string;
  env: Record<string, string | undefined>;
  serviceAccountDir?: string;
}

/** Finds the credentials (see the module doc); the error names everything it looked for. */
export function resolveKubeConfig(o: ResolveOptions): KubeConfig {
  const explicit = o.kubeconfig ?? o.env.KUBECONFIG;
  if (explicit) return loadKubeconfig(explicit.split(":"), { context: o.context });
  if (o.env.KUBERNETES_SERVICE_HOST) return inClusterConfig(o.env, o.serviceAccountDir);
  const home = o.env.HOME ? join(o.env.HOME, ".kube", "config") : undefined;
  if (home && existsSync(home)) return loadKubeconfig([home], { context: o.context });
  throw new KubeConfigError(
    "no Kubernetes credentials: KUBECONFIG is not set (nor --kubeconfig), this is not a pod " +
      `(KUBERNETES_SERVICE_HOST is not set), and ${home ?? "~/.kube/config"} does not exist`,
  );
}

// ---- requests ----

export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface KubeReply<T = unknown> {
  status: number;
  body: T;
}

interface ExecCredential {
  token?: string;
  cert?: string;
  key?: string;
  expires: number;
}

export class KubeClient {
  private execCred: ExecCredential | null = null;

  constructor(readonly config: KubeConfig, private readonly timeoutMs = 30_000) {}

  private async execCredential(): Promise<ExecCredential> {
    const e = this.config.exec!;
    if (this.execCred && Date.now() < this.execCred.expires - 30_000) return this.execCred;
    const local = join(e.dir, e.command);
    const command = !isAbsolute(e.command) && e.command.includes("/") ? local : e.command;
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(command, {
        args: e.args,
        env: {
          ...e.env,
          KUBERNETES_EXEC_INFO: JSON.stringify({
            apiVersion: "client.authentication.k8s.io/v1",
            kind: "ExecCredential",
            spec: { interactive: false },
          }),
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (err) {
      throw new KubeConfigError(`exec credential plugin ${e.command}: ${(err as Error).message}`);
    }
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) {
      const why = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
      throw new KubeConfigError(`exec credential plugin ${e.command} failed (${out.code}): ${why}`);
    }
    let status: Obj;
    try {
      const doc = JSON.parse(text);
      if (!isObj(doc) || !isObj(doc.status)) throw new Error("no status");
      status = doc.status;
    } catch (err) {
      throw new KubeConfigError(
        `exec credential plugin ${e.command}: expected an ExecCredential JSON with a status ` +
          `(${(err as Error).message})`,
      );
    }
    const cred: ExecCredential = {
      expires: typeof status.expirationTimestamp === "string"
        ? Date.parse(status.expirationTimestamp)
        : Infinity,
    };
    if (typeof status.token === "string") cred.token = status.token;
    if (typeof status.clientCertificateData === "string") {
      cred.cert = status.clientCertificateData;
      cred.key = typeof status.clientKeyData === "string" ? status.clientKeyData : undefined;
    }
    if (!cred.token && !(cred.cert && cred.key)) {
      throw new KubeConfigError(
        `exec credential plugin ${e.command}: its status has no token and no ` +
          "clientCertificateData/clientKeyData",
      );
    }
    this.execCred = cred;
    return cred;
  }

  /** The node:http(s) request options for a call: the URL, the TLS material, the auth. */
  private async prepare(
    method: string,
    path: string,
    body: unknown,
    contentType: string,
  ): Promise<{ mod: typeof https | typeof http; opts: https.RequestOptions; payload?: Buffer }> {
    const c = this.config;
    const url = new URL(c.server + path);
    const headers: Record<string, string> = { accept: "application/json" };
    let cert = c.cert, key = c.key, token = c.token;
    if (c.tokenFile) {
      try {
        token = readFileSync(c.tokenFile, "utf8").trim();
      } catch (e) {
        throw new KubeConfigError(`cannot read the token ${c.tokenFile}: ${(e as Error).message}`);
      }
    }
    if (c.exec && !token && !cert) {
      const x = await this.execCredential();
      token = x.token;
      if (x.cert && x.key) [cert, key] = [x.cert, x.key];
    }
    if (token) headers.authorization = `Bearer ${token}`;
    else if (c.basic) {
      headers.authorization = "Basic " +
        Buffer.from(`${c.basic.username}:${c.basic.password}`).toString("base64");
    }
    let payload: Buffer | undefined;
    if (body !== undefined) {
      payload = Buffer.from(JSON.stringify(body));
      headers["content-type"] = contentType;
      headers["content-length"] = String(payload.length);
    }
    const secure = url.protocol === "https:";
    const opts: https.RequestOptions = {
      method,
      host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: url.port || (secure ? 443 : 80),
      path: url.pathname + url.search,
      headers,
      ...(secure
        ? {
          ...(c.ca ? { ca: c.ca } : {}),
          ...(cert && key ? { cert, key } : {}),
          ...(c.tlsServerName ? { servername: c.tlsServerName } : {}),
          rejectUnauthorized: !c.insecureSkipTlsVerify,
        }
        : {}),
    };
    return { mod: secure ? https : http, opts, payload };
  }

  /** One request; the body is JSON-encoded; the reply parsed as JSON when it is. */
  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<KubeReply<T>> {
    const { mod, opts, payload } = await this.prepare(method, path, body, contentType);
    const what = `${method} ${this.config.server}${path}`;
    const { status, text } = await new Promise<{ status: number; text: string }>((ok, fail) => {
      const req = mod.request({ ...opts, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on(
          "end",
          () => ok({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", fail);
      });
      req.on("timeout", () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on("error", (e) => fail(new Error(`${what}: ${e.message}`)));
      req.end(payload);
    });
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch { /* keep the text */ }
    if (status === 401 && this.config.exec) this.execCred = null; // ask the plugin again
    return { status, body: parsed as T };
  }

  /**
   * A watch (`?watch=1`): calls `onEvent` for each JSON line until the server ends the stream
   * (resolves), `signal` aborts (resolves) or something fails (rejects; also when `onEvent`
   * throws).
   */
  async watch(
    path: string,
    signal: AbortSignal,
    onEvent: (event: { type: string; object?: unknown }) => void,
  ): Promise<void> {
    const { mod, opts } = await this.prepare("GET", path, undefined, "");
    return new Promise((ok, fail) => {
      const req = mod.request(opts, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return fail(
            new KubeApiError(res.statusCode ?? 0, "Watch", `watch ${path}: ${res.statusCode}`),
          );
        }
        let buf = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          buf += d;
          try {
            for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (line) onEvent(JSON.parse(line));
            }
          } catch (e) {
            req.destroy(e as Error);
          }
        });
        res.on("end", () => ok());
        res.on("error", (e) => (signal.aborted ? ok() : fail(e)));
      });
      const abort = () => req.destroy();
      signal.addEventListener("abort", abort, { once: true });
      req.on("error", (e) => (signal.aborted ? ok() : fail(e)));
      req.on("close", () => {
        signal.removeEventListener("abort", abort);
        if (signal.aborted) ok();
      });
      req.end();
    });
  }

  /** A request that must succeed (2xx): the body, or a `KubeApiError` with the API's message. */
  async json<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<T> {
    const r = await this.request<T>(method, path, body, contentType);
    if (r.status >= 200 && r.status < 300) return r.body;
    const s = r.body as { reason?: string; message?: string } | string | null;
    const reason = typeof s === "object" && s?.reason ? s.reason : String(r.status);
    const msg = typeof s === "object" && s?.message
      ? s.message
      : typeof s === "string" && s
      ? s.slice(0, 300)
      : "(no message)";
    throw new KubeApiError(r.status, reason, `${method} ${path}: ${r.status} ${reason}: ${msg}`);
  }
}
