// Durations as operators and Ollama clients write them: "10m", "1h30m", "300ms", seconds as a number, -1 for always.
import { RbeeError } from "./errors";

/** A keep-alive (Ollama's form) as milliseconds: -1 keeps the model loaded, 0 unloads it right after the request. */
export function keepAliveMs(value: string | number | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (typeof value === "number") return value < 0 ? -1 : value * 1000;
  const text = value.trim();
  if (/^-?\d+(\.\d+)?$/.test(text)) return keepAliveMs(Number(text));
  if (text.startsWith("-")) return -1;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = text;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!m) throw new RbeeError("BAD_REQUEST", `keep_alive: "${value}" is not a duration (such as "10m", "1h30m", 300 or -1)`);
    total += Number(m[1]) * units[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}
