// A child started by another rbee process gets a pipe on stdin that is never written to: end of file means the
// parent is gone (even by SIGKILL), so the child shuts down instead of living on as an orphan.
import { logger } from "./log";

export async function exitWhenStdinCloses(exit: () => unknown): Promise<void> {
  try {
    for await (const _ of Bun.stdin.stream()) {
      // nothing is ever sent
    }
  } catch {
    // a broken pipe means the same
  }
  logger("rbee").warn("stdin closed: the parent process is gone; shutting down");
  await exit();
}
