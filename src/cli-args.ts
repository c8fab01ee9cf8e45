// Argument conventions shared by every command: the same names mean the same thing in every role, validated with zod.
import type { ArgsDef, CommandDef, Resolvable } from "citty";
import type { z } from "zod";
import { RbeeError } from "./errors";
import { describeIssues } from "./http/validate";

export function commonServerArgs(defaultPort: string) {
  return {
    port: { type: "string", description: `Port to listen on; 0 picks a free one (default ${defaultPort})` },
    host: { type: "string", description: "Address to listen on (default 127.0.0.1)" },
    "api-token": { type: "string", description: "Require this bearer token (or RBEE_API_TOKEN)" },
    "insecure-no-auth": { type: "boolean", description: "Listen on a non-loopback address without a token (anyone who reaches it may use it)" },
  } satisfies ArgsDef;
}

/** Validates citty's parsed args; a bad value becomes one clear line naming the flag. */
export function parseArgs<S extends z.ZodType>(schema: S, args: Record<string, unknown>): z.infer<S> {
  const defined = Object.fromEntries(Object.entries(args).filter(([k, v]) => k !== "_" && v !== undefined && v !== ""));
  const parsed = schema.safeParse(defined);
  if (!parsed.success) throw new RbeeError("BAD_REQUEST", describeIssues(parsed.error).replace(/(^|; )([\w-]+):/g, "$1--$2:"));
  return parsed.data;
}

type AnyCommand = CommandDef<ArgsDef>;
const resolve = async <T>(value: Resolvable<T>): Promise<T> => (typeof value === "function" ? await (value as () => T | Promise<T>)() : await value);

/** The command `rawArgs` runs (citty's walk: a subcommand is the first argument that is not a flag or a flag's value). */
export async function commandOf(main: AnyCommand, rawArgs: string[]): Promise<{ command: AnyCommand; args: ArgsDef; path: string[]; rest: string[] }> {
  let command = main;
  let rest = rawArgs;
  const path: string[] = [];
  for (;;) {
    const subCommands = (await resolve(command.subCommands ?? {})) as Record<string, Resolvable<AnyCommand>>;
    const args = await resolve(command.args ?? {});
    const at = rest.findIndex((arg, i) => !arg.startsWith("-") && !(i > 0 && takesValue(rest[i - 1]!, args)));
    const name = at >= 0 ? rest[at]! : undefined;
    if (name === undefined || !(name in subCommands) || rest.slice(0, at).includes("--")) return { command, args, path, rest };
    path.push(name);
    command = await resolve(subCommands[name]!);
    rest = rest.slice(at + 1);
  }
}

function flagName(arg: string): string {
  return arg.replace(/^-{1,2}/, "").split("=")[0]!;
}

function takesValue(arg: string, args: ArgsDef): boolean {
  if (!arg.startsWith("-") || arg.includes("=")) return false;
  const def = Object.entries(args).find(([key]) => key === flagName(arg) || camel(key) === flagName(arg))?.[1];
  return def?.type === "string" || def?.type === "enum";
}

const camel = (name: string) => name.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());

/** Refuses a flag the command does not define, naming the closest one it does (citty itself ignores such flags). */
export function refuseUnknownFlags(args: ArgsDef, rawArgs: string[], command: string): void {
  const flags = Object.entries(args).filter(([, def]) => def.type !== "positional");
  const known = new Set(["help", "h"]);
  for (const [key, def] of flags) {
    for (const name of [key, camel(key), ...["alias" in def ? (def.alias ?? []) : []].flat()]) known.add(name);
    if (def.type === "boolean") known.add(`no-${key}`);
  }
  for (const [i, arg] of rawArgs.entries()) {
    if (arg === "--") return;
    // A negative number, or the value of the flag before it.
    if (!arg.startsWith("-") || /^-\d/.test(arg) || (i > 0 && takesValue(rawArgs[i - 1]!, args))) continue;
    const name = flagName(arg);
    if (known.has(name)) continue;
    const closest = flags.map(([key]) => key).sort((a, b) => editDistance(name, a) - editDistance(name, b))[0];
    const hint = closest && editDistance(name, closest) <= Math.max(2, Math.floor(closest.length / 3)) ? `: did you mean --${closest}?` : closest ? ` (its flags: ${flags.map(([key]) => `--${key}`).join(", ")})` : ": it takes no flags";
    throw new RbeeError("BAD_REQUEST", `${command} has no flag --${name}${hint}`);
  }
}

/** Levenshtein's distance: the edits that turn one name into the other. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}
