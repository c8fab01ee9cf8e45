// An agent workload against servers of 8 slots (issue 33): 64 conversations that share a system prompt of about 1,000
// tokens, each of several turns; a turn is the whole conversation so far plus a new user line (a raw prompt on
// /v1/completions, so every server sees the same text), 8 in flight at a time, the next turn of a random conversation
// not in flight. Reported per server: the share of prompt tokens served from cache, TTFT p50 / p90, generated tok/s;
// then a fresh long prompt's TTFT on a server whose caches are full (median of six, the servers' order rotated), which a
// cache that saves on the new prompt's path would slow. Servers, in one run: an rbee worker with its host prompt cache,
// one without (--prompt-cache-mb 0), and llama-server with its defaults (--cache-ram on).
//   bun scripts/bench-agent.ts [--model PATH] [--llama-server PATH] [--conversations 64] [--turns 4] [--gpu auto] [--json]
import { parseArgs } from "node:util";
import { join } from "node:path";
import { type Daemon, startDaemon, untilReady, workerReady } from "./lib/daemon";
import { percentile } from "./lib/http-load";

const { values: opts } = parseArgs({
  options: {
    model: { type: "string", default: join(import.meta.dir, "..", "..", "shared", "models", "stories260K.gguf") },
    "llama-server": { type: "string" },
    conversations: { type: "string", default: "64" },
    turns: { type: "string", default: "4" },
    slots: { type: "string", default: "8" },
    ctx: { type: "string", default: "2048" },
    reply: { type: "string", default: "24" },
    gpu: { type: "string", default: "auto" },
    json: { type: "boolean", default: false },
  },
});
const SLOTS = Number(opts.slots);
const CTX = Number(opts.ctx);
const REPLY = Number(opts.reply);
const CONVERSATIONS = Number(opts.conversations);
const TURNS = Number(opts.turns);

const WORDS = "the a little girl boy dog cat big red ball tree park happy sad day sun ran jumped played found home mom dad friend".split(" ");
/** Deterministic words (a linear congruential walk), so every server gets the same texts. */
function words(n: number, seed: number): string {
  let x = seed;
  return Array.from({ length: n }, () => WORDS[(x = (x * 1103515245 + 12345) % 2 ** 31) % WORDS.length]).join(" ");
}
/** These words take about 1.8 tokens each in a llama vocabulary. */
const TOKENS_PER_WORD = 1.8;
const SYSTEM = `You are a helpful story agent. Rules: ${words(Math.round(1000 / TOKENS_PER_WORD), 7)}.`;

interface Turn {
  ttftMs: number;
  promptTokens: number;
  cachedTokens: number;
  generated: number;
}

async function turn(url: string, prompt: string): Promise<Turn & { text: string }> {
  const start = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    // A connection per request: cpp-httplib (llama-server) closes a kept-alive one after a few requests, which Bun's
    // fetch then finds reset.
    headers: { "content-type": "application/json", connection: "close" },
    body: JSON.stringify({ prompt, max_tokens: REPLY, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let ttftMs = 0;
  let text = "";
  let usage = { prompt_tokens: 0, completion_tokens: 0, prompt_tokens_details: { cached_tokens: 0 } };
  let buffer = "";
  for await (const chunk of res.body!) {
    buffer += new TextDecoder().decode(chunk);
    let at: number;
    while ((at = buffer.indexOf("\n\n")) !== -1) {
      const line = buffer.slice(0, at).replace(/^data: /, "");
      buffer = buffer.slice(at + 2);
      if (!line.startsWith("{")) continue;
      const data = JSON.parse(line);
      const piece = data.choices?.[0]?.text;
      if (piece && !ttftMs) ttftMs = performance.now() - start;
      if (piece) text += piece;
      if (data.usage) usage = data.usage;
    }
  }
  return { ttftMs, text, promptTokens: usage.prompt_tokens, cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? 0, generated: usage.completion_tokens };
}

async function agentWorkload(url: string) {
  const histories = Array.from({ length: CONVERSATIONS }, () => SYSTEM);
  const turnsLeft = Array.from({ length: CONVERSATIONS }, () => TURNS);
  const busy = new Set<number>();
  const results: Turn[] = [];
  let rng = 42;
  const next = (): number | undefined => {
    const open = turnsLeft.map((left, i) => (left > 0 && !busy.has(i) ? i : -1)).filter((i) => i >= 0);
    if (!open.length) return undefined;
    rng = (rng * 1103515245 + 12345) % 2 ** 31;
    return open[rng % open.length];
  };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: SLOTS }, async () => {
      for (let c = next(); c !== undefined; c = next()) {
        busy.add(c);
        turnsLeft[c]!--;
        const prompt = `${histories[c]}\nUser: ${words(20, c * 100 + turnsLeft[c]!)}\nAssistant:`;
        const r = await turn(url, prompt);
        histories[c] = prompt + r.text;
        results.push(r);
        busy.delete(c);
      }
    }),
  );
  const wallS = (performance.now() - started) / 1000;
  const ttfts = results.map((r) => r.ttftMs).sort((a, b) => a - b);
  const prompt = results.reduce((s, r) => s + r.promptTokens, 0);
  const cached = results.reduce((s, r) => s + r.cachedTokens, 0);
  return { turns: results.length, cachedShare: cached / prompt, ttftP50Ms: percentile(ttfts, 50), ttftP90Ms: percentile(ttfts, 90), tokensPerS: results.reduce((s, r) => s + r.generated, 0) / wallS };
}

