// The reference a worker is measured against in the same run: node-llama-cpp used the plain way, one LlamaCompletion
// per request on sequences of one shared context, in-process (no HTTP), same model and thread count.
import { getLlama, LlamaCompletion } from "node-llama-cpp";
import { statSync } from "node:fs";
import { chooseThreads } from "../../src/inference/threads";
import { type LevelResult, percentile } from "./http-load";

export async function benchNaive({ modelPath, concurrency, tokens, rounds, gpu, threads }: { modelPath: string; concurrency: number; tokens: number; rounds: number; gpu: string; threads?: number }): Promise<LevelResult> {
  const llama = await getLlama({ gpu: gpu === "cpu" ? false : (gpu as "auto"), build: "never" });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({
    contextSize: tokens + 64, // per sequence (node-llama-cpp gives each sequence this many cells)
    sequences: concurrency,
    threads: chooseThreads({ modelBytes: statSync(modelPath).size, requested: threads }),
  });
  const sequences = Array.from({ length: concurrency }, () => context.getSequence());
  const completions = sequences.map((contextSequence) => new LlamaCompletion({ contextSequence }));
  const ttfts: number[] = [];
  let generated = 0;
  let elapsed = 0;
  for (let r = 0; r < rounds + 1; r++) {
    const start = performance.now();
    const results = await Promise.all(
      completions.map(async (completion, i) => {
        let first = 0;
        let count = 0;
        await sequences[i]!.clearHistory();
        await completion.generateCompletion("Once upon a time", {
          maxTokens: tokens,
          seed: r * 1000 + i,
          temperature: 0.8,
          customStopTriggers: [],
          onToken: (t) => {
            if (!first) first = performance.now() - start;
            count += t.length;
          },
        });
        return { ttft: first, count };
      }),
    );
    if (r === 0) continue; // warm-up round
    elapsed += performance.now() - start;
    for (const x of results) {
      ttfts.push(x.ttft);
      generated += x.count;
    }
  }
  await context.dispose();
  await model.dispose();
  ttfts.sort((a, b) => a - b);
  return { concurrency, tokensPerS: (generated * 1000) / elapsed, ttftP50Ms: percentile(ttfts, 50), ttftP99Ms: percentile(ttfts, 99), requests: ttfts.length };
}
