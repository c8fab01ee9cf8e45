// The host prompt cache on a real worker: a prompt whose slot has served another since comes back from host memory
// (cached_tokens says so) and gives the text a fresh evaluation gives; a chat's growing prompt keeps one entry; the
// cache stays within --prompt-cache-mb, least recently used out; cache_prompt false neither saves nor restores; bad
// sizes are one line before the model loads.
import { afterAll, describe, expect, test } from "bun:test";
import { STORIES_MODEL } from "../../support/paths";
import { killStartedProcesses, type RbeeProcess, runRbee } from "../../support/processes";
import { startWorker } from "../../support/worker";

afterAll(killStartedProcesses);

const A = "Once upon a time there was a little girl named Lily who loved to play in the park with her dog Max. One day she found a shiny red ball under a big tree and";
const B = "Tom was a big brown bear who lived in the forest with his mother. Every morning he went to the river to catch fish and play with the other animals who";
const C = "The sun was shining and the birds were singing when Sam and his sister went to the beach with a bucket and a spade to build the biggest sand castle of all";

async function complete(worker: RbeeProcess, prompt: string, extra: Record<string, unknown> = {}) {
  const res = await fetch(`${worker.url}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt, max_tokens: 16, temperature: 0, ...extra }) });
  const body = await res.json();
  return { text: body.choices[0].text as string, prompt: body.usage.prompt_tokens as number, cached: body.usage.prompt_tokens_details.cached_tokens as number };
}
const hostCache = async (worker: RbeeProcess) => (await (await fetch(`${worker.url}/v1/ready`)).json()).host_cache;

describe("host prompt cache", () => {
  test("one slot, two prompts in turn: each comes back from host memory, with the text of a fresh evaluation", async () => {
    const [cached, none] = await Promise.all([startWorker(["--slots", "1", "--ctx", "512"]), startWorker(["--slots", "1", "--ctx", "512", "--prompt-cache-mb", "0"])]);
    const firstA = await complete(cached, A);
    const firstB = await complete(cached, B);
    expect(firstA.cached).toBe(0);
    const againA = await complete(cached, A);
    const againB = await complete(cached, B);
    expect(againA).toEqual({ ...firstA, cached: firstA.prompt - 1 });
    expect(againB).toEqual({ ...firstB, cached: firstB.prompt - 1 });
    expect(await hostCache(cached)).toMatchObject({ entries: 2, hits: 2 });
    // Without it, the one slot holds only the last prompt: A is evaluated again (its BOS aside).
    await complete(none, A);
    await complete(none, B);
    expect((await complete(none, A)).cached).toBeLessThanOrEqual(1);
    expect(await hostCache(none)).toBeNull();
  });

  test("a chat's growing prompt keeps one entry; a prompt that starts alike restores the shared part only", async () => {
    const worker = await startWorker(["--slots", "1", "--ctx", "512"]);
    await complete(worker, A);
    await complete(worker, `${A} then she ran home`);
    expect((await hostCache(worker)).entries).toBe(1);
    await complete(worker, B);
    const extended = await complete(worker, `${A} then she ran home to her mother and`);
    const { cached: freshPart } = extended;
    expect(freshPart).toBeGreaterThan(40);
    expect(freshPart).toBeLessThan(extended.prompt - 1);
    const fresh = await startWorker(["--slots", "1", "--ctx", "512", "--prompt-cache-mb", "0"]);
    expect((await complete(fresh, `${A} then she ran home to her mother and`)).text).toBe(extended.text);
  });

  test("cache_prompt false neither saves nor restores", async () => {
    const worker = await startWorker(["--slots", "1", "--ctx", "512"]);
    await complete(worker, A, { cache_prompt: false });
    await complete(worker, B);
    expect((await complete(worker, A)).cached).toBeLessThanOrEqual(1);
    expect(await hostCache(worker)).toMatchObject({ hits: 0 });
    await complete(worker, B);
    expect((await complete(worker, A, { cache_prompt: false })).cached).toBe(0);
  });

  test("the cache stays within --prompt-cache-mb: the least recently used prompt goes first", async () => {
    // stories260K keeps 640 bytes a token: a prompt of about 850 tokens takes about 0.55 MiB, so 1 MiB holds one.
    const long = (text: string) => `${text} `.repeat(15);
    const worker = await startWorker(["--slots", "1", "--ctx", "2048", "--prompt-cache-mb", "1"]);
    for (const p of [A, B, C]) await complete(worker, long(p));
    const stats = await hostCache(worker);
    expect(stats.limit_bytes).toBe(1024 * 1024);
    expect(stats.bytes).toBeLessThanOrEqual(stats.limit_bytes);
    expect(stats.entries).toBe(1);
    // Only C (the newest) is kept: A and B went, and are evaluated again.
    expect((await complete(worker, long(A))).cached).toBeLessThanOrEqual(1);
    expect((await complete(worker, long(B))).cached).toBeLessThanOrEqual(1);
    expect((await hostCache(worker)).hits).toBe(0);
  });

  test("bad sizes: one line and a non-zero exit, before the model loads", async () => {
    for (const [value, expected] of [["99999999", "more than this machine's RAM"], ["-5", "--prompt-cache-mb"], ["lots", "--prompt-cache-mb"]] as const) {
      const { code, stderr } = await runRbee(["worker", "--model", STORIES_MODEL, "--port", "0", "--prompt-cache-mb", value]);
      expect(code).not.toBe(0);
      expect(stderr.trim().split("\n")).toHaveLength(1);
      expect(stderr).toContain(expected);
    }
  });
});
