// The other nodes' devices each split worker holds: an rpc-server lent by each node's hive and the SSH tunnel the
// worker reaches it through. Given back (tunnel closed, server stopped) when the worker leaves the registry, however it
// goes (stopped, unloaded, dead, its hive or a lender down), or when its spawn fails.
import { logger } from "../../log";
import type { Tunnel } from "../../ssh/tunnel";
import type { LentServer } from "../../wire/hive";
import type { HiveEntry } from "./registry";
import type { Lender } from "./pool-placement";

export interface Lease {
  node: string;
  hive: HiveEntry;
  server: LentServer;
  tunnel?: Tunnel;
}

const log = logger("queen");

export class PoolSplits {
  private readonly byWorker = new Map<string, Lease[]>();

  constructor(private readonly openTunnel: (node: string, port: number) => Promise<Tunnel>) {}

  /** Each lender's hive starts an rpc-server and the queen opens a tunnel to it; on failure what was taken is given back. */
  async borrow(lenders: Lender[], hiveOf: (node: string) => HiveEntry): Promise<Lease[]> {
    const leases: Lease[] = [];
    try {
      for (const lender of lenders) {
        const hive = hiveOf(lender.node);
        const lease: Lease = { node: lender.node, hive, server: await hive.client.lend(lender.devices ?? undefined) };
        leases.push(lease);
        lease.tunnel = await this.openTunnel(lender.node, lease.server.port);
      }
      return leases;
    } catch (err) {
      await this.giveBack(leases);
      throw err;
    }
  }

  attach(workerId: string, leases: Lease[]): void {
    this.byWorker.set(workerId, leases);
  }

  /** The worker left: its tunnels close and its lenders stop their servers. */
  release(workerId: string): void {
    const leases = this.byWorker.get(workerId);
    if (!leases) return;
    this.byWorker.delete(workerId);
    void this.giveBack(leases);
  }

  /** Every lease, on the queen's way out (the hives stop their servers with themselves too). */
  async releaseAll(): Promise<void> {
    const all = [...this.byWorker.values()].flat();
    this.byWorker.clear();
    await this.giveBack(all);
  }

  /** Closes the tunnels and stops the servers. */
  async giveBack(leases: Lease[]): Promise<void> {
    for (const lease of leases) lease.tunnel?.close();
    await Promise.all(
      leases.map((lease) =>
        lease.hive.client.unlend(lease.server.id).catch((err) => log.debug(`${lease.node}: rpc-server ${lease.server.id} already gone (${err instanceof Error ? err.message : err})`)),
      ),
    );
  }
}
