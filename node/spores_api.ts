/**
 * The spores endpoints of the admin API:
 * - `GET /v1/spores`: the Latent map's size, discards by reason, gossip counters, the seed
 *   this node wrote last, the last read of each seed location, and how it bootstrapped;
 * - `GET /v1/spores/latent`: every Latent entry held (signed, as gossiped);
 * - `GET /v1/spores/seed`: the seed spore this node wrote last, byte for byte (a seed
 *   location for other nodes; 404 before the first write).
 */
import type { BootstrapResult } from "./bootstrap.ts";
import type { BinaryReply } from "./objects_api.ts";
import type { NodeSpores } from "./spores.ts";

export function sporesApi(
  spores: NodeSpores | null,
  bootstrapped: BootstrapResult | null,
  method: string,
  url: URL,
): BinaryReply {
  if (method !== "GET" && method !== "HEAD") {
    return { status: 405, json: { error: `method ${method} not allowed on ${url.pathname}` } };
  }
  if (!spores) return { status: 503, json: { error: "spores are not running yet" } };
  switch (url.pathname) {
    case "/v1/spores":
      return { status: 200, json: { ...spores.summary(), bootstrap: bootstrapped } };
    case "/v1/spores/latent":
      return { status: 200, json: { entries: spores.entries() } };
    case "/v1/spores/seed": {
      const bytes = spores.latestSeed;
      if (!bytes) return { status: 404, json: { error: "no seed written yet" } };
      return { status: 200, bytes, headers: { "content-type": "application/x-ndjson" } };
    }
  }
  return {
    status: 404,
    json: {
      error: `no such endpoint ${url.pathname}`,
      endpoints: ["/v1/spores", "/v1/spores/latent", "/v1/spores/seed"],
    },
  };
}
