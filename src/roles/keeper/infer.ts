// `rbee infer`: one command that brings up what it needs (queen, hive, worker; on any node), streams the answer to
// stdout, and leaves nothing running behind it — on success, on failure and on Ctrl-C alike.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { defineCommand } from "citty";
import { z } from "zod";
import { parseArgs } from "../../cli-args";
import { looksLikeModelRef, parseModelRef } from "../../catalog/refs";
import { QueenClient } from "../../clients/queen-client";
import { readEvents } from "../../clients/sse-client";
import { apiToken, DEFAULT_QUEEN_PORT, rbeeHome } from "../../config";
import { type ErrorCode, RbeeError } from "../../errors";
import { rbeeCodeOf } from "../../wire/errors";
import { LOCAL_NODE, NODES_DB, NodeRegistry } from "../../nodes/registry";
import { byteProgressReporter } from "../../progress";
import { type EphemeralQueen, startEphemeralQueen } from "./ephemeral-queen";
import { stageLine } from "./stage-line";

const InferArgs = z.object({
  model: z.string().min(1, "--model is required"),
  prompt: z.string({ error: "is required and must not be empty" }).min(1, "must not be empty"),
  node: z.string().min(1).optional(),
  "max-tokens": z.coerce.number().int().positive().default(256),
  temperature: z.coerce.number().min(0).max(2).default(0.8),
  seed: z.coerce.number().int().nonnegative().optional(),
  system: z.string().optional(),
  json: z.boolean().default(false),
  "queen-url": z.string().url().optional(),
  home: z.string().optional(),
  "api-token": z.string().optional(),
});
type InferOptions = z.infer<typeof InferArgs>;

export interface InferResult {
  text: string;
  tokens: number;
  stop_reason: string | null;
  model: string;
  node: string | null;
  worker: string | null;
  ttft_ms: number;
  tokens_per_s: number;
  total_ms: number;
  queen: "started" | "existing";
}

export default defineCommand({
  meta: { name: "infer", description: "One-shot inference: start what is needed, stream the answer, stop it all" },
  args: {
    model: { type: "string", description: "Model: hf:ORG/REPO/FILE.gguf, a .gguf path, or a name in a catalog", required: true },
    prompt: { type: "string", description: "Prompt text", required: true },
    node: { type: "string", description: "Node to run on (default: the local machine)" },
    "max-tokens": { type: "string", description: "Tokens to generate at most (default 256)" },
    temperature: { type: "string", description: "Sampling temperature (default 0.8)" },
    seed: { type: "string", description: "Sampling seed" },
    system: { type: "string", description: "System message (uses the model's chat template)" },
    json: { type: "boolean", description: "Print one JSON result at the end instead of streaming" },
    "queen-url": { type: "string", description: `Queen to use (default $RBEE_QUEEN_URL or http://127.0.0.1:${DEFAULT_QUEEN_PORT})` },
    home: { type: "string", description: "rbee's home (default $RBEE_HOME or ~/.rbee)" },
    "api-token": { type: "string", description: "Bearer token of the queen" },
  },
  run: async ({ args }) => {
    await infer(parseArgs(InferArgs, args));
  },
});

function hasRemoteNodes(home: string): boolean {
  if (!existsSync(join(home, NODES_DB))) return false;
  const nodes = new NodeRegistry(home);
  try {
    return nodes.list().some((n) => n.sshHost);
  } finally {
    nodes.close();
  }
}

