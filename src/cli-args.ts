// Argument conventions shared by every command: the same names mean the same thing in every role, validated with zod.
import type { ArgsDef } from "citty";
import type { z } from "zod";
import { RbeeError } from "./errors";
import { describeIssues } from "./http/validate";

export function commonServerArgs(defaultPort: string) {
  return {
    port: { type: "string", description: `Port to listen on; 0 picks a free one (default ${defaultPort})` },
    host: { type: "string", description: "Address to listen on (default 127.0.0.1)" },
    "api-token": { type: "string", description: "Require this bearer token (or RBEE_API_TOKEN)" },
    "insecure-no-auth": { type: "boolean", description: "Listen on a non-loopback address without a token (anyone who reaches it may use it)" },
  } satisfies ArgsDef;
}

/** Validates citty's parsed args; a bad value becomes one clear line naming the flag. */
export function parseArgs<S extends z.ZodType>(schema: S, args: Record<string, unknown>): z.infer<S> {
  const defined = Object.fromEntries(Object.entries(args).filter(([k, v]) => k !== "_" && v !== undefined && v !== ""));
  const parsed = schema.safeParse(defined);
  if (!parsed.success) throw new RbeeError("BAD_REQUEST", describeIssues(parsed.error).replace(/(^|; )([\w-]+):/g, "$1--$2:"));
  return parsed.data;
}
