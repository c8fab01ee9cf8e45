// Cache-aware routing: a multi-turn chat load over two replicas of one model, once with the routing on and once off
// (RBEE_PROMPT_AFFINITY=0), in one run. Each chat resends its whole history every turn, after a pause of up to twice
// --think-ms (a person reading and typing: meanwhile other chats move the load around); the figure is the time to the
// first token of the turns after the first. Without --gpu the queen's local hive has two fake GPUs and the workers run
// on the CPU; with --gpu they go one per real GPU.
//   bun scripts/bench-routing.ts [--chats 8] [--turns 4] [--slots 4] [--system-words 400] [--reply-tokens 24] [--repeats 2]
//                                [--think-ms 0] [--gpu --shape 8b]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { writeSyntheticChatModel } from "../src/inference/synth-chat-model";
import type { Shape } from "../src/inference/synth-gguf";
import { type Daemon, RBEE_CLI, startDaemon } from "./lib/daemon";

const { values: opts } = parseArgs({
  options: {
    chats: { type: "string", default: "8" },
    turns: { type: "string", default: "4" },
    slots: { type: "string", default: "4" },
    "system-words": { type: "string", default: "400" },
    "reply-tokens": { type: "string", default: "24" },
    repeats: { type: "string", default: "2" },
    "think-ms": { type: "string", default: "0" },
    gpu: { type: "boolean", default: false },
    shape: { type: "string", default: "tiny" },
  },
});
const thinkMs = Number(opts["think-ms"]);
const [chats, turns, slots, systemWords, replyTokens] = (["chats", "turns", "slots", "system-words", "reply-tokens"] as const).map((k) => Number(opts[k])) as [number, number, number, number, number];
const GIB = 2 ** 30;
const TWO_GPUS = JSON.stringify({ gpus: [0, 1].map((index) => ({ index, name: `GPU ${index}`, vram_total_bytes: 80 * GIB, vram_free_bytes: 40 * GIB })) });

const scratch = mkdtempSync(join(tmpdir(), "rbee-bench-routing-"));
const modelPath = join(scratch, "qwen-tiny.gguf");
// Qwen2.5's tokenizer and template on a llama of the given shape (tiny: 4 layers of 256, so that prompts cost real
// evaluation on the CPU; 8b on a GPU). The file keeps its name, which is the model's name in the requests.
await writeSyntheticChatModel(modelPath, { vocab: "qwen2", template: "Qwen-Qwen2.5-7B-Instruct", shape: opts.shape as Shape });

interface RunResult {
  ttftMs: number[];
  cachedShare: number;
}

async function startQueen(affinity: boolean): Promise<Daemon> {
  const home = mkdtempSync(join(scratch, "home-"));
  Bun.spawnSync([...RBEE_CLI, "hive", "models", "download", modelPath, "--port", "1"], { env: { ...process.env, RBEE_HOME: home } });
  const env = { ...process.env, ...(!opts.gpu && { RBEE_FAKE_DEVICES: TWO_GPUS }), ...(!affinity && { RBEE_PROMPT_AFFINITY: "0" }) };
  return startDaemon(["queen", "--port", "0", "--home", home, "--worker-slots", String(slots), "--keep-alive", "30m", "--queue", "1024"], env);
}

