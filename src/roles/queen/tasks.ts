// rbee's own task API at the queen: POST /v2/tasks streams `queued`, `started`, `token`, `end` or `error`;
// GET /v2/tasks/:id tells where a task is; DELETE /v2/tasks/:id cancels it and frees its slot.
import type { Hono } from "hono";
import { RbeeError } from "../../errors";
import { sseResponse } from "../../http/sse";
import { readJson } from "../../http/validate";
import { readEvents } from "../../clients/sse-client";
import { TaskRequest } from "../../wire/worker";
import { resolveModel } from "./models";
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
}

/** Finished tasks kept for GET /v2/tasks/:id. */
const KEEP_FINISHED = 1000;

export function addTaskRoutes(app: Hono, deps: Pick<QueenDeps, "registry" | "hives" | "relay" | "metrics" | "onActivity" | "names">): void {
  const tasks = new Map<string, Task>();
  /** The running tasks' cancel switches: dropped when a task ends, so a finished task keeps nothing of its stream. */
  const cancellers = new Map<string, AbortController>();
  const remember = (task: Task) => {
    tasks.set(task.id, task);
    if (tasks.size > KEEP_FINISHED) for (const [id, t] of tasks) if (t.finished_at) { tasks.delete(id); break; }
  };

  app.post("/v2/tasks", async (c) => {
    const body = await readJson(c, TaskRequest);
    const modelRef = await resolveModel(deps.registry, deps.hives, body.model, body.node, deps.names);
    const { model: _model, node, ...execute } = body;
    const task: Task = { id: `t-${crypto.randomUUID()}`, model: modelRef, node: node ?? null, state: "queued", position: null, worker: null, tokens_out: 0, stop_reason: null, error: null, created_at: new Date().toISOString(), finished_at: null };
    const controller = new AbortController();
    cancellers.set(task.id, controller);
    remember(task);
    const startedAt = performance.now();
    return sseResponse(c, async (sink) => {
      const signal = AbortSignal.any([sink.signal, controller.signal]);
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
        // An aborted fetch does not always end a read already waiting on its body: cancelling the reader does. (A race
        // against a promise that only settles on abort kept a reaction for every read of every task it outlived.)
        const stopReading = () => void relayed.reader.cancel().catch(() => {});
        signal.addEventListener("abort", stopReading, { once: true });
        const first = relayed.first;
        const stream = new ReadableStream<Uint8Array>({
          start: (out) => void (first && out.enqueue(first)),
          pull: async (out) => {
            const { value, done } = await relayed.reader.read();
            if (done) out.close();
            else out.enqueue(value);
          },
          cancel: stopReading,
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
              deps.metrics.generated(relayed.lease.worker, 1);
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
          signal.removeEventListener("abort", stopReading);
          relayed.lease.release();
        }
      } catch (err) {
        if (signal.aborted) return finish("cancelled");
        const e = err instanceof RbeeError ? err : new RbeeError("INTERNAL", String(err));
        sink.send("error", e.toJSON().error);
        finish("error", e.toJSON().error);
      } finally {
        cancellers.delete(task.id);
        deps.onActivity(-1);
      }
    });
  });

  app.get("/v2/tasks/:id", (c) => {
    const task = tasks.get(c.req.param("id"));
    if (!task) throw new RbeeError("NOT_FOUND", `no task ${c.req.param("id")}`);
    return c.json(task);
  });

  app.delete("/v2/tasks/:id", (c) => {
    const task = tasks.get(c.req.param("id"));
    if (!task) throw new RbeeError("NOT_FOUND", `no task ${c.req.param("id")}`);
    if (!task.finished_at) cancellers.get(task.id)?.abort();
    return c.json(task);
  });
}
