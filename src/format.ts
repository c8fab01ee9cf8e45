// Human-readable sizes and labels for messages and tables.
/** A worker split over nodes, by each node's part: "pc 60% + mac 40%". */
export function splitLabel(parts: { node: string; share: number }[]): string {
  return parts.map((p) => `${p.node} ${Math.round(p.share * 100)}%`).join(" + ");
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
