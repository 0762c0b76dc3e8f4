/**
 * Admin HTTP (node:http, loopback by default): /healthz, /readyz, /metrics (Prometheus text),
 * /status (JSON), /v1/members (the membership view), and the consensus client API
 * (POST/GET /v1/kv/{key}, POST /v1/ops, GET /v1/consensus/status and /v1/consensus/blocks),
 * the distributed RAM API (/v1/ram/..., ram_api.ts) and the object storage API
 * (PUT/GET /v1/objects/{id}, objects_api.ts: binary bodies, up to its own size limit).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { BinaryReply } from "./objects_api.ts";

export interface AdminView {
  /** Liveness: the process and its event loop work. Returns problems (empty = healthy). */
  health(): string[];
  /** Readiness: bound, joined. Returns what is missing (empty = ready). */
  readiness(): string[];
  status(): unknown;
  members(): unknown;
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Round trip over a mutual-TLS stream to a peer (opened, and kept up, on first use). */
  streamPing?(peer: string): Promise<{ status: number; body: unknown }>;
  /**
   * The client API (`/v1/kv/...`, `/v1/ops`, `/v1/consensus/...`, `/v1/ram/...`): null when
   * the path is not one of its endpoints. `body` is the request body (at most 1 MiB), "" for
   * GET.
   */
  api?(
    method: string,
    url: URL,
    body: string,
  ): Promise<{ status: number; body: unknown } | null>;
  /** The spores endpoints (`/v1/spores...`, spores_api.ts). */
  spores?(method: string, url: URL): BinaryReply;
  /** The object API (`/v1/objects/...`): raw request and response bodies. */
  objects?: {
    /** Largest request body accepted (413 beyond). */
    maxBodyBytes: number;
    handle(
      method: string,
      url: URL,
      headers: http.IncomingHttpHeaders,
      body: Uint8Array,
    ): Promise<BinaryReply>;
  };
}

const MAX_BODY = 1 << 20;

function readBody(req: http.IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    req.on("data", (c: Uint8Array) => {
      size += c.length;
      if (size > MAX_BODY) {
        resolve(null);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/**
 * A binary request body of at most `max` bytes; null beyond (the rest is read and dropped,
 * up to 64 MiB more, so the client gets to read the 413 before the connection closes). With
 * a Content-Length the bytes land in one buffer of that size (a single copy).
 */
function readBinaryBody(req: http.IncomingMessage, max: number): Promise<Uint8Array | null> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? NaN);
    const sized = Number.isSafeInteger(declared) && declared >= 0;
    const out = sized && declared <= max ? new Uint8Array(declared) : null;
    const pieces: Uint8Array[] = [];
    let size = 0;
    let over = sized && declared > max;
    req.on("data", (c: Uint8Array) => {
      size += c.length;
      if (!over && size > (out ? out.length : max)) over = true;
      if (over) {
        if (size > max + 64 * 1024 * 1024) req.destroy();
        return;
      }
      if (out) out.set(c, size - c.length);
      else pieces.push(c);
    });
    req.on("end", () => {
      if (over) resolve(null);
      else if (out) resolve(size === out.length ? out : out.subarray(0, size));
      else resolve(new Uint8Array(Buffer.concat(pieces)));
    });
    req.on("close", () => {
      if (over) resolve(null);
    });
    req.on("error", reject);
  });
}

function sendReply(res: http.ServerResponse, r: BinaryReply): void {
  if (r.bytes !== undefined) {
    res.writeHead(r.status, { ...r.headers, "content-length": String(r.bytes.length) });
    res.end(r.bytes);
    return;
  }
  json(res, r.status, r.json ?? null);
}

export interface AdminServer {
  readonly address: string;
  close(): Promise<void>;
}

function json(res: http.ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + "\n";
  res.writeHead(code, { "content-type": "application/json; charset=utf-8" });
  res.end(text);
}

export function startAdmin(view: AdminView, bind: string, port: number): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://admin");
    if (url.pathname.startsWith("/v1/objects/") && view.objects) {
      const objects = view.objects;
      const handle = async () => {
        const method = req.method ?? "GET";
        const body = method === "PUT" || method === "POST"
          ? await readBinaryBody(req, objects.maxBodyBytes)
          : new Uint8Array(0);
        if (body === null) {
          res.setHeader("connection", "close");
          return json(res, 413, {
            error: `body: over storage.maxObjectBytes (${objects.maxBodyBytes} bytes)`,
          });
        }
        sendReply(res, await objects.handle(method, url, req.headers, body));
      };
      handle().catch((e) => json(res, 500, { error: String(e?.message ?? e) }));
      return;
    }
    if ((url.pathname === "/v1/spores" || url.pathname.startsWith("/v1/spores/")) && view.spores) {
      sendReply(res, view.spores(req.method ?? "GET", url));
      return;
    }
    const isApi = url.pathname.startsWith("/v1/kv/") || url.pathname === "/v1/ops" ||
      url.pathname.startsWith("/v1/consensus/") || url.pathname.startsWith("/v1/ram/");
    if (isApi && view.api) {
      const handle = async () => {
        const body = req.method === "POST" || req.method === "PUT" ? await readBody(req) : "";
        if (body === null) return json(res, 413, { error: `request body over ${MAX_BODY} bytes` });
        const r = await view.api!(req.method ?? "GET", url, body);
        if (r) return json(res, r.status, r.body);
        return json(res, 404, { error: `no such endpoint ${req.method} ${url.pathname}` });
      };
      handle().catch((e) => json(res, 500, { error: String(e?.message ?? e) }));
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return json(res, 405, { error: `method ${req.method} not allowed on ${url.pathname}` });
    }
    const route = async () => {
      switch (url.pathname) {
        case "/healthz": {
          const problems = view.health();
          return json(res, problems.length ? 503 : 200, { ok: problems.length === 0, problems });
        }
        case "/readyz": {
          const missing = view.readiness();
          return json(res, missing.length ? 503 : 200, { ready: missing.length === 0, missing });
        }
        case "/metrics": {
          const m = await view.metrics();
          res.writeHead(200, { "content-type": m.contentType });
          return res.end(m.body);
        }
        case "/status":
          return json(res, 200, view.status());
        case "/v1/members":
          return json(res, 200, view.members());
        case "/v1/streams/ping": {
          const peer = url.searchParams.get("peer");
          if (!peer || !view.streamPing) {
            return json(res, 400, { error: "expected ?peer=NODE_ID" });
          }
          const r = await view.streamPing(peer);
          return json(res, r.status, r.body);
        }
        default:
          return json(res, 404, {
            error: `no such endpoint ${url.pathname}`,
            endpoints: [
              "/healthz",
              "/readyz",
              "/metrics",
              "/status",
              "/v1/members",
              "/v1/streams/ping",
              "/v1/kv/{key}",
              "/v1/ops",
              "/v1/consensus/status",
              "/v1/consensus/blocks",
              "/v1/ram/vms",
              "/v1/ram/vms/{id}",
              "/v1/ram/vms/{id}/epochs",
              "/v1/ram/vms/{id}/migrate",
              "/v1/objects/{id}",
              "/v1/spores",
              "/v1/spores/latent",
              "/v1/spores/seed",
            ],
          });
      }
    };
    route().catch((e) => json(res, 500, { error: String(e?.message ?? e) }));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, bind, () => {
      const a = server.address() as AddressInfo;
      resolve({
        address: `${a.address}:${a.port}`,
        // Idle keep-alive connections (pollers, scrapers) must not hold the shutdown up.
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
