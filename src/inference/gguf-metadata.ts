// What the catalog records about a GGUF file: architecture, parameter count, quantization, context length.
import { loadNodeLlamaCpp } from "./runtime";

export interface GgufSummary {
  architecture: string | null;
  parameterCount: number | null;
  quantization: string | null;
  contextLength: number | null;
}

export async function summarizeGguf(path: string): Promise<GgufSummary> {
  const { readGgufFileInfo, GgufFileType } = await loadNodeLlamaCpp();
  const info = await readGgufFileInfo(path, { readTensorInfo: true, logWarnings: false });
  const metadata = info.metadata as unknown as Record<string, Record<string, unknown> | undefined>;
  const architecture = (metadata.general?.architecture as string | undefined) ?? null;
  const fileType = metadata.general?.file_type as number | undefined;
  const parameterCount = info.tensorInfo?.reduce((sum, t) => sum + t.dimensions.reduce<number>((n, d) => n * Number(d), 1), 0) ?? null;
  const contextLength = architecture ? ((metadata[architecture]?.context_length as number | undefined) ?? null) : null;
  return {
    architecture,
    parameterCount,
    quantization: fileType === undefined ? null : ((GgufFileType as unknown as Record<number, string>)[fileType] ?? String(fileType)),
    contextLength,
  };
}
