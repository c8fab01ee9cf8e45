// One tagged consola logger per role; JSON lines when stderr is not a terminal, level from RBEE_LOG_LEVEL.
import { createConsola, LogLevels, type LogType } from "consola";

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

export const logger = (tag: string) => root.withTag(tag);
