// Client API keys on a real queen: made by `rbee keys create` (shown once, kept hashed), scopes, per-key limits on
// concurrent requests and requests per minute (429 with Retry-After), revocation that takes effect at once, the
// cluster token beside them, and health checks left open.
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { removeTempHomes } from "../../support/home";
import { killStartedProcesses, runRbee } from "../../support/processes";
import { startQueen } from "../../support/queen";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

const CLUSTER = "cluster-secret";

async function createKey(home: string, ...args: string[]) {
  const run = await runRbee(["keys", "create", ...args, "--json"], { env: { RBEE_HOME: home } });
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as { id: string; key: string };
}

describe("API keys", () => {
  test("scopes, limits, revocation; the cluster token; open health checks; keys kept hashed", async () => {
    const queen = await startQueen(["--api-token", CLUSTER]);
    const home = queen.home;
    const reader = await createKey(home, "reader", "--scopes", "inference", "--rpm", "3");
    const admin = await createKey(home, "admin", "--scopes", "inference,operator", "--max-concurrent", "1");
    expect(reader.key).toMatch(/^rbee_[A-Za-z0-9_-]{32}$/);
    const chat = (key: string, extra: Record<string, unknown> = {}) =>
      fetch(`${queen.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: JSON.stringify({ model: "stories260K", messages: [{ role: "user", content: "hi" }], max_tokens: 3, ...extra }) });

    // Open: health and the root probe. Closed: everything else without a key.
    expect((await fetch(`${queen.url}/v1/health`)).status).toBe(200);
    expect((await fetch(queen.url)).status).toBe(200);
    const none = await fetch(`${queen.url}/v1/models`);
    expect(none.status).toBe(401);
    expect((await none.json()).error.message).toContain("missing API key");
    expect((await chat("rbee_wrong")).status).toBe(401);

    // Scopes: an inference key cannot operate; the cluster token can do everything.
    expect((await chat(reader.key)).status).toBe(200);
    const operate = await fetch(`${queen.url}/v1/workers`, { headers: { authorization: `Bearer ${reader.key}` } });
    expect(operate.status).toBe(403);
    expect((await operate.json()).error.message).toContain("has no operator scope");
    expect((await fetch(`${queen.url}/v1/workers`, { headers: { authorization: `Bearer ${admin.key}` } })).status).toBe(200);
    expect((await fetch(`${queen.url}/v1/workers`, { headers: { authorization: `Bearer ${CLUSTER}` } })).status).toBe(200);
    // Anthropic's clients send x-api-key.
    const viaHeader = await fetch(`${queen.url}/v1/messages`, { method: "POST", headers: { "x-api-key": reader.key }, body: JSON.stringify({ model: "stories260K", max_tokens: 2, messages: [{ role: "user", content: "hi" }] }) });
    expect(viaHeader.status).toBe(200);

    // Ollama's clients too: the same key, the same refusal without one.
    const ollamaBody = JSON.stringify({ model: "stories260K", prompt: "Once", raw: true, stream: false, options: { num_predict: 2 } });
    expect((await fetch(`${queen.url}/api/generate`, { method: "POST", body: ollamaBody })).status).toBe(401);
    expect((await fetch(`${queen.url}/api/generate`, { method: "POST", headers: { authorization: `Bearer ${admin.key}` }, body: ollamaBody })).status).toBe(200);

    // A file on the queen's machine, named by path: operators only (names and hf: references are for everyone).
    const byPath = await chat(admin.key, { model: "/etc/passwd.gguf" });
    expect(byPath.status).not.toBe(403);
    const readerPath = await fetch(`${queen.url}/v1/completions`, { method: "POST", headers: { authorization: `Bearer ${reader.key}` }, body: JSON.stringify({ model: "../../etc/passwd.gguf", prompt: "x" }) });
    expect(readerPath.status).toBe(403);
    expect((await readerPath.json()).error.message).toContain("names a file on the queen's machine");

    // Requests per minute: the reader has made 3 of its 3 (the refused path counted); the next is refused with Retry-After.
    const limited = await chat(reader.key);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await limited.json()).error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded", rbee_code: "RATE_LIMITED" });

    // Concurrent requests: the admin may have one running; a second while the first streams is refused.
    const first = await chat(admin.key, { max_tokens: 1000, ignore_eos: true, stream: true });
    const second = await chat(admin.key);
    expect(second.status).toBe(429);
    await first.text();
    expect((await chat(admin.key)).status).toBe(200);

    // Revocation takes effect on the next request, with the queen running.
    const revoked = await runRbee(["keys", "revoke", admin.id], { env: { RBEE_HOME: home } });
    expect(revoked.stdout.trim()).toBe(`revoked ${admin.id} (admin)`);
    expect((await chat(admin.key)).status).toBe(401);
    const listed = JSON.parse((await runRbee(["keys", "list", "--json"], { env: { RBEE_HOME: home } })).stdout);
    expect(listed.map((k: { name: string; revoked_at: string | null }) => [k.name, k.revoked_at !== null])).toEqual([["reader", false], ["admin", true]]);
    expect(JSON.stringify(listed)).not.toContain(reader.key);

    // Kept as hashes only; the cluster token appears in no metric.
    const db = new Database(join(home, "keys.db"), { readonly: true });
    const stored = JSON.stringify(db.query("SELECT * FROM api_keys").all());
    db.close();
    expect(stored).not.toContain(reader.key);
    expect(stored).toContain(new Bun.CryptoHasher("sha256").update(reader.key).digest("hex"));
    expect(await (await fetch(`${queen.url}/metrics`)).text()).not.toContain(CLUSTER);
    expect(queen.stderr()).not.toContain(CLUSTER);
    expect(await queen.stop()).toBe(0);
  });

  test("keys let a queen listen on the network; bad key commands are one line", async () => {
    const queen = await startQueen();
    await queen.stop();
    const home = queen.home;
    await createKey(home, "lan");
    const { startRbee } = await import("../../support/processes");
    const lan = await startRbee(["queen", "--host", "0.0.0.0", "--port", "0", "--home", home], { env: { RBEE_API_TOKEN: "" } });
    expect((await fetch(lan.url.replace("0.0.0.0", "127.0.0.1") + "/v1/models")).status).toBe(401);
    expect(await lan.stop()).toBe(0);
    for (const [args, message] of [
      [["keys", "create", "x", "--scopes", "root"], 'unknown scope "root"'],
      [["keys", "revoke", "k-nope"], "no key k-nope"],
      [["keys", "create", "bad/name"], "invalid key name"],
    ] as const) {
      const run = await runRbee([...args], { env: { RBEE_HOME: home } });
      expect(run.code).not.toBe(0);
      expect(run.stderr.trim()).toContain(message);
    }
  });
});
