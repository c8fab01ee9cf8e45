// A request relayed to a worker of its model in the worker's own dialect and its answer streamed back unchanged (the
// OpenAI and llama-server routes): whole answers are read to count their tokens; a stream cut by a lost worker ends
// with the dialect's error record.
import type { Context } from "hono";
import { RbeeError } from "../../errors";
import { resolveModel } from "./models";
import type { QueenDeps } from "./server";
import type { Relayed } from "./relay";
import { passThrough } from "./stream-out";

export type RelayDeps = Pick<QueenDeps, "registry" | "hives" | "relay" | "metrics" | "onActivity" | "names">;

export interface AsIs {
  /** The worker's path. */
  path: string;
  body: { model?: string; node?: string; stream?: boolean };
  /** The model's reference where the route chose it already (else resolved from body.model). */
  modelRef?: string;
  /** The dialect's last record for a stream the worker cut off. */
  errorRecord: (message: string) => string;
  /** What ends a whole stream in the dialect, beside the usual ends (stream-out.ts). */
  ended?: RegExp;
  /** The tokens a whole answer says it generated. */
  generated: (answer: unknown) => number | undefined;
}

export async function relayAsIs(c: Context, deps: RelayDeps, asIs: AsIs): Promise<Response> {
  const startedAt = performance.now();
  const { body } = asIs;
  const modelRef = asIs.modelRef ?? (await resolveModel(deps.registry, deps.hives, body.model!, body.node, deps.names));
  const { node, ...forwarded } = body;
  deps.onActivity(+1);
  let relayed;
  try {
    relayed = await deps.relay.start({ modelRef, node, path: asIs.path, body: { ...forwarded, model: body.model ?? modelRef }, signal: c.req.raw.signal });
  } catch (err) {
    deps.onActivity(-1);
    throw err;
  }
  let ended = false;
  const done = () => {
    if (!ended) deps.onActivity(-1);
    ended = true;
  };
  if (!body.stream) {
    let answer: Buffer<ArrayBuffer>;
    try {
      answer = await readWhole(relayed);
    } finally {
      relayed.lease.release();
      done();
    }
    deps.metrics.ttft.observe((performance.now() - startedAt) / 1000);
    deps.metrics.generated(relayed.lease.worker, generatedIn(answer, asIs.generated));
    return new Response(answer, { status: relayed.status, headers: { "content-type": "application/json" } });
  }
  const stream = passThrough(relayed, deps.metrics, startedAt, asIs.errorRecord, done, asIs.ended);
  return new Response(stream, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}

/** A relayed answer read to its end (a worker lost meanwhile is the request's error). */
export async function readWhole(relayed: Pick<Relayed, "first" | "reader">): Promise<Buffer<ArrayBuffer>> {
  const chunks: Uint8Array[] = relayed.first ? [relayed.first] : [];
  try {
    for (;;) {
      const { value, done } = await relayed.reader.read();
      if (done) return Buffer.concat(chunks);
      chunks.push(value);
    }
  } catch (err) {
    throw new RbeeError("WORKER_FAILED", `the worker was lost while answering: ${err instanceof Error ? err.message : err}`);
  }
}

/** The tokens a whole answer reports; 0 where it has none (embeddings, an error) or is not JSON. */
function generatedIn(answer: Buffer, generated: AsIs["generated"]): number {
  try {
    return generated(JSON.parse(answer.toString("utf8"))) ?? 0;
  } catch {
    return 0;
  }
}
