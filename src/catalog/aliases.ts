// Names for models, as people use them (Ollama's `name:tag`): each points at a model reference (hf:…, file:…, a
// catalog id). Kept by the queen in $RBEE_HOME/names.db; made by /api/copy and `rbee models alias`.
import { Database } from "bun:sqlite";
import { drizzle } from "drizzle-orm/bun-sqlite";
import { eq } from "drizzle-orm";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { join } from "node:path";
import { RbeeError } from "../errors";
import { openDatabase, ReadWhenChanged } from "./database";

export const aliases = sqliteTable("aliases", {
  name: text("name").primaryKey(),
  ref: text("ref").notNull(),
  createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
});
export type AliasRow = typeof aliases.$inferSelect;

const MIGRATIONS = [`CREATE TABLE aliases (name TEXT PRIMARY KEY, ref TEXT NOT NULL, created_at INTEGER NOT NULL);`];
const NAME = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}(:[A-Za-z0-9._-]{1,64})?$/;

/** `name` with Ollama's default tag where it has none: "llama3" → "llama3:latest". */
export function withTag(name: string): string {
  return name.includes(":") ? name : `${name}:latest`;
}

export class Aliases {
  private readonly sqlite: Database;
  private readonly db;
  /** Every name, read again only when names.db changed: each request resolves its model's name. */
  private readonly names: ReadWhenChanged<Map<string, string>>;

  constructor(home: string) {
    this.sqlite = openDatabase(join(home, "names.db"), MIGRATIONS);
    this.db = drizzle(this.sqlite);
    this.names = new ReadWhenChanged(this.sqlite, () => new Map(this.list().map((row) => [row.name, row.ref])));
  }

  /** The reference a name points at, with or without its `:latest`. */
  resolve(name: string): string | undefined {
    return this.names.get().get(withTag(name));
  }

  set(name: string, ref: string): AliasRow {
    if (!NAME.test(name)) throw new RbeeError("BAD_REQUEST", `invalid model name "${name}": letters, digits, '.', '_', '-', '/' and one ':tag'`);
    const row = { name: withTag(name), ref, createdAt: new Date() };
    this.db.insert(aliases).values(row).onConflictDoUpdate({ target: aliases.name, set: { ref, createdAt: row.createdAt } }).run();
    this.names.changed();
    return row;
  }

  remove(name: string): boolean {
    if (this.resolve(name) === undefined) return false;
    this.db.delete(aliases).where(eq(aliases.name, withTag(name))).run();
    this.names.changed();
    return true;
  }

  list(): AliasRow[] {
    return this.db.select().from(aliases).orderBy(aliases.name).all();
  }

  close(): void {
    this.sqlite.close();
  }
}
