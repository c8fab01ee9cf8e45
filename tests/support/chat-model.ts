// A synthetic model with a real tokenizer and chat template (Qwen2.5-Instruct's, which has tool calls), written once
// per test process into a temporary file. Its words are nonsense; what a grammar forces is checkable.
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSyntheticChatModel } from "../../src/inference/synth-chat-model";

let written: Promise<string> | undefined;

export function qwenChatModel(): Promise<string> {
  written ??= (async () => {
    const path = join(mkdtempSync(join(tmpdir(), "rbee-chat-model-")), "qwen-chat.gguf");
    if (!existsSync(path)) await writeSyntheticChatModel(path, { vocab: "qwen2", template: "Qwen-Qwen2.5-7B-Instruct" });
    return path;
  })();
  return written;
}

/**
 * Qwen2's token for "<", the first character of its template's call prefix `<tool_call>` (llama.cpp's Qwen2 vocabulary
 * file has no special token for it): a bias on it makes a freely choosing model open a call.
 */
export const QWEN_LESS_THAN_TOKEN = 27;
