// Grammars that constrain what a request may generate: any JSON, JSON that fits a schema (node-llama-cpp's GBNF
// converter), or a client's own GBNF (llama-server's `grammar`). Built once per distinct one and shared by the requests
// that ask for it.
import type { Llama, LlamaGrammar } from "node-llama-cpp";
import { RbeeError } from "../errors";
import { type CallSyntax, type ToolMode, type ToolSpec, toolGrammar } from "./tool-calls";

/** Schemas compiled and kept, most recently used last. */
const MAX_CACHED = 32;

export type OutputConstraint = { kind: "json" } | { kind: "json_schema"; schema: Record<string, unknown> } | { kind: "gbnf"; grammar: string };

export class Grammars {
  private readonly cache = new Map<string, Promise<LlamaGrammar>>();

  constructor(private readonly llama: Llama) {}

  /** The grammar for a constraint; a schema the converter cannot express is the client's error (400). */
  for(constraint: OutputConstraint): Promise<LlamaGrammar> {
    const key = constraint.kind === "json" ? "json" : constraint.kind === "gbnf" ? `gbnf:${constraint.grammar}` : JSON.stringify(constraint.schema);
    let grammar = this.cache.get(key);
    if (grammar) this.cache.delete(key);
    else grammar = this.build(constraint);
    this.cache.set(key, grammar);
    if (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    grammar.catch(() => this.cache.delete(key));
    return grammar;
  }

  /** The grammar of tool calls in the model's syntax, each call's arguments fitting its tool's schema. */
  async forTools(syntax: CallSyntax, tools: ToolSpec[], mode: ToolMode, parallel: boolean): Promise<LlamaGrammar> {
    const args = new Map<string, string>();
    for (const tool of tools) {
      const schema = tool.parameters && Object.keys(tool.parameters).length ? tool.parameters : { type: "object", properties: {} };
      args.set(tool.name, (await this.for({ kind: "json_schema", schema }).catch(() => {
        throw new RbeeError("BAD_REQUEST", `the parameters of tool ${tool.name} cannot be enforced as a JSON schema`);
      })).grammar);
    }
    const text = toolGrammar(syntax, tools, mode, parallel, (tool) => args.get(tool.name)!);
    let grammar = this.cache.get(text);
    if (!grammar) {
      grammar = this.llama.createGrammar({ grammar: text });
      this.cache.set(text, grammar);
      grammar.catch(() => this.cache.delete(text));
    }
    return grammar;
  }

  private async build(constraint: OutputConstraint): Promise<LlamaGrammar> {
    if (constraint.kind === "json") return this.llama.getGrammarFor("json");
    if (constraint.kind === "gbnf")
      return this.llama.createGrammar({ grammar: constraint.grammar }).catch(() => {
        // llama.cpp's parser says why on the worker's stderr only; the client learns where to look.
        throw new RbeeError("BAD_REQUEST", "grammar: llama.cpp's GBNF parser refused it (an undefined rule, a missing root ::= or a syntax error)");
      });
    try {
      return await this.llama.createGrammarForJsonSchema(constraint.schema as Parameters<Llama["createGrammarForJsonSchema"]>[0]);
    } catch (err) {
      throw new RbeeError("BAD_REQUEST", `the JSON schema cannot be enforced: ${err instanceof Error ? err.message : err}`);
    }
  }
}

/**
 * Text that ends a constrained request: a finished JSON value lets only whitespace follow, so node-llama-cpp's grammars
 * name a run of newlines as their end (and the whitespace before it is trimmed off the text).
 */
export function grammarStopStrings(grammar: LlamaGrammar | undefined): string[] {
  if (!grammar) return [];
  return grammar.stopGenerationTriggers
    .map((trigger) => {
      const parts: readonly unknown[] = typeof trigger === "string" ? [trigger] : Array.isArray(trigger) ? trigger : (trigger as { values: readonly unknown[] }).values;
      return parts.filter((v): v is string => typeof v === "string").join("");
    })
    .filter((s) => s.length > 0);
}

/** The one constraint among a request's fields that may each set one (response_format, grammar, json_schema). */
export function onlyOneConstraint(byField: Record<string, OutputConstraint | undefined>): OutputConstraint | undefined {
  const given = Object.entries(byField).filter(([, c]) => c !== undefined);
  if (given.length > 1) throw new RbeeError("BAD_REQUEST", `${given.map(([field]) => field).join(" and ")} each constrain the output: send one of them`);
  return given[0]?.[1];
}
