/**
 * The node's DurableStore (core/host.ts) on SQLite (`node:sqlite`, DESIGN.md section 4).
 *
 * Writes are buffered in memory and visible to `get` at once; `sync()` writes every pending
 * change in one transaction and returns only once it is durable (WAL with
 * `synchronous=FULL`: the commit fsyncs the log). So `kill -9` after `sync()` loses nothing,
 * and a crash before it loses exactly the pending changes, never half of a sync.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { DurableStore } from "../core/host.ts";
import { MyceliumError } from "../core/errors.ts";

/** `null` marks a pending delete. */
type Pending = Map<string, Uint8Array | null>;

export class SqliteStore implements DurableStore {
  private readonly pending: Pending = new Map();
  private readonly selectStmt: StatementSync;
  private readonly upsertStmt: StatementSync;
  private readonly deleteStmt: StatementSync;
  private closed = false;

  private constructor(readonly path: string, private readonly db: DatabaseSync) {
    this.selectStmt = db.prepare("SELECT value FROM kv WHERE key = ?");
    this.upsertStmt = db.prepare(
      "INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    );
    this.deleteStmt = db.prepare("DELETE FROM kv WHERE key = ?");
  }

  /**
   * Opens (creating it and its parent directories if needed) the store at `path`.
   * Throws MyceliumError kind "storage" naming the path when the file cannot be opened as
   * a SQLite database (a directory, a file of another kind, no permission).
   */
  static open(path: string): SqliteStore {
    let db: DatabaseSync | undefined;
    try {
      if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
      db = new DatabaseSync(path);
      db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
      db.exec("CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value BLOB NOT NULL)");
      return new SqliteStore(path, db);
    } catch (e) {
      try {
        db?.close();
      } catch { /* already failing: the first error is the one to report */ }
      throw new MyceliumError("storage", `cannot open store: ${errorText(e)}`, {
        input: path,
        cause: e,
      });
    }
  }

  get(key: string): Uint8Array | undefined {
    this.checkOpen();
    if (this.pending.has(key)) {
      const v = this.pending.get(key);
      return v ? v.slice() : undefined;
    }
    const row = this.guard("read", () => this.selectStmt.get(key));
    if (row === undefined) return undefined;
    const value = row.value;
    if (!(value instanceof Uint8Array)) {
      throw new MyceliumError("storage", `value of key ${JSON.stringify(key)} is not a blob`, {
        input: this.path,
      });
    }
    return value;
  }

  put(key: string, value: Uint8Array): void {
    this.checkOpen();
    this.pending.set(key, value.slice());
  }

  delete(key: string): void {
    this.checkOpen();
    this.pending.set(key, null);
  }

  /** Number of changes waiting for `sync()`. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Writes all pending changes in one transaction; returns once they are on disk. */
  sync(): void {
    this.checkOpen();
    if (this.pending.size === 0) return;
    this.guard("sync", () => {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        for (const [key, value] of this.pending) {
          if (value === null) this.deleteStmt.run(key);
          else this.upsertStmt.run(key, value);
        }
        this.db.exec("COMMIT");
      } catch (e) {
        try {
          this.db.exec("ROLLBACK");
        } catch { /* the transaction may already be rolled back */ }
        throw e;
      }
    });
    this.pending.clear();
  }

  /**
   * Closes the database. Pending changes are synced first unless `discardPending` is set
   * (which models a crash in tests: exactly what `kill -9` would lose).
   * Closing twice is a no-op.
   */
  close(opts: { discardPending?: boolean } = {}): void {
    if (this.closed) return;
    if (!opts.discardPending) this.sync();
    this.pending.clear();
    this.closed = true;
    this.guard("close", () => this.db.close());
  }

  private checkOpen(): void {
    if (this.closed) throw new MyceliumError("storage", "store is closed", { input: this.path });
  }

  private guard<T>(op: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw new MyceliumError("storage", `${op} failed: ${errorText(e)}`, {
        input: this.path,
        cause: e,
      });
    }
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
