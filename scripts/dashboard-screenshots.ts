// Takes the README's dashboard screenshots (docs/dashboard-cluster.png, docs/dashboard-playground.png): a queen with
// stories260K and a synthetic chat model, a worker of each, a minute of streamed load, then chromium through
// playwright-core. Run: bun scripts/dashboard-screenshots.ts (needs Debian's chromium).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { writeSyntheticChatModel } from "../src/inference/synth-chat-model";
import { RBEE_CLI, startDaemon } from "./lib/daemon";

const root = join(import.meta.dir, "..");
const stories = join(root, "..", "shared", "models", "stories260K.gguf");
const home = mkdtempSync(join(tmpdir(), "rbee-shots-"));
const chatModel = join(home, "qwen-chat.gguf");
await writeSyntheticChatModel(chatModel, { vocab: "qwen2", template: "Qwen-Qwen2.5-7B-Instruct" });
for (const model of [stories, chatModel]) Bun.spawnSync([...RBEE_CLI, "hive", "models", "download", model, "--port", "1"], { env: { ...process.env, RBEE_HOME: home } });
const queen = await startDaemon(["queen", "--port", "0", "--home", home]);
const post = (path: string, body: unknown) => fetch(`${queen.url}${path}`, { method: "POST", body: JSON.stringify(body) });
for (const model of ["stories260K", "qwen-chat"]) await post("/v1/workers", { model });

// Streams of different lengths on both models, a few at once, so that the charts have something to show.
let loading = true;
const load = async (model: string, tokens: number) => {
  while (loading) await (await post("/v1/completions", { model, prompt: "Once upon a time", max_tokens: tokens, stream: true })).text();
};
const loads = [load("stories260K", 100), load("stories260K", 60), load("qwen-chat", 400)];
await Bun.sleep(45_000);

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium" });
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
await page.goto(queen.url);
await page.locator("#workers tr[data-worker]").nth(1).waitFor();
await Bun.sleep(3000);
await page.screenshot({ path: join(root, "docs", "dashboard-cluster.png"), fullPage: true });
loading = false;
await Promise.all(loads);
await page.click("button[data-tab=playground]");
const storiesRef = await page.locator("#play-model").evaluate((s: HTMLSelectElement) => [...s.options].find((o) => o.value.includes("stories260K"))!.value);
await page.selectOption("#play-model", storiesRef);
await page.fill("#play-prompt", "Once upon a time, a little bee");
await page.click("#play-send");
await page.locator(".answer-stats", { hasText: "tokens/s" }).waitFor();
await page.locator("#play-send:enabled").waitFor();
await page.screenshot({ path: join(root, "docs", "dashboard-playground.png") });
await browser.close();
await queen.stop();
console.log("wrote docs/dashboard-cluster.png and docs/dashboard-playground.png");
