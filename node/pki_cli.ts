/**
 * `mycelium genesis` and `mycelium node-cert`: thin command-line wrappers over node/pki.ts.
 * Each returns an exit code: 0 success, 2 bad input (the message names the flag or file),
 * 1 anything else.
 */
import { parseArgs } from "node:util";
import { MyceliumError } from "../core/errors.ts";
import { FILES, genesis, IdentityError, issueNodeCert, NODE_TIERS, type NodeTier } from "./pki.ts";

const GENESIS_USAGE = `Usage: mycelium genesis --out DIR [--name NAME] [--days N]

Creates a new network in DIR: the genesis key (network id = hash of its public key), the
isolation key and the network CA. Refuses to overwrite an existing network.

  --out DIR     directory to create the network in (created if missing)
  --name NAME   human-readable network name (default "mycelium")
  --days N      validity of the CA certificate in days (default 3650)
  -h, --help    show this help

Keep ${FILES.networkKey}, ${FILES.caKey} and ${FILES.isolationKey} secret (mode 0600).`;

const NODE_CERT_USAGE = `Usage: mycelium node-cert --network DIR --out DIR --name NAME
                         [--tier T] [--ip IP]... [--dns NAME]... [--days N]

Issues a node identity (Ed25519 key and TLS certificate signed by the network CA) into a
self-contained node directory.

  --network DIR  the network directory made by 'mycelium genesis'
  --out DIR      node directory to write (created if missing; never overwritten)
  --name NAME    node name
  --tier T       ${NODE_TIERS.join(" | ")} (default sclerotia)
  --ip IP        IP address for the certificate, repeatable (default 127.0.0.1)
  --dns NAME     DNS name for the certificate, repeatable (default localhost)
  --days N       validity in days (default 365, capped by the CA's)
  -h, --help     show this help`;

/** Library option names to the flags that set them. */
const FLAG_OF: Record<string, string> = {
  name: "--name",
  tier: "--tier",
  ips: "--ip",
  dns: "--dns",
  validDays: "--days",
};

class UsageError extends Error {}

function parse<T extends Record<string, { type: "string" | "boolean"; multiple?: boolean }>>(
  args: string[],
  options: T,
) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (parsed.positionals.length > 0) {
    throw new UsageError(`unexpected argument: ${parsed.positionals[0]}`);
  }
  return parsed.values;
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === "") throw new UsageError(`${flag} is required`);
  return value;
}

function days(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--days: not a whole number: ${value}`);
  return Number(value);
}

function report(command: string, usage: string, e: unknown): number {
  if (e instanceof UsageError) {
    console.error(`mycelium ${command}: ${e.message}\n\n${usage}`);
    return 2;
  }
  if (e instanceof IdentityError) {
    console.error(`mycelium ${command}: ${e.message}`);
    return 2;
  }
  if (e instanceof MyceliumError && e.kind === "config") {
    const flag = e.input !== undefined ? FLAG_OF[e.input] : undefined;
    const msg = flag ? `${flag}: ${e.message.slice(`${e.input}: `.length)}` : e.message;
    console.error(`mycelium ${command}: ${msg}`);
    return 2;
  }
  console.error(`mycelium ${command}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  return 1;
}

export async function genesisCommand(args: string[]): Promise<number> {
  try {
    const v = parse(args, {
      out: { type: "string" },
      name: { type: "string" },
      days: { type: "string" },
    });
    if (v.help) {
      console.log(GENESIS_USAGE);
      return 0;
    }
    const out = required(v.out as string | undefined, "--out");
    const info = await genesis(out, {
      name: v.name as string | undefined,
      validDays: days(v.days as string | undefined),
    });
    console.log(`created network "${info.name}" in ${info.dir}`);
    console.log(`  network id: ${info.networkId}`);
    for (const f of info.files) console.log(`  ${f}`);
    console.log(
      `next: mycelium node-cert --network ${info.dir} --out NODE_DIR --name NODE_NAME`,
    );
    return 0;
  } catch (e) {
    return report("genesis", GENESIS_USAGE, e);
  }
}

export async function nodeCertCommand(args: string[]): Promise<number> {
  try {
    const v = parse(args, {
      network: { type: "string" },
      out: { type: "string" },
      name: { type: "string" },
      tier: { type: "string" },
      ip: { type: "string", multiple: true },
      dns: { type: "string", multiple: true },
      days: { type: "string" },
    });
    if (v.help) {
      console.log(NODE_CERT_USAGE);
      return 0;
    }
    const network = required(v.network as string | undefined, "--network");
    const out = required(v.out as string | undefined, "--out");
    const name = required(v.name as string | undefined, "--name");
    const tier = v.tier as string | undefined;
    if (tier !== undefined && !(NODE_TIERS as readonly string[]).includes(tier)) {
      throw new UsageError(`--tier: must be one of ${NODE_TIERS.join(", ")}, got ${tier}`);
    }
    const info = await issueNodeCert(network, out, {
      name,
      tier: tier as NodeTier | undefined,
      ips: v.ip as string[] | undefined,
      dns: v.dns as string[] | undefined,
      validDays: days(v.days as string | undefined),
    });
    console.log(`issued node "${info.name}" (${info.tier}) in ${info.dir}`);
    console.log(`  node id:    ${info.nodeId}`);
    console.log(`  network id: ${info.networkId}`);
    console.log(`  valid until ${info.notAfter.toISOString()}`);
    for (const f of info.files) console.log(`  ${f}`);
    return 0;
  } catch (e) {
    return report("node-cert", NODE_CERT_USAGE, e);
  }
}
