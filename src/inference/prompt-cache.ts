// What each free slot's KV cells still hold: the prompt of the last request it served. A new request whose prompt
// starts the same way goes to that slot and evaluates only the rest (a chat resends its whole history every turn;
// llama-server's cache_prompt does the same). Only prompts are kept: a reply is seldom tokenized the same way when the
// next prompt quotes it.
import type { Token } from "node-llama-cpp";

export class PromptCache {
  /** By slot, oldest first (a Map keeps the order in which keys were set). */
  private readonly held = new Map<number, readonly Token[]>();

  /**
   * The free slot to serve `prompt`, and how many of its tokens that slot already holds: the one sharing the longest
   * start, where that start is at least half of what the slot holds or of the prompt (like llama-server's
   * slot_prompt_similarity), so that an unrelated request that merely begins alike (a chat template's first tokens)
   * does not wipe another chat's history. Otherwise an empty slot, else the one that has held its prompt longest.
   */
  bestSlot(freeSlots: readonly number[], prompt: readonly Token[]): { slot: number; shared: number; similar: boolean } {
    let best: { slot: number; shared: number; similar: boolean } | undefined;
    for (const slot of freeSlots) {
      const held = this.held.get(slot) ?? [];
      const shared = sharedStart(held, prompt);
      const similar = startsAlike(shared, held, prompt);
      if (similar && shared > (best?.shared ?? 0)) best = { slot, shared, similar };
    }
    if (best) return best;
    const spare = this.spareSlot(freeSlots)!;
    return { slot: spare, shared: sharedStart(this.held.get(spare) ?? [], prompt), similar: false };
  }

  /** The free slot whose cells matter least: an empty one, else the one that has held its prompt longest. */
  spareSlot(freeSlots: readonly number[]): number | undefined {
    const empty = freeSlots.find((slot) => !this.held.has(slot));
    if (empty !== undefined) return empty;
    for (const slot of this.held.keys()) if (freeSlots.includes(slot)) return slot;
    return undefined;
  }

  heldBy(slot: number): readonly Token[] | undefined {
    return this.held.get(slot);
  }

  /** The slot's cells hold exactly these tokens at positions 0, 1, …, from now on. */
  remember(slot: number, tokens: readonly Token[]): void {
    this.held.delete(slot);
    this.held.set(slot, tokens);
  }

  forget(slot: number): void {
    this.held.delete(slot);
  }
}

/**
 * Whether a kept prompt and a new one start alike enough to reuse the kept one: their shared start is at least half of
 * either (llama-server's slot_prompt_similarity), not merely a chat template's first tokens.
 */
export function startsAlike(shared: number, kept: readonly Token[], prompt: readonly Token[]): boolean {
  return shared > 0 && (2 * shared >= kept.length || 2 * shared >= prompt.length);
}

export function sharedStart(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
