/**
 * DESIGN.md section 2: core/ is pure and deterministic. It never reaches for the clock,
 * randomness, timers, the runtime or I/O, and never imports from sim/ or node/.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";

const FORBIDDEN: Array<[RegExp, string]> = [
  [/\bDate\.now\b|\bnew Date\(/, "wall-clock time"],
  [/\bMath\.random\b/, "global randomness"],
  [/\b(setTimeout|setInterval|queueMicrotask|requestAnimationFrame)\b/, "timers"],
  [/\bperformance\.now\b/, "wall-clock time"],
  [/\bDeno\.[A-Za-z]/, "the Deno runtime"],
  [/\bprocess\.(env|hrtime|nextTick)\b/, "the Node runtime"],
  [/\bcrypto\.getRandomValues\b/, "global randomness"],
  [/from\s+["']node:/, "node: modules"],
  [/from\s+["'](\.\.\/)+(sim|node|bench)\//, "an import from sim/, node/ or bench/"],
  [/\bfetch\(/, "network I/O"],
];

/** Source files of a directory tree, tests excluded (tests may use Deno.test). */
async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await sources(p));
    else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) out.push(p);
  }
  return out.sort();
}

export function violations(path: string, text: string): string[] {
  const found: string[] = [];
  text.split("\n").forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, "");
    for (const [re, what] of FORBIDDEN) {
      if (re.test(code)) found.push(`${path}:${i + 1} uses ${what}: ${line.trim()}`);
    }
  });
  return found;
}

const root = new URL("./", import.meta.url).pathname;

Deno.test("core/ uses no clock, randomness, timers, runtime or I/O, and no sim/ or node/", async () => {
  const files = await sources(root);
  assert.ok(files.length >= 8, `expected core sources, found ${files.length}`);
  const found: string[] = [];
  for (const f of files) found.push(...violations(relative(root, f), await Deno.readTextFile(f)));
  assert.deepEqual(found, []);
});

Deno.test("the purity check catches each forbidden construct", () => {
  const bad = [
    "const t = Date.now();",
    "const r = Math.random();",
    "setTimeout(() => {}, 1);",
    "const e = Deno.env.get('X');",
    'import { readFileSync } from "node:fs";',
    'import { Simulation } from "../sim/simulation.ts";',
    'import { x } from "../../node/host.ts";',
    "const p = performance.now();",
  ];
  for (const line of bad) assert.equal(violations("x.ts", line).length, 1, line);
  assert.deepEqual(violations("x.ts", "// Date.now() in a comment is fine\nconst a = 1;"), []);
});
