// What the queen's SSH tunnel (src/ssh/tunnel.ts) costs llama.cpp's RPC traffic, against a plain loopback connection:
// bulk throughput (the weights travel at load: 7 GiB for an 8B) and the time of one small request and its answer (every
// token waits for such round trips to each lending device). Runs OpenSSH's sshd on a loopback port (as root).
//   bun scripts/bench-tunnel.ts [--mib 1024] [--trips 5000]
import { mkdtempSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SshConnection } from "../src/ssh/connection";
import { openTunnel } from "../src/ssh/tunnel";

const arg = (name: string, fallback: number) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : fallback);
const MIB = arg("--mib", 1024);
const TRIPS = arg("--trips", 5000);

/** An echo server (round trips), or a sink that answers once it has had `expect` bytes (throughput). */
function server(expect?: number): Promise<Server> {
  const srv = createServer((socket) => {
    socket.setNoDelay(true);
    let seen = 0;
    socket.on("data", (chunk) => {
      if (expect === undefined) return void socket.write(chunk);
      seen += chunk.length;
      if (seen >= expect) socket.write("done");
    });
  });
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => resolve(srv)));
}
const portOf = (srv: Server) => (srv.address() as { port: number }).port;

async function throughput(port: number): Promise<number> {
  const socket = connect({ host: "127.0.0.1", port });
  await new Promise((r) => socket.once("connect", r));
  const block = Buffer.alloc(1 << 20, 7);
  const started = performance.now();
  const done = new Promise((r) => socket.once("data", r));
  for (let i = 0; i < MIB; i++) if (!socket.write(block)) await new Promise((r) => socket.once("drain", r));
  await done;
  const seconds = (performance.now() - started) / 1000;
  socket.destroy();
  return MIB / seconds;
}

async function roundTrip(port: number): Promise<number> {
  const socket = connect({ host: "127.0.0.1", port });
  socket.setNoDelay(true);
  await new Promise((r) => socket.once("connect", r));
  const message = Buffer.alloc(64, 3);
  const started = performance.now();
  for (let i = 0; i < TRIPS; i++) {
    const answered = new Promise((r) => socket.once("data", r));
    socket.write(message);
    await answered;
  }
  const us = ((performance.now() - started) * 1000) / TRIPS;
  socket.destroy();
  return us;
}

const dir = mkdtempSync(join(tmpdir(), "rbee-bench-tunnel-"));
Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_key")]);
Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(dir, "client_key")]);
writeFileSync(join(dir, "authorized_keys"), await Bun.file(join(dir, "client_key.pub")).text());
const sshPort = 20000 + (process.pid % 20000);
writeFileSync(join(dir, "sshd_config"), [`ListenAddress 127.0.0.1`, `Port ${sshPort}`, `HostKey ${join(dir, "host_key")}`, `PidFile ${join(dir, "sshd.pid")}`, `AuthorizedKeysFile ${join(dir, "authorized_keys")}`, "StrictModes no", "UsePAM no", "PasswordAuthentication no", "PermitRootLogin prohibit-password", "LogLevel ERROR", ""].join("\n"));
const sshd = Bun.spawn(["/usr/sbin/sshd", "-D", "-e", "-f", join(dir, "sshd_config")], { stderr: "inherit" });
await Bun.sleep(300);
const sink = await server(MIB * (1 << 20));
const echo = await server();
try {
  const conn = await SshConnection.connect({ host: "127.0.0.1", port: sshPort, user: "root", keyPath: join(dir, "client_key") }, { knownHostsFile: join(dir, "known_hosts"), acceptNewHostKey: true });
  const [toSink, toEcho] = [await openTunnel(conn, portOf(sink)), await openTunnel(conn, portOf(echo))];
  const rows = [
    ["plain loopback", await throughput(portOf(sink)), await roundTrip(portOf(echo))],
    ["SSH tunnel (ssh2 forwardOut)", await throughput(toSink.port), await roundTrip(toEcho.port)],
  ] as const;
  console.log(`| path | MiB/s (${MIB} MiB) | µs per 64-byte round trip (${TRIPS}) |\n| --- | --- | --- |`);
  for (const [name, mibs, us] of rows) console.log(`| ${name} | ${mibs.toFixed(0)} | ${us.toFixed(1)} |`);
  toSink.close();
  toEcho.close();
  conn.close();
} finally {
  sink.close();
  echo.close();
  sshd.kill();
}
