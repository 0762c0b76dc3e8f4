/**
 * `mycelium`: the node binary.
 *   mycelium genesis --out DIR                 create a network
 *   mycelium node-cert --network DIR --out DIR --name NAME
 *   mycelium node [--config FILE] [--print-config]
 *   mycelium --version | --help
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { MyceliumError } from "../core/errors.ts";
import { formatConfig, loadNodeConfig } from "./config.ts";
import { MyceliumNode } from "./node.ts";
import { genesisCommand, nodeCertCommand } from "./pki_cli.ts";
import { PROTOCOL_MAJOR, VERSION } from "./version.ts";

const HELP = `mycelium ${VERSION}: a Digital Mycelium Network node

Usage:
  mycelium genesis --out DIR [--name NAME]
      create a network: network key, network id, isolation key, network CA
  mycelium node-cert --network DIR --out DIR --name NAME [--tier T] [--ip IP] [--dns NAME]
      issue a node identity and TLS certificate signed by the network CA
  mycelium node [--config FILE] [--print-config]
      run a node (config: YAML or JSON file, then MYCELIUM_* environment overrides,
      e.g. MYCELIUM_ADMIN_PORT=9000, MYCELIUM_JOIN_SEEDS=127.0.0.1:7946)
  mycelium --version
  mycelium --help

Each command takes --help. Exit codes: 0 ok, 1 runtime failure, 2 bad input.
`;

async function nodeCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: "string", short: "c" },
      "print-config": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: mycelium node [--config FILE] [--print-config]\n" +
        "Runs a node until SIGTERM/SIGINT (then leaves the cluster gracefully and exits 0).",
    );
    return 0;
  }
  const config = await loadNodeConfig({ file: values.config, env: processEnv() });
  if (values["print-config"]) {
    console.log(formatConfig(config));
    return 0;
  }
  const node = await MyceliumNode.start(config);
  const done = Promise.withResolvers<number>();
  const shutdown = (signal: string) => {
    node.log.log("info", "signal", { signal });
    node.stop().then(() => done.resolve(0), (e) => {
      node.log.log("error", "stop_failed", { error: e });
      done.resolve(1);
    });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  return await done.promise;
}

export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case "genesis":
      return await genesisCommand(rest);
    case "node-cert":
      return await nodeCertCommand(rest);
    case "node":
      return await nodeCommand(rest);
    case "--version":
    case "-V":
    case "version":
      console.log(`mycelium ${VERSION} (protocol ${PROTOCOL_MAJOR})`);
      return 0;
    case undefined:
    case "--help":
    case "-h":
    case "help":
      console.log(HELP);
      return cmd === undefined ? 2 : 0;
    default:
      console.error(`unknown command "${cmd}"\n\n${HELP}`);
      return 2;
  }
}

/** The environment as plain strings (`process.env` values may be undefined). */
function processEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return env;
}

/**
 * Runs `main` on the process's arguments and exits with its code. Expected failures (bad
 * input, a config error, a runtime failure with a MyceliumError) print one line; anything
 * else is a bug and is rethrown with its stack. Runs on Deno and on Node (node/main.ts).
 */
export async function run(args: string[] = process.argv.slice(2)): Promise<never> {
  let code: number;
  try {
    code = await main(args);
  } catch (e) {
    if (e instanceof MyceliumError) {
      console.error(`mycelium: ${e.message}`);
      code = e.kind === "config" ? 2 : 1;
    } else if (
      e instanceof TypeError && /parseArgs|Unknown option|unexpected argument/i.test(e.message)
    ) {
      console.error(`mycelium: ${e.message} (see --help)`);
      code = 2;
    } else {
      throw e;
    }
  }
  process.exit(code);
}

if (import.meta.main) run();
