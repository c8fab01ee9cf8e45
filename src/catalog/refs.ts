// Model references: `hf:ORG/REPO/PATH/IN/REPO.gguf[@REVISION]` for the Hugging Face Hub, or a path to a local file.
import { createHash } from "node:crypto";
import { basename, resolve } from "node:path";
import { RbeeError } from "../errors";

export type ModelRef =
  | { provider: "hf"; ref: string; org: string; repo: string; path: string; revision: string; parts: string[] }
  | { provider: "file"; ref: string; path: string };

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const REVISION = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;
const SPLIT = /-(\d{5})-of-(\d{5})\.gguf$/;

/** Whether a model name is a reference to fetch or register (rather than a name some catalog may know). */
export function looksLikeModelRef(text: string): boolean {
  return text.startsWith("hf:") || text.startsWith("file:") || text.endsWith(".gguf");
}

export function parseModelRef(input: string): ModelRef {
  const text = input.trim();
  if (!text) throw bad(input, "it is empty");
  if (text.startsWith("hf:")) return parseHf(text);
  if (/^[a-z][a-z0-9+.-]*:/i.test(text) && !text.startsWith("file:")) throw bad(input, "the only schemes are hf: and file:");
  const path = text.startsWith("file:") ? text.slice(5) : text;
  if (!path.endsWith(".gguf")) throw bad(input, "a local model must be a .gguf file");
  const absolute = resolve(path);
  return { provider: "file", ref: `file:${absolute}`, path: absolute };
}

function parseHf(text: string): ModelRef {
  const [location, revision = "main", ...extra] = text.slice(3).split("@");
  if (extra.length) throw bad(text, "it has more than one @");
  const segments = location!.split("/");
  if (segments.length < 3) throw bad(text, "expected hf:ORG/REPO/PATH.gguf");
  for (const segment of segments) if (!SEGMENT.test(segment)) throw bad(text, `"${segment}" is not a valid path segment`);
  if (!REVISION.test(revision) || revision.includes("..")) throw bad(text, `"${revision}" is not a valid revision`);
  const [org, repo, ...rest] = segments;
  const path = rest.join("/");
  if (!path.endsWith(".gguf")) throw bad(text, "the file must be a .gguf");
  const split = SPLIT.exec(path);
  const parts = split
    ? Array.from({ length: Number(split[2]) }, (_, i) => path.replace(SPLIT, `-${String(i + 1).padStart(5, "0")}-of-${split[2]}.gguf`))
    : [path];
  if (split && split[1] !== "00001") throw bad(text, "name the first part (-00001-of-N) of a split model");
  const ref = `hf:${org}/${repo}/${path}${revision === "main" ? "" : `@${revision}`}`;
  return { provider: "hf", ref, org: org!, repo: repo!, path, revision, parts };
}

function bad(input: string, why: string): RbeeError {
  return new RbeeError("BAD_REQUEST", `invalid model reference "${input}": ${why}`);
}

/** A stable short id for URLs and the CLI. */
export function modelId(ref: string): string {
  return `m-${createHash("sha256").update(ref).digest("hex").slice(0, 10)}`;
}

/** The name people type: the file name without .gguf (and without a split suffix). */
export function modelName(ref: ModelRef): string {
  return basename(ref.path).replace(SPLIT, "").replace(/\.gguf$/, "");
}
