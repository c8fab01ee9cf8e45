// Progress for stages a person waits on: a bar with bytes, rate and ETA on a terminal; plain periodic lines otherwise.
import { SingleBar } from "cli-progress";
import { formatBytes } from "./format";

export interface ByteProgress {
  bytes_done: number;
  bytes_total: number;
  rate_bps: number;
  eta_s: number | null;
}

const PLAIN_INTERVAL_MS = 1000;

export function byteProgressReporter(label: string, stream: NodeJS.WriteStream = process.stderr) {
  if (stream.isTTY) {
    const bar = new SingleBar({
      stream,
      // {total} and {value} are cli-progress's own (raw numbers): the human-readable sizes go under other names.
      format: `${label} [{bar}] {percentage}% {done_text}/{total_text} {rate_text}/s ETA {eta_text}`,
      hideCursor: true,
      clearOnComplete: false,
    });
    let started = false;
    return {
      update(p: ByteProgress) {
        const payload = { done_text: formatBytes(p.bytes_done), total_text: formatBytes(p.bytes_total), rate_text: formatBytes(p.rate_bps), eta_text: p.eta_s === null ? "?" : `${p.eta_s}s` };
        if (!started) (bar.start(p.bytes_total, p.bytes_done, payload), (started = true));
        else bar.update(p.bytes_done, payload);
      },
      stop: () => started && bar.stop(),
    };
  }
  let last = 0;
  return {
    update(p: ByteProgress) {
      const now = Date.now();
      if (now - last < PLAIN_INTERVAL_MS && p.bytes_done < p.bytes_total) return;
      last = now;
      const pct = p.bytes_total ? Math.floor((p.bytes_done * 100) / p.bytes_total) : 0;
      stream.write(`${label}: ${pct}% ${formatBytes(p.bytes_done)} of ${formatBytes(p.bytes_total)}, ${formatBytes(p.rate_bps)}/s, ETA ${p.eta_s ?? "?"} s\n`);
    },
    stop() {},
  };
}
