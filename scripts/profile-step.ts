// Where one decode step's time goes, outside HTTP: the worker's raw loop on one model (src/inference/step.ts), for each
// combination of threads, flash attention, sampler, streams and step kind given. "stock": sampleToken for each sequence,
// then decodeBatch; "batched": rbee's one sample-then-decode call (scripts/build-addon.ts), which returns while the
// next decode runs, reported as the wait for the decode, the sampling and the launch.
//   bun scripts/profile-step.ts MODEL.gguf [--gpu cuda] [--threads 1,16] [--fa on,off,auto] [--temperature 0.8,0] [--streams 1,8] [--tokens 128] [--sampling stock,batched]
//     [--slots N] (sequences in the context, default: the streams) [--kvu off,on] (one KV buffer for all sequences)
import { parseArgs } from "node:util";
import { addonContextOf, createSampler, lastStepTimingsOf, NATIVE_STEP_PARTS, useUnifiedKvCache } from "../src/inference/addon";
import { createLlama, type GpuChoice } from "../src/inference/backend";
import { decodeRunsAheadOn, stepperFor } from "../src/inference/step";

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
      const context = await model.createContext({ contextSize: tokens + 16, sequences: slots, threads, flashAttention: fa === "auto" ? "auto" : fa === "on", batchSize: 512 });
      const addon = addonContextOf(context);
      for (const temperature of list(o.temperature).map(Number))
      for (const sampling of list(o.sampling)) {
        // RBEE_STOCK_ADDON=1 hides rbee's calls while the stepper is chosen.
        process.env.RBEE_STOCK_ADDON = sampling === "stock" ? "1" : "0";
        const { step, native } = stepperFor(model, addon, { decodeRunsAhead: decodeRunsAheadOn(backend) });
        const timings = lastStepTimingsOf(model);
        process.env.RBEE_STOCK_ADDON = "0";
        if (native !== (sampling === "batched")) throw new Error("this addon has no sampleThenDecode: run bun scripts/build-addon.ts");
        const samplers = Array.from({ length: streams }, (_, i) => createSampler(model, { temperature, topP: 0.95, seed: i }));
        const slotsOf = Array.from({ length: streams }, (_, s) => s);
        for (let round = 0; round < 2; round++) {
          for (let s = 0; s < streams; s++) addon.disposeSequence(s);
          const split = NATIVE_STEP_PARTS.map(() => 0);
          const started = performance.now();
          // The first step holds one prompt token per stream; every later one the streams' sampled tokens.
          addon.initBatch(streams);
          for (const s of slotsOf) addon.addToBatch(s, 0, Uint32Array.of(1), Uint32Array.of(0));
          await step([], streams, slotsOf.map((s) => ({ index: s, sampler: samplers[s]! }))).launched;
          for (let pos = 1; pos <= tokens; pos++) {
            addon.initBatch(streams);
            const position = pos < tokens ? pos : -1;
            const current = step(slotsOf.map((s) => ({ sampler: samplers[s]!, index: s, slot: s, position, stopAtEog: false, first: pos === 1 })), 0, []);
            await current.sampled;
            await current.launched;
            if (native) timings!().forEach((us, i) => (split[i]! += us));
          }
          const total = performance.now() - started;
          const per = (us: number) => `${(us / tokens).toFixed(0)} us`;
          if (round === 1)
            console.log(`${sampling}\tstreams ${streams}/${slots} kvu ${kvu}\tfa ${fa}\tthreads ${threads}\ttemp ${temperature}\t${((streams * tokens * 1000) / total).toFixed(0)} tok/s\tstep ${per(total * 1000)}${native ? NATIVE_STEP_PARTS.map((part, i) => `\t${part} ${per(split[i]!)}`).join("") : ""}`);
        }
        samplers.forEach((s) => s.dispose());
      }
      await context.dispose();
    }
await model.dispose();
await llama.dispose();
