// rbee's own task API at the queen: POST /v2/tasks streams `queued`, `started`, `token`, `end` or `error`;
// GET /v2/tasks/:id tells where a task is; DELETE /v2/tasks/:id cancels it and frees its slot.
import type { Hono } from "hono";
import { RbeeError } from "../../errors";
import { sseResponse } from "../../http/sse";
import { readJson } from "../../http/validate";
import { readEvents } from "../../clients/sse-client";
import { TaskRequest } from "../../wire/worker";
import type { QueenMetrics } from "./metrics";
import { resolveModel } from "./models";
import type { Hives } from "./hives";
import type { Registry } from "./registry";
import type { Relay } from "./relay";
import type { QueenDeps } from "./server";

type TaskState = "queued" | "running" | "done" | "error" | "cancelled";

interface Task {
  id: string;
  model: string;
  node: string | null;
  state: TaskState;
  position: number | null;
  worker: string | null;
  tokens_out: number;
  stop_reason: string | null;
  error: { code: string; message: string } | null;
  created_at: string;
  finished_at: string | null;
  controller: AbortController;
}

/** Finished tasks kept for GET /v2/tasks/:id. */
const KEEP_FINISHED = 1000;

export function addTaskRoutes(app: Hono, deps: Pick<QueenDeps, "registry" | "hives" | "relay" | "metrics" | "onActivity" | "names">): void {
  const tasks = new Map<string, Task>();
  const remember = (task: Task) => {
    tasks.set(task.id, task);
    if (tasks.size > KEEP_FINISHED) for (const [id, t] of tasks) if (t.finished_at) { tasks.delete(id); break; }
  };
  const view = ({ controller: _, ...task }: Task) => task;

  app.post("/v2/tasks", async (c) => {
    const body = await readJson(c, TaskRequest);
    const modelRef = await resolveModel(deps.registry, deps.hives, body.model, body.node, deps.names);
    const { model: _model, node, ...execute } = body;
    const task: Task = { id: `t-${crypto.randomUUID()}`, model: modelRef, node: node ?? null, state: "queued", position: null, worker: null, tokens_out: 0, stop_reason: null, error: null, created_at: new Date().toISOString(), finished_at: null, controller: new AbortController() };
    remember(task);
    const startedAt = performance.now();
    return sseResponse(c, async (sink) => {
      const signal = AbortSignal.any([sink.signal, task.controller.signal]);
      const finish = (state: TaskState, error?: { code: string; message: string }) => {
        task.state = state;
        task.error = error ?? null;
        task.finished_at = new Date().toISOString();
      };
      deps.onActivity(+1);
      try {
        sink.send("queued", { task_id: task.id, position: 0 });
        const relayed = await deps.relay.start({
          modelRef, node, path: "/v1/execute", body: execute, signal,
          onQueued: (position) => {
            task.position = position;
            sink.send("queued", { task_id: task.id, position });
          },
        });
        task.state = "running";
        task.position = null;
        task.worker = relayed.lease.worker.id;
        // An aborted fetch does not always end a read already waiting on its body: stop waiting on abort.
        const aborted = new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(new Error("cancelled")), { once: true }));
        aborted.catch(() => {});
        const first = relayed.first;
        const stream = new ReadableStream<Uint8Array>({
          start: (controller) => void (first && controller.enqueue(first)),
          pull: async (controller) => {
            const { value, done } = await Promise.race([relayed.reader.read(), aborted]);
            if (done) controller.close();
            else controller.enqueue(value);
          },
          cancel: () => void relayed.reader.cancel().catch(() => {}),
        });
        let last = performance.now();
        try {
          for await (const event of readEvents(new Response(stream))) {
            const data = JSON.parse(event.data);
            if (event.event === "started") {
              sink.send("started", { task_id: task.id, worker: relayed.lease.worker.id, node: relayed.lease.worker.node, prompt_tokens: data.prompt_tokens, cached_tokens: data.cached_tokens });
              deps.metrics.ttft.observe((performance.now() - startedAt) / 1000);
            } else if (event.event === "token") {
              task.tokens_out++;
              const now = performance.now();
              deps.metrics.tokenLatency.observe((now - last) / 1000);
              last = now;
              deps.metrics.tokens.inc({ model: modelRef });
              sink.send("token", data);
            } else if (event.event === "end") {
              task.stop_reason = data.stop_reason;
              sink.send("end", data);
              finish("done");
            } else if (event.event === "error") {
              sink.send("error", data);
              finish("error", data);
            }
          }
          if (task.state === "running") throw new RbeeError("WORKER_FAILED", "the worker closed the stream before the end");
        } catch (err) {
          if (signal.aborted) return finish("cancelled");
          const e = err instanceof RbeeError ? err : new RbeeError("WORKER_FAILED", `the worker was lost mid-stream: ${err instanceof Error ? err.message : err}`);
          sink.send("error", e.toJSON().error);
          finish("error", e.toJSON().error);
        } finally {
          relayed.lease.release();
        }
      } catch (err) {
        if (signal.aborted) return finish("cancelled");
        const e = err instanceof RbeeError ? err : new RbeeError("INTERNAL", String(err));
        sink.send("error", e.toJSON().error);
        finish("error", e.toJSON().error);
      } finally {
        deps.onActivity(-1);
      }
    });
  });

  app.get("/v2/tasks/:id", (c) => {
    const task = tasks.get(c.req.param("id"));
    if (!task) throw new RbeeError("NOT_FOUND", `no task ${c.req.param("id")}`);
    return c.json(view(task));
  });

  app.delete("/v2/tasks/:id", (c) => {
    const task = tasks.get(c.req.param("id"));
    if (!task) throw new RbeeError("NOT_FOUND", `no task ${c.req.param("id")}`);
    if (!task.finished_at) task.controller.abort();
    return c.json(view(task));
  });
}
