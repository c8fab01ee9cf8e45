// The dashboard in a real browser (playwright-core driving Debian's chromium) against a live queen: the node and its
// worker appear, a download shows its progress, a worker started and stopped from the page comes and goes, a prompt
// streams into the playground with its time to first token, Stop cancels a long answer on the worker, a worker's log
// follows, and the page logs no error.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { type Browser, chromium, type Page } from "playwright-core";
import { qwenChatModel } from "../support/chat-model";
import { removeTempHomes, tempHome } from "../support/home";
import { killLocalHubs, STORIES_HF_REF, startLocalHub } from "../support/hub";
import { killStartedProcesses, runRbee, waitFor } from "../support/processes";
import { startNodeHive, startQueen } from "../support/queen";

const CHROMIUM = "/usr/bin/chromium";
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does`);
  browser = await chromium.launch({ executablePath: CHROMIUM });
});

afterAll(async () => {
  await browser?.close();
  await killStartedProcesses();
  await killLocalHubs();
  removeTempHomes();
});

/** Clicks the page's own confirmation dialog's Confirm. */
async function confirm(page: Page): Promise<void> {
  await page.locator("dialog#confirm[open] #confirm-ok").click();
}

/** The value of the first option of `select` whose value contains `text`. */
async function optionContaining(page: Page, select: string, text: string): Promise<string> {
  const handle = page.locator(select);
  return waitFor(`an option with ${text} in ${select}`, () => handle.evaluate((s: HTMLSelectElement, t) => [...s.options].find((o) => o.value.includes(t))?.value, text));
}

describe("dashboard in a browser", () => {
  test("cluster view, download, start and stop, playground with Stop, logs; no console errors", async () => {
    const hub = await startLocalHub({ rate: 1_000_000 });
    const home = tempHome("rbee-dashboard-");
    const added = await runRbee(["hive", "models", "download", await qwenChatModel(), "--port", "1"], { env: { RBEE_HOME: home } });
    expect(added.code).toBe(0);
    const queen = await startQueen([], home, { RBEE_HF_ENDPOINT: hub.url });
    const api = async (path: string) => (await fetch(`${queen.url}${path}`)).json();
    const errors: string[] = [];
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("console", (m) => void (m.type() === "error" && errors.push(m.text())));
    page.on("pageerror", (e) => errors.push(String(e)));

    await page.goto(queen.url);
    await page.locator("#nodes [data-node=localhost] .state.up").waitFor({ timeout: 20_000 });
    await page.locator("#connection.live").waitFor();

    // A second node with two GPUs (the hive's fake device probe) joins: the view shows it and each GPU's memory.
    const GiB = 1024 ** 3;
    const gpus = [{ name: "Fake H100", vram_total_bytes: 80 * GiB, vram_free_bytes: 60 * GiB }, { name: "Fake H100", vram_total_bytes: 80 * GiB, vram_free_bytes: 80 * GiB }];
    await startNodeHive(queen.url, "gpubox", [], { RBEE_FAKE_DEVICES: JSON.stringify({ gpus }) });
    const gpuLines = page.locator("#nodes [data-node=gpubox] .gpu");
    await gpuLines.nth(1).waitFor();
    expect(await gpuLines.allTextContents()).toEqual(["GPU 0 Fake H100  20.0 GiB used, 60.0 GiB free", "GPU 1 Fake H100  0 B used, 80.0 GiB free"]);

    // Download from the (local) Hub to this node, with its progress.
    await page.fill("#download-form input[name=ref]", STORIES_HF_REF);
    await page.click("#download-form button[type=submit]");
    await confirm(page);
    await page.locator("#download-status", { hasText: "downloaded stories260K" }).waitFor({ timeout: 30_000 });
    expect(hub.requests().some((r) => r.path.startsWith("/cdn/"))).toBe(true);

    // Start a worker from the page: it shows in the workers table.
    await page.selectOption("#start-form select[name=model]", await optionContaining(page, "#start-form select[name=model]", "stories260K.gguf"));
    await page.selectOption("#start-form select[name=node]", "localhost");
    await page.click("#start-form button[type=submit]");
    await confirm(page);
    await page.locator("#start-status", { hasText: "started" }).waitFor({ timeout: 30_000 });
    const row = page.locator("#workers tr[data-worker]");
    await row.first().waitFor();
    const workerId = (await row.first().getAttribute("data-worker"))!;
    expect((await api("/v1/workers")).workers.map((w: { id: string }) => w.id)).toEqual([workerId]);

    // The playground: a chat answer streams in with its figures.
    await page.click("button[data-tab=playground]");
    await page.selectOption("#play-model", await optionContaining(page, "#play-model", "stories260K.gguf"));
    await page.fill("#play-prompt", "Once upon a time");
    await page.click("#play-send");
    const stats = page.locator(".answer").first().locator(".answer-stats");
    await stats.filter({ hasText: "tokens/s" }).waitFor({ timeout: 30_000 });
    await waitFor("Send enabled again", async () => ((await page.locator("#play-send").isEnabled()) ? true : undefined));
    expect((await page.locator(".answer").first().locator(".answer-text").textContent())!.length).toBeGreaterThan(20);
    expect(await stats.textContent()).toMatch(/time to first token \d+(\.\d)? m?s · \d+ tokens · [\d.]+ tokens\/s/);

    // Stop: a long completion from another model is cut short, and its worker's slot is free again.
    await page.selectOption("#play-model", await optionContaining(page, "#play-model", "qwen-chat"));
    await page.check("input[name=mode][value=complete]");
    await page.fill("input[name=max_tokens]", "8000");
    await page.fill("#play-prompt", "Tell me everything");
    await page.click("#play-send");
    const long = page.locator(".answer").first();
    await long.locator(".answer-stats", { hasText: "tokens/s" }).waitFor({ timeout: 30_000 });
    await page.click("#play-stop");
    await long.locator(".answer-stats.stopped").waitFor();
    const streamed = Number(/(\d+) tokens ·/.exec((await long.locator(".answer-stats").textContent())!)![1]);
    expect(streamed).toBeGreaterThan(0);
    expect(streamed).toBeLessThan(8000);
    const qwenWorker = (await api("/v1/workers")).workers.find((w: { model_ref: string }) => w.model_ref.includes("qwen-chat"));
    await waitFor("the stopped request's slot freed on the worker", async () => {
      const ready = await (await fetch(`${qwenWorker.url}/v1/ready`)).json();
      return ready.slots_idle === ready.slots_total ? true : undefined;
    }, 5000);

    // The worker's log, followed from its row.
    await page.click("button[data-tab=cluster]");
    await page.locator(`#workers tr[data-worker="${workerId}"] button`, { hasText: "Logs" }).click();
    await page.locator("#log-lines .log-line", { hasText: "listening on" }).first().waitFor();

    // Stop the worker from the page: its row goes.
    await page.click("button[data-tab=cluster]");
    await page.locator(`#workers tr[data-worker="${workerId}"] button`, { hasText: "Stop" }).click();
    await confirm(page);
    await page.locator(`#workers tr[data-worker="${workerId}"]`).waitFor({ state: "detached", timeout: 20_000 });
    expect((await api("/v1/workers")).workers.map((w: { id: string }) => w.id)).not.toContain(workerId);

    await page.screenshot({ path: join(tmpdir(), "rbee-dashboard-test.png"), fullPage: true });
    expect(errors).toEqual([]);
  }, 120_000);
});
