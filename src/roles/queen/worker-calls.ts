// A dialect's request, translated into OpenAI's, carried to a worker of the model: its answer as parsed OpenAI stream
// chunks, or as one JSON body. The lease, the activity count and the keep-alive end with it, however it ends; the tokens
// it generated count in the queen's metrics like those of OpenAI's own routes.
import { RbeeError } from "../../errors";
import { reportedCompletionTokens } from "../../wire/openai";
import { resolveModel } from "./models";
import type { QueenDeps } from "./server";

export interface WorkerCall {
  model: string;
  node?: string;
  path: string;
  body: Record<string, unknown>;
  signal: AbortSignal;
  keepAliveMs?: number;
}

type Deps = Pick<QueenDeps, "registry" | "hives" | "relay" | "onActivity" | "names" | "metrics">;

async function start(deps: Deps, call: WorkerCall) {
  const modelRef = await resolveModel(deps.registry, deps.hives, call.model, call.node, deps.names);
  deps.onActivity(+1);
  try {
    const relayed = await deps.relay.start({ modelRef, node: call.node, path: call.path, body: call.body, signal: call.signal, keepAliveMs: call.keepAliveMs });
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      relayed.lease.release();
      deps.onActivity(-1);
    };
    return { relayed, end, modelRef };
  } catch (err) {
    deps.onActivity(-1);
    throw err;
  }
}

/** The worker's OpenAI SSE stream, one parsed chunk at a time, until `[DONE]`. */
export async function* openAiChunks(deps: Deps, call: WorkerCall): AsyncGenerator<Record<string, unknown>> {
  const { relayed, end } = await start(deps, call);
  const decoder = new TextDecoder();
  let buffer = relayed.first ? decoder.decode(relayed.first, { stream: true }) : "";
  // One per piece of text as it comes (the dashboard's tokens/s); the usage at the end brings the count to the exact
  // figure where a piece carried several tokens.
  let counted = 0;
  try {
    for (;;) {
      let at: number;
      while ((at = buffer.indexOf("\n\n")) !== -1) {
        const record = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        const data = record.startsWith("data: ") ? record.slice(6) : "";
        if (data === "[DONE]") return;
        if (!data) continue;
        const chunk = JSON.parse(data) as Record<string, unknown>;
        const total = reportedCompletionTokens(chunk);
        const n = total !== undefined ? Math.max(0, total - counted) : carriesGeneratedText(chunk) ? 1 : 0;
        if (n) deps.metrics.generated(relayed.lease.worker, n);
        counted += n;
        yield chunk;
      }
      const { value, done } = await relayed.reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
    }
  } catch (err) {
    // The worker's connection broke mid-answer (it was killed, or its node went away).
    throw err instanceof RbeeError ? err : new RbeeError("WORKER_FAILED", `the worker was lost mid-stream: ${err instanceof Error ? err.message : err}`);
  } finally {
    end();
    void relayed.reader.cancel().catch(() => {});
  }
}

/** The worker's whole JSON answer (a non-streamed call). */
export async function openAiJson(deps: Deps, call: WorkerCall): Promise<Record<string, unknown>> {
  const { relayed, end } = await start(deps, call);
  const chunks: Uint8Array[] = relayed.first ? [relayed.first] : [];
  try {
    for (;;) {
      const { value, done } = await relayed.reader.read();
      if (done) break;
      chunks.push(value);
    }
    const answer = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
    const generated = reportedCompletionTokens(answer);
    if (generated) deps.metrics.generated(relayed.lease.worker, generated);
    return answer;
  } finally {
    end();
  }
}

/** A stream chunk with a piece of the answer (the worker sends one per generated token), not the role or usage alone. */
function carriesGeneratedText(chunk: Record<string, unknown>): boolean {
  const choice = (chunk.choices as { delta?: { content?: string; tool_calls?: unknown[] }; text?: string }[] | undefined)?.[0];
  return Boolean(choice && (choice.text || choice.delta?.content || choice.delta?.tool_calls?.length));
}
