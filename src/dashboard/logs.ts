// The live log view: a hive's own log or a worker's, followed as server-sent events until another is chosen.
import { api, readEvents } from "./api";
import { byId, el, fillSelect } from "./dom";

const MAX_LINES = 1000;
let following: AbortController | undefined;

export function mountLogs(): void {
  byId<HTMLSelectElement>("log-source").addEventListener("change", (e) => follow((e.target as HTMLSelectElement).value));
  byId("log-clear").addEventListener("click", () => byId("log-lines").replaceChildren());
}

/** Keeps the choices in step with the cluster: every up node's hive, every worker. */
export function setLogSources(nodes: string[], workers: { id: string; node: string }[]): void {
  fillSelect(byId<HTMLSelectElement>("log-source"), [
    ["", "choose a log…"],
    ...nodes.map((n): [string, string] => [`/v1/nodes/${encodeURIComponent(n)}/logs`, `hive of ${n}`]),
    ...workers.map((w): [string, string] => [`/v1/workers/${encodeURIComponent(w.id)}/logs`, `worker ${w.id} on ${w.node}`]),
  ]);
}

export function follow(path: string): void {
  following?.abort();
  const select = byId<HTMLSelectElement>("log-source");
  if (select.value !== path) select.value = path;
  const out = byId("log-lines");
  out.replaceChildren();
  if (!path) return;
  const aborter = new AbortController();
  following = aborter;
  void (async () => {
    try {
      const res = await api(path, { signal: aborter.signal });
      await readEvents(res, ({ data }) => {
        const { t, line } = JSON.parse(data) as { t: number; line: string };
        const stick = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
        out.append(el("div", { class: "log-line" }, el("time", {}, new Date(t).toLocaleTimeString()), " ", line));
        while (out.childElementCount > MAX_LINES) out.firstElementChild!.remove();
        if (stick) out.scrollTop = out.scrollHeight;
      });
      if (!aborter.signal.aborted) out.append(el("div", { class: "log-end" }, "(the log ended: its process is gone)"));
    } catch (err) {
      if (!aborter.signal.aborted) out.append(el("div", { class: "log-end" }, `(cannot follow this log: ${err instanceof Error ? err.message : err})`));
    }
  })();
}
