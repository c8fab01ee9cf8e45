// Run as a script: loads node-llama-cpp's CPU backend (through rbee's withoutBinaryTest when SKIP=1) and prints how many
// child processes of this process it saw meanwhile, polling /proc. node-llama-cpp's load test of a prebuilt binary is
// a forked child.
import { readdirSync, readFileSync } from "node:fs";
import { loadNodeLlamaCpp, withoutBinaryTest } from "../../src/inference/runtime";

const seen = new Set<number>();
const poll = setInterval(() => {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/PID/stat is the parent's pid (after the command name in parentheses).
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid) seen.add(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
}, 2);
const { getLlama } = await loadNodeLlamaCpp();
const load = () => getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false });
const llama = await (process.env.SKIP === "1" ? withoutBinaryTest(load) : load());
clearInterval(poll);
await llama.dispose();
console.log(JSON.stringify({ children: seen.size, skipSwitchLeft: process.env.NODE_LLAMA_CPP_SKIP_BINARY_TEST ?? null }));
