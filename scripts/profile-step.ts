// Where one decode step's time goes, outside HTTP: the worker's raw loop on one model, for each combination of
// threads, flash attention, sampler, streams and sampling path given. "stock": decodeBatch, then sampleToken for each
// sequence; "batched": rbee's one decodeAndSample call (scripts/build-addon.ts), reported as decode + sample together.
//   bun scripts/profile-step.ts MODEL.gguf [--gpu cuda] [--threads 1,16] [--fa on,off] [--temperature 0.8,0] [--streams 1,8] [--tokens 128] [--sampling stock,batched]
//     [--slots N] (sequences in the context, default: the streams) [--kvu off,on] (one KV buffer for all sequences)
import { parseArgs } from "node:util";
import { addonContextOf, createSampler, decodeAndSampleOf, useUnifiedKvCache } from "../src/inference/addon";
import { createLlama, type GpuChoice } from "../src/inference/backend";

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    gpu: { type: "string", default: "cuda" },
    threads: { type: "string", default: "1,16" },
    fa: { type: "string", default: "on,off" },
    temperature: { type: "string", default: "0.8,0" },
    streams: { type: "string", default: "1" },
    tokens: { type: "string", default: "128" },
    sampling: { type: "string", default: "stock,batched" },
    slots: { type: "string" },
    kvu: { type: "string", default: "off" },
  },
});
const list = (s: string) => s.split(",");
const { llama, backend } = await createLlama(o.gpu as GpuChoice);
const model = await llama.loadModel({ modelPath: positionals[0]!, gpuLayers: backend === "cpu" ? 0 : "max" });
const tokens = Number(o.tokens);
console.log(`backend ${backend}, ${tokens} tokens per stream`);
for (const streams of list(o.streams).map(Number))
  for (const fa of list(o.fa))
    for (const kvu of list(o.kvu))
    for (const threads of list(o.threads).map(Number)) {
      const slots = Math.max(streams, Number(o.slots ?? streams));
      if (!useUnifiedKvCache(llama, kvu === "on") && kvu === "on") throw new Error("this addon cannot unify the KV cache: run bun scripts/build-addon.ts");
      const context = await model.createContext({ contextSize: (tokens + 16) * slots, sequences: slots, threads, flashAttention: fa === "on", batchSize: 512 });
      const addon = addonContextOf(context);
      for (const temperature of list(o.temperature).map(Number))
      for (const sampling of list(o.sampling)) {
        const decodeAndSample = sampling === "batched" ? decodeAndSampleOf(model) : undefined;
        if (sampling === "batched" && !decodeAndSample) throw new Error("this addon has no decodeAndSample: run bun scripts/build-addon.ts");
        const samplers = Array.from({ length: streams }, (_, i) => createSampler(model, { temperature, topP: 0.95, seed: i }));
        for (let round = 0; round < 2; round++) {
          for (let s = 0; s < streams; s++) addon.disposeSequence(s);
          let decodeMs = 0;
          let sampleMs = 0;
          const last = Array<number>(streams).fill(1);
          const started = performance.now();
          for (let pos = 0; pos < tokens; pos++) {
            const a = performance.now();
            addon.initBatch(streams);
            const indexes = last.map((t, s) => addon.addToBatch(s, pos, Uint32Array.of(t), Uint32Array.of(0))[0]!);
            const batched = decodeAndSample ? await decodeAndSample(addon, samplers, Int32Array.from(indexes)) : await addon.decodeBatch();
            const b = performance.now();
            const sampled = batched ? [...batched] : await Promise.all(indexes.map((index, s) => addon.sampleToken(index, samplers[s]!)));
            sampleMs += performance.now() - b;
            decodeMs += b - a;
            sampled.forEach((t, s) => (last[s] = t));
          }
          const total = performance.now() - started;
          if (round === 1)
            console.log(`${sampling}\tstreams ${streams}/${slots} kvu ${kvu}\tfa ${fa}\tthreads ${threads}\ttemp ${temperature}\t${((streams * tokens * 1000) / total).toFixed(0)} tok/s\tdecode ${((decodeMs / tokens) * 1000).toFixed(0)} us\tsample ${((sampleMs / tokens) * 1000).toFixed(0)} us per step`);
        }
        samplers.forEach((s) => s.dispose());
      }
      await context.dispose();
    }
await model.dispose();
await llama.dispose();
