/**
 * Rendering zod validation errors for humans: every issue becomes one
 * `path.to.field: message (expected ...)` line, where the path starts at the caller's root
 * (e.g. `throttle.points[2].x`). Config parsers throw `ConfigError` with this text; wire
 * decoders wrap it in `DecodeError`.
 */
import type { z } from "zod";
import { ConfigError } from "./errors.ts";

type Issue = z.core.$ZodIssue;

const IDENT_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Renders a path below `rootPath`: numbers as `[i]`, identifiers as `.key`, others quoted. */
export function formatPath(rootPath: string, path: readonly PropertyKey[]): string {
  let out = rootPath;
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (typeof seg === "string" && IDENT_RE.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out === "" ? "(root)" : out;
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}n`;
  return String(v);
}

/** What the issue expected, when zod's message does not already say it. */
function expectation(issue: Issue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      return issue.expected;
    case "too_small":
      return `${issue.origin === "array" ? "length " : ""}${
        issue.inclusive === false ? ">" : ">="
      } ${issue.minimum}`;
    case "too_big":
      return `${issue.origin === "array" ? "length " : ""}${
        issue.inclusive === false ? "<" : "<="
      } ${issue.maximum}`;
    case "invalid_value":
      return `one of ${issue.values.map(show).join(", ")}`;
    case "invalid_union":
      return "options" in issue && issue.options
        ? `one of ${issue.options.map(show).join(", ")}`
        : undefined;
    case "invalid_format":
      return issue.pattern !== undefined ? `to match ${issue.pattern}` : issue.format;
    case "not_multiple_of":
      return `a multiple of ${issue.divisor}`;
    case "custom": {
      const e = issue.params?.expected;
      return typeof e === "string" ? e : undefined;
    }
    default:
      return undefined;
  }
}

function renderIssue(issue: Issue, rootPath: string, out: string[]): void {
  const where = formatPath(rootPath, issue.path);
  if (issue.code === "unrecognized_keys") {
    for (const key of issue.keys) {
      out.push(`${formatPath(where === "(root)" ? "" : where, [key])}: unknown field`);
    }
    return;
  }
  if (issue.code === "invalid_union" && issue.errors.length > 0) {
    const branches = issue.errors.map((branch, i) => {
      const inner: string[] = [];
      for (const sub of branch) renderIssue(sub, "", inner);
      // Branch issues are shown relative to the union's own path.
      const rel = inner.map((line) => line.replace(/^\(root\): /, ""));
      return `option ${i + 1}: ${rel.join("; ")}`;
    });
    out.push(`${where}: no variant matched (${branches.join(" | ")})`);
    return;
  }
  let line = `${where}: ${issue.message}`;
  const exp = expectation(issue);
  if (exp !== undefined && !/expected/i.test(issue.message)) line += ` (expected ${exp})`;
  out.push(line);
}

/**
 * Renders every issue of `err` as `path.to.field: message (expected ...)`, joined by "; ".
 * `rootPath` names where the validated value came from (e.g. "throttle", "scenario.nodes").
 * Unknown keys of strict objects are reported one per key as `path.key: unknown field`.
 * Custom issues may pass `params: { expected: "..." }` to get an "(expected ...)" suffix.
 */
export function formatZodError(err: z.ZodError, rootPath: string): string {
  const out: string[] = [];
  for (const issue of err.issues as Issue[]) renderIssue(issue, rootPath, out);
  return out.join("; ");
}

/**
 * Validates a config section with its schema (absent input: the defaults); a bad value
 * throws ConfigError naming the field's full path under `path`.
 */
export function parseSection<S extends z.ZodType>(
  schema: S,
  input: unknown,
  path: string,
): z.output<S> {
  const r = schema.safeParse(input ?? {});
  if (!r.success) throw new ConfigError(formatZodError(r.error, path), path);
  return r.data;
}
