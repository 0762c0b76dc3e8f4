/** The Mycelium release and the wire protocol's major version (peers must share it). */
import process from "node:process";

export const VERSION = "0.1.0";
export const PROTOCOL_MAJOR = 1;

/**
 * The JavaScript runtime this node runs on: `deno` under Deno (`deno run`, `deno compile`),
 * else `node` (the Node single-executable build). Deno's `node:process` reports its own
 * version as `process.versions.deno`, so this needs no Deno-only API.
 */
export function runtimeVersion(): { runtime: "deno" | "node"; version: string } {
  const deno = (process.versions as Record<string, string | undefined>).deno;
  return deno
    ? { runtime: "deno", version: deno }
    : { runtime: "node", version: process.versions.node };
}
