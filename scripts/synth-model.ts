// Writes a synthetic llama GGUF for benchmarks: bun scripts/synth-model.ts OUT.gguf --shape tiny|1b|3b|8b
import { parseArgs } from "node:util";
import { SHAPES, type Shape, writeSyntheticGguf } from "../src/inference/synth-gguf";

const { values, positionals } = parseArgs({ allowPositionals: true, options: { shape: { type: "string", default: "1b" } } });
const out = positionals[0];
if (!out || !(values.shape! in SHAPES)) {
  console.error(`usage: bun scripts/synth-model.ts OUT.gguf --shape ${Object.keys(SHAPES).join("|")}`);
  process.exit(2);
}
const started = performance.now();
const { bytes } = writeSyntheticGguf(out, values.shape as Shape);
console.log(`${out}: synthetic ${values.shape} Q8_0, ${(bytes / 1e9).toFixed(2)} GB in ${((performance.now() - started) / 1000).toFixed(1)} s`);
