// The one place the queen asks what a name means and how its model is served: names from config.toml (read at start)
// and names made at run time (/api/copy, pulls by shorthand, `rbee models alias`: names.db), and each model's
// settings from config.toml. Every dialect resolves through it (models.ts).
import { type AliasRow, Aliases, withTag } from "../../catalog/aliases";
import { looksLikeModelRef, parseModelRef } from "../../catalog/refs";
import type { ModelConfig, QueenConfig } from "./config-file";
import type { Registry } from "./registry";

export class ModelNames {
  private readonly aliases: Aliases;

  constructor(
    home: string,
    private readonly config: QueenConfig,
    private readonly registry: Registry,
  ) {
    this.aliases = new Aliases(home);
  }

  /** What a name points at (a reference, a path, a catalog name), or undefined for a name it does not know. */
  resolve(name: string): string | undefined {
    const tagged = withTag(name);
    const target = this.config.models.find((m) => m.name === tagged)?.model ?? this.aliases.resolve(name);
    // A config name given by the Hub's shorthand points at what that shorthand was pulled as.
    return (target && target !== name && this.aliases.resolve(target)) || target;
  }

  set(name: string, target: string): AliasRow {
    return this.aliases.set(name, target);
  }

  remove(name: string): boolean {
    return this.aliases.remove(name);
  }

  /** Every name, config.toml's first, with the reference it comes to where a catalog knows it. */
  list(): { name: string; ref: string }[] {
    return [...this.config.models.map((m) => ({ name: m.name, ref: m.model })), ...this.aliases.list()].map((n) => ({ name: n.name, ref: this.refOf(n.ref) ?? n.ref }));
  }

  /** The config.toml entry whose model is this reference (slots, ctx, keep-alive, pinned), if any. */
  settingsFor(modelRef: string): ModelConfig | undefined {
    const entries = this.config.models.filter((m) => this.refOf(m.model) === modelRef);
    // Several names for one model: the first one's settings, pinned if any of them is.
    return entries[0] && { ...entries[0], pinned: entries.some((m) => m.pinned), min_replicas: Math.max(...entries.map((m) => m.min_replicas)) };
  }

  /** config.toml's entries to load when the queen starts (preload, or kept at a minimum of replicas). */
  preloads(): ModelConfig[] {
    return this.config.models.filter((m) => m.preload || m.min_replicas > 0);
  }

  close(): void {
    this.aliases.close();
  }

  private refOf(target: string): string | undefined {
    const known = this.registry.findModel(this.aliases.resolve(target) ?? target);
    if (known) return known.ref;
    return looksLikeModelRef(target) ? parseModelRef(target).ref : undefined;
  }
}
