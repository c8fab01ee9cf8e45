// Prompts kept in host memory beyond the slots: when a request ends, the prompt its slot holds is saved as llama.cpp's
// sequence state (the slot's KV cells as bytes), so that once the slot serves another prompt, a later request that
// starts the same way (an agent's conversation coming back after others took every slot) restores it into any free
// slot and evaluates only the rest. Bounded by bytes, least recently used out first. Saving when a request ends, not
// when its slot is wanted, keeps the copy off the path of the new prompt (llama-server's --cache-ram saves then).
import type { Token } from "node-llama-cpp";
import { freemem, totalmem } from "node:os";
import { formatBytes } from "../format";
import { sharedStart, startsAlike } from "./prompt-cache";

interface Entry {
  tokens: readonly Token[];
  state: Uint8Array;
}

const MiB = 1024 * 1024;
/** The default: a quarter of the RAM free when the worker starts, at most this. */
const DEFAULT_MAX_BYTES = 8192 * MiB;

/** --prompt-cache-mb as bytes (undefined: the default share of free RAM); more than the machine's RAM is refused. */
export function promptCacheBytes(mb: number | undefined): number {
  if (mb === undefined) return Math.min(DEFAULT_MAX_BYTES, Math.floor(freemem() / 4));
  const bytes = mb * MiB;
  if (bytes > totalmem()) throw new Error(`--prompt-cache-mb ${mb} is more than this machine's RAM (${formatBytes(totalmem())})`);
  return bytes;
}

/** Prompts shorter than this are evaluated again rather than kept: a save and a restore cost more than they spare. */
export const HOST_CACHE_MIN_TOKENS = 32;

export class HostPromptCache {
  /** Least recently used first (a Map keeps insertion order; a hit moves an entry to the end). */
  private readonly entries = new Map<number, Entry>();
  private nextId = 0;
  bytes = 0;
  hits = 0;

  constructor(readonly limitBytes: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** Whether these exact tokens (or a longer prompt that starts with them) are kept already. */
  holds(tokens: readonly Token[]): boolean {
    for (const e of this.entries.values()) if (e.tokens.length >= tokens.length && sharedStart(e.tokens, tokens) === tokens.length) return true;
    return false;
  }

  /** Keeps a prompt's state; a kept prompt it extends (an earlier turn of the same chat) goes, the oldest go while over the limit. */
  put(tokens: readonly Token[], state: Uint8Array): void {
    if (state.byteLength > this.limitBytes) return;
    for (const [id, e] of this.entries) if (e.tokens.length < tokens.length && sharedStart(e.tokens, tokens) === e.tokens.length) this.drop(id);
    this.entries.set(this.nextId++, { tokens, state });
    this.bytes += state.byteLength;
    while (this.bytes > this.limitBytes) this.drop(this.entries.keys().next().value!);
  }

  /**
   * The kept prompt sharing the longest start with `prompt`, where that start is at least half of it or of the prompt
   * (as the slots' PromptCache judges), and longer than `atLeast`; it becomes the most recently used.
   */
  best(prompt: readonly Token[], atLeast: number): { state: Uint8Array; shared: number } | undefined {
    let best: { id: number; shared: number } | undefined;
    for (const [id, e] of this.entries) {
      const shared = sharedStart(e.tokens, prompt);
      if (shared > (best?.shared ?? atLeast) && startsAlike(shared, e.tokens, prompt)) best = { id, shared };
    }
    if (!best) return undefined;
    const entry = this.entries.get(best.id)!;
    this.entries.delete(best.id);
    this.entries.set(best.id, entry);
    this.hits++;
    return { state: entry.state, shared: best.shared };
  }

  private drop(id: number): void {
    this.bytes -= this.entries.get(id)!.state.byteLength;
    this.entries.delete(id);
  }
}
