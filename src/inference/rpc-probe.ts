// Before a worker hands an RPC server to llama.cpp, rbee says hello itself: llama.cpp's own client blocks on an
// unreachable address and aborts the whole process on a server of another protocol version (GGML_ABORT), while this
// answers in a second, with a line that says which server and why, before any weights move.
import { connect, type Socket } from "node:net";
import { RbeeError } from "../errors";

/** llama.cpp's RPC protocol version this engine speaks (ggml/include/ggml-rpc.h of the bundled release). */
export const RPC_PROTOCOL = { major: 7, minor: 0 } as const;
const RPC_CMD_HELLO = 14;
/** rpc_msg_hello_req: the client's transport capabilities (none: plain TCP). */
const HELLO_REQUEST_BYTES = 24;
/** rpc_msg_hello_rsp: major, minor, patch, padding, then the server's capabilities. */
const HELLO_RESPONSE_BYTES = 4 + 24;
export const RPC_HELLO_TIMEOUT_MS = 5_000;

/** HOST:PORT, as llama.cpp's RPC client takes it. */
export function parseRpcEndpoint(text: string): { host: string; port: number } {
  const match = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535) throw new RbeeError("BAD_REQUEST", `invalid RPC server "${text}": expected HOST:PORT`);
  return { host: match[1]!.replace(/^\[|\]$/g, ""), port };
}

/** Says hello to the RPC server at `endpoint`; resolves with its protocol version, or throws one clear error. */
export async function helloRpcServer(endpoint: string, timeoutMs = RPC_HELLO_TIMEOUT_MS): Promise<string> {
  const { host, port } = parseRpcEndpoint(endpoint);
  const request = Buffer.alloc(1 + 8 + HELLO_REQUEST_BYTES);
  request.writeUInt8(RPC_CMD_HELLO, 0);
  request.writeBigUInt64LE(BigInt(HELLO_REQUEST_BYTES), 1);
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const socket: Socket = connect({ host, port });
    let received = Buffer.alloc(0);
    const fail = (why: string) => {
      socket.destroy();
      reject(new RbeeError("UPSTREAM_UNREACHABLE", `RPC server ${endpoint}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no answer in ${timeoutMs / 1000} s`), timeoutMs);
    socket.once("connect", () => socket.write(request));
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 8 + HELLO_RESPONSE_BYTES) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      fail(`cannot connect (${(err as NodeJS.ErrnoException).code ?? err.message})`);
    });
    socket.once("close", () => {
      clearTimeout(timer);
      if (received.length < 8 + HELLO_RESPONSE_BYTES) fail("closed the connection without a hello: not llama.cpp's rpc-server, or one of another protocol");
    });
  });
  const size = answer.readBigUInt64LE(0);
  if (size !== BigInt(HELLO_RESPONSE_BYTES)) throw new RbeeError("BAD_REQUEST", `RPC server ${endpoint}: its hello is ${size} bytes, not ${HELLO_RESPONSE_BYTES}: another llama.cpp release`);
  const [major, minor, patch] = [answer[8]!, answer[9]!, answer[10]!];
  const version = `${major}.${minor}.${patch}`;
  if (major !== RPC_PROTOCOL.major || minor > RPC_PROTOCOL.minor)
    throw new RbeeError("BAD_REQUEST", `RPC server ${endpoint} speaks RPC protocol ${version}, this engine ${RPC_PROTOCOL.major}.${RPC_PROTOCOL.minor}.x: run the same rbee (llama.cpp release) on both machines`);
  return version;
}
