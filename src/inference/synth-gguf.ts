// Writes a llama-architecture GGUF of a real model's shape with random Q8_0 weights. Inference speed does not depend
// on the weight values, so it benchmarks a machine without downloading anything; the text it writes is nonsense.
import { closeSync, openSync, statSync, writeSync } from "node:fs";

export const SHAPES = {
  // embedding, layers, heads, kv heads, feed-forward, vocabulary
  "8b": [4096, 32, 32, 8, 14336, 32000],
  "3b": [3072, 28, 24, 8, 8192, 32000],
  "1b": [2048, 16, 32, 8, 8192, 32000],
  tiny: [256, 4, 8, 4, 768, 32000],
  /** Small enough to write in milliseconds: for probing a backend with a real evaluation. */
  probe: [64, 1, 2, 2, 128, 512],
  /** For a real tokenizer and chat template (writeSyntheticGguf's `tokenizer`): the vocabulary is the tokenizer's. */
  chat: [64, 2, 2, 2, 128, 0],
} as const satisfies Record<string, readonly number[]>;
export type Shape = keyof typeof SHAPES;

const F32 = 0;
const Q8_0 = 8;
const ALIGNMENT = 32;
const Q8_0_BLOCK = 34; // fp16 scale + 32 int8 values

class Writer {
  private parts: Buffer[] = [];
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.parts.push(b);
  }
  u64(v: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.parts.push(b);
  }
  f32(v: number) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.parts.push(b);
  }
  str(s: string) {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.parts.push(b);
  }
  bytes(b: Buffer) {
    this.parts.push(b);
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export type Kv = ["str", string] | ["u32", number] | ["f32", number] | ["bool", boolean] | ["strs", string[]] | ["f32s", number[]] | ["i32s", number[]];

function writeKv(w: Writer, key: string, [type, value]: Kv) {
  w.str(key);
  if (type === "str") (w.u32(8), w.str(value));
  else if (type === "u32") (w.u32(4), w.u32(value));
  else if (type === "f32") (w.u32(6), w.f32(value));
  else if (type === "bool") (w.u32(7), w.bytes(Buffer.of(value ? 1 : 0)));
  else {
    w.u32(9);
    w.u32(type === "strs" ? 8 : type === "f32s" ? 6 : 5);
    w.u64(value.length);
    for (const v of value) {
      if (type === "strs") w.str(v as string);
      else if (type === "f32s") w.f32(v as number);
      else {
        const b = Buffer.alloc(4);
        b.writeInt32LE(v as number);
        w.bytes(b);
      }
    }
  }
}

function madeUpTokenizer(V: number): [string, Kv][] {
  const vocab = vocabulary(V);
  return [
    ["tokenizer.ggml.model", ["str", "llama"]],
    ["tokenizer.ggml.tokens", ["strs", vocab.tokens]],
    ["tokenizer.ggml.scores", ["f32s", vocab.scores]],
    ["tokenizer.ggml.token_type", ["i32s", vocab.types]],
    ["tokenizer.ggml.bos_token_id", ["u32", 1]],
    ["tokenizer.ggml.eos_token_id", ["u32", 2]],
    ["tokenizer.ggml.unknown_token_id", ["u32", 0]],
  ];
}

/** A SentencePiece-style vocabulary: control tokens, the 256 byte tokens, then made-up pieces. */
function vocabulary(n: number) {
  const tokens = ["<unk>", "<s>", "</s>", ...Array.from({ length: 256 }, (_, i) => `<0x${i.toString(16).toUpperCase().padStart(2, "0")}>`)];
  const types = [2, 3, 3, ...Array<number>(256).fill(6)];
  const base = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()";
  const pieces = ["\u2581", ...base, ...[...base].map((c) => `\u2581${c}`)];
  for (let i = 0; tokens.length + pieces.length < n; i++) pieces.push(`\u2581${base[i % 26]}${base[Math.floor(i / 26) % 26]}${i}`);
  tokens.push(...pieces.slice(0, n - tokens.length));
  while (types.length < n) types.push(1);
  const scores = tokens.map((_, j) => (j < 259 ? 0 : -(j - 259)));
  return { tokens, scores, types };
}

/**
 * `tokenizer`: the `tokenizer.*` keys of a real model (its vocabulary, merges, special tokens, chat template) to use
 * instead of the made-up SentencePiece one; the vocabulary size then follows them.
 */
export function writeSyntheticGguf(path: string, shape: Shape, { tokenizer }: { tokenizer?: [string, Kv][] } = {}): { bytes: number } {
  const [E, L, H, HKV, FF, shapeVocab] = SHAPES[shape];
  const tokenizerTokens = tokenizer?.find(([k]) => k === "tokenizer.ggml.tokens")?.[1][1] as string[] | undefined;
  const V = tokenizerTokens?.length ?? shapeVocab;
  if (!V) throw new Error(`shape ${shape} takes its vocabulary from a tokenizer`);
  const kvDim = (E / H) * HKV;
  const tensors: [string, number[], number][] = [
    ["token_embd.weight", [E, V], Q8_0],
    ["output_norm.weight", [E], F32],
    ["output.weight", [E, V], Q8_0],
  ];
  for (let l = 0; l < L; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      [`${p}attn_norm.weight`, [E], F32],
      [`${p}attn_q.weight`, [E, E], Q8_0],
      [`${p}attn_k.weight`, [E, kvDim], Q8_0],
      [`${p}attn_v.weight`, [E, kvDim], Q8_0],
      [`${p}attn_output.weight`, [E, E], Q8_0],
      [`${p}ffn_norm.weight`, [E], F32],
      [`${p}ffn_gate.weight`, [E, FF], Q8_0],
      [`${p}ffn_up.weight`, [E, FF], Q8_0],
      [`${p}ffn_down.weight`, [FF, E], Q8_0],
    );
  }
  const kvs: [string, Kv][] = [
    ["general.architecture", ["str", "llama"]],
    ["general.name", ["str", `synthetic-${shape}-q8_0`]],
    ["general.file_type", ["u32", 7]],
    ["general.alignment", ["u32", ALIGNMENT]],
    ["llama.context_length", ["u32", 8192]],
    ["llama.embedding_length", ["u32", E]],
    ["llama.block_count", ["u32", L]],
    ["llama.feed_forward_length", ["u32", FF]],
    ["llama.attention.head_count", ["u32", H]],
    ["llama.attention.head_count_kv", ["u32", HKV]],
    ["llama.rope.dimension_count", ["u32", E / H]],
    ["llama.attention.layer_norm_rms_epsilon", ["f32", 1e-5]],
    ["llama.rope.freq_base", ["f32", 10000]],
    ["llama.vocab_size", ["u32", V]],
    ...(tokenizer ?? madeUpTokenizer(V)),
  ];
  const nbytes = (dims: number[], type: number) => {
    const n = dims.reduce((a, b) => a * b, 1);
    return type === F32 ? n * 4 : (n / 32) * Q8_0_BLOCK;
  };
  const head = new Writer();
  head.bytes(Buffer.from("GGUF"));
  head.u32(3);
  head.u64(tensors.length);
  head.u64(kvs.length);
  for (const [k, v] of kvs) writeKv(head, k, v);
  let offset = 0;
  for (const [name, dims, type] of tensors) {
    head.str(name);
    head.u32(dims.length);
    for (const d of dims) head.u64(d);
    head.u32(type);
    head.u64(offset);
    offset += Math.ceil(nbytes(dims, type) / ALIGNMENT) * ALIGNMENT;
  }
  const header = head.done();
  const fd = openSync(path, "w");
  try {
    writeSync(fd, header);
    writeSync(fd, Buffer.alloc((ALIGNMENT - (header.length % ALIGNMENT)) % ALIGNMENT));
    // A tensor larger than the blocks repeats them. An odd count keeps the repeat from lining up with rows: with 2^18
    // blocks, rows 131,072 apart of a 150k vocabulary's output (64 wide) were equal, so their tokens' logits tied.
    const blocks = randomQ8Blocks(Math.min((1 << 18) - 1, Math.max(...tensors.map(([, d, t]) => nbytes(d, t))) / Q8_0_BLOCK));
    for (const [, dims, type] of tensors) {
      const n = nbytes(dims, type);
      if (type === F32) writeSync(fd, Buffer.from(new Float32Array(dims[0]!).fill(1).buffer));
      else for (let left = n; left > 0; left -= Math.min(left, blocks.length)) writeSync(fd, blocks, 0, Math.min(left, blocks.length));
      writeSync(fd, Buffer.alloc((ALIGNMENT - (n % ALIGNMENT)) % ALIGNMENT));
    }
  } finally {
    closeSync(fd);
  }
  return { bytes: statSync(path).size };
}

/** Q8_0 blocks with a small fp16 scale (0.002) and pseudo-random int8 values, reused across tensors. */
function randomQ8Blocks(count: number): Buffer {
  // Its own ArrayBuffer: the words below need an offset that is a multiple of 4.
  const buf = Buffer.from(new ArrayBuffer(count * Q8_0_BLOCK));
  const scale = Buffer.alloc(2);
  scale.writeUInt16LE(0x1819); // 0.002 in fp16
  // The same bytes every time (xorshift32 from a fixed seed): a test that samples a synthetic model with a seed gets the
  // same text in every run, as with a real model.
  const words = new Uint32Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 4));
  for (let i = 0, x = 0x9e3779b9; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = 0; i < count; i++) scale.copy(buf, i * Q8_0_BLOCK);
  return buf;
}
