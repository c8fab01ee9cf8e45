// Every command refuses a flag it does not define, with one line naming the closest one it does (citty alone would
// ignore it: `rbee worker --slot 8` ran with 4 slots). Each command in the tree is run as a real process.
import { describe, expect, test } from "bun:test";
import type { ArgsDef, CommandDef, Resolvable } from "citty";
import { main } from "../src/commands";
import { runRbee } from "./support/processes";

type Command = CommandDef<ArgsDef>;
const resolve = async <T>(value: Resolvable<T> | undefined): Promise<T | undefined> => (typeof value === "function" ? (value as () => Promise<T>)() : value);

/** Every command that runs something, by its path of subcommand names, with its flags. */
async function leaves(command: Command, path: string[] = []): Promise<{ path: string[]; flags: string[] }[]> {
  const subCommands = ((await resolve(command.subCommands)) ?? {}) as Record<string, Resolvable<Command>>;
  const below = await Promise.all(Object.entries(subCommands).map(async ([name, sub]) => leaves((await resolve(sub))!, [...path, name])));
  const args = ((await resolve(command.args)) ?? {}) as ArgsDef;
  const flags = Object.entries(args).filter(([, def]) => def.type !== "positional").map(([name]) => name);
  return [...(command.run ? [{ path, flags }] : []), ...below.flat()];
}

const commands = await leaves(main as Command);

describe("unknown flags", () => {
  test("the tree has every role and keeper command", () => {
    const names = commands.map((c) => c.path.join(" "));
    for (const name of ["queen", "hive", "worker", "infer", "doctor", "status", "setup add-node", "setup install", "hive models list", "workers stop", "keys create"]) expect(names).toContain(name);
  });

  test("every command refuses one, in one line, before doing anything", async () => {
    const runs = await Promise.all(commands.map(async ({ path }) => ({ path, run: await runRbee([...path, "--no-such-flag", "1"]) })));
    for (const { path, run } of runs) {
      expect({ path, code: run.code }).toEqual({ path, code: 2 });
      expect(run.stdout).toBe("");
      expect(run.stderr).toMatch(new RegExp(`^rbee: rbee ${path.join(" ")} has no flag --no-such-flag( \\(its flags: [^\\n]+\\)|: it takes no flags)\\n$`));
    }
  }, 120_000);

  test("a misspelt flag is answered with the one meant", async () => {
    const typos = commands.filter((c) => c.flags.some((f) => f.length > 4)).map(({ path, flags }) => {
      const flag = flags.find((f) => f.length > 4)!;
      return { path, flag, typo: flag.slice(0, -1) };
    });
    expect(typos.length).toBeGreaterThan(10);
    const runs = await Promise.all(typos.map(async (t) => ({ ...t, run: await runRbee([...t.path, `--${t.typo}`, "x"]) })));
    for (const { path, flag, typo, run } of runs) expect(run.stderr).toBe(`rbee: rbee ${path.join(" ")} has no flag --${typo}: did you mean --${flag}?\n`);
    const slot = await runRbee(["worker", "--model", "x.gguf", "--slot", "8"]);
    expect(slot.stderr).toBe("rbee: rbee worker has no flag --slot: did you mean --slots?\n");
  }, 120_000);

  test("values that look like flags are values: a negative number, a prompt starting with a dash, --flag=value", async () => {
    // Each gets as far as the command's own checks (no model named, no queen), past the flag check.
    const negative = await runRbee(["infer", "--prompt", "-start with a dash", "--temperature", "-1", "--model", "/no/such.gguf"]);
    expect(negative.stderr).not.toContain("has no flag");
    expect(negative.code).not.toBe(0);
    const equals = await runRbee(["status", "--queen-url=http://127.0.0.1:9", "--json"]);
    expect(equals.stderr).not.toContain("has no flag");
    expect(equals.stderr).toMatch(/no queen answers/);
  }, 60_000);
});
