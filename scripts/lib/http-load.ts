// Sends N concurrent streamed /v1/completions requests, rounds times, and measures generated tokens/s and TTFT.
export interface LevelResult {
  concurrency: number;
  /** All generated tokens over the wall time of the rounds: prompts, first tokens and HTTP included. */
  tokensPerS: number;
  /**
   * One stream's rate after its first token, mean over requests: (tokens - 1) / (last chunk - first chunk). Like
   * llama-bench's tg figure, it leaves the prompt out (HTTP only).
   */
  decodeTokensPerS?: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  requests: number;
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

// Every request has the same prompt, so from the second on a server with a prompt cache (rbee, llama-server) evaluates
// only its last token. BENCH_CACHE_PROMPT=0 asks it to evaluate the whole prompt each time (cache_prompt: false).
const cachePrompt = process.env.BENCH_CACHE_PROMPT === "0" ? { cache_prompt: false } : {};
// BENCH_TEMPERATURE=0 asks for greedy picks; unset, the server's default sampling (rbee: temperature 0.8, top-p 0.95).
const temperature = process.env.BENCH_TEMPERATURE ? { temperature: Number(process.env.BENCH_TEMPERATURE) } : {};

async function oneRequest(url: string, tokens: number, seed: number, model?: string): Promise<{ ttftMs: number; tokens: number; decodeMs: number }> {
  const start = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt: "Once upon a time", max_tokens: tokens, ignore_eos: true, stream: true, stream_options: { include_usage: true }, seed, ...cachePrompt, ...temperature }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let ttftMs = 0;
  let lastChunkMs = 0;
  let generated = 0;
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body!) {
    lastChunkMs = performance.now() - start;
    if (!ttftMs) ttftMs = lastChunkMs;
    buffer += decoder.decode(chunk, { stream: true });
    const usage = /"completion_tokens":(\d+)/.exec(buffer);
    if (usage) generated = Number(usage[1]);
    if (buffer.length > 4096) buffer = buffer.slice(-512);
  }
  return { ttftMs, tokens: generated, decodeMs: lastChunkMs - ttftMs };
}

export async function benchHttp({ url, concurrency, tokens, rounds, model }: { url: string; concurrency: number; tokens: number; rounds: number; model?: string }): Promise<LevelResult> {
  await Promise.all(Array.from({ length: concurrency }, (_, i) => oneRequest(url, 8, i, model))); // warm-up
  const ttfts: number[] = [];
  const decodeRates: number[] = [];
  let generated = 0;
  let elapsed = 0;
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    const results = await Promise.all(Array.from({ length: concurrency }, (_, i) => oneRequest(url, tokens, r * 1000 + i, model)));
    elapsed += performance.now() - start;
    for (const x of results) {
      ttfts.push(x.ttftMs);
      generated += x.tokens;
      if (x.tokens > 1 && x.decodeMs > 0) decodeRates.push(((x.tokens - 1) * 1000) / x.decodeMs);
    }
  }
  ttfts.sort((a, b) => a - b);
  const decodeTokensPerS = decodeRates.reduce((sum, x) => sum + x, 0) / Math.max(1, decodeRates.length);
  return { concurrency, tokensPerS: (generated * 1000) / elapsed, decodeTokensPerS, ttftP50Ms: percentile(ttfts, 50), ttftP99Ms: percentile(ttfts, 99), requests: ttfts.length };
}
