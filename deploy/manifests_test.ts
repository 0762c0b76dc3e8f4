/** The node manifests and the VMReplication CRD validate against the Kubernetes schemas. */
import assert from "node:assert/strict";
import YAML from "yaml";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { Service, ServiceAccount } from "kubernetes-models/v1";
import { Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { CustomResourceDefinition } from "kubernetes-models/apiextensions.k8s.io/v1";
import { allManifests, CONTROLLER, DEFAULT_DEPLOY, sclerotiaStatefulSet } from "./manifests.ts";
import { CONTROLLER_HELP } from "./controller.ts";
import { structural, vmReplicationCrd, vmReplicationSpecSchema } from "./crd.ts";

const docs = () => YAML.parseAllDocuments(allManifests()).map((d) => d.toJS());

Deno.test("manifests: every document re-validates from its YAML against the OpenAPI schemas", () => {
  const kinds: Record<string, (o: never) => { validate(): void }> = {
    CustomResourceDefinition: (o) => new CustomResourceDefinition(o),
    Service: (o) => new Service(o),
    StatefulSet: (o) => new StatefulSet(o),
    Deployment: (o) => new Deployment(o),
    ServiceAccount: (o) => new ServiceAccount(o),
    Role: (o) => new Role(o),
    RoleBinding: (o) => new RoleBinding(o),
  };
  const all = docs();
  assert.deepEqual(all.map((d) => d.kind), [
    "CustomResourceDefinition",
    "Service",
    "StatefulSet",
    "Deployment",
    "Deployment",
    "ServiceAccount",
    "Role",
    "RoleBinding",
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

Deno.test("the controller: a Deployment of the simulator image with least-privilege RBAC", () => {
  const all = docs();
  const dep = all.find((d) => d.kind === "Deployment" && d.metadata.name === CONTROLLER);
  const pod = dep.spec.template.spec;
  assert.equal(dep.metadata.namespace, DEFAULT_DEPLOY.namespace);
  assert.equal(dep.spec.replicas, 1);
  assert.equal(dep.spec.strategy.type, "Recreate");
  assert.equal(pod.serviceAccountName, CONTROLLER);
  assert.equal(pod.containers[0].image, "mycelium-sim:0.1.0");
  assert.deepEqual(pod.containers[0].command, ["deno", "task", "k8s", "controller"]);
  const sa = all.find((d) => d.kind === "ServiceAccount");
  assert.equal(sa.metadata.name, CONTROLLER);
  const role = all.find((d) => d.kind === "Role");
  assert.deepEqual(
    role.rules.map((r: { resources: string[]; verbs: string[]; apiGroups: string[] }) => [
      r.apiGroups,
      r.resources,
      r.verbs,
    ]),
    [
      [["mycelium.network"], ["vmreplications"], ["get", "list", "watch"]],
      [["mycelium.network"], ["vmreplications/status"], ["get", "patch", "update"]],
    ],
  );
  const rb = all.find((d) => d.kind === "RoleBinding");
  assert.deepEqual(rb.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "Role",
    name: CONTROLLER,
  });
  assert.deepEqual(rb.subjects, [
    { kind: "ServiceAccount", name: CONTROLLER, namespace: DEFAULT_DEPLOY.namespace },
  ]);
  // The container's flags are the controller's own.
  const args: string[] = pod.containers[0].args;
  for (const a of args.filter((x) => x.startsWith("--"))) {
    assert.ok(CONTROLLER_HELP.includes(a), `${a} is not a controller flag`);
  }
});

Deno.test("the simulator image holds everything the controller imports", async () => {
  const sim = await Deno.readTextFile(new URL("./Dockerfile.sim", import.meta.url));
  const copied = new Set([...sim.matchAll(/^COPY (\S+) /gm)].map((m) => m[1]));
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "deploy/cli.ts"],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.ok(out.success, "deno info deploy/cli.ts");
  const root = new URL("..", import.meta.url).href;
  const dirs = new Set<string>();
  for (const m of JSON.parse(new TextDecoder().decode(out.stdout)).modules) {
    const spec: string = m.specifier;
    if (spec.startsWith(root)) dirs.add(spec.slice(root.length).split("/")[0]);
  }
  assert.ok(dirs.has("deploy") && dirs.has("core"), [...dirs].join(","));
  for (const d of dirs) assert.ok(copied.has(d), `Dockerfile.sim does not COPY ${d}/`);
  assert.match(sim, /deno cache [^\n]*deploy\/cli\.ts/);
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
