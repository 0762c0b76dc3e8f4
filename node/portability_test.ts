/**
 * DESIGN.md section 4, "Single binary": the node's runtime code does its I/O through `node:`
 * modules only, never the `Deno` namespace, so the same bundle runs under Deno (`deno run`,
 * `deno compile`) and as a Node single-executable application (`deno task build`).
 * Tests and test support (testing.ts, testdata/) may use Deno freely.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";

const FORBIDDEN: Array<[RegExp, string]> = [
  [/\bDeno\s*(\?\.|\.|\[)/, "the Deno namespace"],
  [/(\?\.|\.)\s*Deno\b|["'`]Deno["'`]/, "the Deno global"],
];

const EXCLUDED = new Set(["testing.ts", "testdata"]);

/** The node's runtime sources: node/**.ts without tests and test support. */
async function runtimeSources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (EXCLUDED.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await runtimeSources(p));
    else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) out.push(p);
  }
  return out.sort();
}

/** Blanks comments (keeping line numbers), so prose may mention `Deno.*`. */
function stripComments(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, " "))
    .replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

export function violations(path: string, text: string): string[] {
  const found: string[] = [];
  const lines = text.split("\n");
  stripComments(text).split("\n").forEach((code, i) => {
    for (const [re, what] of FORBIDDEN) {
      if (re.test(code)) found.push(`${path}:${i + 1} uses ${what}: ${lines[i].trim()}`);
    }
  });
  return found;
}

const root = new URL("./", import.meta.url).pathname;

Deno.test("node/ runtime code uses node: modules, not the Deno namespace", async () => {
  const files = await runtimeSources(root);
  const names = files.map((f) => relative(root, f));
  for (const f of ["cli.ts", "main.ts", "node.ts", "pki.ts", "store.ts"]) {
    assert.ok(names.includes(f), `expected ${f} among ${names.join(", ")}`);
  }
  assert.ok(!names.some((n) => n.endsWith("_test.ts") || n === "testing.ts"));
  const found: string[] = [];
  for (const f of files) found.push(...violations(relative(root, f), await Deno.readTextFile(f)));
  assert.deepEqual(found, []);
});

Deno.test("the portability check catches each use of Deno", () => {
  const bad = [
    "const e = Deno.env.toObject();",
    "await Deno.mkdir(dir, { recursive: true });",
    'Deno.addSignalListener("SIGTERM", stop);',
    "const v = Deno.version.deno;",
    "function kill(s: Deno.Signal) {}",
    "const a = Deno?.args;",
    'const b = Deno["args"];',
    "const d = (globalThis as any).Deno;",
    "const e = globalThis?.Deno;",
    'const f = "Deno" in globalThis;',
    "const x = 1; Deno.exit(0); // exits",
  ];
  for (const line of bad) assert.equal(violations("x.ts", line).length, 1, line);
  const fine = [
    "// Deno.exit() in a comment is fine",
    "/** Deno.stderr, in a doc comment */",
    "/*\n * Deno.env, in a block comment\n */",
    "const url = 'http://example.org/x'; // Deno.exit",
    'log("runs on Deno and Node");',
    'import process from "node:process";',
    "process.exit(code);",
  ];
  for (const text of fine) assert.deepEqual(violations("x.ts", text), [], text);
});
