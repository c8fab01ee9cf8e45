// The queen's node list, in SQLite so it outlives the queen and the keeper can read it with no queen running.
import { drizzle } from "drizzle-orm/bun-sqlite";
import { eq } from "drizzle-orm";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { join } from "node:path";
import { openDatabase } from "../catalog/database";
import { RbeeError } from "../errors";

export const nodes = sqliteTable("nodes", {
  name: text("name").primaryKey(),
  sshHost: text("ssh_host"),
  sshPort: integer("ssh_port"),
  sshUser: text("ssh_user"),
  keyPath: text("key_path"),
  rbeePath: text("rbee_path"),
  hivePort: integer("hive_port"),
  /** Where the node's hive last said it listens. */
  hiveUrl: text("hive_url"),
  /** What `uname -sm` said when the node was added or rbee installed there (linux-arm64 …). */
  platform: text("platform"),
  addedAt: integer("added_at", { mode: "timestamp_ms" }).notNull(),
});

export type NodeRow = typeof nodes.$inferSelect;

const MIGRATIONS = [
  `CREATE TABLE nodes (
     name TEXT PRIMARY KEY,
     ssh_host TEXT,
     ssh_port INTEGER,
     ssh_user TEXT,
     key_path TEXT,
     rbee_path TEXT,
     hive_port INTEGER,
     hive_url TEXT,
     added_at INTEGER NOT NULL
   );`,
  `ALTER TABLE nodes ADD COLUMN platform TEXT;`,
];

export const LOCAL_NODE = "localhost";
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** How a node is reached over SSH (user@host:port), or null for one that is not. */
export function sshLabel(node: Pick<NodeRow, "sshHost" | "sshUser" | "sshPort">): string | null {
  return node.sshHost ? `${node.sshUser}@${node.sshHost}:${node.sshPort}` : null;
}

export function checkNodeName(name: string): string {
  if (!NODE_NAME.test(name)) throw new RbeeError("BAD_REQUEST", `invalid node name "${name}": letters, digits, '.', '_' and '-' only`);
  return name;
}

/** The node list's file in rbee's home. */
export const NODES_DB = "queen.db";

export class NodeRegistry {
  private readonly sqlite;
  private readonly db;

  constructor(home: string) {
    this.sqlite = openDatabase(join(home, NODES_DB), MIGRATIONS);
    this.db = drizzle(this.sqlite);
  }

  list(): NodeRow[] {
    return this.db.select().from(nodes).orderBy(nodes.name).all();
  }

  get(name: string): NodeRow | undefined {
    return this.db.select().from(nodes).where(eq(nodes.name, name)).get();
  }

  upsert(row: Omit<NodeRow, "addedAt" | "platform"> & { addedAt?: Date; platform?: string | null }): NodeRow {
    checkNodeName(row.name);
    const known = this.get(row.name);
    const value = { ...row, platform: row.platform ?? known?.platform ?? null, addedAt: row.addedAt ?? known?.addedAt ?? new Date() };
    this.db.insert(nodes).values(value).onConflictDoUpdate({ target: nodes.name, set: value }).run();
    return value;
  }

  setHiveUrl(name: string, hiveUrl: string): void {
    if (this.get(name)) this.db.update(nodes).set({ hiveUrl }).where(eq(nodes.name, name)).run();
    else this.upsert({ name, sshHost: null, sshPort: null, sshUser: null, keyPath: null, rbeePath: null, hivePort: null, hiveUrl });
  }

  remove(name: string): boolean {
    const existed = this.get(name) !== undefined;
    this.db.delete(nodes).where(eq(nodes.name, name)).run();
    return existed;
  }

  close(): void {
    this.sqlite.close();
  }
}
