/**
 * Structured JSON-lines logs (DESIGN.md section 6: `tracing` spans and fields): one object
 * per line, `{ level, time, node, component, event, ...fields }`.
 *
 * Logging never throws into its caller: values JSON cannot carry (bigint, cycles, errors,
 * bytes, maps, functions, non-finite numbers) are rendered safely, and a failing sink is
 * ignored (a node that cannot write its logs must keep running).
 */
import { writeSync } from "node:fs";
import type { Logger, LogLevel } from "../core/host.ts";

export const LOG_LEVEL_ORDER: Readonly<Record<LogLevel, number>> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
};

/** Receives one complete line, including its trailing newline. */
export type LogSink = (line: string) => void;

const encoder = new TextEncoder();

/**
 * Writes to stderr (fd 2) synchronously, so lines are not lost on exit or crash.
 * `node:fs` rather than `Deno.stderr` so the node also runs when bundled for Node.
 */
export const stderrSink: LogSink = (line) => {
  const bytes = encoder.encode(line);
  let off = 0;
  while (off < bytes.length) off += writeSync(2, bytes, off, bytes.length - off);
};

export interface JsonLoggerOptions {
  /** Minimum level written (default "info"). */
  level?: LogLevel;
  /** Node name or id, written as `node` on every line when set. */
  node?: string;
  /** Component name (default "node"). */
  component?: string;
  /** Default: `stderrSink`. */
  sink?: LogSink;
  /** Wall clock for `time` (default `() => new Date()`); tests pass a fixed one. */
  clock?: () => Date;
}

/** Keys every line has; a field with one of these names is written as `field.<name>`. */
const RESERVED = new Set(["level", "time", "node", "component", "event"]);

export class JsonLogger implements Logger {
  readonly level: LogLevel;
  readonly node?: string;
  readonly component: string;
  private readonly sink: LogSink;
  private readonly clock: () => Date;
  private readonly min: number;

  constructor(opts: JsonLoggerOptions = {}) {
    this.level = opts.level ?? "info";
    this.node = opts.node;
    this.component = opts.component ?? "node";
    this.sink = opts.sink ?? stderrSink;
    this.clock = opts.clock ?? (() => new Date());
    this.min = LOG_LEVEL_ORDER[this.level] ?? LOG_LEVEL_ORDER.info;
  }

  /** The same logger (level, node, sink) for another component. */
  child(component: string): JsonLogger {
    return new JsonLogger({
      level: this.level,
      node: this.node,
      component,
      sink: this.sink,
      clock: this.clock,
    });
  }

  enabled(level: LogLevel): boolean {
    return (LOG_LEVEL_ORDER[level] ?? LOG_LEVEL_ORDER.error) >= this.min;
  }

  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void {
    if (!this.enabled(level)) return;
    let line: string;
    try {
      line = this.format(level, event, fields);
    } catch {
      // Only reachable through hostile objects (throwing getters or proxies).
      line = this.format(level, event, { log_error: "fields could not be rendered" });
    }
    try {
      this.sink(line);
    } catch {
      // The sink is gone (closed stderr, EPIPE): nothing useful left to do.
    }
  }

  debug(event: string, fields?: Record<string, unknown>): void {
    this.log("debug", event, fields);
  }
  info(event: string, fields?: Record<string, unknown>): void {
    this.log("info", event, fields);
  }
  warn(event: string, fields?: Record<string, unknown>): void {
    this.log("warn", event, fields);
  }
  error(event: string, fields?: Record<string, unknown>): void {
    this.log("error", event, fields);
  }

