#!/usr/bin/env bun
// rbee's single entry point: one subcommand per role, each loaded only when used.
import { runCommand, runMain } from "citty";
import { main } from "./commands";
import { commandOf, refuseUnknownFlags } from "./cli-args";
import { exitCodeFor } from "./errors";
import { logger } from "./log";

const rawArgs = process.argv.slice(2);
// node-llama-cpp tests a native addon by forking process.execPath with one of its own scripts; in the compiled
// binary process.execPath is rbee, so run that script instead of a command.
const forkedHelper = process.env.TEST_BINDING_CP === "true" ? rawArgs.find((a) => a.endsWith("testBindingBinary.js")) : undefined;
const wantsHelpOrVersion = rawArgs.length === 0 || rawArgs.includes("--help") || rawArgs.includes("-h") || (rawArgs.length === 1 && ["--version", "-v"].includes(rawArgs[0]!));

// A daemon must outlive a bug in one request: log what escaped, keep serving.
process.on("unhandledRejection", (reason) => logger("rbee").error(`unhandled: ${reason instanceof Error ? reason.stack : reason}`));

if (forkedHelper) {
  await import(forkedHelper);
} else if (rawArgs[0] === "__probe-backend") {
  try {
    await (await import("./inference/backend-probe")).runProbe(rawArgs[1] ?? "");
    process.exit(0);
  } catch (err) {
    process.stderr.write(`rbee: ${err instanceof Error ? err.message : err}\n`);
    process.exit(1);
  }
} else if (wantsHelpOrVersion) {
  await runMain(main, { rawArgs: rawArgs.length ? rawArgs : ["--help"] });
} else {
  try {
    const { args, path, rest } = await commandOf(main, rawArgs);
    refuseUnknownFlags(args, rest, ["rbee", ...path].join(" "));
    await runCommand(main, { rawArgs });
  } catch (err) {
    const message = (err instanceof Error ? err.message : String(err)).replace(/\x1b\[[0-9;]*m/g, "").split("\n")[0];
    process.stderr.write(`rbee: ${message}\n`);
    process.exit(exitCodeFor(err));
  }
}
