// Web pages on another origin calling the queen from a real browser (playwright-core driving Debian's chromium): by
// default a page served from this machine may; with --cors-origins only the listed origins (or * for any); preflights
// are answered before authentication, error answers carry the header too.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { allowedOrigin, parseCorsOrigins } from "../../src/http/cors";
import { removeTempHomes, tempHome } from "../support/home";
import { killStartedProcesses, runRbee, startRbee } from "../support/processes";

const CHROMIUM = "/usr/bin/chromium";
let browser: Browser;
let page: Page;
let site: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update"] });
  // A chat UI of its own, on another origin (another port) than the queen.
  site = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("<!doctype html><title>chat</title>", { headers: { "content-type": "text/html" } }) });
  page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${site.port}/`);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  site?.stop(true);
  await killStartedProcesses();
  removeTempHomes();
});

/** The page's fetch of a queen route with a JSON body and a bearer token (so the browser sends a preflight first). */
function callFromPage(url: string): Promise<string> {
  return page.evaluate(async (target) => {
    try {
      const res = await fetch(target, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer none" }, body: "{" });
      return `${res.status} ${(await res.json()).error.type}`;
    } catch (err) {
      return `blocked: ${(err as Error).name}`;
    }
  }, url);
}

describe("CORS", () => {
  test("origins: loopback pages by default, else exactly the listed ones or *; bad values refused", () => {
    expect(allowedOrigin("http://localhost:3000")).toBe("http://localhost:3000");
    expect(allowedOrigin("http://127.0.0.1:8081")).toBe("http://127.0.0.1:8081");
    expect(allowedOrigin("http://[::1]:5173")).toBe("http://[::1]:5173");
    expect(allowedOrigin("https://chat.example.com")).toBeNull();
    expect(allowedOrigin("null")).toBeNull();
    expect(allowedOrigin("https://chat.example.com", ["https://chat.example.com"])).toBe("https://chat.example.com");
    expect(allowedOrigin("http://localhost:3000", ["https://chat.example.com"])).toBeNull();
    expect(allowedOrigin("https://any.example", ["*"])).toBe("https://any.example");
    expect(parseCorsOrigins(["https://chat.example.com/", " * "])).toEqual(["https://chat.example.com", "*"]);
    for (const bad of ["chat.example.com", "https://chat.example.com/ui", "ftp://x.example"]) expect(() => parseCorsOrigins([bad])).toThrow(`cors origin "${bad}": expected *`);
  });

  test("from a page in Chromium: allowed by default (a loopback page), refused for another listed origin, allowed when listed", async () => {
    const home = tempHome();
    const byDefault = await startRbee(["queen", "--port", "0", "--home", home]);
    expect(await callFromPage(`${byDefault.url}/v1/chat/completions`)).toBe("400 invalid_request_error");
    await byDefault.stop();

    const elsewhere = await startRbee(["queen", "--port", "0", "--home", home, "--cors-origins", "https://chat.example.com"]);
    expect(await callFromPage(`${elsewhere.url}/v1/chat/completions`)).toBe("blocked: TypeError");
    await elsewhere.stop();

    const listed = await startRbee(["queen", "--port", "0", "--home", home, "--api-token", "secret", "--cors-origins", `https://chat.example.com,http://127.0.0.1:${site.port}`]);
    // The preflight passes without the token; the call itself is refused for the wrong one, and the page reads why.
    expect(await callFromPage(`${listed.url}/v1/chat/completions`)).toBe("401 authentication_error");
    await listed.stop();

    // config.toml's cors_origins, where no flag says otherwise; a bad one stops the queen naming the item.
    writeFileSync(join(home, "config.toml"), `cors_origins = ["http://127.0.0.1:${site.port}"]\n`);
    const configured = await startRbee(["queen", "--port", "0", "--home", home]);
    expect(await callFromPage(`${configured.url}/v1/chat/completions`)).toBe("400 invalid_request_error");
    await configured.stop();
    writeFileSync(join(home, "config.toml"), `cors_origins = ["https://ok.example", "chat.example.com/ui"]\n`);
    const badFile = await runRbee(["queen", "--port", "0", "--home", home]);
    expect(badFile.stderr).toBe(`rbee: ${join(home, "config.toml")}: cors_origins.1: expected * or an origin such as https://chat.example.com or http://localhost:3000 (scheme, host and port only)\n`);
    rmSync(join(home, "config.toml"));

    const bad = await runRbee(["queen", "--port", "0", "--home", home, "--cors-origins", "chat.example.com"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toBe('rbee: cors origin "chat.example.com": expected * or an origin such as https://chat.example.com or http://localhost:3000 (scheme, host and port only)\n');
  }, 60_000);
});
