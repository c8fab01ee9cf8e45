// A bounded soak under faults (scripts/lib/soak-queen.ts): clients in every dialect with random disconnects while
// workers are killed with SIGKILL and the hive is killed and comes back. Every request ends with its tokens or a clear
// error, none hangs, every slot is idle after, the queen's memory stays bounded, nothing is left running, and the
// catalog still reads.
import { expect, test } from "bun:test";
import { soakFreshQueen } from "../../../scripts/lib/soak-queen";

/** The queen's resident memory may grow this much over the soak (+24 MiB over 60 s, +31 over 150 s here). */
const RSS_GROWTH_BOUND_MIB = 64;

test("a bounded soak with killed workers and a restarted hive", async () => {
  const report = await soakFreshQueen({ seconds: 12, clients: 4 });
  expect(report.unclear).toEqual([]);
  expect(report.hung).toBe(0);
  expect(report.completed).toBeGreaterThan(100);
  expect(report.workersKilled).toBeGreaterThan(0);
  expect(report.hiveRestarts).toBe(1);
  expect(report.completed + report.clearErrors + report.disconnects).toBe(report.requests);
  expect(report.queenInflight.every((n) => n === 0)).toBe(true);
  expect(report.slotsIdle.every((s) => s.split("/")[0] === s.split("/")[1])).toBe(true);
  expect(report.queenRssMiB[1]! - report.queenRssMiB[0]!).toBeLessThan(RSS_GROWTH_BOUND_MIB);
  expect(report.processesLeft).toBe(0);
  expect(report.catalogReads).toBe(true);
  expect(report.queenErrors).toEqual([]);
}, 90_000);
