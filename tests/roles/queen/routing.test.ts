// Cache-aware routing: among replicas, a chat's next turn goes to the replica that served its previous turn, whose
// slot still holds that prompt (cached_tokens). With the routing off (RBEE_PROMPT_AFFINITY=0) only the least loaded
// replica counts, and turns land on either.
import { afterAll, describe, expect, test } from "bun:test";
import { qwenChatModel } from "../../support/chat-model";
import { removeTempHomes, tempHome } from "../../support/home";
import { killStartedProcesses, startRbee } from "../../support/processes";
import { queenWorkers, startNodeHive } from "../../support/queen";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

const GIB = 2 ** 30;
const TWO_GPUS = JSON.stringify({ gpus: [0, 1].map((index) => ({ index, name: `GPU ${index}`, vram_total_bytes: 80 * GIB, vram_free_bytes: 40 * GIB })) });

/** A queen with two replicas of the synthetic Qwen chat model (one per fake GPU) on one node. */
async function twoReplicas(env: Record<string, string>) {
  const { runRbee } = await import("../../support/processes");
  const home = tempHome();

  const queen = await startRbee(["queen", "--port", "0", "--home", home, "--worker-slots", "4", "--keep-alive", "10m", "--hive-check-interval", "0.5"], { env });
  const twin = await startNodeHive(queen.url, "twin", [], { RBEE_FAKE_DEVICES: TWO_GPUS });
  // A model with a real chat template (Qwen2.5's), which renders a chat's history the same way every turn.
  expect((await runRbee(["hive", "models", "download", await qwenChatModel(), "--port", "1"], { env: { RBEE_HOME: twin.home } })).code).toBe(0);
  const { waitFor } = await import("../../support/processes");
  await waitFor("the queen knows the model", async () => ((await (await fetch(`${queen.url}/v1/models`)).json()).data.some((m: { name: string }) => m.name === "qwen-chat") ? true : undefined));
  // Five long requests at once: four slots are not enough, so a second replica starts.
  const long = () => fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "qwen-chat", prompt: "Once upon a time", max_tokens: 300, ignore_eos: true, node: "twin" }) });
  await Promise.all([long(), long(), long(), long(), long()]);
  // The second replica may finish loading after the five are answered.
  await waitFor("two replicas", async () => ((await queenWorkers(queen.url)).length === 2 ? true : undefined));
  return queen;
}

type Chat = { choices: { message: { content: string } }[]; usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } } };

/**
 * Six two-turn chats: the first turns two at a time (so that they land on both replicas), then the second turns one
 * after another. How many second turns found their first turn's prompt cached, and what they answered.
 */
async function secondTurns(queenUrl: string): Promise<{ hits: number; replies: string[] }> {
  const chat = async (messages: { role: string; content: string }[], max_tokens = 8) =>
    (await (await fetch(`${queenUrl}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "qwen-chat", node: "twin", messages, max_tokens, temperature: 0 }) })).json()) as Chat;
  const firsts = Array.from({ length: 6 }, (_, c) => [{ role: "system", content: `You tell story number ${c} about a ${["cat", "dog", "fox", "owl", "bee", "cow"][c]}.` }, { role: "user", content: "Begin." }]);
  const ones: Chat[] = [];
  for (let c = 0; c < 6; c += 2) ones.push(...(await Promise.all([chat(firsts[c]!, 200), chat(firsts[c + 1]!, 200)])));
  let hits = 0;
  const replies: string[] = [];
  for (let c = 0; c < 6; c++) {
    const two = await chat([...firsts[c]!, { role: "assistant", content: ones[c]!.choices[0]!.message.content }, { role: "user", content: "And then?" }]);
    if (two.usage.prompt_tokens_details.cached_tokens >= ones[c]!.usage.prompt_tokens) hits++;
    replies.push(two.choices[0]!.message.content);
  }
  return { hits, replies };
}

describe("cache-aware routing", () => {
  test("every second turn goes to the replica that holds its first turn; without the routing, some do not", async () => {
    const queen = await twoReplicas({});
    const routed = await secondTurns(queen.url);
    expect(routed.hits).toBe(6);
    expect(await queen.stop()).toBe(0);
    const plain = await twoReplicas({ RBEE_PROMPT_AFFINITY: "0" });
    const unrouted = await secondTurns(plain.url);
    expect(unrouted.hits).toBeLessThan(6);
    expect(await plain.stop()).toBe(0);
    // The cells a cached turn reuses (moved between slots as they free up) hold what evaluating the prompt anew gives.
    expect(routed.replies).toEqual(unrouted.replies);
  });
});
