/**
 * Typed errors (the seed's `thiserror` enums): every error carries a `kind`
 * discriminant and an optional cause; errors at the edge name the input that caused them.
 */
export type ErrorKind =
  | "config" // a configuration or scenario value is invalid
  | "decode" // bytes could not be decoded into a message
  | "encode" // a message could not be encoded
  | "storage" // durable store failure
  | "network" // transport failure
  | "protocol" // a protocol invariant was broken by input
  | "internal"; // a bug: an invariant of our own code

export class MyceliumError extends Error {
  readonly kind: ErrorKind;
  /** The field, file or input the error is about, when there is one. */
  readonly input?: string;

  constructor(kind: ErrorKind, message: string, opts: { input?: string; cause?: unknown } = {}) {
    super(opts.input ? `${opts.input}: ${message}` : message, { cause: opts.cause });
    this.name = "MyceliumError";
    this.kind = kind;
    this.input = opts.input;
  }
}

/** Malformed bytes on the wire; `offset` is where decoding stopped. */
export class DecodeError extends MyceliumError {
  readonly offset: number;
  constructor(message: string, offset: number, cause?: unknown) {
    super("decode", `${message} (at byte ${offset})`, { cause });
    this.name = "DecodeError";
    this.offset = offset;
  }
}

export class ConfigError extends MyceliumError {
  constructor(message: string, input?: string, cause?: unknown) {
    super("config", message, { input, cause });
    this.name = "ConfigError";
  }
}
