/**
 * Seed spore files in the spores simulator: one virtual file (bytes) per configured location,
 * written by member nodes with core/spores/seed.ts `writeSeed` and read by joiners with
 * `readSeed`, and the tampering a scenario can do to a location (DESIGN.md section 5: a
 * missing, truncated, stale or tampered seed is reported and skipped, never trusted).
 */
import type { NodeId } from "../../core/ids.ts";
import {
  readSeed,
  type SeedEntry,
  type SeedProblem,
  type SeedSnapshot,
  writeSeed,
} from "../../core/spores/seed.ts";
import { MASTER_SCOPE, type SignFn, type VerifyFn } from "../../core/spores/types.ts";
import type { SeedAction } from "../scenario.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

export class SeedFiles {
  private readonly files = new Map<string, Uint8Array>();
  /** Reads by outcome ("ok" or a SeedProblem). */
  readonly reads = new Map<string, number>();
  writes = 0;
  largest = 0;

  constructor(readonly locations: readonly string[]) {}

  get(loc: string): Uint8Array | undefined {
    return this.files.get(loc);
  }

  put(loc: string, bytes: Uint8Array): void {
    this.files.set(loc, bytes);
    this.writes++;
    this.largest = Math.max(this.largest, bytes.length);
  }

  delete(loc: string): void {
    this.files.delete(loc);
  }

  /** The version of the snapshot at `loc` if it parses (tampered or not), else 0. */
  versionAt(loc: string): number {
    const b = this.files.get(loc);
    if (!b) return 0;
    const nl = b.indexOf(0x0a);
    try {
      const v = JSON.parse(dec.decode(nl >= 0 ? b.subarray(0, nl) : b)).version;
      return Number.isSafeInteger(v) ? v : 0;
    } catch {
      return 0;
    }
  }

  /** Reads `loc` as a joiner does; counts the outcome. */
  read(
    loc: string,
    opts: { network: string; verify: VerifyFn; now: number; maxAgeMs: number; maxSkewMs: number },
  ): { ok: true; seed: SeedSnapshot } | { ok: false; problem: SeedProblem; detail: string } {
    const r = readSeed(this.files.get(loc), opts);
    const key = r.ok ? "ok" : r.problem;
    this.reads.set(key, (this.reads.get(key) ?? 0) + 1);
    return r;
  }

  /** Writes a new version of the snapshot to every location; returns the bytes written. */
  writeAll(
    s: {
      network: string;
      writer: NodeId;
      created: number;
      primaryHeight: number;
      entries: readonly SeedEntry[];
    },
    sign: SignFn,
    isMember: (n: NodeId) => boolean,
  ): number {
    let bytes = 0;
    for (const loc of this.locations) {
      const version = this.versionAt(loc) + 1;
      const w = writeSeed({ ...s, version, scope: MASTER_SCOPE }, { sign, isMember });
      this.put(loc, w.bytes);
      bytes = Math.max(bytes, w.bytes.length);
    }
    return bytes;
  }

  /**
   * Applies a scenario's seed event to `loc`. `signer` is a member's key (stale and
   * wrong-network files are validly signed: only the reader's other checks refuse them);
   * `attacker` signs the forged file, which claims to be from `impostor`.
   */
  tamper(
    loc: string,
    action: SeedAction,
    ctx: {
      network: string;
      otherNetwork: string;
      now: number;
      maxAgeMs: number;
      writer: NodeId;
      sign: SignFn;
      attacker: SignFn;
      entries: readonly SeedEntry[];
    },
  ): void {
    const cur = this.files.get(loc);
    const version = this.versionAt(loc) + 1;
    const base = {
      version,
      network: ctx.network,
      scope: MASTER_SCOPE,
      created: Math.max(0, Math.floor(ctx.now)),
      writer: ctx.writer,
      primaryHeight: 0,
      entries: ctx.entries,
    };
    const anyone = () => true;
    switch (action) {
      case "delete":
        this.files.delete(loc);
        return;
      case "truncate":
        if (cur) this.files.set(loc, cur.slice(0, Math.floor(cur.length / 2)));
        return;
      case "corrupt": {
        // Flip one digit of the primary height: still valid JSON, but the signature breaks.
        const text = cur ? dec.decode(cur) : "";
        const m = /"primaryHeight":(\d)/.exec(text);
        if (!cur || !m) return this.files.set(loc, enc.encode("\u0000garbage\n")), undefined;
        const digit = String((Number(m[1]) + 1) % 10);
        const at = m.index + m[0].length - 1;
        this.files.set(loc, enc.encode(text.slice(0, at) + digit + text.slice(at + 1)));
        return;
      }
      case "stale": {
        // (Only possible once now > maxAgeMs: a file is never created before time 0.)
        const created = Math.max(0, Math.floor(ctx.now - ctx.maxAgeMs - 60_000));
        this.files.set(
          loc,
          writeSeed({ ...base, created }, { sign: ctx.sign, isMember: anyone }).bytes,
        );
        return;
      }
      case "wrong-network":
        this.files.set(
          loc,
          writeSeed({ ...base, network: ctx.otherNetwork }, { sign: ctx.sign, isMember: anyone })
            .bytes,
        );
        return;
      case "forge": {
        // An attacker lists its own "Sclerotia" and claims a member wrote the file.
        const entries: SeedEntry[] = [{
          node: "f".repeat(32) as NodeId,
          tier: "sclerotia",
          trust: 1,
          addrs: ["evil:1"],
        }];
        this.files.set(
          loc,
          writeSeed({ ...base, entries }, { sign: ctx.attacker, isMember: anyone }).bytes,
        );
        return;
      }
    }
  }
}
