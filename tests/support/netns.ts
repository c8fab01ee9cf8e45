// Several machines on one box: each test host is a network namespace joined to this one by a veth pair, running its
// own OpenSSH server (own host key, own authorised key, own RBEE_HOME). Needs root and iproute2 + openssh-server.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { removeTempHomes, tempHome } from "./home";
import { killLocalHubs } from "./hub";
import { killStartedProcesses } from "./processes";

export interface TestHost {
  name: string;
  ns: string;
  /** The host's address inside its namespace, where sshd listens. */
  ip: string;
  /** This side's address on the bridge every test host is on. */
  gatewayIp: string;
  dir: string;
  home: string;
  rbeePath: string;
  hostKeyPub: string;
  sshd?: ReturnType<typeof Bun.spawn<"ignore", "ignore", "pipe">>;
  startSshd(): Promise<void>;
  stopSshd(): Promise<void>;
  /** Pids of every process in the host's namespace. */
  pids(): number[];
}

export interface TestNetwork {
  hosts: TestHost[];
  /** This side's address on the bridge: where servers of the test listen for the hosts. */
  gatewayIp: string;
  clientKey: string;
  teardown(): Promise<void>;
}

function run(cmd: string[], allowFail = false): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0 && !allowFail) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

/** Why this machine cannot host test namespaces, or undefined when it can. */
export function cannotCreateNamespaces(): string | undefined {
  if (process.getuid?.() !== 0) return "not root";
  for (const tool of ["ip", "/usr/sbin/sshd", "ssh-keygen"]) if (Bun.spawnSync(["which", tool]).exitCode !== 0) return `${tool} is missing (apt-get install iproute2 openssh-server)`;
  const probe = `rbprobe${process.pid % 100000}`;
  const r = Bun.spawnSync(["ip", "netns", "add", probe], { stderr: "pipe" });
  if (r.exitCode !== 0) return `cannot create a network namespace: ${r.stderr.toString().trim()}`;
  run(["ip", "netns", "del", probe], true);
  return undefined;
}

/**
 * `unames`: what `uname -sm` says on a host (a wrapper first on its PATH), so that a node can pass for another
 * machine (an aarch64 board, a Mac) while running this one's programs. `env`: more variables for a host's sessions
 * (values without spaces or quotes: sshd's SetEnv).
 */
