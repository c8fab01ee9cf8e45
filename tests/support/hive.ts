// A real hive daemon on a free port with its own home, and stories260K in its catalog.
import { STORIES_MODEL } from "./paths";
import { type RbeeProcess, runRbee, startRbee } from "./processes";
import { tempHome } from "./home";

export async function startHive(extraArgs: string[] = [], env: Record<string, string> = {}): Promise<RbeeProcess & { home: string }> {
  const home = tempHome();
  const added = await runRbee(["hive", "models", "download", STORIES_MODEL, "--port", "1"], { env: { RBEE_HOME: home } });
  if (added.code !== 0) throw new Error(`cannot add the model: ${added.stderr}`);
  const hive = await startRbee(["hive", "--port", "0", "--home", home, ...extraArgs], { env });
  return Object.assign(hive, { home });
}
