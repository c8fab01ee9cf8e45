// What an operator does from the page, each after a confirmation: download a model to a node (with its progress),
// start a worker, stop one, unload a model.
import { api, apiJson, readEvents } from "./api";
import { confirmAction } from "./confirm";
import { byId, bytes } from "./dom";

/** Runs `action` after a yes; its outcome (or error) goes to `status`. */
async function confirmed(question: string, status: HTMLElement | null, action: () => Promise<string>): Promise<void> {
  if (!(await confirmAction(question))) return;
  try {
    const done = await action();
    if (status) status.textContent = done;
  } catch (err) {
    const message = `error: ${err instanceof Error ? err.message : err}`;
    if (status) status.textContent = message;
    else alertLine(message);
  }
}

function alertLine(message: string): void {
  byId("connection").textContent = message;
}

export function mountOperations(): void {
  const downloadForm = byId<HTMLFormElement>("download-form");
  downloadForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const fields = new FormData(downloadForm);
    const ref = String(fields.get("ref") ?? "").trim();
    const node = String(fields.get("node") ?? "") || undefined;
    const status = byId("download-status");
    const progress = byId<HTMLProgressElement>("download-progress");
    void confirmed(`Download ${ref} to ${node ?? "localhost"}?`, status, async () => {
      status.textContent = "starting…";
      progress.hidden = false;
      progress.value = 0;
      const res = await api("/v1/models/download", { method: "POST", json: { ref, node } });
      let outcome = "the download stream ended without an answer";
      await readEvents(res, ({ event, data }) => {
        const body = JSON.parse(data);
        if (event === "progress") {
          progress.max = Math.max(1, body.bytes_total);
          progress.value = body.bytes_done;
          status.textContent = `${bytes(body.bytes_done)} of ${bytes(body.bytes_total)}`;
        } else if (event === "done") outcome = `downloaded ${body.model.name} (${bytes(body.model.size_bytes)})`;
        else if (event === "error") outcome = `error: ${body.message}`;
      });
      progress.hidden = true;
      return outcome;
    });
  });

  const startForm = byId<HTMLFormElement>("start-form");
  startForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const fields = new FormData(startForm);
    const model = String(fields.get("model") ?? "");
    const node = String(fields.get("node") ?? "") || undefined;
    const status = byId("start-status");
    void confirmed(`Start a worker for ${model}${node ? ` on ${node}` : ""}?`, status, async () => {
      status.textContent = "starting…";
      const { worker } = await apiJson<{ worker: { id: string; node: string } | null }>("/v1/workers", { method: "POST", json: { model, node } });
      return worker ? `started ${worker.id} on ${worker.node}` : "started";
    });
  });
}

export function stopWorker(id: string): void {
  void confirmed(`Stop worker ${id}? Requests it is answering are cut off.`, null, async () => {
    await api(`/v1/workers/${encodeURIComponent(id)}/stop`, { method: "POST" });
    return `stopped ${id}`;
  });
}

export function unloadModel(model: string): void {
  void confirmed(`Unload ${model}? Its workers stop once their requests end.`, null, async () => {
    await api("/v1/models/unload", { method: "POST", json: { model } });
    return `unloading ${model}`;
  });
}
