// A daemon on a non-loopback address without a token serves anyone on the network (inference, downloads, workers):
// refused at start unless the operator says --insecure-no-auth.
import { isIP } from "node:net";
import { RbeeError } from "../errors";

/** 127.0.0.0/8, ::1 and localhost: reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").replace(/^::ffff:/i, "");
  if (h === "localhost" || h === "::1") return true;
  return isIP(h) === 4 && h.startsWith("127.");
}

export function checkExposure(role: string, { host, token, insecureNoAuth }: { host: string; token?: string; insecureNoAuth?: boolean }): void {
  if (token || insecureNoAuth || isLoopback(host)) return;
  throw new RbeeError(
    "BAD_REQUEST",
    `refusing to start the ${role} on ${host} without a token: anyone who reaches it could use it; set --api-token (or RBEE_API_TOKEN)${role === "queen" ? " or make a key (rbee keys create)" : ""}, listen on 127.0.0.1, or pass --insecure-no-auth`,
  );
}
