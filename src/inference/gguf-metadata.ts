// What rbee reads from a GGUF header: the catalog's summary (architecture, parameter count, quantization, context
// length) and the model's shape for memory estimates.
import { DEFAULT_MAX_CTX, type ModelShape } from "./memory-plan";
import { loadNodeLlamaCpp } from "./runtime";

export interface GgufSummary {
  architecture: string | null;
  parameterCount: number | null;
  quantization: string | null;
  contextLength: number | null;
  shape: ModelShape;
  chatTemplate: string | null;
}

type Metadata = Record<string, Record<string, unknown> | undefined>;

export async function summarizeGguf(path: string): Promise<GgufSummary> {
  const { readGgufFileInfo, GgufFileType } = await loadNodeLlamaCpp();
  const info = await readGgufFileInfo(path, { readTensorInfo: true, logWarnings: false });
  const metadata = info.metadata as unknown as Metadata;
  const architecture = (metadata.general?.architecture as string | undefined) ?? null;
  const fileType = metadata.general?.file_type as number | undefined;
  const parameterCount = info.tensorInfo?.reduce((sum, t) => sum + t.dimensions.reduce<number>((n, d) => n * Number(d), 1), 0) ?? null;
  const contextLength = architecture ? ((metadata[architecture]?.context_length as number | undefined) ?? null) : null;
  return {
    architecture,
    parameterCount,
    quantization: fileType === undefined ? null : ((GgufFileType as unknown as Record<number, string>)[fileType] ?? String(fileType)),
    contextLength,
    shape: shapeFromMetadata(metadata),
    chatTemplate: typeof metadata.tokenizer?.chat_template === "string" ? metadata.tokenizer.chat_template : null,
  };
}

export async function readModelShape(path: string): Promise<ModelShape> {
  const { readGgufFileInfo } = await loadNodeLlamaCpp();
  const info = await readGgufFileInfo(path, { readTensorInfo: false, logWarnings: false });
  return shapeFromMetadata(info.metadata as unknown as Metadata);
}

/** The shape from the header's `<architecture>.*` keys; llama's usual values stand in for missing ones. */
export function shapeFromMetadata(metadata: Metadata): ModelShape {
  const arch = String(metadata.general?.architecture ?? "llama");
  const a = metadata[arch] ?? {};
  const attention = (a.attention ?? {}) as Record<string, unknown>;
  const layers = positive(a.block_count, 32);
  const embedding = positive(a.embedding_length, 4096);
  const heads = perLayerMax(attention.head_count, 32);
  // Some architectures give KV heads per layer (an array): the cache holds each layer's own.
  const kvHeadsAvg = perLayerMean(attention.head_count_kv, heads);
  const headDimK = positive(attention.key_length, embedding / heads);
  const headDimV = positive(attention.value_length, embedding / heads);
  const tokens = (metadata.tokenizer?.ggml as { tokens?: unknown[] } | undefined)?.tokens;
  return {
    layers,
    embedding,
    feedForward: perLayerMax(a.feed_forward_length, 4 * embedding),
    heads,
    kvWidthK: kvHeadsAvg * headDimK,
    kvWidthV: kvHeadsAvg * headDimV,
    headDimK,
    vocab: Array.isArray(tokens) ? tokens.length : 32000,
    trainCtx: positive(a.context_length, DEFAULT_MAX_CTX),
  };
}

function positive(v: unknown, fallback: number): number {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : fallback;
}

function perLayerMax(v: unknown, fallback: number): number {
  return Array.isArray(v) ? Math.max(...v.map((x) => positive(x, 0)), 1) : positive(v, fallback);
}

function perLayerMean(v: unknown, fallback: number): number {
  return Array.isArray(v) && v.length ? v.reduce((s: number, x) => s + positive(x, 0), 0) / v.length : positive(v, fallback);
}
