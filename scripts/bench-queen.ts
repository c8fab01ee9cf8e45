// The queen's cost: the same load as bench-worker sent once straight to a worker and once through the queen (to that
// same worker), alternating per level in one run; each repeat gives a pair, and the medians of the pairs are printed.
//   bun scripts/bench-queen.ts [--model PATH] [--levels 1,8,32] [--tokens 128] [--rounds 3] [--repeats 5]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { benchHttp, type LevelResult } from "./lib/http-load";

const { values: opts } = parseArgs({
  options: {
    model: { type: "string", default: join(import.meta.dir, "..", "..", "shared", "models", "stories260K.gguf") },
    levels: { type: "string", default: "1,8,32" },
    tokens: { type: "string", default: "128" },
    rounds: { type: "string", default: "3" },
    repeats: { type: "string", default: "5" },
    json: { type: "boolean", default: false },
  },
});
const levels = opts.levels.split(",").map(Number);
const tokens = Number(opts.tokens);
const rounds = Number(opts.rounds);
const model = `file:${resolve(opts.model)}`;
const home = mkdtempSync(join(tmpdir(), "rbee-bench-queen-"));

const queen = Bun.spawn([process.execPath, join(import.meta.dir, "..", "src", "cli.ts"), "queen", "--port", "0", "--home", home, "--worker-slots", String(Math.max(...levels)), "--queue", "1024"], {
  stdout: "ignore",
  stderr: "pipe",
  env: { ...process.env, RBEE_LOG_FORMAT: "json" },
});
let log = "";
void (async () => {
  const decoder = new TextDecoder();
  for await (const chunk of queen.stderr) log += decoder.decode(chunk);
})();
let queenUrl: string | undefined;
for (let i = 0; !queenUrl; i++) {
  queenUrl = /"tag":"queen","msg":"listening on (http:\/\/\S+?)"/.exec(log)?.[1];
  if (i > 1000 || queen.exitCode !== null) throw new Error(`queen did not start: ${log}`);
  await Bun.sleep(10);
}
// The first request makes the queen start its hive and a worker with enough slots.
const warm = await fetch(`${queenUrl}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model, prompt: "Once", max_tokens: 2 }) });
if (!warm.ok) throw new Error(`warm-up failed: ${await warm.text()}`);
const workerUrl = ((await (await fetch(`${queenUrl}/v1/workers`)).json()) as { workers: { url: string }[] }).workers[0]!.url;

const pairs: { direct: LevelResult; queen: LevelResult }[][] = levels.map(() => []);
for (const [i, level] of levels.entries())
  for (let r = 0; r < Number(opts.repeats); r++)
    pairs[i]!.push({
      direct: await benchHttp({ url: workerUrl, concurrency: level, tokens, rounds, model }),
      queen: await benchHttp({ url: queenUrl, concurrency: level, tokens, rounds, model }),
    });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
await fetch(`${queenUrl}/v1/shutdown`, { method: "POST" });
await queen.exited;
rmSync(home, { recursive: true, force: true });

const summary = levels.map((level, i) => {
  const p = pairs[i]!;
  return {
    concurrency: level,
    directTokensPerS: median(p.map((x) => x.direct.tokensPerS)),
    queenTokensPerS: median(p.map((x) => x.queen.tokensPerS)),
    ratio: median(p.map((x) => x.queen.tokensPerS / x.direct.tokensPerS)),
    directTtftP50Ms: median(p.map((x) => x.direct.ttftP50Ms)),
    queenTtftP50Ms: median(p.map((x) => x.queen.ttftP50Ms)),
    addedTtftMs: median(p.map((x) => x.queen.ttftP50Ms - x.direct.ttftP50Ms)),
  };
});
if (opts.json) console.log(JSON.stringify({ model, tokens, summary, pairs }));
else {
  const row = (cells: (string | number)[]) => console.log(cells.map((c) => String(c).padStart(13)).join(""));
  console.log(`model ${opts.model}, ${tokens} tokens per request, medians of ${opts.repeats} direct/queen pairs of ${rounds} rounds`);
  row(["concurrent", "direct tok/s", "queen tok/s", "queen/direct", "TTFT p50 d", "TTFT p50 q", "+ms"]);
  for (const x of summary) row([x.concurrency, x.directTokensPerS.toFixed(0), x.queenTokensPerS.toFixed(0), x.ratio.toFixed(3), x.directTtftP50Ms.toFixed(2), x.queenTtftP50Ms.toFixed(2), x.addedTtftMs.toFixed(2)]);
}