async function infer(o: InferOptions): Promise<void> {
  const started = performance.now();
  // Remote hives may be needed: for the node named, or to lend their devices to a model too big for this machine alone.
  const remote = (o.node !== undefined && o.node !== LOCAL_NODE) || hasRemoteNodes(rbeeHome(o.home));
  const givenToken = apiToken(o["api-token"]);
  const ui = stageLine(process.stderr);
  const abort = new AbortController();
  let queen: EphemeralQueen | undefined;
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = signal;
    abort.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    let client = new QueenClient(o["queen-url"] ?? process.env.RBEE_QUEEN_URL ?? `http://127.0.0.1:${DEFAULT_QUEEN_PORT}`, givenToken);
    const persistent = await client.isUp();
    if (!persistent) {
      ui.stage("starting the queen");
      // A queen started for a remote node listens on every interface: unless the user chose a token, it gets a fresh one.
      const token = givenToken ?? (remote ? randomBytes(24).toString("base64url") : undefined);
      queen = await startEphemeralQueen({ home: rbeeHome(o.home), listenOnAll: remote, apiToken: token });
      client = new QueenClient(queen.url, token);
    }
    throwIfInterrupted(interrupted);
    let model = o.model;
    if (looksLikeModelRef(model)) {
      model = parseModelRef(model).ref;
      ui.stage(`preparing ${model}${o.node ? ` on ${o.node}` : ""}`);
      const bar = process.stderr.isTTY ? byteProgressReporter("downloading") : undefined;
      await client.download(model, o.node, (p) => (ui.clear(), bar?.update(p)), abort.signal).finally(() => bar?.stop());
    }
    throwIfInterrupted(interrupted);
    ui.stage("loading the model");
    const result = await generate(client, o, model, abort.signal, (piece) => {
      ui.clear();
      if (!o.json) process.stdout.write(piece);
    });
    ui.clear();
    if (o.json) console.log(JSON.stringify({ ...result, total_ms: Math.round(performance.now() - started), queen: persistent ? "existing" : "started" } satisfies InferResult));
    else if (!result.text.endsWith("\n")) process.stdout.write("\n");
  } catch (err) {
    ui.clear();
    if (interrupted) throw new RbeeError("INTERRUPTED", `interrupted (${interrupted}); everything started was stopped`, { exitCode: interrupted === "SIGINT" ? 130 : 143 });
    if (queen && err instanceof RbeeError && err.code === "UPSTREAM_UNREACHABLE" && queen.proc.exitCode !== null)
      throw new RbeeError("INTERNAL", `the queen died: ${queen.logTail().at(-1) ?? "no output"}`);
    throw err;
  } finally {
    if (queen) {
      ui.stage("stopping");
      await queen.shutdown();
      ui.clear();
    }
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function throwIfInterrupted(signal: NodeJS.Signals | undefined): void {
  if (signal) throw new RbeeError("INTERRUPTED", `interrupted (${signal})`);
}

type Generated = Omit<InferResult, "total_ms" | "queen">;

async function generate(client: QueenClient, o: InferOptions, model: string, signal: AbortSignal, onText: (piece: string) => void): Promise<Generated> {
  const sent = performance.now();
  const result: Generated = { text: "", tokens: 0, stop_reason: null, model, node: null, worker: null, ttft_ms: 0, tokens_per_s: 0 };
  const append = (piece: string) => {
    if (!result.ttft_ms) result.ttft_ms = Math.round(performance.now() - sent);
    result.text += piece;
    onText(piece);
  };
  if (o.system !== undefined) {
    const res = await client.request("POST", "/v1/chat/completions", {
      model,
      node: o.node,
      messages: [{ role: "system", content: o.system }, { role: "user", content: o.prompt }],
      max_tokens: o["max-tokens"],
      temperature: o.temperature,
      seed: o.seed,
      stream: true,
      stream_options: { include_usage: true },
    }, { signal });
    for await (const message of readEvents(res)) {
      if (signal.aborted) break;
      if (message.data === "[DONE]") break;
      const chunk = JSON.parse(message.data);
      if (chunk.error) throw new RbeeError((rbeeCodeOf(chunk) ?? "WORKER_FAILED") as ErrorCode, chunk.error.message);
      const choice = chunk.choices?.[0];
      if (choice?.delta?.content) append(choice.delta.content);
      if (choice?.finish_reason) result.stop_reason = choice.finish_reason;
      if (chunk.usage) result.tokens = chunk.usage.completion_tokens;
    }
  } else {
    const body = { model, node: o.node, prompt: o.prompt, max_tokens: o["max-tokens"], temperature: o.temperature, seed: o.seed };
    const res = await client.request("POST", "/v2/tasks", body, { signal });
    for await (const message of readEvents(res)) {
      const data = JSON.parse(message.data);
      if (message.event === "started") (result.node = data.node), (result.worker = data.worker);
      else if (message.event === "token") append(data.t);
      else if (message.event === "end") (result.tokens = data.tokens_out), (result.stop_reason = data.stop_reason), (result.tokens_per_s = data.tokens_per_s);
      else if (message.event === "error") throw new RbeeError(data.code, data.message);
    }
    if (!result.stop_reason && !signal.aborted) throw new RbeeError("WORKER_FAILED", "the answer stopped before its end");
  }
  return result;
}
