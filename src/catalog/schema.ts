// The model catalog's table, and the SQL that creates it (run from the binary: no migration files ship beside it).
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import type { ModelShape } from "../inference/memory-plan";

export const models = sqliteTable("models", {
  id: text("id").primaryKey(),
  ref: text("ref").notNull().unique(),
  name: text("name").notNull(),
  provider: text("provider", { enum: ["hf", "file"] }).notNull(),
  path: text("path").notNull(),
  sizeBytes: integer("size_bytes").notNull(),
  sha256: text("sha256").notNull(),
  architecture: text("architecture"),
  parameterCount: integer("parameter_count"),
  quantization: text("quantization"),
  contextLength: integer("context_length"),
  /** For memory estimates (inference/memory-plan.ts); null for entries recorded before it was kept. */
  shape: text("shape", { mode: "json" }).$type<ModelShape>(),
  /** The GGUF's chat template (Jinja), where it has one. */
  chatTemplate: text("chat_template"),
  downloadedAt: integer("downloaded_at", { mode: "timestamp_ms" }).notNull(),
  lastUsedAt: integer("last_used_at", { mode: "timestamp_ms" }),
});

export type ModelRow = typeof models.$inferSelect;

/** Each entry moves the schema one version up; PRAGMA user_version records how far a database got. */
export const MIGRATIONS: string[] = [
  `CREATE TABLE models (
     id TEXT PRIMARY KEY,
     ref TEXT NOT NULL UNIQUE,
     name TEXT NOT NULL,
     provider TEXT NOT NULL CHECK (provider IN ('hf', 'file')),
     path TEXT NOT NULL,
     size_bytes INTEGER NOT NULL,
     sha256 TEXT NOT NULL,
     architecture TEXT,
     parameter_count INTEGER,
     quantization TEXT,
     context_length INTEGER,
     downloaded_at INTEGER NOT NULL,
     last_used_at INTEGER
   );
   CREATE INDEX models_name ON models (name);`,
  `ALTER TABLE models ADD COLUMN shape TEXT;`,
  `ALTER TABLE models ADD COLUMN chat_template TEXT;`,
];
