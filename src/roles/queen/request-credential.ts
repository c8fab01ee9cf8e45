// What the credential of the request being served allows beyond its scope, for code deep in the call (model name
// resolution) that has no request at hand: kept in an AsyncLocalStorage by client-auth.ts.
import { AsyncLocalStorage } from "node:async_hooks";

interface RequestCredential {
  /** Whether the request may name model files on the queen's machine by path (operator scope, cluster token). */
  pathsAllowed: boolean;
}

const store = new AsyncLocalStorage<RequestCredential>();

export function withCredential<T>(credential: RequestCredential, fn: () => T): T {
  return store.run(credential, fn);
}

/** Outside a request (the queen's own work, such as preloading) paths are allowed. */
export function pathsAllowed(): boolean {
  return store.getStore()?.pathsAllowed ?? true;
}
