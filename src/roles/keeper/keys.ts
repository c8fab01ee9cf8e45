// `rbee keys create|list|revoke`: the queen's client API keys, in $RBEE_HOME/keys.db (a running queen of that home
// reads it on every request). A key is printed once, when it is made.
import { defineCommand } from "citty";
import { z } from "zod";
import { ApiKeys, SCOPES, type Scope, scopesOf } from "../../auth/api-keys";
import { parseArgs } from "../../cli-args";
import { rbeeHome } from "../../config";
import { formatTable } from "../../table";

const homeArg = { home: { type: "string", description: "rbee's home (default $RBEE_HOME or ~/.rbee)" } } as const;

function withKeys<T>(home: string | undefined, fn: (keys: ApiKeys) => T): T {
  const keys = new ApiKeys(rbeeHome(home));
  try {
    return fn(keys);
  } finally {
    keys.close();
  }
}

const CreateArgs = z.object({
  name: z.string().min(1, "name the key (who or what uses it)"),
  scopes: z.string().default("inference").transform((s, ctx) => {
    const scopes = s.split(",").map((x) => x.trim()).filter(Boolean);
    for (const scope of scopes) if (!SCOPES.includes(scope as Scope)) ctx.addIssue({ code: "custom", message: `unknown scope "${scope}": ${SCOPES.join(", ")}` });
    return scopes as Scope[];
  }),
  "max-concurrent": z.coerce.number().int().positive().optional(),
  rpm: z.coerce.number().int().positive().optional(),
  home: z.string().optional(),
  json: z.boolean().default(false),
});

const create = defineCommand({
  meta: { name: "create", description: "Make a key (printed once): --scopes inference,operator --max-concurrent N --rpm N" },
  args: {
    name: { type: "positional", description: "Who or what uses it", required: true },
    scopes: { type: "string", description: "inference (default), operator, or both: inference,operator" },
    "max-concurrent": { type: "string", description: "Requests it may have running at once" },
    rpm: { type: "string", description: "Requests it may make per minute" },
    json: { type: "boolean", description: "JSON output" },
    ...homeArg,
  },
  run: ({ args }) => {
    const a = parseArgs(CreateArgs, args);
    const { row, key } = withKeys(a.home, (keys) => keys.create(a.name, a.scopes, { maxConcurrent: a["max-concurrent"], perMinute: a.rpm }));
    if (a.json) return void console.log(JSON.stringify({ id: row.id, name: row.name, scopes: scopesOf(row), key }, null, 2));
    console.log(`${key}\n(${row.id}, ${row.name}: ${row.scopes}; shown once, keep it now)`);
  },
});

const list = defineCommand({
  meta: { name: "list", description: "The keys (never the keys themselves)" },
  args: { json: { type: "boolean", description: "JSON output" }, ...homeArg },
  run: ({ args }) => {
    const a = parseArgs(z.object({ home: z.string().optional(), json: z.boolean().default(false) }), args);
    const rows = withKeys(a.home, (keys) => keys.list());
    const shown = rows.map((r) => ({ id: r.id, name: r.name, scopes: scopesOf(r), max_concurrent: r.maxConcurrent, rpm: r.perMinute, created_at: r.createdAt.toISOString(), revoked_at: r.revokedAt?.toISOString() ?? null }));
    if (a.json) return void console.log(JSON.stringify(shown, null, 2));
    console.log(rows.length ? formatTable(["ID", "NAME", "SCOPES", "CONCURRENT", "PER MINUTE", "CREATED", "REVOKED"], shown.map((r) => [r.id, r.name, r.scopes.join(","), r.max_concurrent ?? "-", r.rpm ?? "-", r.created_at, r.revoked_at ?? "-"])) : "no keys");
  },
});

const revoke = defineCommand({
  meta: { name: "revoke", description: "Revoke a key by its id (at once, also for a running queen)" },
  args: { id: { type: "positional", description: "The key's id (rbee keys list)", required: true }, ...homeArg },
  run: ({ args }) => {
    const a = parseArgs(z.object({ id: z.string().min(1), home: z.string().optional() }), args);
    const row = withKeys(a.home, (keys) => keys.revoke(a.id));
    console.log(`revoked ${row.id} (${row.name})`);
  },
});

export const keys = defineCommand({ meta: { name: "keys", description: "The queen's client API keys" }, subCommands: { create, list, revoke } });
