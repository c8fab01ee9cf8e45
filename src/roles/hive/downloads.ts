// Model downloads into the catalog: from the Hugging Face Hub (resumable with Range, sha256-checked, written under a
// temporary name and renamed when whole) or by registering a local file. Two requests for one model share one download.
import { fileDownloadInfo, HubApiError } from "@huggingface/hub";
import { closeSync, mkdirSync, openSync, renameSync, rmSync, statSync, statfsSync, writeSync } from "node:fs";
import { dirname, resolve, sep } from "node:path";
import type { Catalog, CatalogEntry } from "../../catalog/catalog";
import { isHubShorthand, resolveHubShorthand } from "../../catalog/hub-shorthand";
import { type ModelRef, modelId, modelName, parseModelRef } from "../../catalog/refs";
import { RbeeError } from "../../errors";
import { checkGgufFile } from "../../inference/gguf-file";
import { summarizeGguf } from "../../inference/gguf-metadata";
import { formatBytes } from "../../format";
import { logger } from "../../log";

export interface DownloadProgress {
  bytes_done: number;
  bytes_total: number;
  rate_bps: number;
  eta_s: number | null;
}

export interface HubOptions {
  endpoint: string;
  token?: string;
}

export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";
/** Attempts per file before a download fails; each one resumes where the last stopped. */
const ATTEMPTS = 3;
const RETRY_DELAY_MS = 500;
/** Room left on the disk beyond the model itself. */
const DISK_MARGIN_BYTES = 64 * 1024 * 1024;
const RATE_WINDOW_MS = 2000;

const log = logger("hive");

export class Download {
  readonly done: Promise<CatalogEntry>;
  progress: DownloadProgress = { bytes_done: 0, bytes_total: 0, rate_bps: 0, eta_s: null };
  private readonly listeners = new Set<(p: DownloadProgress) => void>();
  private readonly samples: { at: number; bytes: number }[] = [];

  constructor(
    readonly ref: ModelRef,
    run: (download: Download) => Promise<CatalogEntry>,
  ) {
    this.done = run(this);
  }

  subscribe(listener: (p: DownloadProgress) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  report(done: number, total: number): void {
    const now = performance.now();
    this.samples.push({ at: now, bytes: done });
    while (this.samples.length > 2 && now - this.samples[0]!.at > RATE_WINDOW_MS) this.samples.shift();
    const first = this.samples[0]!;
    const rate = now > first.at ? ((done - first.bytes) * 1000) / (now - first.at) : 0;
    this.progress = { bytes_done: done, bytes_total: total, rate_bps: Math.round(rate), eta_s: rate > 0 ? Math.round((total - done) / rate) : null };
    for (const listener of this.listeners) listener(this.progress);
  }
}

export class Downloads {
  private readonly inflight = new Map<string, Download>();

  constructor(
    private readonly catalog: Catalog,
    private readonly hub: HubOptions,
  ) {}

  /** Starts (or joins) the download of a model named by a reference or the Hub's shorthand (ORG/REPO:QUANT). */
  async startNamed(text: string): Promise<Download> {
    return this.start(isHubShorthand(text) ? await resolveHubShorthand(text, this.hub) : text);
  }

  /** Starts (or joins) the download of a model; resolves to its catalog entry. */
  start(refText: string): Download {
    const ref = parseModelRef(refText);
    const existing = this.inflight.get(ref.ref);
    if (existing) return existing;
    const download = new Download(ref, (d) => (ref.provider === "hf" ? this.fromHub(ref, d) : this.fromFile(ref, d)));
    this.inflight.set(ref.ref, download);
    const forget = () => this.inflight.delete(ref.ref);
    download.done.then(forget, forget);
    return download;
  }

  private async fromFile(ref: Extract<ModelRef, { provider: "file" }>, download: Download): Promise<CatalogEntry> {
    const { bytes } = await checkGgufFile(ref.path);
    const hasher = new Bun.CryptoHasher("sha256");
    let done = 0;
    for await (const chunk of Bun.file(ref.path).stream()) {
      hasher.update(chunk);
      download.report((done += chunk.length), bytes);
    }
    return this.record(ref, ref.path, bytes, hasher.digest("hex"));
  }

  private async fromHub(ref: Extract<ModelRef, { provider: "hf" }>, download: Download): Promise<CatalogEntry> {
    const known = this.catalog.find(ref.ref);
    if (known?.status === "ready") return known;
    const infos = await Promise.all(ref.parts.map((path) => this.fileInfo(ref, path)));
    const targets = ref.parts.map((path) => this.targetPath(ref, path));
    const total = infos.reduce((sum, i) => sum + i.size, 0);
    const already = targets.reduce((sum, t, i) => sum + (sizeOf(t) === infos[i]!.size ? infos[i]!.size : sizeOf(`${t}.part`)), 0);
    ensureRoom(this.catalog.modelsDir, total - already);
    let doneBefore = 0;
    const hashes: string[] = [];
    for (let i = 0; i < ref.parts.length; i++) {
      const info = infos[i]!;
      hashes.push(await this.fetchPart(ref, ref.parts[i]!, targets[i]!, info, (bytes) => download.report(doneBefore + bytes, total)));
      doneBefore += info.size;
    }
    log.info(`downloaded ${ref.ref}`, { bytes: total });
    return this.record(ref, targets[0]!, total, hashes[0]!);
  }

