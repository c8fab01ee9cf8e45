// Cache-aware routing: which replica most likely still holds the start of a request's prompt in a slot (a chat's
// earlier turns, a shared system prompt), so that it evaluates only the rest. The queen remembers, per worker, hashes of
// the prompt starts it sent there: each message boundary of a chat, every 512 characters of a plain prompt.
/** Enough for a worker's slots and the prompts it keeps in host memory beyond them (its host prompt cache). */
const REMEMBERED_PER_WORKER = 4096;
const TEXT_STEP = 512;

function hash(text: string): string {
  return new Bun.CryptoHasher("sha1").update(text).digest("hex").slice(0, 16);
}

/** A request's prompt starts, shortest first, as hashes (from the OpenAI-shaped body every dialect is relayed as). */
export function promptStarts(body: unknown): string[] {
  const b = (body ?? {}) as { messages?: unknown[]; prompt?: unknown; tools?: unknown };
  if (Array.isArray(b.messages)) {
    const tools = b.tools ? JSON.stringify(b.tools) : "";
    return b.messages.map((_, i) => hash(tools + JSON.stringify(b.messages!.slice(0, i + 1))));
  }
  const prompt = typeof b.prompt === "string" ? b.prompt : Array.isArray(b.prompt) && typeof b.prompt[0] === "string" ? b.prompt[0] : "";
  const starts: string[] = [];
  for (let end = TEXT_STEP; end <= prompt.length; end += TEXT_STEP) starts.push(hash(prompt.slice(0, end)));
  return starts;
}

export class PromptAffinity {
  private readonly seen = new Map<string, Set<string>>();

  /** How many of the request's starts (longest first counts) this worker was last sent. */
  score(workerId: string, starts: string[]): number {
    const known = this.seen.get(workerId);
    if (!known) return 0;
    for (let i = starts.length - 1; i >= 0; i--) if (known.has(starts[i]!)) return i + 1;
    return 0;
  }

  remember(workerId: string, starts: string[]): void {
    const known = this.seen.get(workerId) ?? new Set<string>();
    for (const s of starts) {
      known.delete(s);
      known.add(s);
    }
    while (known.size > REMEMBERED_PER_WORKER) known.delete(known.values().next().value!);
    this.seen.set(workerId, known);
  }

  forget(workerId: string): void {
    this.seen.delete(workerId);
  }
}
