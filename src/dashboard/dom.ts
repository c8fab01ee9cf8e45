// Small DOM helpers: elements built with text (never HTML strings), and number formats.
type Child = Node | string | number | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) if (child !== null && child !== undefined && child !== false) node.append(child instanceof Node ? child : String(child));
  return node;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`no #${id}`);
  return node as T;
}

/** Gives a select these [value, text] options where they changed, keeping the one chosen if it is still there. */
export function fillSelect(select: HTMLSelectElement, options: [string, string][]): void {
  const key = (pairs: [string, string][]) => pairs.map(([v, t]) => `${v}|${t}`).join("\n");
  if (key([...select.options].map((o) => [o.value, o.text])) === key(options)) return;
  const chosen = select.value;
  select.replaceChildren(...options.map(([value, text]) => el("option", { value }, text)));
  if (options.some(([v]) => v === chosen)) select.value = chosen;
}

/** A table with a header row; an empty-state line where there are no rows. */
export function table(headers: string[], rows: Child[][], empty: string, rowAttrs: (i: number) => Record<string, string> = () => ({})): HTMLElement {
  if (!rows.length) return el("p", { class: "empty" }, empty);
  return el("table", {}, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))), el("tbody", {}, ...rows.map((r, i) => el("tr", rowAttrs(i), ...r.map((cell) => el("td", {}, cell))))));
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60_000)} min`;
}
