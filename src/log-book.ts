// The last lines a process wrote (a worker's stderr, a hive's own log), kept for the dashboard's live log view:
// a bounded backlog, and listeners that follow what comes next.
export interface LogLine {
  /** ms since the epoch */
  t: number;
  line: string;
}

const DEFAULT_LINES = 500;

export class LogBook {
  private readonly lines: LogLine[] = [];
  private readonly listeners = new Set<(line: LogLine) => void>();

  constructor(private readonly limit = DEFAULT_LINES) {}

  add(line: string): void {
    const entry = { t: Date.now(), line };
    this.lines.push(entry);
    if (this.lines.length > this.limit) this.lines.shift();
    for (const listener of this.listeners) listener(entry);
  }

  backlog(): LogLine[] {
    return [...this.lines];
  }

  /** Returns what stops following. */
  follow(listener: (line: LogLine) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
