// `rbee models alias NAME MODEL`: a name (Ollama's name:tag) for a model reference, path or catalog name, in
// $RBEE_HOME/names.db, which a queen of that home reads on every request; `--list` and `--remove NAME`.
import { defineCommand } from "citty";
import { z } from "zod";
import { Aliases } from "../../catalog/aliases";
import { parseArgs } from "../../cli-args";
import { rbeeHome } from "../../config";
import { RbeeError } from "../../errors";
import { formatTable } from "../../table";

const AliasArgs = z.object({
  name: z.string().optional(),
  model: z.string().optional(),
  list: z.boolean().default(false),
  remove: z.boolean().default(false),
  home: z.string().optional(),
  json: z.boolean().default(false),
});

export const alias = defineCommand({
  meta: { name: "alias", description: "Name a model (name:tag → reference, path or catalog name); --list, --remove NAME" },
  args: {
    name: { type: "positional", description: "The name, e.g. llama3:8b", required: false },
    model: { type: "positional", description: "What it points at: hf:ORG/REPO/FILE.gguf, a path, a catalog name", required: false },
    list: { type: "boolean", description: "List the names" },
    remove: { type: "boolean", description: "Remove the name" },
    home: { type: "string", description: "rbee's home (default $RBEE_HOME or ~/.rbee)" },
    json: { type: "boolean", description: "JSON output" },
  },
  run: async ({ args }) => {
    const a = parseArgs(AliasArgs, args);
    const aliases = new Aliases(rbeeHome(a.home));
    try {
      if (a.list) {
        const rows = aliases.list();
        return void console.log(a.json ? JSON.stringify(rows, null, 2) : rows.length ? formatTable(["NAME", "MODEL"], rows.map((r) => [r.name, r.ref])) : "no names");
      }
      if (!a.name) throw new RbeeError("BAD_REQUEST", "name a model: rbee models alias NAME MODEL (or --list, --remove NAME)");
      if (a.remove) {
        if (!aliases.remove(a.name)) throw new RbeeError("NOT_FOUND", `no name ${a.name}`);
        return void console.log(`removed ${a.name}`);
      }
      if (!a.model) throw new RbeeError("BAD_REQUEST", `say what ${a.name} names: rbee models alias ${a.name} MODEL`);
      const row = aliases.set(a.name, a.model);
      console.log(`${row.name} → ${row.ref}`);
    } finally {
      aliases.close();
    }
  },
});
