// Ollama's API on the queen (/api/*, and the GET / and HEAD / probes): chat, generate and embed relayed to workers
// through the Ollama dialect's translation (dialects/ollama.ts); the model list, loaded models, pulls, deletes and
// names from the queen's own registry. Errors in Ollama's shape: {"error": "message"}.
import { type Context, Hono } from "hono";
import { stream as honoStream } from "hono/streaming";
import { withTag } from "../../catalog/aliases";
import { isHubShorthand } from "../../catalog/hub-shorthand";
import { parseModelRef } from "../../catalog/refs";
import { chatRequest, embedResponse, generateRequest, legacyEmbeddingResponse, loadRecord, OllamaStream, showEntry, tagEntry } from "../../dialects/ollama";
import { keepAliveMs } from "../../duration";
import { asRbeeError, RbeeError } from "../../errors";
import { writtenResponse } from "../../http/sse";
import { readJson } from "../../http/validate";
import { LOCAL_NODE } from "../../nodes/registry";
import { VERSION } from "../../version";
import type { ModelJson } from "../../wire/hive";
import { OllamaChatRequest, OllamaCopyRequest, OllamaEmbedRequest, OllamaGenerateRequest, OllamaLegacyEmbeddingsRequest, OllamaModelRequest, OllamaPullRequest } from "../../wire/ollama";
import { resolveModel } from "./models";
import type { QueenDeps } from "./server";
import { openAiChunks, openAiJson } from "./worker-calls";

const NDJSON = "application/x-ndjson";

export function addOllamaRoutes(app: Hono, deps: QueenDeps): void {
  // Clients probe the root to see that a server is up (a browser asking for HTML gets the dashboard: dashboard-routes.ts).
  app.get("/", (c) => c.text("rbee is running (Ollama-compatible API at /api)"));
  app.on("HEAD", "/", (c) => c.body(null, 200));

  // Errors in Ollama's shape: the app's error handler chooses it by the path (wire/errors.ts).
  const api = new Hono();

  api.get("/version", (c) => c.json({ version: VERSION }));

  api.post("/chat", async (c) => {
    const body = await readJson(c, OllamaChatRequest);
    const keepAlive = keepAliveMs(body.keep_alive);
    if (!body.messages.length) return loadOrUnload(c, deps, body.model, keepAlive, "chat");
    const translated = chatRequest(body);
    return relayGeneration(c, deps, { model: body.model, path: "/v1/chat/completions", body: translated, keepAlive, stream: body.stream, kind: "chat" });
  });

  api.post("/generate", async (c) => {
    const body = await readJson(c, OllamaGenerateRequest);
    const keepAlive = keepAliveMs(body.keep_alive);
    if (!body.prompt && body.template === undefined) return loadOrUnload(c, deps, body.model, keepAlive, "generate");
    const { path, body: translated } = generateRequest(body);
    return relayGeneration(c, deps, { model: body.model, path, body: translated, keepAlive, stream: body.stream, kind: "generate" });
  });

  api.post("/embed", async (c) => {
    const body = await readJson(c, OllamaEmbedRequest);
    const startedAt = performance.now();
    const res = await openAiJson(deps, { model: body.model, path: "/v1/embeddings", body: { input: body.input }, signal: c.req.raw.signal, keepAliveMs: keepAliveMs(body.keep_alive) });
    return c.json(embedResponse(body.model, res, startedAt));
  });

  api.post("/embeddings", async (c) => {
    const body = await readJson(c, OllamaLegacyEmbeddingsRequest);
    const res = await openAiJson(deps, { model: body.model, path: "/v1/embeddings", body: { input: body.prompt }, signal: c.req.raw.signal, keepAliveMs: keepAliveMs(body.keep_alive) });
    return c.json(legacyEmbeddingResponse(res));
  });

  api.get("/tags", (c) => c.json({ models: listedModels(deps).map(({ name, model }) => tagEntry(name, model)) }));

  api.get("/ps", async (c) => {
    const loaded = [];
    for (const { ref, model, workers } of deps.registry.modelListing()) {
      if (!workers || !model) continue;
      const vram = await workerVram(deps, ref);
      loaded.push({ ...tagEntry(`${model.name}:latest`, model), expires_at: deps.keepAlive.expiresAt(ref)?.toISOString() ?? "0001-01-01T00:00:00Z", size_vram: vram, context_length: null });
    }
    return c.json({ models: loaded });
  });

  api.post("/show", async (c) => {
    const body = await readJson(c, OllamaModelRequest);
    const name = (body.model ?? body.name)!;
    const ref = await resolveModel(deps.registry, deps.hives, name, undefined, deps.names);
    const model = deps.registry.findModel(ref);
    if (!model) throw new RbeeError("MODEL_NOT_FOUND", `model "${name}" not found`);
    return c.json(showEntry(model));
  });

  api.post("/pull", async (c) => {
    const body = await readJson(c, OllamaPullRequest);
    const ref = pullReference((body.model ?? body.name)!);
    const hive = await deps.hives.ensure(LOCAL_NODE);
    const events: unknown[] = [];
    const run = async (send: (record: unknown) => Promise<void> | void) => {
      await send({ status: "pulling manifest" });
      let digest = "";
      const model = await hive.client.download(ref, (p) => void send({ status: `pulling ${ref}`, digest, total: p.bytes_total, completed: p.bytes_done }));
      hive.models = [...hive.models.filter((m) => m.ref !== model.ref), model];
      // The name it was pulled by (hf.co/ORG/REPO:QUANT) names it from now on.
      if (ref !== model.ref) deps.names.set(ref, model.ref);
      digest = `sha256:${model.sha256}`;
      await send({ status: "verifying sha256 digest", digest });
      await send({ status: "writing manifest" });
      await send({ status: "success" });
    };
    if (!body.stream) {
      await run((r) => void events.push(r));
      return c.json(events.at(-1));
    }
    c.header("content-type", NDJSON);
    return honoStream(c, async (out) => {
      const write = async (r: unknown) => void (await out.write(`${JSON.stringify(r)}\n`));
      try {
        await run(write);
      } catch (err) {
        await write({ error: asRbeeError(err).message });
      }
    });
  });

  api.delete("/delete", async (c) => {
    const body = await readJson(c, OllamaModelRequest);
    const name = (body.model ?? body.name)!;
    if (deps.names.remove(name)) return c.body(null, 200);
    const ref = await resolveModel(deps.registry, deps.hives, name, undefined, deps.names);
    const hives = deps.registry.upHives().filter((h) => h.models.some((m) => m.ref === ref));
    if (!hives.length) throw new RbeeError("MODEL_NOT_FOUND", `model "${name}" not found`);
    for (const hive of hives) {
      await hive.client.removeModel(ref);
      hive.models = hive.models.filter((m) => m.ref !== ref);
    }
    return c.body(null, 200);
  });

  api.post("/copy", async (c) => {
    const body = await readJson(c, OllamaCopyRequest);
    const ref = await resolveModel(deps.registry, deps.hives, body.source, undefined, deps.names);
    deps.names.set(body.destination, ref);
    return c.body(null, 200);
  });

  app.route("/api", api);
}