/** More requests at once than one replica has slots, until a second replica serves. */
async function twoReplicas(url: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const long = () => fetch(`${url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "qwen-tiny", prompt: "Once upon a time", max_tokens: 150, ignore_eos: true }) });
    await Promise.all(Array.from({ length: slots + 1 }, long));
    const { workers } = (await (await fetch(`${url}/v1/workers`)).json()) as { workers: unknown[] };
    if (workers.length >= 2) return;
  }
  throw new Error("no second replica came up");
}

const words = "the cat sat on a mat and saw a big red ball near the tall green tree by the old blue house".split(" ");
const systemPrompt = (chat: number) => `You are storyteller ${chat}. ` + Array.from({ length: systemWords }, (_, i) => words[(i * 7 + chat * 3) % words.length]).join(" ");

/** One chat: `turns` turns in a row, streamed; the time to the first token and the cached share of every later turn. */
async function chat(url: string, c: number, result: RunResult, cached: { tokens: number; prompt: number }): Promise<void> {
  const messages: { role: string; content: string }[] = [{ role: "system", content: systemPrompt(c) }];
  for (let t = 0; t < turns; t++) {
    messages.push({ role: "user", content: `Turn ${t}: go on.` });
    const started = performance.now();
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model: "qwen-tiny", messages, max_tokens: replyTokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
    });
    if (!res.ok) throw new Error(`chat ${c} turn ${t}: HTTP ${res.status} ${await res.text()}`);
    let first = 0;
    let reply = "";
    let buffer = "";
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = /^data: (.*)$/m.exec(event)?.[1];
        if (!data || data === "[DONE]") continue;
        const parsed = JSON.parse(data) as { choices: { delta: { content?: string } }[]; usage?: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens: number } } };
        const text = parsed.choices[0]?.delta.content;
        if (text) {
          first ||= performance.now();
          reply += text;
        }
        if (parsed.usage && t > 0) {
          cached.tokens += parsed.usage.prompt_tokens_details?.cached_tokens ?? 0;
          cached.prompt += parsed.usage.prompt_tokens;
        }
      }
    }
    if (t > 0) result.ttftMs.push((first || performance.now()) - started);
    messages.push({ role: "assistant", content: reply });
    if (thinkMs) await Bun.sleep(Math.random() * 2 * thinkMs);
  }
}

async function measure(affinity: boolean): Promise<RunResult> {
  const queen = await startQueen(affinity);
  try {
    await twoReplicas(queen.url);
    const result: RunResult = { ttftMs: [], cachedShare: 0 };
    const cached = { tokens: 0, prompt: 0 };
    await Promise.all(Array.from({ length: chats }, (_, c) => chat(queen.url, c, result, cached)));
    result.cachedShare = cached.tokens / cached.prompt;
    return result;
  } finally {
    await queen.stop();
  }
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const rows: { mode: string; repeat: number; p50: number; p90: number; mean: number; cachedShare: number }[] = [];
for (let r = 0; r < Number(opts.repeats); r++)
  for (const affinity of r % 2 ? [false, true] : [true, false]) {
    const { ttftMs, cachedShare } = await measure(affinity);
    rows.push({ mode: affinity ? "routed" : "least loaded", repeat: r, p50: pct(ttftMs, 50), p90: pct(ttftMs, 90), mean: ttftMs.reduce((a, b) => a + b, 0) / ttftMs.length, cachedShare });
  }
rmSync(scratch, { recursive: true, force: true });
console.log(`${chats} chats × ${turns} turns, ${systemWords}-word system prompts, ${replyTokens}-token replies, pauses up to ${2 * thinkMs} ms, 2 replicas × ${slots} slots (${opts.gpu ? `GPU, ${opts.shape}` : "CPU"})`);
for (const row of rows)
  console.log(`${row.mode.padEnd(13)} repeat ${row.repeat}: TTFT p50 ${row.p50.toFixed(1)} ms, p90 ${row.p90.toFixed(1)} ms, mean ${row.mean.toFixed(1)} ms; prompt tokens cached ${(100 * row.cachedShare).toFixed(1)}%`);
const mean = (mode: string, key: "p50" | "mean") => rows.filter((r) => r.mode === mode).reduce((a, r) => a + r[key], 0) / rows.filter((r) => r.mode === mode).length;
console.log(`routed / least loaded: TTFT p50 ${(mean("routed", "p50") / mean("least loaded", "p50")).toFixed(2)}×, mean ${(mean("routed", "mean") / mean("least loaded", "mean")).toFixed(2)}×`);
