/**
 * Admin HTTP (node:http, loopback by default): /healthz, /readyz, /metrics (Prometheus text),
 * /status (JSON), /v1/members (the membership view).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

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
