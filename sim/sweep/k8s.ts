/**
 * A sweep as a Kubernetes Indexed Job: `completions` pods, each running one shard of the
 * grid (`--shard $(JOB_COMPLETION_INDEX)/N`) with the project's container image, results
 * going to a shared volume (`/results/shard-<i>`); `deno task sim sweep collect
 * /results/shard-*` then merges them. Built from typed models (kubernetes-models), which
 * validate against the Kubernetes OpenAPI schemas.
 */
import { Job } from "kubernetes-models/batch/v1";
import { PersistentVolumeClaim } from "kubernetes-models/v1";
import YAML from "yaml";
import type { Axis } from "./grid.ts";

export interface SweepJobOptions {
  /** Job name (a DNS label). */
  name: string;
  /** Scenario path inside the image (relative to its working directory). */
  scenarioFile: string;
  seeds: string;
  axes: Axis[];
  shards: number;
  parallelism: number;
  image: string;
  /** PersistentVolumeClaim for results (created alongside unless it exists). */
  resultsClaim: string;
  resultsSize: string;
  /** Worker processes per pod. */
  workersPerPod: number;
  cpu: string;
  memory: string;
}

/** A DNS-1123 label from any name: lowercase, [a-z0-9-], at most 63 characters. */
export function dnsLabel(name: string): string {
  const s = name.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
  return (s || "sweep").slice(0, 63).replace(/-+$/, "");
}

export function sweepJob(o: SweepJobOptions): Job {
  const sets = o.axes.flatMap((a) => ["--set", `${a.path}=${a.values.join(",")}`]);
  const job = new Job({
    metadata: {
      name: o.name,
      labels: { "app.kubernetes.io/name": "mycelium-sweep", "mycelium.network/sweep": o.name },
    },
    spec: {
      completionMode: "Indexed",
      completions: o.shards,
      parallelism: o.parallelism,
      backoffLimitPerIndex: 2,
      maxFailedIndexes: o.shards,
      template: {
        metadata: { labels: { "mycelium.network/sweep": o.name } },
        spec: {
          restartPolicy: "Never",
          containers: [{
            name: "sweep",
            image: o.image,
            command: ["deno", "task", "sim", "sweep"],
            args: [
              o.scenarioFile,
              "--seeds",
              o.seeds,
              ...sets,
              "--workers",
              String(o.workersPerPod),
              "--shard",
              `$(JOB_COMPLETION_INDEX)/${o.shards}`,
              "--out",
              "/results/shard-$(JOB_COMPLETION_INDEX)",
              "--quiet",
              // A failing seed is a result, not a pod failure (a retried pod would resume
              // and fail the same way).
              "--no-fail",
            ],
            env: [{ name: "NO_COLOR", value: "1" }],
            resources: {
              requests: { cpu: o.cpu, memory: o.memory },
              limits: { memory: o.memory },
            },
            volumeMounts: [{ name: "results", mountPath: "/results" }],
          }],
          volumes: [{ name: "results", persistentVolumeClaim: { claimName: o.resultsClaim } }],
        },
      },
    },
  });
  job.validate();
  return job;
}

export function resultsClaim(o: SweepJobOptions): PersistentVolumeClaim {
  const pvc = new PersistentVolumeClaim({
    metadata: { name: o.resultsClaim, labels: { "app.kubernetes.io/name": "mycelium-sweep" } },
    spec: {
      // Every pod writes its own shard directory, possibly from different hosts.
      accessModes: ["ReadWriteMany"],
      resources: { requests: { storage: o.resultsSize } },
    },
  });
  pvc.validate();
  return pvc;
}

/** The manifests as one multi-document YAML. */
export function sweepManifests(o: SweepJobOptions): string {
  return [resultsClaim(o), sweepJob(o)].map((m) => YAML.stringify(m.toJSON())).join("---\n");
}
