// The model catalog of one machine: which models it has, where, and whether the disk still agrees.
import { drizzle } from "drizzle-orm/bun-sqlite";
import { eq, or } from "drizzle-orm";
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { RbeeError } from "../errors";
import { openDatabase } from "./database";
import { MIGRATIONS, type ModelRow, models } from "./schema";

/** ready: the file is there, whole; missing: deleted behind rbee's back; changed: its size is not what was recorded. */
export type ModelStatus = "ready" | "missing" | "changed";
export type CatalogEntry = ModelRow & { status: ModelStatus };

export class Catalog {
  readonly modelsDir: string;
  private readonly sqlite;
  private readonly db;

  constructor(readonly home: string) {
    this.modelsDir = join(home, "models");
    this.sqlite = openDatabase(join(home, "models.db"), MIGRATIONS);
    this.db = drizzle(this.sqlite, { schema: { models } });
  }

  list(): CatalogEntry[] {
    return this.db.select().from(models).orderBy(models.name).all().map(withStatus);
  }

  /** Finds a model by id, reference or short name. */
  find(key: string): CatalogEntry | undefined {
    const rows = this.db.select().from(models).where(or(eq(models.id, key), eq(models.ref, key), eq(models.name, key))).all();
    if (rows.length > 1) throw new RbeeError("BAD_REQUEST", `"${key}" names ${rows.length} models: use one of ${rows.map((r) => r.ref).join(", ")}`);
    return rows[0] && withStatus(rows[0]);
  }

  /** A model that can be served now, or a clear error saying why not. */
  require(key: string): CatalogEntry {
    const entry = this.find(key);
    if (!entry) throw new RbeeError("MODEL_NOT_FOUND", `model "${key}" is not in the catalog of ${this.home}`);
    if (entry.status !== "ready")
      throw new RbeeError("MODEL_MISSING", `model ${entry.ref}: its file ${entry.path} is ${entry.status === "missing" ? "gone" : "not the size recorded"}; remove it and download it again`);
    return entry;
  }

  upsert(row: ModelRow): CatalogEntry {
    this.db.insert(models).values(row).onConflictDoUpdate({ target: models.ref, set: { ...row, id: undefined } }).run();
    return withStatus(row);
  }

  touch(id: string): void {
    this.db.update(models).set({ lastUsedAt: new Date() }).where(eq(models.id, id)).run();
  }

  /** Forgets a model; files rbee downloaded are deleted, local files the user added are left alone. */
  remove(key: string): CatalogEntry {
    const entry = this.find(key);
    if (!entry) throw new RbeeError("MODEL_NOT_FOUND", `model "${key}" is not in the catalog of ${this.home}`);
    this.db.delete(models).where(eq(models.id, entry.id)).run();
    if (entry.provider === "hf") rmSync(entry.path, { force: true });
    return entry;
  }

  close(): void {
    this.sqlite.close();
  }
}

function withStatus(row: ModelRow): CatalogEntry {
  let status: ModelStatus = "ready";
  try {
    if (statSync(row.path).size !== row.sizeBytes) status = "changed";
  } catch {
    status = "missing";
  }
  return { ...row, status };
}
