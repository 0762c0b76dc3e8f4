/**
 * Kubernetes manifests for Mycelium nodes, from typed models (kubernetes-models, validated
 * against the Kubernetes OpenAPI schemas):
 *
 * - Sclerotia: a StatefulSet (stable names sclerotia-0.., a PersistentVolumeClaim each for
 *   the durable store and identity, pods spread across hosts by anti-affinity, readiness on
 *   /readyz, liveness on /healthz, Prometheus scrape annotations) behind a headless Service
 *   that gives every pod a stable DNS name; the first pods are the join seeds.
 * - Rhizomorphs and Hyphae: Deployments (their state is rebuilt on join).
 * - Every pod gets its identity on first start from an init container that runs
 *   `mycelium node-cert` with the network directory (made by `mycelium genesis`, mounted
 *   from a Secret) when its volume holds none yet.
 * - The VMReplication custom resource definition (crd.ts) and its controller (controller.ts):
 *   a Deployment of one replica running `deno task k8s controller` in the simulator image
 *   (deploy/Dockerfile.sim), with a ServiceAccount, and a Role and RoleBinding that allow
 *   reading the resources of the namespace and writing their status.
 */
import { StatefulSet } from "kubernetes-models/apps/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { Service, ServiceAccount } from "kubernetes-models/v1";
import { Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import YAML from "yaml";
import { GROUP, PLURAL, vmReplicationCrd } from "./crd.ts";

export interface DeployOptions {
  namespace: string;
  image: string;
  sclerotia: number;
  rhizomorphs: number;
  hyphae: number;
  /** Secret holding the network directory (`mycelium genesis --out`), mounted read-only. */
  networkSecret: string;
  storage: string;
  storageClass?: string;
  /** The image the VMReplication controller runs in (the simulator's: Dockerfile.sim). */
  controllerImage: string;
}

export const DEFAULT_DEPLOY: DeployOptions = {
  namespace: "mycelium",
  image: "mycelium:0.1.0",
  sclerotia: 5,
  rhizomorphs: 3,
  hyphae: 2,
  networkSecret: "mycelium-network",
  storage: "10Gi",
  controllerImage: "mycelium-sim:0.1.0",
};

const GOSSIP = 7946, STREAMS = 7947, ADMIN = 8080;
const DATA = "/var/lib/mycelium";

const labels = (tier: string) => ({
  "app.kubernetes.io/name": "mycelium",
  "app.kubernetes.io/component": tier,
});

/** Seeds: the first (up to 3) Sclerotia by their stable DNS names. */
export function seedAddresses(o: DeployOptions): string[] {
  return Array.from(
    { length: Math.min(3, o.sclerotia) },
    (_, i) => `sclerotia-${i}.sclerotia.${o.namespace}.svc.cluster.local:${GOSSIP}`,
  );
}

function nodeContainer(o: DeployOptions, tier: string): IContainer {
  return {
    name: "mycelium",
    image: o.image,
    args: ["node"],
    env: [
      { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
      { name: "MYCELIUM_NODE_TIER", value: tier },
      { name: "MYCELIUM_NODE_DATA_DIR", value: DATA },
      { name: "MYCELIUM_GOSSIP_BIND", value: "0.0.0.0" },
      { name: "MYCELIUM_STREAMS_BIND", value: "0.0.0.0" },
      { name: "MYCELIUM_ADMIN_BIND", value: "0.0.0.0" },
      { name: "MYCELIUM_JOIN_SEEDS", value: seedAddresses(o).join(",") },
    ],
    ports: [
      { name: "gossip", containerPort: GOSSIP, protocol: "UDP" },
      { name: "streams", containerPort: STREAMS, protocol: "TCP" },
      { name: "admin", containerPort: ADMIN, protocol: "TCP" },
    ],
    readinessProbe: { httpGet: { path: "/readyz", port: "admin" }, periodSeconds: 5 },
    livenessProbe: {
      httpGet: { path: "/healthz", port: "admin" },
      periodSeconds: 10,
      failureThreshold: 6,
    },
    resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "1Gi" } },
    volumeMounts: [{ name: "data", mountPath: DATA }],
    securityContext: { runAsNonRoot: true, runAsUser: 10001, allowPrivilegeEscalation: false },
  };
}

/** Issues the pod's identity on first start (its volume keeps it across restarts). */
function identityInit(o: DeployOptions): IContainer {
  return {
    name: "identity",
    image: o.image,
    command: ["/bin/sh", "-c"],
    args: [
      `[ -e ${DATA}/identity ] || mycelium node-cert --network /etc/mycelium/network ` +
      `--out ${DATA}/identity --name "$POD_NAME"`,
    ],
    env: [{ name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }],
    volumeMounts: [
      { name: "data", mountPath: DATA },
      { name: "network", mountPath: "/etc/mycelium/network", readOnly: true },
    ],
    securityContext: { runAsNonRoot: true, runAsUser: 10001, allowPrivilegeEscalation: false },
  };
}

function podSpec(o: DeployOptions, tier: string, dataVolume: "claim" | "ephemeral"): IPodSpec {
  return {
    securityContext: { fsGroup: 10001 },
    initContainers: [identityInit(o)],
    containers: [nodeContainer(o, tier)],
    volumes: [
      { name: "network", secret: { secretName: o.networkSecret, defaultMode: 0o400 } },
      ...(dataVolume === "ephemeral" ? [{ name: "data", emptyDir: {} }] : []),
    ],
    // One node of a tier per host: a host failure takes out one replica, not several.
    affinity: {
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [{
          labelSelector: { matchLabels: labels(tier) },
          topologyKey: "kubernetes.io/hostname",
        }],
      },
    },
    terminationGracePeriodSeconds: 30, // SIGTERM: leave the cluster, flush, exit
  };
}

