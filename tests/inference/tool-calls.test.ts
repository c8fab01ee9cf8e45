// The parser of generated tool calls (inference/tool-calls.ts), cut by max_tokens at every point of Qwen's syntax:
// what it announces is only ever a name a tool may have, never one with the separator's JSON punctuation.
import { expect, test } from "bun:test";
import { type CallSyntax, ToolCallParser, type ToolEvent } from "../../src/inference/tool-calls";

const QWEN: CallSyntax = { prefix: '<tool_call>\n{"name": "', paramsPrefix: '", "arguments": ', suffix: "}\n</tool_call>", between: "\n" };
const WHOLE = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "UTC"}}\n</tool_call>';

function parse(text: string): ToolEvent[] {
  const parser = new ToolCallParser(QWEN, false);
  // A character at a time, as tokens may split it anywhere.
  return [...[...text].flatMap((c) => parser.push(c)), ...parser.finish()];
}

test("the whole text: two calls with their names and arguments", () => {
  const events = parse(WHOLE);
  expect(events.filter((e) => e.kind === "call")).toEqual([{ kind: "call", index: 0, name: "get_weather" }, { kind: "call", index: 1, name: "get_time" }]);
  expect(events.filter((e) => e.kind === "arguments" && e.index === 1).map((e) => (e as { text: string }).text).join("")).toBe('{"zone": "UTC"}');
});

test("cut after every character: every name announced is a tool's name, and the calls before the cut are whole", () => {
  for (let cut = 1; cut < WHOLE.length; cut++) {
    const names = parse(WHOLE.slice(0, cut)).filter((e) => e.kind === "call").map((e) => (e as { name: string }).name);
    for (const name of names) expect({ cut, name }).toEqual({ cut, name: expect.stringMatching(/^[A-Za-z0-9_-]{1,64}$/) });
    if (cut >= WHOLE.indexOf("get_time") + 1) expect(names[0]).toBe("get_weather");
  }
  // Cut inside the separator after the name: the name alone.
  const cut = WHOLE.indexOf('get_weather",') + 'get_weather",'.length;
  expect(parse(WHOLE.slice(0, cut)).filter((e) => e.kind === "call")).toEqual([{ kind: "call", index: 0, name: "get_weather" }]);
  // Cut right after the prefix: no call at all.
  expect(parse(WHOLE.slice(0, QWEN.prefix.length)).filter((e) => e.kind === "call")).toEqual([]);
});
