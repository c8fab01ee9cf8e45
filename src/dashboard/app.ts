// The dashboard's entry: tabs, the queen's event stream of cluster snapshots, and the parts that draw and act on them.
import type { ClusterSample, ClusterSnapshot } from "../roles/queen/cluster-view";
import { ApiError, api, apiJson, apiKey, readEvents } from "./api";
import { Charts } from "./charts";
import { renderCluster } from "./cluster";
import { byId, fillSelect } from "./dom";
import { follow, mountLogs, setLogSources } from "./logs";
import { mountOperations, stopWorker, unloadModel } from "./operations";
import { mountPlayground } from "./playground";

const RECONNECT_MS = 2000;
const MODELS_REFRESH_MS = 5000;

function showTab(name: string): void {
  for (const tab of document.querySelectorAll<HTMLButtonElement>(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  for (const panel of document.querySelectorAll<HTMLElement>(".panel")) panel.hidden = panel.id !== name;
}

function setOptions(selector: string, values: [string, string][], keepFirst: boolean): void {
  for (const select of document.querySelectorAll<HTMLSelectElement>(selector)) {
    const first = keepFirst ? [...select.options].slice(0, 1).map((o) => [o.value, o.text] as [string, string]) : [];
    fillSelect(select, [...first, ...values]);
  }
}

async function refreshModels(): Promise<void> {
  try {
    const { data } = await apiJson<{ data: { id: string; name: string; alias_of: string | null }[] }>("/v1/models");
    // A reference shows with its model's name first; a name (alias) with what it points at.
    setOptions(".model-select", data.map((m) => [m.id, m.alias_of ? `${m.id} → ${m.alias_of}` : m.name !== m.id ? `${m.name} (${m.id})` : m.id]), false);
  } catch {
    // shown by the connection line
  }
}

function applySnapshot(snapshot: ClusterSnapshot): void {
  renderCluster(snapshot, { stop: stopWorker, unload: unloadModel, logs: (id) => (showTab("logs"), follow(`/v1/workers/${encodeURIComponent(id)}/logs`)) });
  const up = snapshot.nodes.filter((n) => n.state === "up").map((n) => n.name);
  setOptions("#download-form .node-select", snapshot.nodes.map((n) => [n.name, n.name]), false);
  setOptions("#start-form .node-select", snapshot.nodes.map((n) => [n.name, n.name]), true);
  setLogSources(up, snapshot.workers);
}

async function watchCluster(charts: Charts): Promise<void> {
  const connection = byId("connection");
  for (;;) {
    try {
      const res = await api("/v1/cluster/events");
      connection.textContent = "live";
      connection.className = "connection live";
      await readEvents(res, ({ event, data }) => {
        const body = JSON.parse(data);
        if (event === "history") charts.history(body as ClusterSample[]);
        else if (event === "snapshot") applySnapshot(body as ClusterSnapshot);
        else if (event === "sample") {
          charts.add(body.sample as ClusterSample);
          applySnapshot(body.snapshot as ClusterSnapshot);
        }
      });
      connection.textContent = "reconnecting…";
    } catch (err) {
      connection.textContent = err instanceof ApiError && (err.status === 401 || err.status === 403) ? `${err.message} (set an API key)` : "queen unreachable, retrying…";
    }
    connection.className = "connection down";
    await new Promise((r) => setTimeout(r, RECONNECT_MS));
  }
}

for (const tab of document.querySelectorAll<HTMLButtonElement>(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab!));
byId("set-key").addEventListener("click", () => {
  const key = prompt("API key for this queen (empty: none)", apiKey.get());
  if (key === null) return;
  apiKey.set(key.trim());
  location.reload();
});
mountPlayground();
mountOperations();
mountLogs();
void refreshModels();
setInterval(() => void refreshModels(), MODELS_REFRESH_MS);
void watchCluster(new Charts());
