// A child started by another rbee process gets a pipe on stdin: end of file means the parent is gone (even by
// SIGKILL), so the child shuts down instead of living on as an orphan. A parent may first send one line on that pipe:
// a secret such as the API token, which would be visible to every user of the machine on a command line.
import { logger } from "./log";

export interface StdinWatch {
  /** The first line sent, or undefined if stdin closed before a whole line came. */
  firstLine: Promise<string | undefined>;
  /** Settles when stdin closes. */
  closed: Promise<void>;
}

export function watchStdin(): StdinWatch {
  let resolveLine!: (line: string | undefined) => void;
  const firstLine = new Promise<string | undefined>((resolve) => (resolveLine = resolve));
  const closed = (async () => {
    let pending = "";
    let lineSeen = false;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of Bun.stdin.stream()) {
        if (lineSeen) continue;
        pending += decoder.decode(chunk, { stream: true });
        const end = pending.indexOf("\n");
        if (end === -1) continue;
        lineSeen = true;
        resolveLine(pending.slice(0, end).replace(/\r$/, ""));
        pending = "";
      }
    } catch {
      // a broken pipe means the same
    }
    resolveLine(undefined);
  })();
  return { firstLine, closed };
}

export async function exitWhenStdinCloses(exit: () => unknown, watch: StdinWatch = watchStdin()): Promise<void> {
  await watch.closed;
  logger("rbee").warn("stdin closed: the parent process is gone; shutting down");
  await exit();
}