  private format(level: LogLevel, event: string, fields?: Record<string, unknown>): string {
    const rec: Record<string, unknown> = { level, time: safeTime(this.clock) };
    if (this.node !== undefined) rec.node = this.node;
    rec.component = this.component;
    rec.event = String(event);
    if (fields) {
      const seen = new Set<object>();
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        const key = RESERVED.has(k) ? `field.${k}` : k;
        Object.defineProperty(rec, key, {
          value: toJsonSafe(v, seen, 0),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
    }
    return JSON.stringify(rec) + "\n";
  }
}

function safeTime(clock: () => Date): string {
  try {
    return clock().toISOString();
  } catch {
    return new Date(0).toISOString();
  }
}

const MAX_DEPTH = 8;
const MAX_ITEMS = 100;
const MAX_BYTES_SHOWN = 32;

function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** An error as `{ name, message, kind?, input?, code?, cause? }`. */
function errorToJson(e: Error, seen: Set<object>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { name: e.name, message: e.message };
  const extra = e as Error & { kind?: unknown; input?: unknown; code?: unknown };
  if (extra.kind !== undefined) out.kind = toJsonSafe(extra.kind, seen, depth + 1);
  if (extra.input !== undefined) out.input = toJsonSafe(extra.input, seen, depth + 1);
  if (extra.code !== undefined) out.code = toJsonSafe(extra.code, seen, depth + 1);
  if (e.cause !== undefined) out.cause = toJsonSafe(e.cause, seen, depth + 1);
  return out;
}

/**
 * Converts `v` into something `JSON.stringify` renders faithfully and cannot throw on:
 * bigint -> decimal string, Error -> {name, message, kind, input, code, cause},
 * Uint8Array -> {bytes, hex} (first 32 bytes), Map -> object, Set -> array, Date -> ISO,
 * NaN/Infinity -> string, function/symbol -> description, cycles -> "[Circular]",
 * deeper than 8 levels -> "[Truncated]", more than 100 items -> a marker.
 */
export function toJsonSafe(v: unknown, seen: Set<object> = new Set(), depth = 0): unknown {
  switch (typeof v) {
    case "string":
    case "boolean":
      return v;
    case "number":
      return Number.isFinite(v) ? v : String(v);
    case "bigint":
      return v.toString();
    case "undefined":
      return null;
    case "symbol":
      return v.toString();
    case "function":
      return `[Function ${v.name || "anonymous"}]`;
  }
  if (v === null) return null;
  const obj = v as object;
  if (seen.has(obj)) return "[Circular]";
  if (depth >= MAX_DEPTH) return "[Truncated]";
  seen.add(obj);
  try {
    if (obj instanceof Error) return errorToJson(obj, seen, depth);
    if (obj instanceof Date) {
      return Number.isNaN(obj.getTime()) ? "Invalid Date" : obj.toISOString();
    }
    if (obj instanceof Uint8Array) {
      const shown = obj.subarray(0, MAX_BYTES_SHOWN);
      return obj.length > MAX_BYTES_SHOWN
        ? { bytes: obj.length, hex: `${hex(shown)}...` }
        : { bytes: obj.length, hex: hex(shown) };
    }
    if (obj instanceof Map) {
      const out: Record<string, unknown> = {};
      let n = 0;
      for (const [k, val] of obj) {
        if (n++ >= MAX_ITEMS) {
          out["..."] = `${obj.size - MAX_ITEMS} more`;
          break;
        }
        defineField(out, String(k), toJsonSafe(val, seen, depth + 1));
      }
      return out;
    }
    if (obj instanceof Set) return arrayToJson([...obj], seen, depth);
    if (Array.isArray(obj)) return arrayToJson(obj, seen, depth);
    if (obj instanceof ArrayBuffer) return `[ArrayBuffer ${obj.byteLength} bytes]`;
    if (ArrayBuffer.isView(obj)) return `[${obj.constructor.name} ${obj.byteLength} bytes]`;
    const toJSON = (obj as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") return toJsonSafe(toJSON.call(obj), seen, depth + 1);
    const out: Record<string, unknown> = {};
    let n = 0;
    for (const [k, val] of Object.entries(obj)) {
      if (val === undefined) continue;
      if (n++ >= MAX_ITEMS) {
        out["..."] = "more fields";
        break;
      }
      defineField(out, k, toJsonSafe(val, seen, depth + 1));
    }
    return out;
  } finally {
    // Only ancestors count as cycles: the same object twice side by side is rendered twice.
    seen.delete(obj);
  }
}

function arrayToJson(items: readonly unknown[], seen: Set<object>, depth: number): unknown[] {
  const out = items.slice(0, MAX_ITEMS).map((x) => toJsonSafe(x, seen, depth + 1));
  if (items.length > MAX_ITEMS) out.push(`... ${items.length - MAX_ITEMS} more`);
  return out;
}

function defineField(out: Record<string, unknown>, key: string, value: unknown): void {
  // defineProperty keeps a "__proto__" key an ordinary field.
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}
