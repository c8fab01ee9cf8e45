// Tool calls in the model's own format: the call syntax node-llama-cpp's chat wrapper reads from the model's template
// (Qwen's `<tool_call>{"name": …, "arguments": …}</tool_call>`, Llama 3.1's, Hermes'…), a grammar that lets the model
// write only well-formed calls whose arguments fit each function's JSON schema, and a parser that turns the generated
// text back into calls, piece by piece while it streams. Dialect-free: OpenAI, Ollama and Anthropic all map onto it.
import type { ChatWrapper } from "node-llama-cpp";
import { RbeeError } from "../errors";

export interface ToolSpec {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. */
  parameters?: Record<string, unknown>;
}

/** none: no call; auto: the model chooses text or calls; required: at least one call; a name: one call of that tool. */
export type ToolMode = { kind: "none" } | { kind: "auto" } | { kind: "required" } | { kind: "named"; name: string };

/** The text around calls, as the template writes it. */
export interface CallSyntax {
  /** Before a call's name, e.g. `<tool_call>\n{"name": "`. */
  prefix: string;
  /** Between the name and the arguments, e.g. `", "arguments": `. */
  paramsPrefix: string;
  /** After the arguments, e.g. `}\n</tool_call>`. */
  suffix: string;
  /** Between two calls of one turn; null where the template has one call a turn. */
  between: string | null;
}

/** Calls one turn may hold when parallel calls are allowed. */
export const MAX_PARALLEL_CALLS = 8;

/** The call syntax of the model's chat wrapper, or null where its template has no tool calls. */
export function callSyntaxOf(wrapper: ChatWrapper, toText: (value: unknown) => string): CallSyntax | null {
  const functions = wrapper.settings.functions;
  if (!functions?.call?.prefix) return null;
  const between = functions.parallelism?.call?.betweenCalls;
  return {
    prefix: toText(functions.call.prefix),
    paramsPrefix: toText(functions.call.paramsPrefix),
    suffix: toText(functions.call.suffix),
    between: functions.parallelism ? toText(between ?? "") : null,
  };
}

/**
 * The grammar for the generated text, in GBNF. `argsGrammar` gives each tool's arguments grammar (node-llama-cpp's
 * JSON-schema converter). For required and named calls the prompt already ends with the call prefix (`prefilled`).
 */
export function toolGrammar(syntax: CallSyntax, tools: ToolSpec[], mode: ToolMode, parallel: boolean, argsGrammar: (tool: ToolSpec) => string): string {
  const chosen = mode.kind === "named" ? tools.filter((t) => t.name === mode.name) : tools;
  const rules: string[] = [];
  const callRules = chosen.map((tool, i) => {
    const args = renameRules(stripTrailingNewlines(argsGrammar(tool)), `t${i}-`);
    rules.push(args);
    return `${literal(tool.name)} ${literal(syntax.paramsPrefix)} t${i}-root`;
  });
  rules.push(`call ::= ${callRules.map((r) => `( ${r} )`).join(" | ")}`);
  const more = parallel && syntax.between !== null && mode.kind !== "named" ? MAX_PARALLEL_CALLS - 1 : 0;
  rules.push(`calls ::= call${more ? ` ( ${literal(syntax.suffix + syntax.between + syntax.prefix)} call ){0,${more}}` : ""}`);
  if (mode.kind === "auto") {
    // Text that does not open a call, or calls: the first character decides.
    const first = syntax.prefix[0]!;
    rules.push(`plain ::= [^${charClassEscape(first)}] [^\\x00]*`);
    rules.push(`root ::= ${literal(syntax.prefix)} calls | plain`);
  } else rules.push("root ::= calls");
  return rules.join("\n");
}

/** Whether the prompt ends with the call prefix, so that the model writes a call at once. */
export function prefillsCall(mode: ToolMode): boolean {
  return mode.kind === "required" || mode.kind === "named";
}

export interface ParsedCall {
  name: string;
  arguments: string;
}

export type ToolEvent = { kind: "text"; text: string } | { kind: "call"; index: number; name: string } | { kind: "arguments"; index: number; text: string };

/**
 * Reads generated text as it streams: plain text, or (after the prefix, or at once where the prompt was prefilled)
 * calls, each announced by name, then its arguments in pieces. Text that may be the start of a separator is held back.
 */
export class ToolCallParser {
  private state: "undecided" | "text" | "name" | "arguments";
  private buffer = "";
  private index = -1;
  readonly calls: ParsedCall[] = [];

  constructor(
    private readonly syntax: CallSyntax,
    prefilled: boolean,
  ) {
    this.state = prefilled ? "name" : "undecided";
  }

  push(text: string): ToolEvent[] {
    this.buffer += text;
    return this.drain(false);
  }

  /** The rest, once generation has ended. */
  finish(): ToolEvent[] {
    return this.drain(true);
  }

