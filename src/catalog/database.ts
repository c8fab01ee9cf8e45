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
