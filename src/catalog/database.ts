// Opens a SQLite file for rbee (WAL, foreign keys, busy timeout) and brings its schema up to date in one transaction.
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

const BUSY_TIMEOUT_MS = 5000;

export function openDatabase(path: string, migrations: string[]): Database {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { create: true, strict: true });
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.exec("PRAGMA foreign_keys = ON");
  db.transaction(() => {
    const current = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
    if (current > migrations.length) throw new Error(`${path} was written by a newer rbee (schema ${current} > ${migrations.length})`);
    for (let v = current; v < migrations.length; v++) db.exec(migrations[v]!);
    db.exec(`PRAGMA user_version = ${migrations.length}`);
  }).immediate();
  return db;
}

/**
 * A value read from the database again only when the file changed: another process's commits show in SQLite's
 * data_version (`rbee models alias`, `rbee keys create` while a queen runs); this process marks its own writes with
 * `changed()`. For what every request asks (a model's name, whether any client key exists).
 */
export class ReadWhenChanged<T> {
  private readonly version;
  private cached: { version: number; value: T } | undefined;

  constructor(
    sqlite: Database,
    private readonly read: () => T,
  ) {
    this.version = sqlite.query<{ data_version: number }, []>("PRAGMA data_version");
  }

  get(): T {
    const version = this.version.get()!.data_version;
    if (this.cached?.version !== version) this.cached = { version, value: this.read() };
    return this.cached.value;
  }

  changed(): void {
    this.cached = undefined;
  }
}
