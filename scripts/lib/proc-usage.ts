// A process's own accounting, from /proc (Linux): CPU seconds (user + system, in 10 ms ticks) and resident memory.
import { readFileSync } from "node:fs";

export function processUsage(pid: number): { cpuS: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]!;
  return { cpuS: (Number(stat[11]) + Number(stat[12])) / 100, rssBytes: Number(rss) * 1024 };
}
