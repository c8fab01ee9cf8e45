// Embeddings of many inputs at once: a context of its own (made on the first request) whose sequences each take one
// input, so that one decode embeds several inputs; vectors are L2-normalized, as OpenAI's are.
import type { LlamaContext, LlamaModel, Token } from "node-llama-cpp";
import { RbeeError } from "../errors";
import { type AddonContext, addonContextOf, sequenceEmbeddingOf } from "./addon";

/** Inputs one decode embeds together, and the tokens each may have. */
export const EMBED_SEQUENCES = 8;
export const EMBED_MAX_TOKENS = 1024;

export class Embedder {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly context: LlamaContext,
    private readonly addon: AddonContext,
    /** rbee's addon reads any sequence's embedding; the stock one only sequence 0, so inputs then go one by one. */
    private readonly sequenceEmbedding: ((context: AddonContext, sequence: number, lastToken: number) => Float32Array) | undefined,
    readonly maxTokens: number,
  ) {}

  static async create(model: LlamaModel, threads: number): Promise<Embedder> {
    const maxTokens = Math.min(model.trainContextSize, EMBED_MAX_TOKENS);
    const sequenceEmbedding = sequenceEmbeddingOf(model);
    const sequences = sequenceEmbedding ? EMBED_SEQUENCES : 1;
    const context = await model.createContext({ contextSize: maxTokens, sequences, batchSize: maxTokens * sequences, threads, _embeddings: true } as Parameters<LlamaModel["createContext"]>[0]);
    return new Embedder(context, addonContextOf(context), sequenceEmbedding, maxTokens);
  }

  /** One normalized vector per input, in order. Inputs are evaluated a decode of several at a time, requests one after another. */
  embed(inputs: Token[][]): Promise<Float32Array[]> {
    for (const [i, tokens] of inputs.entries()) {
      if (tokens.length === 0) throw new RbeeError("BAD_REQUEST", `input ${i} is empty`);
      if (tokens.length > this.maxTokens) throw new RbeeError("CONTEXT_OVERFLOW", `input ${i} has ${tokens.length} tokens; an input may have at most ${this.maxTokens}`);
    }
    const run = this.queue.then(() => this.embedAll(inputs));
    this.queue = run.catch(() => {});
    return run;
  }

  async dispose(): Promise<void> {
    await this.queue;
    await this.context.dispose();
  }

  private async embedAll(inputs: Token[][]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    const perDecode = this.sequenceEmbedding ? EMBED_SEQUENCES : 1;
    for (let start = 0; start < inputs.length; start += perDecode) {
      const group = inputs.slice(start, start + perDecode);
      this.addon.initBatch(group.reduce((sum, t) => sum + t.length, 0));
      const last = group.map((tokens, seq) => this.addon.addToBatch(seq, 0, Uint32Array.from(tokens), Uint32Array.of(tokens.length - 1))[0]!);
      try {
        await this.addon.decodeBatch();
        for (const [seq, tokens] of group.entries())
          out.push(normalize(this.sequenceEmbedding ? this.sequenceEmbedding(this.addon, seq, last[seq]!) : Float32Array.from(this.addon.getEmbedding(tokens.length))));
      } finally {
        for (const seq of group.keys()) this.addon.disposeSequence(seq);
      }
    }
    return out;
  }
}

function normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum);
  return norm > 0 ? v.map((x) => x / norm) : v;
}