export async function createTestNetwork(names: string[], { unames = {}, env = {} }: { unames?: Record<string, string>; env?: Record<string, Record<string, string>> } = {}): Promise<TestNetwork> {
  const root = mkdtempSync(join(tmpdir(), "rbee-net-"));
  chmodSync(root, 0o755);
  const clientKey = join(root, "client_key");
  run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rbee-test-client", "-f", clientKey]);
  mkdirSync("/run/sshd", { recursive: true });
  const tag = (process.pid % 1000).toString();
  const subnet = 100 + (process.pid % 100);
  const bridge = `rbr${tag}`;
  const gatewayIp = `10.${subnet}.0.1`;
  run(["ip", "link", "del", bridge], true);
  run(["ip", "link", "add", bridge, "type", "bridge"]);
  run(["ip", "addr", "add", `${gatewayIp}/24`, "dev", bridge]);
  run(["ip", "link", "set", bridge, "up"]);
  const hosts: TestHost[] = [];
  for (const [i, name] of names.entries()) {
    const ns = `rbee${tag}-${name}`.slice(0, 30);
    const hostSide = `rv${tag}h${i}`;
    const nsSide = `rv${tag}n${i}`;
    const ip = `10.${subnet}.0.${i + 2}`;
    run(["ip", "netns", "del", ns], true);
    run(["ip", "link", "del", hostSide], true);
    run(["ip", "netns", "add", ns]);
    run(["ip", "link", "add", hostSide, "type", "veth", "peer", "name", nsSide]);
    run(["ip", "link", "set", nsSide, "netns", ns]);
    run(["ip", "link", "set", hostSide, "master", bridge]);
    run(["ip", "link", "set", hostSide, "up"]);
    run(["ip", "-n", ns, "addr", "add", `${ip}/24`, "dev", nsSide]);
    run(["ip", "-n", ns, "link", "set", nsSide, "up"]);
    run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    const dir = join(root, name);
    const home = join(dir, "rbee-home");
    mkdirSync(home, { recursive: true });
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_key")]);
    writeFileSync(join(dir, "authorized_keys"), await Bun.file(`${clientKey}.pub`).text());
    const fakeBin = join(dir, "fakebin");
    mkdirSync(fakeBin, { recursive: true });
    if (unames[name]) writeFileSync(join(fakeBin, "uname"), `#!/bin/sh\nif [ "$1" = "-sm" ]; then echo "${unames[name]}"; else exec /bin/uname "$@"; fi\n`, { mode: 0o755 });
    writeFileSync(
      join(dir, "sshd_config"),
      [
        `ListenAddress ${ip}`,
        "Port 22",
        `HostKey ${join(dir, "host_key")}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        "StrictModes no",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        `SetEnv RBEE_HOME=${home} RBEE_CACHE_DIR=${join(dir, "cache")} PATH=${fakeBin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${Object.entries(env[name] ?? {}).map(([k, v]) => ` ${k}=${v}`).join("")}`,
        "Subsystem sftp internal-sftp",
        "LogLevel ERROR",
        "",
      ].join("\n"),
    );
    const host: TestHost = {
      name,
      ns,
      ip,
      gatewayIp,
      dir,
      home,
      rbeePath: join(dir, "bin", "rbee"),
      hostKeyPub: (await Bun.file(join(dir, "host_key.pub")).text()).trim(),
      async startSshd() {
        host.sshd = Bun.spawn(["ip", "netns", "exec", ns, "/usr/sbin/sshd", "-D", "-e", "-f", join(dir, "sshd_config")], { stdout: "ignore", stderr: "pipe" });
        for (let tries = 0; ; tries++) {
          const ok = await Bun.connect({ hostname: ip, port: 22, socket: { data() {} } }).then((s) => (s.end(), true), () => false);
          if (ok) return;
          if (tries > 200 || host.sshd.exitCode !== null) throw new Error(`sshd in ${ns} did not start: ${await new Response(host.sshd.stderr as ReadableStream).text()}`);
          await Bun.sleep(20);
        }
      },
      async stopSshd() {
        host.sshd?.kill("SIGTERM");
        await host.sshd?.exited;
        host.sshd = undefined;
      },
      pids: () => run(["ip", "netns", "pids", ns], true).split("\n").filter(Boolean).map(Number),
    };
    await host.startSshd();
    hosts.push(host);
  }
  return {
    hosts,
    gatewayIp,
    clientKey,
    async teardown() {
      for (const [i, host] of hosts.entries()) {
        for (const pid of host.pids()) run(["kill", "-9", String(pid)], true);
        await host.sshd?.exited;
        run(["ip", "netns", "del", host.ns], true);
        run(["ip", "link", "del", `rv${tag}h${i}`], true);
      }
      run(["ip", "link", "del", bridge], true);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A keeper's environment for tests across hosts: its own home, the test's local Hub, and no queen found by default. */
export function keeperEnv(hubUrl: string): Record<string, string> & { RBEE_HOME: string } {
  const home = tempHome("rbee-keeper-");
  return { RBEE_HOME: home, RBEE_HF_ENDPOINT: hubUrl, RBEE_CACHE_DIR: join(home, "cache"), RBEE_QUEEN_URL: "http://127.0.0.1:1" };
}

/** Everything such a test started: rbee processes, the hosts, local Hubs, temporary homes. */
export async function tearDownHosts(net: TestNetwork | undefined): Promise<void> {
  await killStartedProcesses();
  await net?.teardown();
  await killLocalHubs();
  removeTempHomes();
}
