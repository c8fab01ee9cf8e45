// A synthetic model that talks through a real tokenizer and chat template: the vocabulary GGUFs and Jinja templates of
// the llama.cpp source node-llama-cpp bundles (scripts/build-addon.ts keeps a clone of it), on the random weights of
// synth-gguf.ts. Its words are nonsense, but prompts go through the real template and tokenizer, and what a grammar
// forces (tool calls, JSON) is structurally checkable. Small enough for CI.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadNodeLlamaCpp } from "./runtime";
import { type Kv, type Shape, writeSyntheticGguf } from "./synth-gguf";

/** The llama.cpp clone scripts/build-addon.ts makes from node-llama-cpp's bundle. */
export const LLAMA_CPP_SOURCE = join(import.meta.dir, "..", "..", "node_modules", ".cache", "rbee-addon", "llama.cpp");

/** `shape`: the layers' sizes (synth-gguf.ts's SHAPES); the vocabulary is always the tokenizer's. */
export async function writeSyntheticChatModel(out: string, { vocab, template, shape = "chat" }: { vocab: string; template: string; shape?: Shape }): Promise<{ bytes: number }> {
  const vocabPath = join(LLAMA_CPP_SOURCE, "models", `ggml-vocab-${vocab}.gguf`);
  const templatePath = join(LLAMA_CPP_SOURCE, "models", "templates", `${template}.jinja`);
  for (const path of [vocabPath, templatePath])
    if (!existsSync(path)) throw new Error(`${path} is missing: run 'bun scripts/build-addon.ts' (it unpacks node-llama-cpp's llama.cpp source)`);
  const { readGgufFileInfo } = await loadNodeLlamaCpp();
  const info = await readGgufFileInfo(vocabPath, { readTensorInfo: false, logWarnings: false });
  const tokenizer = tokenizerKvs((info.metadata as unknown as { tokenizer: Record<string, unknown> }).tokenizer);
  tokenizer.push(["tokenizer.chat_template", ["str", readFileSync(templatePath, "utf8")]]);
  return writeSyntheticGguf(out, shape, { tokenizer });
}

/** The `tokenizer.ggml.*` keys with their GGUF types (a read header gives plain JavaScript values). */
function tokenizerKvs(tokenizer: Record<string, unknown>): [string, Kv][] {
  const ggml = (tokenizer.ggml ?? {}) as Record<string, unknown>;
  const kvs: [string, Kv][] = [];
  for (const [key, value] of Object.entries(ggml)) {
    const name = `tokenizer.ggml.${key}`;
    if (typeof value === "string") kvs.push([name, ["str", value]]);
    else if (typeof value === "boolean") kvs.push([name, ["bool", value]]);
    else if (typeof value === "number") kvs.push([name, ["u32", value]]);
    else if (Array.isArray(value) && typeof value[0] === "string") kvs.push([name, ["strs", value as string[]]]);
    else if (Array.isArray(value) && key === "scores") kvs.push([name, ["f32s", value as number[]]]);
    else if (Array.isArray(value)) kvs.push([name, ["i32s", value as number[]]]);
  }
  return kvs;
}
