// The queen's Prometheus metrics (prom-client), served at GET /metrics.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { WorkerEntry } from "./registry";

export class QueenMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: "rbee_requests_total", help: "HTTP requests by route and status", labelNames: ["route", "status"], registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: "rbee_queue_depth", help: "Requests waiting for a worker, by model", labelNames: ["model"], registers: [this.registry] });
  readonly ttft = new Histogram({ name: "rbee_time_to_first_token_seconds", help: "Time from request to first token", buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry] });
  readonly tokenLatency = new Histogram({ name: "rbee_token_latency_seconds", help: "Time between streamed tokens", buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [this.registry] });
  readonly tokens = new Counter({ name: "rbee_tokens_generated_total", help: "Tokens streamed to clients", labelNames: ["model"], registers: [this.registry] });
  readonly evictions = new Counter({ name: "rbee_evictions_total", help: "Idle workers stopped to make room for another model", labelNames: ["model"], registers: [this.registry] });
  readonly workers = new Gauge({ name: "rbee_workers", help: "Workers by state", labelNames: ["state"], registers: [this.registry] });

  /** Tokens a worker streamed to a client through the queen: the model's counter, and the worker's (the dashboard's tokens/s). */
  generated(worker: WorkerEntry, n: number): void {
    this.tokens.inc({ model: worker.modelRef }, n);
    worker.tokensOut += n;
  }
}
