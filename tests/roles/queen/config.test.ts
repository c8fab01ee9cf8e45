// $RBEE_HOME/config.toml and names: a queen reads names, per-model slots, context and keep-alive, and preloads; a bad
// file is one line naming its line; `rbee models alias` names a model for every API.
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { removeTempHomes, tempHome } from "../../support/home";
import { STORIES_MODEL } from "../../support/paths";
import { killStartedProcesses, runRbee, waitFor } from "../../support/processes";
import { startQueen } from "../../support/queen";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

const workers = async (url: string) => (await (await fetch(`${url}/v1/workers`)).json()).workers as { url: string; slots_total: number; expires_at: string | null; model_ref: string }[];

describe("config.toml", () => {
  test("names, per-model slots, context and keep-alive, and preload at start", async () => {
    const home = tempHome("rbee-config-");
    writeFileSync(
      join(home, "config.toml"),
      `keep_alive = "2m"\n\n[models."tale:small"]\nmodel = "stories260K"\nslots = 2\nctx = 512\nkeep_alive = "30m"\npreload = true\n\n[models.forever]\nmodel = "${STORIES_MODEL}"\npinned = true\n`,
    );
    const queen = await startQueen([], home);
    const [worker] = await waitFor("the preloaded worker", async () => ((await workers(queen.url)).length ? workers(queen.url) : undefined), 30_000);
    expect(worker!.slots_total).toBe(2);
    expect((await (await fetch(`${worker!.url}/v1/ready`)).json()).ctx_per_slot).toBe(512);
    // The model's own keep-alive, not the file's 2 minutes: this model is also "forever", pinned, so it never expires.
    expect(worker!.expires_at).toBeNull();
    const res = await fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "tale:small", prompt: "Once upon a time", max_tokens: 4 }) });
    expect(res.status).toBe(200);
    expect((await fetch(`${queen.url}/api/tags`).then((r) => r.json())).models.map((m: { name: string }) => m.name)).toEqual(expect.arrayContaining(["tale:small", "forever:latest"]));
    expect(await queen.stop()).toBe(0);
  });

  test("a model's keep_alive from the file sets its expiry", async () => {
    const home = tempHome("rbee-config-");
    writeFileSync(join(home, "config.toml"), `keep_alive = "2m"\n[models."tale"]\nmodel = "stories260K"\nkeep_alive = "30m"\n`);
    const queen = await startQueen([], home);
    await fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "tale", prompt: "Once", max_tokens: 2 }) });
    const [worker] = await workers(queen.url);
    const left = Date.parse(worker!.expires_at!) - Date.now();
    expect(left).toBeGreaterThan(29 * 60_000);
    expect(left).toBeLessThanOrEqual(30 * 60_000);
    expect(await queen.stop()).toBe(0);
  });

  test("a bad file: the queen refuses to start with one line naming the line", async () => {
    const cases: [string, RegExp][] = [
      [`[models."x"]\nmodel = "stories260K"\nslots = "many"\n`, /config\.toml line 3: models\.x\.slots: /],
      [`keep_alive = "5m"\n[models.x]\nmodel = = "a"\n`, /config\.toml line 3: /],
      [`[models.y]\nmodel = "stories260K"\nkeep_alive = "soon"\n`, /config\.toml line 3: models\.y\.keep_alive: "soon" is not a duration/],
      [`[models.z]\nslots = 2\n`, /config\.toml line 1: models\.z\.model: /],
      [`colour = "blue"\n`, /config\.toml line 1: .*colour/],
      [`[models.w]\nmodel = "stories260K"\nmax_replicas = 1\nmin_replicas = 2\n`, /config\.toml line 4: models\.w\.min_replicas: min_replicas is more than max_replicas/],
    ];
    for (const [text, line] of cases) {
      const home = tempHome("rbee-config-");
      writeFileSync(join(home, "config.toml"), text);
      const run = await runRbee(["queen", "--port", "0", "--home", home]);
      expect(run.code).not.toBe(0);
      const lines = run.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(line);
    }
  });
});

describe("rbee models alias", () => {
  test("names a model for the queen's APIs; --list shows it, --remove takes it away", async () => {
    const queen = await startQueen();
    const env = { RBEE_HOME: queen.home };
    const made = await runRbee(["models", "alias", "bedtime:v2", STORIES_MODEL], { env });
    expect(made.stdout.trim()).toBe(`bedtime:v2 → ${STORIES_MODEL}`);
    expect((await runRbee(["models", "alias", "--list"], { env })).stdout).toMatch(/bedtime:v2\s+.*stories260K\.gguf/);
    const res = await fetch(`${queen.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "bedtime:v2", messages: [{ role: "user", content: "hi" }], max_tokens: 3 }) });
    expect(res.status).toBe(200);
    const listed = (await (await fetch(`${queen.url}/v1/models`)).json()).data as { id: string; alias_of: string | null }[];
    expect(listed.find((m) => m.id === "bedtime:v2")).toMatchObject({ alias_of: `file:${resolve(STORIES_MODEL)}` });
    // The same name in every API: Anthropic's, Ollama's, rbee's tasks, and rbee infer.
    const anthropic = await fetch(`${queen.url}/v1/messages`, { method: "POST", body: JSON.stringify({ model: "bedtime:v2", max_tokens: 3, messages: [{ role: "user", content: "hi" }] }) });
    expect((await anthropic.json()).usage.output_tokens).toBe(3);
    const ollama = await fetch(`${queen.url}/api/generate`, { method: "POST", body: JSON.stringify({ model: "bedtime:v2", prompt: "Once", raw: true, stream: false, options: { num_predict: 3 } }) });
    expect((await ollama.json()).eval_count).toBe(3);
    const task = await fetch(`${queen.url}/v2/tasks`, { method: "POST", body: JSON.stringify({ model: "bedtime:v2", prompt: "Once", max_tokens: 3 }) });
    expect(await task.text()).toContain('"tokens_out":3');
    const infer = await runRbee(["infer", "--model", "bedtime:v2", "--prompt", "Once upon a time", "--max-tokens", "4", "--json"], { env: { ...env, RBEE_QUEEN_URL: queen.url } });
    expect(JSON.parse(infer.stdout)).toMatchObject({ queen: "existing", tokens: 4 });
    expect((await runRbee(["models", "alias", "bedtime:v2", "--remove"], { env })).stdout.trim()).toBe("removed bedtime:v2");
    const gone = await fetch(`${queen.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "bedtime:v2", messages: [{ role: "user", content: "hi" }], max_tokens: 3 }) });
    expect(gone.status).toBe(404);
    const bad = await runRbee(["models", "alias", "bad name!", STORIES_MODEL], { env });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim()).toMatch(/^rbee: invalid model name "bad name!"/);
    expect(await queen.stop()).toBe(0);
  });
});
