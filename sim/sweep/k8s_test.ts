/** The sweep's Kubernetes manifests validate against the Kubernetes OpenAPI schemas. */
import assert from "node:assert/strict";
import YAML from "yaml";
import { Job } from "kubernetes-models/batch/v1";
import { dnsLabel, sweepJob, type SweepJobOptions, sweepManifests } from "./k8s.ts";

const OPTS: SweepJobOptions = {
  name: "sweep-demo",
  scenarioFile: "scenarios/demo.yaml",
  seeds: "1..1000",
  axes: [{ path: "duration", values: ["60s", "150s"] }],
  shards: 20,
  parallelism: 4,
  image: "mycelium-sim:0.1.0",
  resultsClaim: "results",
  resultsSize: "10Gi",
  workersPerPod: 2,
  cpu: "2",
  memory: "4Gi",
};

Deno.test("sweep Job: Indexed, one shard per completion index, results on the claim", () => {
  const docs = YAML.parseAllDocuments(sweepManifests(OPTS)).map((d) => d.toJS());
  assert.deepEqual(docs.map((d) => d.kind), ["PersistentVolumeClaim", "Job"]);
  const job = docs[1];
  assert.equal(job.spec.completionMode, "Indexed");
  assert.equal(job.spec.completions, 20);
  assert.equal(job.spec.parallelism, 4);
  const args: string[] = job.spec.template.spec.containers[0].args;
  assert.deepEqual(args.slice(0, 5), [
    "scenarios/demo.yaml",
    "--seeds",
    "1..1000",
    "--set",
    "duration=60s,150s",
  ]);
  assert.equal(args[args.indexOf("--shard") + 1], "$(JOB_COMPLETION_INDEX)/20");
  assert.equal(args[args.indexOf("--out") + 1], "/results/shard-$(JOB_COMPLETION_INDEX)");
  // What a cluster would get is valid against the OpenAPI schema as parsed back from YAML.
  new Job(job).validate();
});

Deno.test("the schema validation catches a broken Job (the check can fail)", () => {
  assert.throws(() => sweepJob({ ...OPTS, shards: 1.5 }), /completions must be integer/);
  const docs = YAML.parseAllDocuments(sweepManifests(OPTS)).map((d) => d.toJS());
  docs[1].spec.template.spec.containers[0].image = 42;
  assert.throws(() => new Job(docs[1]).validate(), /image must be string/);
});

Deno.test("job names become DNS labels", () => {
  assert.equal(dnsLabel("sweep-Consensus_N100.yaml"), "sweep-consensus-n100-yaml");
  assert.equal(dnsLabel("x".repeat(80)).length, 63);
  assert.equal(dnsLabel("***"), "sweep");
});
