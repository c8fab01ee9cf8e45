// llama-server's own routes on the queen, relayed as they are to a worker of the model the request names (`model`, or
// `?model=` on the GETs, as llama-server's router mode takes it), or of the only model loaded.
import type { Context, Hono } from "hono";
import { z } from "zod";
import { health, STREAM_ENDED } from "../../dialects/llamacpp";
import { RbeeError } from "../../errors";
import { readJson } from "../../http/validate";
import { llamaCppError } from "../../wire/errors";
import { ApplyTemplateRequest, DetokenizeRequest, LlamaCompletionRequest, TokenizeRequest } from "../../wire/llamacpp";
import { resolveModel } from "./models";
import { readWhole, type RelayDeps, relayAsIs } from "./relay-as-is";

const Routed = { node: z.string().min(1).optional() };
const QueenCompletion = LlamaCompletionRequest.extend(Routed);

export function addLlamaCppRoutes(app: Hono, deps: RelayDeps): void {
  app.get("/health", (c) => c.json(health(true)));

  const relay = async (c: Context, path: string, body: { model?: string; node?: string; stream?: boolean }) =>
    relayAsIs(c, deps, {
      path,
      body,
      modelRef: await modelOf(deps, body.model, body.node),
      errorRecord: (message) => `data: ${JSON.stringify(llamaCppError(new RbeeError("WORKER_FAILED", message)))}\n\n`,
      ended: STREAM_ENDED,
      generated: (answer) => (answer as { tokens_predicted?: number } | null)?.tokens_predicted,
    });
  app.post("/completion", async (c) => relay(c, "/completion", await readJson(c, QueenCompletion)));
  app.post("/tokenize", async (c) => relay(c, "/tokenize", await readJson(c, TokenizeRequest.extend(Routed))));
  app.post("/detokenize", async (c) => relay(c, "/detokenize", await readJson(c, DetokenizeRequest.extend(Routed))));
  app.post("/apply-template", async (c) => relay(c, "/apply-template", await readJson(c, ApplyTemplateRequest.extend(Routed))));

  // A loaded worker answers at once; with none, the model is started as a request for it would.
  app.get("/props", async (c) => {
    const modelRef = await modelOf(deps, c.req.query("model"));
    const worker = deps.registry.workersFor(modelRef)[0];
    if (worker) return forward(await deps.relay.get(worker, "/props", c.req.raw.signal));
    const relayed = await deps.relay.start({ modelRef, path: "/props", body: undefined, signal: c.req.raw.signal });
    try {
      return new Response(await readWhole(relayed), { status: relayed.status, headers: { "content-type": "application/json" } });
    } finally {
      relayed.lease.release();
    }
  });

  // Every worker's slots, each slot with the worker it belongs to (ids repeat across replicas).
  app.get("/slots", async (c) => {
    const modelRef = await modelOf(deps, c.req.query("model"));
    const workers = deps.registry.workersFor(modelRef);
    if (!workers.length) throw new RbeeError("NOT_FOUND", `no worker of ${modelRef} is running: slots are a running worker's`);
    const lists = await Promise.all(
      workers.map(async (w) => ((await (await deps.relay.get(w, "/slots", c.req.raw.signal)).json()) as object[]).map((slot) => ({ ...slot, worker: w.id, node: w.node }))),
    );
    return c.json(lists.flat());
  });
}

/** The model a request names; without one, the only model with a worker running. */
async function modelOf(deps: RelayDeps, model: string | undefined, node?: string): Promise<string> {
  if (model) return resolveModel(deps.registry, deps.hives, model, node, deps.names);
  const loaded = deps.registry.modelsWithWorkers();
  if (loaded.length === 1) return loaded[0]!;
  throw new RbeeError(
    "BAD_REQUEST",
    loaded.length ? `model: ${loaded.length} models are loaded (${loaded.join(", ")}); name one` : "model: no model is loaded; name one (GET /v1/models lists them)",
  );
}

const forward = (res: Response) => new Response(res.body, { status: res.status, headers: { "content-type": "application/json" } });