  private drain(final: boolean): ToolEvent[] {
    const events: ToolEvent[] = [];
    for (;;) {
      if (this.state === "undecided") {
        const probe = this.buffer.trimStart();
        if (probe.startsWith(this.syntax.prefix)) {
          this.buffer = probe.slice(this.syntax.prefix.length);
          this.state = "name";
        } else if (final || !this.syntax.prefix.startsWith(probe)) this.state = "text";
        else return events;
      }
      if (this.state === "text") {
        if (this.buffer) events.push({ kind: "text", text: this.buffer });
        this.buffer = "";
        return events;
      }
      if (this.state === "name") {
        const at = this.buffer.indexOf(this.syntax.paramsPrefix);
        if (at < 0) {
          // Cut before its arguments (max_tokens): a name only where what came is one, without the start of the
          // separator after it (`get_weather",` is not a name).
          const name = this.buffer.slice(0, this.buffer.length - heldPrefix(this.buffer, this.syntax.paramsPrefix)).trim();
          if (final && isToolName(name)) this.startCall(name, events);
          if (final) this.buffer = "";
          return events;
        }
        this.startCall(this.buffer.slice(0, at), events);
        this.buffer = this.buffer.slice(at + this.syntax.paramsPrefix.length);
        this.state = "arguments";
      }
      if (this.state === "arguments") {
        const separator = this.syntax.suffix + (this.syntax.between ?? "") + this.syntax.prefix;
        const at = this.buffer.indexOf(separator);
        if (at >= 0) {
          this.addArguments(this.buffer.slice(0, at), events);
          this.buffer = this.buffer.slice(at + separator.length);
          this.state = "name";
          continue;
        }
        // Hold back what may start the separator, or the closing suffix (whole or begun), which ends the last call.
        const hold = Math.max(heldPrefix(this.buffer, separator), heldPrefix(this.buffer, this.syntax.suffix), this.buffer.endsWith(this.syntax.suffix) ? this.syntax.suffix.length : 0);
        if (!final) {
          this.addArguments(this.buffer.slice(0, this.buffer.length - hold), events);
          this.buffer = this.buffer.slice(this.buffer.length - hold);
          return events;
        }
        // At the end, what was held is the start of a separator only if the arguments before it are complete.
        const rest = this.buffer;
        const sent = this.calls[this.index]!.arguments;
        const cut = [rest.endsWith(this.syntax.suffix) ? this.syntax.suffix.length : 0, hold].find((n) => n > 0 && isJson(sent + rest.slice(0, -n))) ?? 0;
        this.addArguments(rest.slice(0, rest.length - cut), events);
        this.buffer = "";
        return events;
      }
    }
  }

  private startCall(name: string, events: ToolEvent[]): void {
    this.index++;
    this.calls.push({ name, arguments: "" });
    events.push({ kind: "call", index: this.index, name });
  }

  private addArguments(text: string, events: ToolEvent[]): void {
    if (!text) return;
    this.calls[this.index]!.arguments += text;
    events.push({ kind: "arguments", index: this.index, text });
  }
}

/** node-llama-cpp's schema grammars end with a run of newlines (their stop trigger); inside a call it is not wanted. */
function stripTrailingNewlines(gbnf: string): string {
  return gbnf.replace(/ "(\\n)+" \[\\n\]\*$/m, "");
}

/** Prefixes every rule name of a GBNF text, so that several grammars can live in one. */
export function renameRules(gbnf: string, prefix: string): string {
  const defined = new Set([...gbnf.matchAll(/^([A-Za-z0-9_-]+)\s*::=/gm)].map((m) => m[1]!));
  let out = "";
  for (let i = 0; i < gbnf.length; ) {
    const c = gbnf[i]!;
    if (c === '"' || c === "[") {
      const close = c === '"' ? '"' : "]";
      let j = i + 1;
      while (j < gbnf.length && gbnf[j] !== close) j += gbnf[j] === "\\" ? 2 : 1;
      out += gbnf.slice(i, j + 1);
      i = j + 1;
    } else if (c === "#") {
      const j = gbnf.indexOf("\n", i);
      i = j < 0 ? gbnf.length : j;
    } else if (/[A-Za-z0-9_-]/.test(c)) {
      let j = i;
      while (j < gbnf.length && /[A-Za-z0-9_-]/.test(gbnf[j]!)) j++;
      const word = gbnf.slice(i, j);
      out += defined.has(word) ? prefix + word : word;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function literal(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t")}"`;
}

function charClassEscape(c: string): string {
  return c === "]" || c === "\\" || c === "^" || c === "-" ? `\\${c}` : c === "\n" ? "\\n" : c;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** What a tool's name may be (the tools' own rule: wire/openai.ts). */
function isToolName(text: string): boolean {
  return /^[A-Za-z0-9_-]{1,64}$/.test(text);
}

function heldPrefix(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) if (text.endsWith(marker.slice(0, n))) return n;
  return 0;
}

/** A tool's arguments as the template's history wants them: parsed JSON, or a clear 400. */
export function parseArguments(name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new RbeeError("BAD_REQUEST", `the arguments of the call to ${name} in the history are not JSON: ${text.slice(0, 80)}`);
  }
}
