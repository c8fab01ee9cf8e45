// The Hub's shorthand for a model, as Ollama and llama-server's -hf take it: `hf.co/ORG/REPO:QUANT`, `ORG/REPO:QUANT`,
// or without the tag. The repository's listing (the Hub's /api/models/ORG/REPO) picks the GGUF of that quantization
// (by default Q4_K_M, else Q8_0, else the first), the first part of a split file, never a vision projector.
import { RbeeError } from "../errors";

const SHORTHAND = /^(?:(?:https?:\/\/)?(?:hf\.co|huggingface\.co)\/)?([A-Za-z0-9][A-Za-z0-9._-]*)\/([A-Za-z0-9][A-Za-z0-9._-]*)(?::([A-Za-z0-9._-]+))?$/;
const DEFAULT_TAGS = ["Q4_K_M", "Q8_0"];

/** Whether `text` is the Hub's shorthand rather than an rbee reference (hf:…, a path to a .gguf). */
export function isHubShorthand(text: string): boolean {
  return !text.startsWith("hf:") && !text.startsWith("file:") && !text.endsWith(".gguf") && SHORTHAND.test(text.trim());
}

/** The rbee reference (hf:ORG/REPO/FILE.gguf) the shorthand names, from the repository's file list. */
export async function resolveHubShorthand(text: string, hub: { endpoint: string; token?: string }): Promise<string> {
  const [, org, repo, tag] = SHORTHAND.exec(text.trim())!;
  const res = await fetch(`${hub.endpoint}/api/models/${org}/${repo}`, { headers: hub.token ? { authorization: `Bearer ${hub.token}` } : {} }).catch((err) => {
    throw new RbeeError("UPSTREAM_UNREACHABLE", `cannot list ${org}/${repo} on ${hub.endpoint}: ${err instanceof Error ? err.message : err}`);
  });
  if (res.status === 404) throw new RbeeError("MODEL_NOT_FOUND", `no repository ${org}/${repo} on ${hub.endpoint}`);
  if (!res.ok) throw new RbeeError("UPSTREAM_UNREACHABLE", `listing ${org}/${repo} on ${hub.endpoint} answered ${res.status}`);
  const { siblings = [] } = (await res.json()) as { siblings?: { rfilename: string }[] };
  const ggufs = siblings.map((s) => s.rfilename).filter((f) => f.endsWith(".gguf") && !/mmproj/i.test(f) && !/-0000[2-9]-of-|-000[1-9]\d-of-/.test(f));
  if (!ggufs.length) throw new RbeeError("MODEL_NOT_FOUND", `${org}/${repo} has no GGUF file`);
  const tagged = (t: string) => ggufs.find((f) => new RegExp(`(^|[-._/])${t.replace(/[.]/g, "\\.")}([-._]|$)`, "i").test(f.replace(/\.gguf$/, "").replace(/-00001-of-\d{5}$/, "")));
  const file = tag ? tagged(tag) : (DEFAULT_TAGS.map(tagged).find(Boolean) ?? ggufs[0]);
  if (!file) throw new RbeeError("MODEL_NOT_FOUND", `${org}/${repo} has no ${tag} file; it has ${ggufs.map((f) => f.split("/").pop()).join(", ")}`);
  return `hf:${org}/${repo}/${file}`;
}
