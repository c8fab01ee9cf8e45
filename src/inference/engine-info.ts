// The engine a process runs models on, as /v1/ready, the hive's devices, `rbee status`, the dashboard and `rbee doctor`
// show it: llama.cpp's release, the backend, whose addon, and the features it lacks (addon.ts's ENGINE_FEATURES).
import type { Llama } from "node-llama-cpp";
import type { EngineInfo } from "../wire/worker";
import { engineFeaturesOff, llamaCppReleaseOf } from "./addon";
import type { Backend } from "./backend";

export type { EngineInfo };

export function engineInfoOf(llama: Llama, backend: Backend): EngineInfo {
  const off = engineFeaturesOff(llama);
  return { release: llamaCppReleaseOf(llama), backend, addon: off.includes("batched-sampling") ? "stock" : "rbee", features_off: off };
}

/** One line: "llama.cpp v0.4.0 on metal, stock addon; off: batched-sampling, sequence-copy, …". */
export function describeEngine(engine: EngineInfo): string {
  const off = engine.features_off.length ? `; off: ${engine.features_off.join(", ")}` : "; every feature";
  return `llama.cpp ${engine.release} on ${engine.backend}, ${engine.addon} addon${off}`;
}

/** A table cell: "v0.5.0 rbee", or "v0.4.0 stock (off: batched-sampling, sequence-copy, +7)". */
export function shortEngine(engine: EngineInfo): string {
  const off = engine.features_off;
  return `${engine.release} ${engine.addon}${off.length ? ` (off: ${off.slice(0, 2).join(", ")}${off.length > 2 ? `, +${off.length - 2}` : ""})` : ""}`;
}
