// Turns sampled tokens into text that is safe to stream: never half a UTF-8 character, never the start of a stop string
// (and, with trimEnd, never whitespace that may turn out to be the text's end).
import type { LlamaModel, Token } from "node-llama-cpp";

const REPLACEMENT_CHAR = "\uFFFD";
/** A UTF-8 character spans at most 4 byte tokens. */
const MAX_HELD_TOKENS = 4;
/** Detokenizing needs the previous tokens for SentencePiece's leading spaces. */
const CONTEXT_TOKENS = 4;

export class TextStream {
  private heldTokens: Token[] = [];
  private heldText = "";
  /** The stop string that ended the text, where one did. */
  stoppedBy: string | undefined;
  get stopped(): boolean {
    return this.stoppedBy !== undefined;
  }

  constructor(
    private readonly model: LlamaModel,
    private readonly stops: readonly string[],
    private readonly trimEnd = false,
    /** The prompt's last tokens: the first piece keeps its leading space ("Once" + " upon", not "upon"). */
    promptEnd: readonly Token[] = [],
  ) {
    this.context = promptEnd.slice(-CONTEXT_TOKENS);
  }

  /** What the next piece is detokenized after: the last tokens emitted (before any, the prompt's last). */
  private context: readonly Token[];

  /** Adds one token; returns the text that can be sent now (maybe ""). */
  push(token: Token): string {
    this.heldTokens.push(token);
    const text = this.model.detokenize(this.heldTokens, false, this.context);
    if (text.endsWith(REPLACEMENT_CHAR) && this.heldTokens.length < MAX_HELD_TOKENS) return "";
    this.context = [...this.context, ...this.heldTokens].slice(-CONTEXT_TOKENS);
    this.heldTokens = [];
    return this.release(this.heldText + text);
  }

  /** The text still held back when generation ends without a stop string. */
  flush(): string {
    if (this.stopped) return "";
    const rest = this.heldTokens.length ? this.model.detokenize(this.heldTokens, false, this.context) : "";
    const out = this.heldText + rest;
    this.heldText = "";
    this.heldTokens = [];
    return this.trimEnd ? out.trimEnd() : out;
  }

  private release(text: string): string {
    if (!this.stops.length && !this.trimEnd) return text;
    let cut = -1;
    for (const stop of this.stops) {
      const at = text.indexOf(stop);
      if (at !== -1 && (cut === -1 || at < cut)) {
        cut = at;
        this.stoppedBy = stop;
      }
    }
    if (cut !== -1) {
      this.heldText = "";
      return this.trimEnd ? text.slice(0, cut).trimEnd() : text.slice(0, cut);
    }
    const keep = Math.max(this.longestStopPrefixAtEnd(text), this.trimEnd ? text.length - text.trimEnd().length : 0);
    this.heldText = text.slice(text.length - keep);
    return text.slice(0, text.length - keep);
  }

  private longestStopPrefixAtEnd(text: string): number {
    let best = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, text.length); n > best; n--) {
        if (text.endsWith(stop.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
