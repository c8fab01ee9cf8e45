// A bounded soak of a queen on loopback: clients in every dialect (streamed and not) with random disconnects, while
// workers are killed and the local hive is restarted. Every request must end with its tokens or a clear error within
// a bound; afterwards every slot is idle again. Used by scripts/soak.ts (longer) and tests/roles/queen/soak.test.ts.

export interface SoakOptions {
  queenUrl: string;
  /** The node's hive: its workers are killed, and the hive itself once, mid-run. */
  hiveUrl: () => Promise<string | undefined>;
  model: string;
  clients: number;
  durationMs: number;
  /** A request that takes longer than this counts as hung. */
  hangMs: number;
  /** Milliseconds between faults. */
  faultEveryMs: number;
  killHive: () => Promise<void>;
}

export interface SoakResult {
  requests: number;
  completed: number;
  clearErrors: number;
  disconnects: number;
  hung: number;
  unclear: string[];
  workersKilled: number;
  hiveRestarts: number;
  errorCodes: Record<string, number>;
  /** One message for each code, as the client got it. */
  errorExamples: Record<string, string>;
}

type Outcome = { kind: "completed" | "clear-error" | "disconnect" | "hung" | "unclear"; detail?: string; message?: string };

const REQUESTS: ((model: string) => { path: string; body: Record<string, unknown>; stream: boolean })[] = [
  (model) => ({ path: "/v1/chat/completions", body: { model, messages: [{ role: "user", content: "Tell me a story" }], max_tokens: 40, stream: true }, stream: true }),
  (model) => ({ path: "/v1/completions", body: { model, prompt: "Once upon a time", max_tokens: 30 }, stream: false }),
  (model) => ({ path: "/v2/tasks", body: { model, prompt: "Once upon a time", max_tokens: 30 }, stream: true }),
  (model) => ({ path: "/api/generate", body: { model, prompt: "Once upon a time", raw: true, options: { num_predict: 30 } }, stream: true }),
  (model) => ({ path: "/v1/messages", body: { model, max_tokens: 30, messages: [{ role: "user", content: "hi" }], stream: true }, stream: true }),
  (model) => ({ path: "/api/chat", body: { model, messages: [{ role: "user", content: "hi" }], stream: false, options: { num_predict: 20 } }, stream: false }),
];

/** A streamed answer that ended well carries its dialect's ending; one that failed, an error record. */
function streamEnding(text: string): Outcome {
  if (/"done":true|\[DONE\]|event: end|event: message_stop/.test(text)) return { kind: "completed" };
  const error = /"type":"error","error":\{"type":"([a-z_]+)"|"error":\{"code":"([A-Z_]+)"|"rbee_code":"([A-Z_]+)"|"error":"([^"]+)"|event: error\ndata: \{"code":"([A-Z_]+)"/.exec(text);
  if (error) return { kind: "clear-error", detail: error.slice(1).find(Boolean), message: /"message":"([^"]*)"/.exec(text)?.[1] };
  return { kind: "unclear", detail: `stream ended without an ending or an error: …${text.slice(-200)}` };
}

/** SOAK_KINDS=0,2 soaks with those kinds of request only (to find which one misbehaves). */
const KINDS = process.env.SOAK_KINDS ? process.env.SOAK_KINDS.split(",").map(Number) : REQUESTS.map((_, i) => i);

async function oneRequest(options: SoakOptions, n: number): Promise<Outcome> {
  const { path, body, stream } = REQUESTS[KINDS[n % KINDS.length]!]!(options.model);
  const abort = new AbortController();
  // One request in five is abandoned by its client part way.
  const disconnect = Math.random() < 0.2 ? setTimeout(() => abort.abort(), Math.random() * 200) : undefined;
  const hang = setTimeout(() => abort.abort("hung"), options.hangMs);
  try {
    const res = await fetch(`${options.queenUrl}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: abort.signal });
    const text = await res.text();
    if (res.status >= 400) {
      const json = JSON.parse(text);
      const code = json.error?.rbee_code ?? json.error?.code ?? json.code ?? json.error?.type ?? (typeof json.error === "string" ? "ollama" : undefined);
      return code ? { kind: "clear-error", detail: String(code), message: json.error?.message ?? json.error } : { kind: "unclear", detail: `${res.status} ${text.slice(0, 200)}` };
    }
    if (!stream) return JSON.parse(text) && { kind: "completed" };
    return streamEnding(text);
  } catch (err) {
    if (abort.signal.reason === "hung") return { kind: "hung", detail: `${path} ran past ${options.hangMs} ms` };
    if (abort.signal.aborted) return { kind: "disconnect" };
    return { kind: "unclear", detail: `${path}: ${err instanceof Error ? err.message : err}` };
  } finally {
    clearTimeout(disconnect);
    clearTimeout(hang);
  }
}

export async function soak(options: SoakOptions): Promise<SoakResult> {
  const result: SoakResult = { requests: 0, completed: 0, clearErrors: 0, disconnects: 0, hung: 0, unclear: [], workersKilled: 0, hiveRestarts: 0, errorCodes: {}, errorExamples: {} };
  const until = Date.now() + options.durationMs;
  let n = 0;
  const client = async () => {
    while (Date.now() < until) {
      const outcome = await oneRequest(options, n++);
      result.requests++;
      if (outcome.kind === "completed") result.completed++;
      else if (outcome.kind === "clear-error") {
        result.clearErrors++;
        result.errorCodes[outcome.detail ?? "?"] = (result.errorCodes[outcome.detail ?? "?"] ?? 0) + 1;
        result.errorExamples[outcome.detail ?? "?"] ??= String(outcome.message ?? "").slice(0, 160);
      } else if (outcome.kind === "disconnect") result.disconnects++;
      else if (outcome.kind === "hung") (result.hung++, result.unclear.push(outcome.detail!));
      else result.unclear.push(outcome.detail!);
    }
  };
  const faults = async () => {
    let round = 0;
    while (Date.now() + options.faultEveryMs < until) {
      await Bun.sleep(options.faultEveryMs);
      round++;
      // Half way through, the hive itself; otherwise one of its workers, with kill -9.
      if (round === Math.ceil(options.durationMs / options.faultEveryMs / 2)) {
        await options.killHive();
        result.hiveRestarts++;
        continue;
      }
      const hive = await options.hiveUrl();
      if (!hive) continue;
      const workers = ((await fetch(`${hive}/v1/workers`).then((r) => r.json()).catch(() => ({ workers: [] }))) as { workers: { pid: number; state: string }[] }).workers.filter((w) => w.state === "ready");
      const victim = workers[Math.floor(Math.random() * workers.length)];
      if (!victim) continue;
      try {
        process.kill(victim.pid, "SIGKILL");
        result.workersKilled++;
      } catch {
        // gone already
      }
    }
  };
  await Promise.all([...Array.from({ length: options.clients }, client), faults()]);
  return result;
}
