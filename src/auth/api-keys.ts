// Client API keys of a queen: each with a name, scopes (inference; operator: nodes, downloads, workers, shutdown) and
// optional limits (concurrent requests, requests per minute). Kept in $RBEE_HOME/keys.db as SHA-256 hashes: a key is
// shown once, when it is made, and never again; revoking one takes effect on the next request.
import { Database } from "bun:sqlite";
import { and, eq, isNull, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/bun-sqlite";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openDatabase, ReadWhenChanged } from "../catalog/database";
import { RbeeError } from "../errors";

export const SCOPES = ["inference", "operator"] as const;
export type Scope = (typeof SCOPES)[number];

export const apiKeys = sqliteTable("api_keys", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  hash: text("hash").notNull().unique(),
  scopes: text("scopes").notNull(),
  maxConcurrent: integer("max_concurrent"),
  perMinute: integer("per_minute"),
  createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
  revokedAt: integer("revoked_at", { mode: "timestamp_ms" }),
});
export type ApiKeyRow = typeof apiKeys.$inferSelect;

const MIGRATIONS = [
  `CREATE TABLE api_keys (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL,
     max_concurrent INTEGER, per_minute INTEGER, created_at INTEGER NOT NULL, revoked_at INTEGER
   );`,
];

export interface KeyLimits {
  maxConcurrent?: number;
  perMinute?: number;
}

export function hashKey(key: string): string {
  return new Bun.CryptoHasher("sha256").update(key).digest("hex");
}

export class ApiKeys {
  private readonly path: string;
  private sqlite: Database | undefined;
  private opened: ReturnType<typeof drizzle> | undefined;

  /** Opens keys.db when first needed: a home without keys gets no file (a running queen sees one made later). */
  constructor(home: string) {
    this.path = join(home, "keys.db");
  }

  private get db() {
    if (!this.opened) {
      this.sqlite = openDatabase(this.path, MIGRATIONS);
      this.opened = drizzle(this.sqlite);
    }
    return this.opened;
  }

  /** A new key: the row, and the key itself, which is not kept. */
  create(name: string, scopes: Scope[], limits: KeyLimits = {}): { row: ApiKeyRow; key: string } {
    if (!/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/.test(name)) throw new RbeeError("BAD_REQUEST", `invalid key name "${name}": letters, digits, spaces, '.', '_' and '-'`);
    if (!scopes.length) throw new RbeeError("BAD_REQUEST", `a key needs at least one scope: ${SCOPES.join(", ")}`);
    const key = `rbee_${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64url")}`;
    const row: ApiKeyRow = {
      id: `k-${crypto.randomUUID().slice(0, 8)}`,
      name,
      hash: hashKey(key),
      scopes: scopes.join(","),
      maxConcurrent: limits.maxConcurrent ?? null,
      perMinute: limits.perMinute ?? null,
      createdAt: new Date(),
      revokedAt: null,
    };
    this.db.insert(apiKeys).values(row).run();
    this.active?.changed();
    return { row, key };
  }

  list(): ApiKeyRow[] {
    if (!this.opened && !existsSync(this.path)) return [];
    return this.db.select().from(apiKeys).orderBy(apiKeys.createdAt).all();
  }

  /** The key's row if it is one of ours and not revoked. */
  find(key: string): ApiKeyRow | undefined {
    if (!this.opened && !existsSync(this.path)) return undefined;
    // Asked on every request: prepared once, not per call.
    this.findByHash ??= this.db.select().from(apiKeys).where(and(eq(apiKeys.hash, sql.placeholder("hash")), isNull(apiKeys.revokedAt))).prepare();
    return this.findByHash.get({ hash: hashKey(key) });
  }
  private findByHash: { get(values: { hash: string }): ApiKeyRow | undefined } | undefined;

  /** Whether any key works: then the queen needs one (or the cluster token) on every request but health checks. */
  anyActive(): boolean {
    if (!this.opened && !existsSync(this.path)) return false;
    // Asked on every request: read again only when keys.db changed.
    const db = this.db; // opens the file, where another process made it
    this.active ??= new ReadWhenChanged(this.sqlite!, () => db.select({ id: apiKeys.id }).from(apiKeys).where(isNull(apiKeys.revokedAt)).limit(1).get() !== undefined);
    return this.active.get();
  }
  private active: ReadWhenChanged<boolean> | undefined;

  revoke(id: string): ApiKeyRow {
    const row = this.db.select().from(apiKeys).where(eq(apiKeys.id, id)).get();
    if (!row) throw new RbeeError("NOT_FOUND", `no key ${id} (see rbee keys list)`);
    if (row.revokedAt) throw new RbeeError("BAD_REQUEST", `key ${id} was revoked already`);
    this.db.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.id, id)).run();
    this.active?.changed();
    return { ...row, revokedAt: new Date() };
  }

  close(): void {
    this.sqlite?.close();
  }
}

export function scopesOf(row: ApiKeyRow): Scope[] {
  return row.scopes.split(",") as Scope[];
}
