// A real queen on a free port, and hives that announce themselves to it (each a node with its own home and port).
import { STORIES_MODEL } from "./paths";
import { tempHome } from "./home";
import { type RbeeProcess, runRbee, startRbee, waitFor } from "./processes";

/** The queen's home is also its local hive's: stories260K is put in its catalog first. */
export async function startQueen(extraArgs: string[] = [], home = tempHome("rbee-queen-"), env: Record<string, string> = {}): Promise<RbeeProcess & { home: string }> {
  await addStories(home);
  const queen = await startRbee(["queen", "--port", "0", "--home", home, "--hive-check-interval", "0.5", ...extraArgs], { env });
  return Object.assign(queen, { home });
}

export async function startNodeHive(queenUrl: string, node: string, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<RbeeProcess & { home: string }> {
  const home = tempHome(`rbee-${node}-`);
  await addStories(home);
  const hive = await startRbee(["hive", "--port", "0", "--home", home, "--queen-url", queenUrl, "--node-name", node, "--health-interval", "0.5", ...extraArgs], { env });
  await waitFor(`${node} announced`, async () => {
    const { nodes } = await (await fetch(`${queenUrl}/v1/nodes`)).json();
    return nodes.some((n: { name: string; hive_state: string }) => n.name === node && n.hive_state === "up") ? true : undefined;
  });
  return Object.assign(hive, { home });
}

async function addStories(home: string): Promise<void> {
  const added = await runRbee(["hive", "models", "download", STORIES_MODEL, "--port", "1"], { env: { RBEE_HOME: home } });
  if (added.code !== 0) throw new Error(added.stderr);
}

export async function queenWorkers(queenUrl: string): Promise<{ id: string; node: string; url: string; inflight: number; slots_total: number }[]> {
  return (await (await fetch(`${queenUrl}/v1/workers`)).json()).workers;
}

/** The queen's rbee_tokens_generated_total, over all models, from its /metrics. */
export async function tokensGenerated(queenUrl: string): Promise<number> {
  const text = await (await fetch(`${queenUrl}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith("rbee_tokens_generated_total{"))
    .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
}
