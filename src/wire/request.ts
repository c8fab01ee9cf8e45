// Request bodies of every dialect: a field that may be left out may also be sent as null, which means the same ("not
// given"), as OpenAI's API and SDKs treat it; generated clients, proxies and hand-written code send null for what they
// leave out. One rule, for every request schema built with these instead of z.object.
import { z } from "zod";

/**
 * What every dialect answers to an image (OpenAI's image_url part, Ollama's images, Anthropic's image block), an audio or
 * a file part: the models rbee serves read text only. `what` names the part ("an image_url part").
 */
export function noVisionMessage(what: string): string {
  return `${what}, but this model has no vision support: rbee serves text-only models (send the text alone)`;
}

/** The field takes null as absent where it may be absent (its default, if any, then applies). */
function nullMeansAbsent<S extends z.ZodType>(field: S): S {
  return field.safeParse(undefined).success ? (z.preprocess((v) => (v === null ? undefined : v), field) as unknown as S) : field;
}

function withNullsAbsent<T extends z.ZodRawShape>(shape: T): T {
  return Object.fromEntries(Object.entries(shape).map(([key, field]) => [key, nullMeansAbsent(field as z.ZodType)])) as unknown as T;
}

/** z.object (unknown fields ignored, as these APIs' clients send many) whose optional fields take null as absent. */
export function requestObject<T extends z.ZodRawShape>(shape: T) {
  return z.object(withNullsAbsent(shape));
}

/** z.strictObject (an unknown field is an error that names it) whose optional fields take null as absent. */
export function strictRequestObject<T extends z.ZodRawShape>(shape: T) {
  return z.strictObject(withNullsAbsent(shape));
}
