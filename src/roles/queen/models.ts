// Resolves the `model` a client sends (a name, a catalog reference, an id or a short name) to a reference a hive can serve,
// starting the local hive (or the pinned node's) first when no hive is up to ask.
import type { ModelNames } from "./model-names";
import { pathsAllowed } from "./request-credential";
import { isHubShorthand } from "../../catalog/hub-shorthand";
import { looksLikeModelRef, parseModelRef } from "../../catalog/refs";
import { RbeeError } from "../../errors";
import { LOCAL_NODE } from "../../nodes/registry";
import type { Hives } from "./hives";
import type { Registry } from "./registry";

/** The pinned node's hive, or where no hive is up, this machine's: started if it is not running. */
export async function ensureHiveToAsk(registry: Registry, hives: Hives, node?: string): Promise<void> {
  if (node) await hives.ensure(node);
  else if (!registry.upHives().length) await hives.ensure(LOCAL_NODE);
}

export async function resolveModel(registry: Registry, hives: Hives, key: string, node?: string, names?: Pick<ModelNames, "resolve">): Promise<string> {
  if (node && !hives.knows(node)) throw new RbeeError("NOT_FOUND", `unknown node "${node}"`);
  await ensureHiveToAsk(registry, hives, node);
  // A name (alias) first, then what a catalog calls the model; "name:latest" is the name.
  const target = names?.resolve(key) ?? key;
  const known = registry.findModel(target) ?? (target.endsWith(":latest") ? registry.findModel(target.slice(0, -":latest".length)) : undefined);
  if (known) return known.ref;
  if (isHubShorthand(target) && !looksLikeModelRef(target))
    throw new RbeeError("MODEL_NOT_FOUND", `model "${target}" has not been pulled: pull it first (ollama pull ${target}, or rbee models download ${target})`);
  if (target !== key) return looksLikeModelRef(target) ? parseModelRef(target).ref : target;
  if (looksLikeModelRef(key)) {
    const ref = parseModelRef(key);
    if (ref.provider === "file" && !pathsAllowed())
      throw new RbeeError("FORBIDDEN", `"${key}" names a file on the queen's machine: that needs a key with the operator scope (a name or hf: reference works with any key)`);
    return ref.ref;
  }
  throw new RbeeError("MODEL_NOT_FOUND", `no hive has a model called "${key}"; use a reference such as hf:ORG/REPO/FILE.gguf to download it`);
}
