// Request-body validation with zod: every failure becomes a BAD_REQUEST with a readable message.
import type { Context } from "hono";
import { z } from "zod";
import { RbeeError } from "../errors";

export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new RbeeError("BAD_REQUEST", "request body is not valid JSON");
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new RbeeError("BAD_REQUEST", describeIssues(parsed.error));
  return parsed.data;
}

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const where = issue.path.length ? issue.path.join(".") : "body";
      return `${where}: ${issue.message}`;
    })
    .join("; ");
}