  private async fileInfo(ref: Extract<ModelRef, { provider: "hf" }>, path: string): Promise<{ size: number; url: string; sha256: string | null }> {
    const where = `${ref.org}/${ref.repo}/${path}@${ref.revision}`;
    let info;
    try {
      info = await fileDownloadInfo({ repo: `${ref.org}/${ref.repo}`, path, revision: ref.revision, hubUrl: this.hub.endpoint, accessToken: this.hub.token });
    } catch (err) {
      if (err instanceof HubApiError) {
        if (err.statusCode === 404) throw new RbeeError("MODEL_NOT_FOUND", `${where} is not on ${this.hub.endpoint} (HTTP 404)`);
        if (err.statusCode === 401 || err.statusCode === 403)
          throw new RbeeError("UPSTREAM_REFUSED", `${this.hub.endpoint} refused ${where} (HTTP ${err.statusCode}): ${this.hub.token ? "HF_TOKEN has no access to it" : "set HF_TOKEN"}`);
        throw new RbeeError("UPSTREAM_REFUSED", `${this.hub.endpoint} answered HTTP ${err.statusCode} for ${where}`);
      }
      throw new RbeeError("UPSTREAM_UNREACHABLE", `cannot reach ${this.hub.endpoint}: ${err instanceof Error ? err.message : err}`);
    }
    if (!info) throw new RbeeError("MODEL_NOT_FOUND", `${where} is not on ${this.hub.endpoint}`);
    const etag = info.etag.replace(/^W\//, "").replaceAll('"', "");
    return { size: info.size, url: info.url, sha256: /^[0-9a-f]{64}$/.test(etag) ? etag : null };
  }

  private targetPath(ref: Extract<ModelRef, { provider: "hf" }>, path: string): string {
    const root = resolve(this.catalog.modelsDir, "hf");
    const target = resolve(root, ref.org, ref.repo, ref.revision, path);
    if (!target.startsWith(root + sep)) throw new RbeeError("BAD_REQUEST", `model path ${path} leaves the models folder`);
    return target;
  }

  /** Downloads one file into `${target}.part`, resuming what is there, retrying; checks it and renames it. Returns its sha256. */
  private async fetchPart(ref: Extract<ModelRef, { provider: "hf" }>, path: string, target: string, info: { size: number; url: string; sha256: string | null }, onBytes: (n: number) => void): Promise<string> {
    if (sizeOf(target) === info.size) return info.sha256 ?? (await sha256OfFile(target));
    mkdirSync(dirname(target), { recursive: true });
    const partial = `${target}.part`;
    const url = `${this.hub.endpoint}/${ref.org}/${ref.repo}/resolve/${encodeURIComponent(ref.revision)}/${path}`;
    let lastError: unknown;
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        await this.fetchInto(url, partial, info.size, onBytes);
        lastError = undefined;
        break;
      } catch (err) {
        lastError = err;
        if (err instanceof RbeeError && err.code !== "UPSTREAM_UNREACHABLE") throw err;
        log.warn(`download of ${path} interrupted (attempt ${attempt}/${ATTEMPTS}): ${err instanceof Error ? err.message : err}`);
        await Bun.sleep(RETRY_DELAY_MS * attempt);
      }
    }
    if (lastError) throw lastError;
    const sha256 = await sha256OfFile(partial);
    if (info.sha256 && sha256 !== info.sha256) {
      rmSync(partial, { force: true });
      throw new RbeeError("CHECKSUM_MISMATCH", `${path}: sha256 ${sha256} does not match the Hub's ${info.sha256}; the download was discarded`);
    }
    renameSync(partial, target);
    return sha256;
  }

  private async fetchInto(url: string, partial: string, size: number, onBytes: (n: number) => void): Promise<void> {
    let have = sizeOf(partial);
    if (have > size) (rmSync(partial), (have = 0));
    if (have === size) return;
    let res: Response;
    try {
      res = await fetch(url, { headers: { ...(have > 0 && { range: `bytes=${have}-` }), ...(this.hub.token && { authorization: `Bearer ${this.hub.token}` }) } });
    } catch (err) {
      throw new RbeeError("UPSTREAM_UNREACHABLE", `cannot reach ${new URL(url).origin}: ${err instanceof Error ? err.message : err}`);
    }
    if (res.status === 200 && have > 0) have = 0; // the server ignored the range: start over
    else if (res.status !== 200 && res.status !== 206) throw new RbeeError("UPSTREAM_REFUSED", `${url} answered HTTP ${res.status}`);
    const fd = openSync(partial, have > 0 ? "a" : "w");
    try {
      onBytes(have);
      for await (const chunk of res.body!) {
        writeSync(fd, chunk);
        have += chunk.length;
        onBytes(have);
      }
    } catch (err) {
      throw new RbeeError("UPSTREAM_UNREACHABLE", `connection lost at byte ${have} of ${size}: ${err instanceof Error ? err.message : err}`);
    } finally {
      closeSync(fd);
    }
    if (have !== size) throw new RbeeError("UPSTREAM_UNREACHABLE", `connection closed at byte ${have} of ${size}`);
  }

  private async record(ref: ModelRef, path: string, sizeBytes: number, sha256: string): Promise<CatalogEntry> {
    const summary = await summarizeGguf(path);
    return this.catalog.upsert({ id: modelId(ref.ref), ref: ref.ref, name: modelName(ref), provider: ref.provider, path, sizeBytes, sha256, ...summary, downloadedAt: new Date(), lastUsedAt: null });
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function ensureRoom(dir: string, needed: number): void {
  mkdirSync(dir, { recursive: true });
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  if (needed + DISK_MARGIN_BYTES > free)
    throw new RbeeError("DISK_FULL", `the model needs ${formatBytes(needed)} more on disk, ${formatBytes(free)} free in ${dir}`);
}



async function sha256OfFile(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}

export function hubOptionsFromEnv(): HubOptions {
  return { endpoint: (process.env.RBEE_HF_ENDPOINT ?? DEFAULT_HF_ENDPOINT).replace(/\/+$/, ""), token: process.env.HF_TOKEN || undefined };
}

