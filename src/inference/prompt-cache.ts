// What each free slot's KV cells still hold: the prompt of the last request it served. A new request whose prompt
// starts the same way goes to that slot and evaluates only the rest (a chat resends its whole history every turn;
// llama-server's cache_prompt does the same). Only prompts are kept: a reply is seldom tokenized the same way when the
// next prompt quotes it.
import type { Token } from "node-llama-cpp";

export class PromptCache {
  private readonly held = new Map<number, readonly Token[]>();

  /** The free slot whose cells share the longest start with `prompt` (the lowest on a tie), and that length. */
  bestSlot(freeSlots: readonly number[], prompt: readonly Token[]): { slot: number; shared: number } {
    let best = { slot: freeSlots[0]!, shared: 0 };
    for (const slot of freeSlots) {
      const shared = sharedStart(this.held.get(slot) ?? [], prompt);
      if (shared > best.shared) best = { slot, shared };
    }
    return best;
  }

  /** The slot's cells hold exactly these tokens at positions 0, 1, …, from now on. */
  remember(slot: number, tokens: readonly Token[]): void {
    this.held.set(slot, tokens);
  }

  forget(slot: number): void {
    this.held.delete(slot);
  }
}

function sharedStart(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
