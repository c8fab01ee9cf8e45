// The Responses API's stored responses ($RBEE_HOME/responses.db): each response as it was answered, the items its
// request brought, and the whole conversation up to its answer, so that a request naming it as previous_response_id
// continues from there in one read. Bounded: the newest RBEE_STORED_RESPONSES (10,000), none older than STORED_FOR_MS.
import type { Database } from "bun:sqlite";
import { desc, eq, lt, notInArray } from "drizzle-orm";
import { drizzle } from "drizzle-orm/bun-sqlite";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { join } from "node:path";
import { openDatabase } from "../../catalog/database";
import type { ConversationItem } from "../../dialects/responses";
import { RbeeError } from "../../errors";
import { storedResponsesLimit } from "../../config";

const responses = sqliteTable("responses", {
  id: text("id").primaryKey(),
  createdAt: integer("created_at").notNull(),
  response: text("response", { mode: "json" }).notNull(),
  input: text("input", { mode: "json" }).$type<ConversationItem[]>().notNull(),
  conversation: text("conversation", { mode: "json" }).$type<ConversationItem[]>().notNull(),
});

const MIGRATIONS = [
  `CREATE TABLE responses (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, response TEXT NOT NULL, input TEXT NOT NULL, conversation TEXT NOT NULL);
   CREATE INDEX responses_created_at ON responses (created_at);`,
];

/** As OpenAI keeps them: 30 days. */
const STORED_FOR_MS = 30 * 24 * 3600 * 1000;

export class ResponseStore {
  private opened: { sqlite: Database; db: ReturnType<typeof drizzle> } | undefined;

  constructor(
    private readonly home: string,
    private readonly limit = storedResponsesLimit(),
  ) {}

  /** Opened on first use: a queen that serves no Responses request (an ephemeral one) leaves no file. */
  private get sqlite(): Database {
    return this.open().sqlite;
  }
  private get db() {
    return this.open().db;
  }
  private open() {
    if (!this.opened) {
      const sqlite = openDatabase(join(this.home, "responses.db"), MIGRATIONS);
      this.opened = { sqlite, db: drizzle(sqlite) };
    }
    return this.opened;
  }

  save(response: { id: string }, input: ConversationItem[], conversation: ConversationItem[]): void {
    this.sqlite.transaction(() => {
      this.db.insert(responses).values({ id: response.id, createdAt: Date.now(), response, input, conversation }).run();
      this.db.delete(responses).where(lt(responses.createdAt, Date.now() - STORED_FOR_MS)).run();
      const kept = this.db.select({ id: responses.id }).from(responses).orderBy(desc(responses.createdAt)).limit(this.limit);
      this.db.delete(responses).where(notInArray(responses.id, kept)).run();
    })();
  }

  get(id: string): object {
    return this.row(id).response as object;
  }

  /** The items its request brought (GET /v1/responses/{id}/input_items). */
  input(id: string): ConversationItem[] {
    return this.row(id).input;
  }

  /** The conversation a request continues when it names this response as previous_response_id. */
  conversation(id: string): ConversationItem[] {
    return this.row(id, "previous_response_id").conversation;
  }

  delete(id: string): void {
    this.row(id);
    this.db.delete(responses).where(eq(responses.id, id)).run();
  }

  count(): number {
    return (this.sqlite.query("SELECT count(*) AS n FROM responses").get() as { n: number }).n;
  }

  close(): void {
    this.opened?.sqlite.close();
    this.opened = undefined;
  }

  private row(id: string, field?: string) {
    const row = this.db.select().from(responses).where(eq(responses.id, id)).get();
    if (!row) throw new RbeeError("NOT_FOUND", `${field ? `${field}: ` : ""}no stored response ${id} (store: false keeps none; the oldest are dropped after ${this.limit})`);
    return row;
  }
}
