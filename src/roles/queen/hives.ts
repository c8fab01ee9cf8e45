// The queen's hives: starts the local one as a child process (remote ones through a launcher, over SSH), takes their
// announcements, watches their health, finds them again after a restart, and shuts them all down on the way out.
import { settlesWithin } from "../../deadline";
import type { Subprocess } from "bun";
import { HiveClient } from "../../clients/hive-client";
import { RbeeError } from "../../errors";
import { logger } from "../../log";
import { LOCAL_NODE, type NodeRegistry, type NodeRow } from "../../nodes/registry";
import { selfCommand } from "../../self";
import type { HiveAnnouncement } from "../../wire/hive";
import type { HiveEntry, Registry, WorkerEntry } from "./registry";
import type { Tunnel } from "../../ssh/tunnel";

/** Starts a hive on a remote node and stops it (implemented over SSH by the keeper's side). */
export interface RemoteHiveLauncher {
  start(node: NodeRow, queenUrl: string): Promise<void>;
  stop(node: NodeRow): Promise<void>;
  /** A port on the queen's loopback that leads to `port` on the node's loopback, over its SSH connection. */
  tunnel(node: NodeRow, port: number): Promise<Tunnel>;
}

export interface HivesOptions {
  registry: Registry;
  nodes: NodeRegistry;
  home: string;
  queenUrl: () => string;
  apiToken?: string;
  checkIntervalMs: number;
  onWorkersGone: (workers: WorkerEntry[]) => void;
  remote?: RemoteHiveLauncher;
}

const ANNOUNCE_TIMEOUT_MS = 30_000;
const HEALTH_TIMEOUT_MS = 2000;
const HEALTH_FAILURES = 2;
const CHILD_EXIT_GRACE_MS = 10_000;
const log = logger("queen");

export class Hives {
  private readonly children = new Map<string, Subprocess>();
  private readonly waiting = new Map<string, PromiseWithResolvers<HiveEntry>>();
  private readonly starting = new Map<string, Promise<HiveEntry>>();
  private timer: Timer | undefined;

  constructor(private readonly options: HivesOptions) {}

  knows(node: string): boolean {
    return node === LOCAL_NODE || this.options.registry.hives.has(node) || this.options.nodes.get(node) !== undefined;
  }

  /** Returns the node's hive, starting it if it is not up. */
  ensure(node: string): Promise<HiveEntry> {
    const up = this.options.registry.hives.get(node);
    if (up?.state === "up") return Promise.resolve(up);
    let starting = this.starting.get(node);
    if (!starting) {
      starting = this.start(node).finally(() => this.starting.delete(node));
      this.starting.set(node, starting);
    }
    return starting;
  }

  announced(a: HiveAnnouncement): HiveEntry {
    // Hives announce themselves every few seconds: write the node's address only when it is new.
    if (this.options.registry.hives.get(a.node)?.url !== a.url) this.options.nodes.setHiveUrl(a.node, a.url);
    const entry = this.options.registry.upsertHive(a);
    this.waiting.get(a.node)?.resolve(entry);
    this.waiting.delete(a.node);
    return entry;
  }

  /** After a restart: every node whose hive still answers at its last address is back. */
  async reconnect(): Promise<void> {
    await Promise.all(
      this.options.nodes.list().filter((n) => n.hiveUrl).map(async (n) => {
        const client = new HiveClient(n.hiveUrl!, this.options.apiToken);
        if (!(await client.isUp())) return;
        try {
          const [devices, models, workers] = await Promise.all([client.devices(), client.models(), client.workers()]);
          this.options.registry.upsertHive({ node: n.name, url: n.hiveUrl!, pid: 0, devices, models, workers });
          log.info(`found the hive of ${n.name} again at ${n.hiveUrl}`);
        } catch {
          // it will announce itself
        }
      }),
    );
  }

  watch(): void {
    this.timer = setInterval(() => void this.checkAll(), this.options.checkIntervalMs);
  }

  async shutdownAll(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.options.registry.upHives().map((h) => h.client.shutdown().catch(() => {})));
    await Promise.all(
      [...this.children.values()].map(async (child) => {
        const exited = await settlesWithin(child.exited, CHILD_EXIT_GRACE_MS);
        if (!exited) child.kill("SIGKILL");
      }),
    );
    if (this.options.remote)
      await Promise.all(this.options.nodes.list().filter((n) => n.sshHost && this.options.registry.hives.has(n.name)).map((n) => this.options.remote!.stop(n).catch(() => {})));
  }

  /** A tunnel from the queen's loopback to a port on the node's loopback (its SSH connection). */
  tunnel(node: string, port: number): Promise<Tunnel> {
    const row = this.options.nodes.get(node);
    if (!row?.sshHost || !this.options.remote) throw new RbeeError("BAD_REQUEST", `node ${node} is not reached over SSH: it cannot lend its devices to this queen's workers`);
    return this.options.remote.tunnel(row, port);
  }

  private async start(node: string): Promise<HiveEntry> {
    const announced = Promise.withResolvers<HiveEntry>();
    this.waiting.set(node, announced);
    const row = this.options.nodes.get(node);
    if (node === LOCAL_NODE && !row?.sshHost) this.startLocal();
    else if (row?.sshHost && this.options.remote) await this.options.remote.start(row, this.options.queenUrl());
    else throw new RbeeError("NOT_FOUND", `unknown node "${node}"`);
    const timeout = setTimeout(() => announced.reject(new RbeeError("TIMEOUT", `the hive of ${node} did not announce itself within ${ANNOUNCE_TIMEOUT_MS / 1000} s`)), ANNOUNCE_TIMEOUT_MS);
    try {
      return await announced.promise;
    } finally {
      clearTimeout(timeout);
    }
  }

  private startLocal(): void {
    const args = ["hive", "--port", "0", "--home", this.options.home, "--queen-url", this.options.queenUrl(), "--node-name", LOCAL_NODE, "--watch-stdin"];
    const child = Bun.spawn([...selfCommand(), ...args], {
      stdin: "pipe",
      stdout: "ignore",
      stderr: "inherit",
      env: { ...process.env, ...(this.options.apiToken && { RBEE_API_TOKEN: this.options.apiToken }) },
    });
    this.children.set(LOCAL_NODE, child);
    log.info(`started the local hive`, { pid: child.pid });
    void child.exited.then((code) => {
      this.children.delete(LOCAL_NODE);
      this.waiting.get(LOCAL_NODE)?.reject(new RbeeError("WORKER_FAILED", `the local hive exited with code ${code} before announcing itself`));
      this.hiveDown(LOCAL_NODE, `exited with code ${code}`);
    });
  }

  private async checkAll(): Promise<void> {
    for (const hive of this.options.registry.upHives()) {
      const ok = await fetch(`${hive.url}/v1/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) }).then((r) => r.ok, () => false);
      if (ok) hive.failures = 0;
      else if (++hive.failures >= HEALTH_FAILURES) this.hiveDown(hive.node, "stopped answering");
    }
  }

  private hiveDown(node: string, why: string): void {
    const hive = this.options.registry.hives.get(node);
    if (!hive || hive.state === "down") return;
    log.warn(`the hive of ${node} ${why}; its workers leave the registry`);
    this.options.onWorkersGone(this.options.registry.markHiveDown(node));
  }
}