/** A prompt no server has seen, of about `tokens` tokens. */
const freshPrompt = (seed: number, tokens: number) => `${words(Math.round(tokens / TOKENS_PER_WORD), seed)}\nUser: go on\nAssistant:`;

interface Server {
  name: string;
  url: string;
  stop(): Promise<void>;
}

async function rbeeWorker(name: string, extra: string[]): Promise<Server> {
  const d: Daemon = await startDaemon(["worker", "--model", opts.model, "--port", "0", "--slots", String(SLOTS), "--ctx", String(CTX), "--gpu", opts.gpu, "--queue", "256", ...extra]);
  await workerReady(d);
  return { name, url: d.url, stop: d.stop };
}

async function llamaServer(path: string): Promise<Server> {
  const port = 18000 + Math.floor(Math.random() * 1000);
  const proc = Bun.spawn([path, "-m", opts.model, "--port", String(port), "-np", String(SLOTS), "-c", String(SLOTS * CTX), "--no-webui", ...(opts.gpu === "cpu" ? ["-ngl", "0"] : [])], { stdout: "ignore", stderr: Bun.file(process.env.LLAMA_SERVER_LOG ?? "/tmp/bench-agent-llama-server.log") });
  const url = `http://127.0.0.1:${port}`;
  await untilReady(url, "/health", (b) => (b as { status?: string }).status === "ok");
  return { name: "llama-server (defaults)", url, stop: async () => void (proc.kill(), await proc.exited) };
}

const servers: Server[] = [await rbeeWorker("rbee, host cache", []), await rbeeWorker("rbee, no host cache", ["--prompt-cache-mb", "0"])];
if (opts["llama-server"]) servers.push(await llamaServer(opts["llama-server"]));
try {
  const workload: Record<string, Awaited<ReturnType<typeof agentWorkload>>> = {};
  for (const s of servers) workload[s.name] = await agentWorkload(s.url);
  // Every server's caches are full now: a fresh long prompt each, six rounds.
  const fresh: Record<string, number[]> = Object.fromEntries(servers.map((s) => [s.name, []]));
  // Each round in another order, after a pause: llama.cpp's threads spin a while after a request, which on a small
  // machine slows whichever server is asked next.
  for (let round = 0; round < 6; round++)
    for (let i = 0; i < servers.length; i++) {
      const s = servers[(round + i) % servers.length]!;
      await Bun.sleep(500);
      fresh[s.name]!.push((await turn(s.url, freshPrompt(1000 + round * 10 + servers.indexOf(s), Math.round(CTX * 0.7)))).ttftMs);
    }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const rows = servers.map((s) => ({ server: s.name, ...workload[s.name]!, freshTtftMs: median(fresh[s.name]!) }));
  if (opts.json) console.log(JSON.stringify({ model: opts.model, conversations: CONVERSATIONS, turns: TURNS, slots: SLOTS, rows }));
  else {
    console.log(`${opts.model}: ${CONVERSATIONS} conversations × ${TURNS} turns over ${SLOTS} slots, a shared system prompt of ~1,000 tokens, ${REPLY} tokens a reply`);
    console.log("| server | from cache | TTFT p50 | TTFT p90 | tok/s | fresh long prompt TTFT |");
    console.log("| --- | --- | --- | --- | --- | --- |");
    const base = rows[1]!.freshTtftMs;
    for (const r of rows)
      console.log(`| ${r.server} | ${(r.cachedShare * 100).toFixed(1)}% | ${r.ttftP50Ms.toFixed(1)} ms | ${r.ttftP90Ms.toFixed(1)} ms | ${r.tokensPerS.toFixed(0)} | ${r.freshTtftMs.toFixed(1)} ms (${(r.freshTtftMs / base).toFixed(3)} of no host cache) |`);
  }
} finally {
  for (const s of servers) await s.stop();
}
