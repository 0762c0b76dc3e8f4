/** The node manifests and the VMReplication CRD validate against the Kubernetes schemas. */
import assert from "node:assert/strict";
import YAML from "yaml";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { Service } from "kubernetes-models/v1";
import { CustomResourceDefinition } from "kubernetes-models/apiextensions.k8s.io/v1";
import { allManifests, DEFAULT_DEPLOY, sclerotiaStatefulSet } from "./manifests.ts";
import { structural, vmReplicationCrd, vmReplicationSpecSchema } from "./crd.ts";

const docs = () => YAML.parseAllDocuments(allManifests()).map((d) => d.toJS());

Deno.test("manifests: every document re-validates from its YAML against the OpenAPI schemas", () => {
  const kinds: Record<string, (o: never) => { validate(): void }> = {
    CustomResourceDefinition: (o) => new CustomResourceDefinition(o),
    Service: (o) => new Service(o),
    StatefulSet: (o) => new StatefulSet(o),
    Deployment: (o) => new Deployment(o),
  };
  const all = docs();
  assert.deepEqual(all.map((d) => d.kind), [
    "CustomResourceDefinition",
    "Service",
    "StatefulSet",
    "Deployment",
    "Deployment",
  ]);
  for (const d of all) kinds[d.kind](d as never).validate();
});

Deno.test("Sclerotia: stable identities, volumes, anti-affinity, readiness, scrape annotations", () => {
  const ss = docs().find((d) => d.kind === "StatefulSet");
  const pod = ss.spec.template.spec;
  assert.equal(ss.spec.serviceName, "sclerotia");
  assert.equal(ss.spec.replicas, DEFAULT_DEPLOY.sclerotia);
  assert.equal(ss.spec.volumeClaimTemplates[0].spec.resources.requests.storage, "10Gi");
  assert.equal(
    pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey,
    "kubernetes.io/hostname",
  );
  const c = pod.containers[0];
  assert.equal(c.readinessProbe.httpGet.path, "/readyz");
  assert.equal(ss.spec.template.metadata.annotations["prometheus.io/scrape"], "true");
  const seeds = c.env.find((e: { name: string }) => e.name === "MYCELIUM_JOIN_SEEDS").value;
  assert.match(seeds, /^sclerotia-0\.sclerotia\.mycelium\.svc\.cluster\.local:7946,/);
  assert.match(pod.initContainers[0].args[0], /mycelium node-cert --network/);
  const svc = docs().find((d) => d.kind === "Service");
  assert.equal(svc.spec.clusterIP, "None");
});

Deno.test("schema validation catches a broken manifest (the check can fail)", () => {
  assert.throws(() => sclerotiaStatefulSet({ ...DEFAULT_DEPLOY, sclerotia: 2.5 }), /replicas/);
  const ss = docs().find((d) => d.kind === "StatefulSet");
  ss.spec.template.spec.containers[0].ports[0].containerPort = "seven";
  assert.throws(() => new StatefulSet(ss).validate(), /containerPort/);
});

Deno.test("VMReplication CRD: group and version; a structural schema (no unions, no defaults)", () => {
  const crd = vmReplicationCrd().toJSON() as unknown as {
    spec: {
      group: string;
      versions: Array<{ name: string; schema: { openAPIV3Schema: unknown } }>;
    };
  };
  assert.equal(crd.spec.group, "mycelium.network");
  assert.equal(crd.spec.versions[0].name, "v1");
  const problems: string[] = [];
  const walk = (s: unknown, path: string) => {
    if (!s || typeof s !== "object") return;
    const o = s as Record<string, unknown>;
    for (const k of ["oneOf", "anyOf", "default", "$schema"]) {
      if (k in o) problems.push(`${path}.${k}`);
    }
    if ("properties" in o && "additionalProperties" in o) problems.push(`${path}: both`);
    for (const [k, v] of Object.entries(o)) walk(v, `${path}.${k}`);
  };
  walk(crd.spec.versions[0].schema.openAPIV3Schema, "schema");
  assert.deepEqual(problems, []);
  const spec = (crd.spec.versions[0].schema.openAPIV3Schema as {
    properties: { spec: { properties: Record<string, unknown> } };
  }).properties.spec.properties;
  assert.deepEqual(Object.keys(spec).sort(), [
    "backupNodes",
    "memoryMiB",
    "primaryNode",
    "replicationConfig",
    "vmId",
  ]);
  // The walk catches what it is for.
  const bad = structural({
    type: "object",
    properties: {},
    additionalProperties: false,
    default: {},
  });
  assert.deepEqual(bad, { type: "object", properties: {} });
});

Deno.test("the spec is validated by the same zod schema as the node's config: errors name the field", () => {
  const ok = vmReplicationSpecSchema.parse({
    vmId: "web-1",
    primaryNode: "sclerotia-0",
    backupNodes: ["sclerotia-1", "sclerotia-2"],
  });
  assert.equal(ok.replicationConfig.backupNodeCount, 2);
  const r = vmReplicationSpecSchema.safeParse({
    vmId: "web-1",
    primaryNode: "sclerotia-0",
    backupNodes: ["sclerotia-1"],
    replicationConfig: { profiles: { low: { curve: { curve: "linear", threshold: 1.5 } } } },
  });
  assert.equal(r.success, false);
  assert.deepEqual(r.error!.issues[0].path, [
    "replicationConfig",
    "profiles",
    "low",
    "curve",
    "threshold",
  ]);
});

Deno.test("deploy/k8s/mycelium.yaml is what `deno task k8s manifests` writes (not stale)", async () => {
  const committed = await Deno.readTextFile(new URL("./k8s/mycelium.yaml", import.meta.url));
  assert.equal(committed, allManifests(), "run: deno task k8s manifests");
});

Deno.test("the Dockerfiles copy what exists and run the node / the simulator", async () => {
  const node = await Deno.readTextFile(new URL("./Dockerfile", import.meta.url));
  assert.match(node, /COPY dist\/mycelium /);
  assert.match(node, /ENTRYPOINT \["mycelium"\]/);
  const sim = await Deno.readTextFile(new URL("./Dockerfile.sim", import.meta.url));
  for (const m of sim.matchAll(/^COPY (\S+)/gm)) {
    for (const f of m[1].split(" ")) await Deno.stat(new URL(`../${f}`, import.meta.url));
  }
});
