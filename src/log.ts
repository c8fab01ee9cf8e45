// One tagged consola logger per role; JSON lines when stderr is not a terminal, level from RBEE_LOG_LEVEL. What is
// logged can also be followed (onLogLine: the hive keeps its own lines for the dashboard).
import { createConsola, type LogObject, LogLevels, type LogType } from "consola";

const lineListeners = new Set<(line: string) => void>();

/** Each line this process logs, as one text line; returns what stops it. */
export function onLogLine(listener: (line: string) => void): () => void {
  lineListeners.add(listener);
  return () => lineListeners.delete(listener);
}

function asLine(entry: LogObject): string {
  const [message, ...fields] = entry.args;
  const extra = fields.filter((f) => typeof f === "object").map((f) => JSON.stringify(f)).join(" ");
  return `${entry.type} [${entry.tag}] ${String(message)}${extra ? ` ${extra}` : ""}`;
}

const levelName = (process.env.RBEE_LOG_LEVEL ?? "info") as LogType;

const root = createConsola({
  level: LogLevels[levelName] ?? LogLevels.info,
  stdout: process.stderr,
  stderr: process.stderr,
  ...(process.stderr.isTTY || process.env.RBEE_LOG_FORMAT === "pretty"
    ? {}
    : {
        reporters: [
          {
            log: (entry) => {
              const [message, ...fields] = entry.args;
              const line = { time: entry.date.toISOString(), level: entry.type, tag: entry.tag, msg: String(message), ...Object.assign({}, ...fields.filter((f) => typeof f === "object")) };
              process.stderr.write(JSON.stringify(line) + "\n");
            },
          },
        ],
      }),
});

root.addReporter({
  log: (entry) => {
    if (!lineListeners.size) return;
    const line = asLine(entry);
    for (const listener of lineListeners) listener(line);
  },
});

export const logger = (tag: string) => root.withTag(tag);
