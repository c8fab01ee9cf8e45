// rbee's commands as data: one subcommand per role and keeper command, each loaded only when used.
import { defineCommand } from "citty";
import { VERSION } from "./version";

export const main = defineCommand({
  meta: { name: "rbee", version: VERSION, description: "Run GGUF language models across the machines you own" },
  subCommands: {
    queen: () => import("./roles/queen/command").then((m) => m.default),
    hive: () => import("./roles/hive/command").then((m) => m.default),
    worker: () => import("./roles/worker/command").then((m) => m.default),
    infer: () => import("./roles/keeper/infer").then((m) => m.default),
    setup: () => import("./roles/keeper/setup").then((m) => m.default),
    status: () => import("./roles/keeper/operate").then((m) => m.status),
    models: () => import("./roles/keeper/operate").then((m) => m.models),
    workers: () => import("./roles/keeper/operate").then((m) => m.workers),
    keys: () => import("./roles/keeper/keys").then((m) => m.keys),
    doctor: () => import("./roles/keeper/doctor").then((m) => m.default),
  },
});
