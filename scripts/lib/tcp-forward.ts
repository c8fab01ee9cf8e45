// A loopback TCP forwarder: 127.0.0.1:LISTEN -> 127.0.0.1:TARGET, each connection piped both ways. The GPU machine has
// no sshd, so scripts/bench-rpc.sh puts this where the queen's SSH tunnel would be (the tunnel's cipher is measured on
// its own by scripts/bench-tunnel.ts).
//   bun scripts/lib/tcp-forward.ts TARGET_PORT   (prints the port it listens on)
import { connect, createServer } from "node:net";

const target = Number(process.argv[2]);
const server = createServer((client) => {
  const upstream = connect({ host: "127.0.0.1", port: target });
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream).pipe(client);
  const close = () => (client.destroy(), upstream.destroy());
  client.once("close", close);
  upstream.once("close", close);
  client.once("error", close);
  upstream.once("error", close);
});
server.listen(0, "127.0.0.1", () => console.log((server.address() as { port: number }).port));
