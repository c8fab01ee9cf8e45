// The playground: a prompt to a model through the queen's OpenAI routes, chat or completion, streamed in as it comes,
// with time to first token and tokens/s for each answer; Stop cancels the request (the queen cancels it on the worker).
import { api, readEvents } from "./api";
import { byId, el, seconds } from "./dom";

export function mountPlayground(): void {
  const form = byId<HTMLFormElement>("play-form");
  const stop = byId<HTMLButtonElement>("play-stop");
  const send = byId<HTMLButtonElement>("play-send");
  let running: AbortController | undefined;

  stop.addEventListener("click", () => running?.abort());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (running) return;
    const fields = new FormData(form);
    const model = String(fields.get("model") ?? "");
    const prompt = String(fields.get("prompt") ?? "");
    const chat = fields.get("mode") === "chat";
    const maxTokens = Number(fields.get("max_tokens")) || 200;
    const text = el("div", { class: "answer-text" });
    const stats = el("div", { class: "answer-stats" }, "waiting…");
    byId("play-output").prepend(el("article", { class: "answer" }, el("div", { class: "answer-prompt" }, `${model}: ${prompt}`), text, stats));
    running = new AbortController();
    send.disabled = true;
    stop.disabled = false;
    const started = performance.now();
    let first = 0;
    let tokens = 0;
    const show = (end: string) => {
      const now = performance.now();
      const rate = tokens > 1 && now > first ? ((tokens - 1) * 1000) / (now - first) : 0;
      stats.textContent = first ? `time to first token ${seconds(first - started)} · ${tokens} tokens · ${rate.toFixed(1)} tokens/s${end}` : `no token yet${end}`;
    };
    try {
      const body = chat ? { model, messages: [{ role: "user", content: prompt }], max_tokens: maxTokens, stream: true } : { model, prompt, max_tokens: maxTokens, stream: true };
      const res = await api(chat ? "/v1/chat/completions" : "/v1/completions", { method: "POST", json: body, signal: running.signal });
      await readEvents(res, ({ data }) => {
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const piece: string = chat ? (chunk.choices?.[0]?.delta?.content ?? "") : (chunk.choices?.[0]?.text ?? "");
        if (!piece) return;
        if (!first) first = performance.now();
        tokens++;
        text.append(piece);
        show("");
      });
      show("");
    } catch (err) {
      if (running.signal.aborted) show(" · stopped");
      else stats.textContent = `error: ${err instanceof Error ? err.message : err}`;
      stats.classList.add(running.signal.aborted ? "stopped" : "error");
    } finally {
      running = undefined;
      send.disabled = false;
      stop.disabled = true;
    }
  });
}
