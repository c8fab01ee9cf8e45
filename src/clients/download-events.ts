// Reads a download's SSE stream (`progress`…, then `done` or `error`), as the hive and the queen both send it.
import { RbeeError } from "../errors";
import type { ByteProgress } from "../progress";
import type { ModelJson } from "../wire/hive";
import { readEvents } from "./sse-client";

export async function readDownload(res: Response, from: string, onProgress?: (p: ByteProgress) => void): Promise<ModelJson> {
  for await (const message of readEvents(res)) {
    const data = JSON.parse(message.data);
    if (message.event === "progress") onProgress?.(data);
    else if (message.event === "done") return data.model;
    else if (message.event === "error") throw new RbeeError(data.code, data.message);
  }
  throw new RbeeError("UPSTREAM_UNREACHABLE", `${from} closed the download stream early`);
}
