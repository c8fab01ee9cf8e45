// A real worker process serving stories260K on a free loopback port, ready to answer.
import { STORIES_MODEL } from "./paths";
import { type RbeeProcess, startRbee, waitFor } from "./processes";

export async function startWorker(extraArgs: string[] = [], options: Parameters<typeof startRbee>[1] = {}): Promise<RbeeProcess> {
  const worker = await startRbee(["worker", "--model", STORIES_MODEL, "--port", "0", ...extraArgs], options);
  await waitFor("worker ready", async () => (await (await fetch(`${worker.url}/v1/ready`)).json()).ready === true);
  return worker;
}
