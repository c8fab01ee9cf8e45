// The worker's HTTP surface: readiness, rbee's execute call, the OpenAI and llama-server routes, and shutdown.
import type { Hono } from "hono";
import { createApp } from "../../http/app";
import { addExecuteRoutes } from "./execute-route";
import { addEmbeddingRoutes } from "./embedding-routes";
import { addLlamaCppRoutes } from "./llamacpp-routes";
import { addOpenAiRoutes } from "./openai-routes";
import type { WorkerService } from "./service";

export function createWorkerApp(service: WorkerService, { apiToken, onShutdown }: { apiToken?: string; onShutdown: () => void }): Hono {
  const app = createApp({ role: "worker", apiToken, publicPaths: ["/v1/health", "/v1/ready", "/health"] });
  app.get("/v1/ready", (c) => c.json(service.readiness()));
  addExecuteRoutes(app, service);
  addOpenAiRoutes(app, service);
  addEmbeddingRoutes(app, service);
  addLlamaCppRoutes(app, service);
  app.post("/v1/shutdown", (c) => {
    setImmediate(onShutdown);
    return c.json({ ok: true });
  });
  return app;
}
