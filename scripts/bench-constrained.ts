// What one constrained request costs the plain ones sharing its worker: 8 plain streams alone, beside a ninth plain
// stream, and beside a stream that keeps asking for JSON of a schema (grammar, penalty and logit bias), alternated; the
// plain streams' tokens/s in each. The ninth plain stream separates the cost of one more sequence from the constraint's.
//   bun scripts/bench-constrained.ts [--model PATH] [--gpu auto] [--pairs 3] [--tokens 128] [--plain 8]
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startDaemon, workerReady } from "./lib/daemon";
import { benchHttp } from "./lib/http-load";

const { values: opts } = parseArgs({
  options: {
    model: { type: "string", default: join(import.meta.dir, "..", "..", "shared", "models", "stories260K.gguf") },
    gpu: { type: "string", default: "auto" },
    pairs: { type: "string", default: "3" },
    tokens: { type: "string", default: "128" },
    plain: { type: "string", default: "8" },
  },
});
const plain = Number(opts.plain);
const tokens = Number(opts.tokens);

const worker = await startDaemon(["worker", "--model", opts.model, "--port", "0", "--slots", String(plain + 1), "--ctx", "1024", "--gpu", opts.gpu]);
await workerReady(worker);
const url = worker.url;

const schema = { type: "object", properties: { hero: { type: "string" }, age: { type: "integer" }, friends: { type: "array", items: { type: "string" } } }, required: ["hero", "age", "friends"] };
/** Keeps one request running until stopped (constrained, or a plain chat of the same length); counts its tokens. */
function extraStream(stop: AbortSignal, constrained: boolean): Promise<number> {
  return (async () => {
    let generated = 0;
    for (let seed = 0; !stop.aborted; seed++) {
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          messages: [{ role: "user", content: "A story" }],
          max_tokens: tokens,
          seed,
          ...(constrained ? { frequency_penalty: 0.5, logit_bias: { "128": 2 }, response_format: { type: "json_schema", json_schema: { schema } } } : { ignore_eos: true }),
        }),
        signal: stop,
      }).catch(() => undefined);
      if (!res) break;
      const body = (await res.json().catch(() => undefined)) as { usage?: { completion_tokens: number } } | undefined;
      generated += body?.usage?.completion_tokens ?? 0;
    }
    return generated;
  })();
}

console.log(`${opts.model}: ${plain} plain streams of ${tokens} tokens alone, beside a plain stream, beside a constrained one (JSON schema, frequency penalty, logit bias)`);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const vsPlain: number[] = [];
const vsAlone: number[] = [];
async function beside(constrained: boolean) {
  const stop = new AbortController();
  const extra = extraStream(stop.signal, constrained);
  const result = await benchHttp({ url, concurrency: plain, tokens, rounds: 3 });
  stop.abort();
  return { tokensPerS: result.tokensPerS, extraTokens: await extra };
}
for (let pair = 0; pair < Number(opts.pairs); pair++) {
  const alone = await benchHttp({ url, concurrency: plain, tokens, rounds: 3 });
  const withPlain = await beside(false);
  const withConstrained = await beside(true);
  vsPlain.push(withConstrained.tokensPerS / withPlain.tokensPerS);
  vsAlone.push(withConstrained.tokensPerS / alone.tokensPerS);
  console.log(
    `pair ${pair + 1}: plain streams alone ${alone.tokensPerS.toFixed(0)} tok/s, beside a plain stream ${withPlain.tokensPerS.toFixed(0)} (it made ${withPlain.extraTokens} tokens), ` +
      `beside a constrained stream ${withConstrained.tokensPerS.toFixed(0)} (it made ${withConstrained.extraTokens}): ${(100 * vsPlain.at(-1)!).toFixed(1)}% of beside plain, ${(100 * vsAlone.at(-1)!).toFixed(1)}% of alone`,
  );
}
console.log(`mean: beside the constrained stream the plain streams keep ${(100 * mean(vsPlain)).toFixed(1)}% of their rate beside a plain one, ${(100 * mean(vsAlone)).toFixed(1)}% of their rate alone`);
await worker.stop();
// RBEE_PROFILE_STEPS=1: the per-step split the worker logged each time it went idle.
for (const line of worker.log().split("\n")) if (line.includes("step profile")) console.error(line);