const scrape = {
  "prometheus.io/scrape": "true",
  "prometheus.io/port": String(ADMIN),
  "prometheus.io/path": "/metrics",
};

export function sclerotiaService(o: DeployOptions): Service {
  const s = new Service({
    metadata: { name: "sclerotia", namespace: o.namespace, labels: labels("sclerotia") },
    spec: {
      clusterIP: "None", // headless: a stable DNS name per pod
      publishNotReadyAddresses: true, // seeds must be resolvable while the cluster forms
      selector: labels("sclerotia"),
      ports: [
        { name: "gossip", port: GOSSIP, protocol: "UDP" },
        { name: "streams", port: STREAMS, protocol: "TCP" },
        { name: "admin", port: ADMIN, protocol: "TCP" },
      ],
    },
  });
  s.validate();
  return s;
}

export function sclerotiaStatefulSet(o: DeployOptions): StatefulSet {
  const ss = new StatefulSet({
    metadata: { name: "sclerotia", namespace: o.namespace, labels: labels("sclerotia") },
    spec: {
      serviceName: "sclerotia",
      replicas: o.sclerotia,
      podManagementPolicy: "Parallel",
      selector: { matchLabels: labels("sclerotia") },
      template: {
        metadata: { labels: labels("sclerotia"), annotations: scrape },
        spec: podSpec(o, "sclerotia", "claim"),
      },
      volumeClaimTemplates: [{
        metadata: { name: "data" },
        spec: {
          accessModes: ["ReadWriteOnce"],
          resources: { requests: { storage: o.storage } },
          ...(o.storageClass ? { storageClassName: o.storageClass } : {}),
        },
      }],
    },
  });
  ss.validate();
  return ss;
}

export function tierDeployment(o: DeployOptions, tier: "rhizomorph" | "hyphae"): Deployment {
  const d = new Deployment({
    metadata: { name: tier, namespace: o.namespace, labels: labels(tier) },
    spec: {
      replicas: tier === "rhizomorph" ? o.rhizomorphs : o.hyphae,
      selector: { matchLabels: labels(tier) },
      template: {
        metadata: { labels: labels(tier), annotations: scrape },
        spec: podSpec(o, tier, "ephemeral"),
      },
    },
  });
  d.validate();
  return d;
}

// ---- the VMReplication controller ----

export const CONTROLLER = "vmreplication-controller";

export function controllerServiceAccount(o: DeployOptions): ServiceAccount {
  const sa = new ServiceAccount({
    metadata: { name: CONTROLLER, namespace: o.namespace, labels: labels("controller") },
  });
  sa.validate();
  return sa;
}

/** Read the namespace's VMReplications; write their status (nothing else). */
export function controllerRole(o: DeployOptions): Role {
  const r = new Role({
    metadata: { name: CONTROLLER, namespace: o.namespace, labels: labels("controller") },
    rules: [
      { apiGroups: [GROUP], resources: [PLURAL], verbs: ["get", "list", "watch"] },
      { apiGroups: [GROUP], resources: [`${PLURAL}/status`], verbs: ["get", "patch", "update"] },
    ],
  });
  r.validate();
  return r;
}

export function controllerRoleBinding(o: DeployOptions): RoleBinding {
  const rb = new RoleBinding({
    metadata: { name: CONTROLLER, namespace: o.namespace, labels: labels("controller") },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: CONTROLLER },
    subjects: [{ kind: "ServiceAccount", name: CONTROLLER, namespace: o.namespace }],
  });
  rb.validate();
  return rb;
}

export function controllerDeployment(o: DeployOptions): Deployment {
  const d = new Deployment({
    metadata: { name: CONTROLLER, namespace: o.namespace, labels: labels("controller") },
    spec: {
      replicas: 1, // no leader election: never two at once
      strategy: { type: "Recreate" },
      selector: { matchLabels: labels("controller") },
      template: {
        metadata: { labels: labels("controller") },
        spec: {
          serviceAccountName: CONTROLLER,
          containers: [{
            name: "controller",
            image: o.controllerImage,
            command: ["deno", "task", "k8s", "controller"],
            // The pod's namespace (its service account's) and the Sclerotia pods' DNS names.
            args: ["--resync", "10", "--node-service", "sclerotia", "--admin-port", String(ADMIN)],
            env: [
              { name: "NO_COLOR", value: "1" },
              { name: "DENO_NO_UPDATE_CHECK", value: "1" },
            ],
            resources: {
              requests: { cpu: "50m", memory: "128Mi" },
              limits: { memory: "512Mi" },
            },
            securityContext: { allowPrivilegeEscalation: false },
          }],
          terminationGracePeriodSeconds: 10,
        },
      },
    },
  });
  d.validate();
  return d;
}

/** Every manifest, as one multi-document YAML (apply with `kubectl apply -f`). */
export function allManifests(o: DeployOptions = DEFAULT_DEPLOY): string {
  const docs = [
    vmReplicationCrd(),
    sclerotiaService(o),
    sclerotiaStatefulSet(o),
    tierDeployment(o, "rhizomorph"),
    tierDeployment(o, "hyphae"),
    controllerServiceAccount(o),
    controllerRole(o),
    controllerRoleBinding(o),
    controllerDeployment(o),
  ];
  return docs.map((d) => YAML.stringify(d.toJSON())).join("---\n");
}
