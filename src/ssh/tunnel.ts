// A loopback port on this machine that leads, over a node's SSH connection, to a port on that node's loopback (ssh2's
// forwardOut, as `ssh -L` does): how the queen's workers reach a node's rpc-server, which never listens off loopback.
import { createServer, type Server, type Socket } from "node:net";
import { logger } from "../log";
import type { SshConnection } from "./connection";

const log = logger("ssh");

export interface Tunnel {
  /** 127.0.0.1:PORT here. */
  endpoint: string;
  port: number;
  /** Stops listening and cuts the connections through it. */
  close(): void;
}

export function openTunnel(conn: SshConnection, remotePort: number): Promise<Tunnel> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    // llama.cpp's RPC is many small messages each awaiting an answer: Nagle's delay would be paid on every one.
    socket.setNoDelay(true);
    socket.once("close", () => sockets.delete(socket));
    socket.pause();
    conn.client.forwardOut("127.0.0.1", 0, "127.0.0.1", remotePort, (err, channel) => {
      if (err) {
        log.warn(`${conn.label}: cannot reach its port ${remotePort}: ${err.message}`);
        socket.destroy();
        return;
      }
      socket.pipe(channel).pipe(socket);
      channel.once("close", () => socket.destroy());
      socket.once("close", () => channel.close());
      socket.resume();
    });
  });
  // The SSH session gone, nothing goes through: cut what is open so that its users see it at once.
  const dropped = () => close();
  conn.client.once("close", dropped);
  const close = () => {
    conn.client.off("close", dropped);
    server.close();
    for (const socket of sockets) socket.destroy();
  };
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      resolve({ endpoint: `127.0.0.1:${port}`, port, close });
    });
  });
}
