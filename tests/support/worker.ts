// A real worker process serving stories260K on a free loopback port, ready to answer.
import { afterAll, beforeAll, expect } from "bun:test";
import OpenAI from "openai";
import { STORIES_MODEL } from "./paths";
import { type RbeeProcess, startRbee, waitFor } from "./processes";

export async function startWorker(extraArgs: string[] = [], options: Parameters<typeof startRbee>[1] = {}, model = STORIES_MODEL): Promise<RbeeProcess> {
  const worker = await startRbee(["worker", "--model", model, "--port", "0", ...extraArgs], options);
  await waitFor("worker ready", async () => (await (await fetch(`${worker.url}/v1/ready`)).json()).ready === true);
  return worker;
}

/**
 * A stories260K worker for one test file, started before its tests and stopped (exit 0) after them, with the official
 * openai client pointed at it: read `.worker` and `.client` inside the tests.
 */
export function workerWithOpenAiClient(extraArgs: string[] = []): { worker: RbeeProcess; client: OpenAI } {
  const ctx = {} as { worker: RbeeProcess; client: OpenAI };
  beforeAll(async () => {
    ctx.worker = await startWorker(extraArgs);
    ctx.client = new OpenAI({ baseURL: `${ctx.worker.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(async () => {
    expect(await ctx.worker.stop()).toBe(0);
  });
  return ctx;
}