/** Catalog models by their short name, then every alias, each with the model it points at. */
function listedModels(deps: QueenDeps): { name: string; model: ModelJson }[] {
  const byRef = new Map(deps.registry.modelListing().flatMap((m) => (m.model ? [[m.ref, m.model] as const] : [])));
  const named = [...byRef.values()].map((model) => ({ name: withTag(model.name), model }));
  for (const alias of deps.names.list()) {
    const model = byRef.get(alias.ref) ?? deps.registry.findModel(alias.ref);
    if (model) named.push({ name: alias.name, model });
  }
  return named;
}

/** What /api/pull takes: rbee's references, and the Hub's forms (hf.co/ORG/REPO[:QUANT], ORG/REPO[:QUANT], with a file). */
function pullReference(name: string): string {
  const hubFile = /^(?:https?:\/\/)?(?:hf\.co|huggingface\.co)\/(.+\.gguf)$/.exec(name);
  if (hubFile) return parseModelRef(`hf:${hubFile[1]}`).ref;
  // The hive lists the repository and picks the file.
  if (isHubShorthand(name)) return name;
  return parseModelRef(name).ref;
}

async function workerVram(deps: QueenDeps, modelRef: string): Promise<number> {
  let total = 0;
  for (const w of deps.registry.workersFor(modelRef)) {
    const ready = await fetch(`${w.url}/v1/ready`, { headers: deps.apiToken ? { authorization: `Bearer ${deps.apiToken}` } : {}, signal: AbortSignal.timeout(1000) })
      .then((r) => r.json() as Promise<{ vram_bytes?: number }>)
      .catch(() => ({ vram_bytes: 0 }));
    total += ready.vram_bytes ?? 0;
  }
  return total;
}

/** An empty prompt loads the model (keep_alive 0: unloads it), as Ollama does. */
async function loadOrUnload(c: Context, deps: QueenDeps, name: string, keepAlive: number | undefined, kind: "chat" | "generate") {
  const modelRef = await resolveModel(deps.registry, deps.hives, name, undefined, deps.names);
  const unload = keepAlive === 0;
  if (!unload) {
    const lease = await deps.scheduler.acquire(modelRef, { signal: c.req.raw.signal });
    lease.release();
  }
  deps.keepAlive.touch(modelRef, keepAlive);
  return c.json(loadRecord(name, kind, unload));
}

async function relayGeneration(
  c: Context,
  deps: QueenDeps,
  call: { model: string; path: string; body: Record<string, unknown>; keepAlive: number | undefined; stream: boolean; kind: "chat" | "generate" },
): Promise<Response> {
  const translated = new OllamaStream(call.model, call.kind);
  const chunks = openAiChunks(deps, { model: call.model, path: call.path, body: call.body, signal: c.req.raw.signal, keepAliveMs: call.keepAlive });
  if (!call.stream) {
    for await (const chunk of chunks) translated.push(chunk);
    return c.json(translated.end(true)[0]);
  }
  // The first chunk before the headers: a request the worker refuses gets its error as an HTTP status, not a record.
  const first = await chunks.next();
  return writtenResponse(c, NDJSON, async (out) => {
    const write = (records: unknown[]) => {
      for (const r of records) out.write(`${JSON.stringify(r)}\n`);
    };
    try {
      if (!first.done) write(translated.push(first.value));
      for await (const chunk of chunks) write(translated.push(chunk));
      write(translated.end(false));
    } catch (err) {
      write([{ error: asRbeeError(err).message }]);
    }
  });
}
