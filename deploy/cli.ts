/**
 * `deno task k8s manifests [--out DIR] [--image IMAGE] [--namespace NS] [--sclerotia N]
 * [--rhizomorphs N] [--hyphae N] [--storage SIZE]`: writes DIR/mycelium.yaml (the
 * VMReplication CRD, the Sclerotia StatefulSet and headless Service, the Rhizomorph and
 * Hyphae Deployments, the controller's Deployment and RBAC).
 * `deno task k8s controller ...`: the VMReplication controller (controller.ts).
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { allManifests, DEFAULT_DEPLOY, type DeployOptions } from "./manifests.ts";
import { main as controllerMain } from "./controller.ts";

const HELP = `Mycelium on Kubernetes

Usage:
  deno task k8s manifests [--out DIR] [--image IMAGE] [--namespace NS] [--sclerotia N]
                          [--rhizomorphs N] [--hyphae N] [--storage SIZE] [--storage-class C]
                          [--network-secret NAME] [--controller-image IMAGE]
  deno task k8s controller [--namespace NS | --all-namespaces] [--resync S] [--once] ...
                          (deno task k8s controller --help)

Writes DIR/mycelium.yaml (default DIR: deploy/k8s). Before applying it, create the network
(mycelium genesis --out net) and its Secret:
  kubectl -n NS create secret generic mycelium-network --from-file=net/
  kubectl -n NS apply -f deploy/k8s/mycelium.yaml
`;

export async function main(args: string[]): Promise<number> {
  if (args[0] === "controller") return await controllerMain(args.slice(1));
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: "string", default: "deploy/k8s" },
      image: { type: "string", default: DEFAULT_DEPLOY.image },
      namespace: { type: "string", default: DEFAULT_DEPLOY.namespace },
      sclerotia: { type: "string", default: String(DEFAULT_DEPLOY.sclerotia) },
      rhizomorphs: { type: "string", default: String(DEFAULT_DEPLOY.rhizomorphs) },
      hyphae: { type: "string", default: String(DEFAULT_DEPLOY.hyphae) },
      storage: { type: "string", default: DEFAULT_DEPLOY.storage },
      "storage-class": { type: "string" },
      "network-secret": { type: "string", default: DEFAULT_DEPLOY.networkSecret },
      "controller-image": { type: "string", default: DEFAULT_DEPLOY.controllerImage },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || positionals[0] !== "manifests") {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const count = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`--${name}: expected an integer >= ${min}, got "${v}"`);
    }
    return n;
  };
  let o: DeployOptions;
  try {
    o = {
      namespace: values.namespace,
      image: values.image,
      sclerotia: count("sclerotia", values.sclerotia, 1),
      rhizomorphs: count("rhizomorphs", values.rhizomorphs, 0),
      hyphae: count("hyphae", values.hyphae, 0),
      networkSecret: values["network-secret"],
      storage: values.storage,
      storageClass: values["storage-class"],
      controllerImage: values["controller-image"],
    };
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  let text: string;
  try {
    text = allManifests(o);
  } catch (e) {
    console.error(`invalid manifests: ${(e as Error).message}`);
    return 2;
  }
  await Deno.mkdir(values.out, { recursive: true });
  const file = join(values.out, "mycelium.yaml");
  await Deno.writeTextFile(file, text);
  console.log(`wrote ${file}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
