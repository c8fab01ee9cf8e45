// The cluster view: nodes with their devices, workers, queues and models, drawn again from each snapshot.
import type { ClusterSnapshot } from "../roles/queen/cluster-view";
import { bytes, byId, el, seconds, table } from "./dom";
import { describeEngine, shortEngine } from "../inference/engine-info";
import { splitLabel } from "../format";

export interface WorkerActions {
  stop(id: string): void;
  logs(id: string): void;
  unload(model: string): void;
}

export function renderCluster(s: ClusterSnapshot, actions: WorkerActions): void {
  byId("totals").replaceChildren(
    stat("nodes up", `${s.nodes.filter((n) => n.state === "up").length} / ${s.nodes.length}`),
    stat("workers", s.workers.length),
    stat("tokens/s", s.totals.tokens_per_s.toFixed(1)),
    stat("in flight", s.totals.inflight),
    stat("waiting", s.queues.reduce((n, q) => n + q.depth, 0)),
  );
  byId("nodes").replaceChildren(
    table(
      ["node", "state", "address", "platform", "engine", "CPU", "RAM used / total", "devices"],
      s.nodes.map((n) => [
        n.name,
        el("span", { class: `state ${n.state}` }, n.state),
        n.ssh ?? n.hive_url ?? "-",
        n.devices?.platform ?? "-",
        n.devices?.engine ? el("span", { title: describeEngine(n.devices.engine) }, shortEngine(n.devices.engine)) : "-",
        n.devices ? `${n.devices.cpu_cores} cores` : "-",
        n.devices ? `${bytes(n.devices.ram_total_bytes - n.devices.ram_free_bytes)} / ${bytes(n.devices.ram_total_bytes)}` : "-",
        n.devices?.gpus.length ? el("div", {}, ...n.devices.gpus.map(gpuLine)) : n.devices ? `CPU (${n.devices.backend})` : "-",
      ]),
      "no nodes",
      (i) => ({ "data-node": s.nodes[i]!.name }),
    ),
  );
  byId("workers").replaceChildren(
    table(
      ["worker", "node", "model", "backend", "state", "slots busy", "tokens/s", "keep-alive left", ""],
      s.workers.map((w) => [
        w.id,
        w.split ? splitLabel(w.split) : w.node,
        shortRef(w.model_ref),
        `${w.backend ?? "-"}${w.devices ? ` GPU ${w.devices.join("+")}` : w.device && w.device !== w.backend ? ` ${w.device}` : ""}`,
        el("span", { class: `state ${w.state}` }, w.state),
        `${w.slots_busy} / ${w.slots_total}`,
        w.tokens_per_s.toFixed(1),
        w.keep_alive_until ? seconds(Math.max(0, Date.parse(w.keep_alive_until) - s.time)) : "kept",
        el("span", { class: "actions" }, button("Logs", () => actions.logs(w.id)), button("Stop", () => actions.stop(w.id), "danger")),
      ]),
      "no workers",
      (i) => ({ "data-worker": s.workers[i]!.id }),
    ),
  );
  byId("queues").replaceChildren(
    table(["model", "waiting", "oldest wait"], s.queues.map((q) => [shortRef(q.model), q.depth, seconds(q.oldest_wait_ms)]), "nothing waits"),
  );
  const loaded = new Set(s.workers.map((w) => w.model_ref));
  byId("models").replaceChildren(
    table(
      ["node", "model", "reference", "size", "quantization", "loaded", ""],
      s.nodes.flatMap((n) =>
        n.models.map((m) => [n.name, m.name, el("span", { class: "ref" }, m.ref), bytes(m.size_bytes), m.quantization ?? "-", loaded.has(m.ref) ? "yes" : "no", loaded.has(m.ref) ? button("Unload", () => actions.unload(m.ref), "danger") : null]),
      ),
      "no models on any node",
    ),
  );
}

function gpuLine(g: { index: number; name: string; vram_total_bytes: number; vram_free_bytes: number }): HTMLElement {
  const used = g.vram_total_bytes - g.vram_free_bytes;
  const meter = el("meter", { min: "0", max: String(g.vram_total_bytes), value: String(used) });
  return el("div", { class: "gpu" }, `GPU ${g.index} ${g.name} `, meter, ` ${bytes(used)} used, ${bytes(g.vram_free_bytes)} free`);
}

function stat(label: string, value: string | number): HTMLElement {
  return el("div", { class: "stat" }, el("span", { class: "value" }, value), el("span", { class: "label" }, label));
}

function button(label: string, onClick: () => void, kind = ""): HTMLButtonElement {
  const b = el("button", { class: kind, type: "button" }, label);
  b.addEventListener("click", onClick);
  return b;
}

export function shortRef(ref: string): string {
  return ref.split("/").at(-1) ?? ref;
}
