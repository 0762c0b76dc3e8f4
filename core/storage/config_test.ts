import assert from "node:assert/strict";
import { ConfigError } from "../errors.ts";
import { parseStorageConfig } from "./config.ts";

Deno.test("storage config: DESIGN.md defaults", () => {
  assert.deepEqual(parseStorageConfig(undefined), {
    chunkSize: 4 * 1024 * 1024,
    replicationFactor: 3,
    failureDomain: "host",
    repairMaxCopiesPerStep: 64,
    defaultClass: "Standard",
    defaultConsistency: "strong",
  });
});

Deno.test("storage config: errors name the field", () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ replicationFactor: 0 }, /storage\.replicationFactor: .*>= ?1/],
    [{ defaultClass: "Secret" }, /storage\.defaultClass/],
    [{ chunkSize: 1.5 }, /storage\.chunkSize/],
    [{ replicas: 3 }, /storage\.replicas: unknown field/],
  ];
  for (const [input, re] of cases) {
    assert.throws(
      () => parseStorageConfig(input),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
      String(re),
    );
  }
});
