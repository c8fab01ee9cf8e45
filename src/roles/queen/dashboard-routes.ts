// The dashboard: its page at / for browsers (API clients probing / keep their plain answer, further on), its script and
// styles, and what it draws: the cluster snapshot as JSON, and as server-sent events (history, then one sample a second).
import type { Context, Hono } from "hono";
import { clientGone, sseResponse } from "../../http/sse";
import type { QueenDeps } from "./server";

const ASSET_TYPES: Record<string, string> = { "app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8" };

// Bundled on first use: a queen nobody opens in a browser never builds or holds it.
let assets: Promise<{ html: string; js: string; css: string }> | undefined;
const dashboardAssets = () => (assets ??= import("../../dashboard/assets").then((m) => m.dashboardAssets));

const wantsPage = (c: Context) => (c.req.header("accept") ?? "").includes("text/html");

export function addDashboardRoutes(app: Hono, { cluster }: Pick<QueenDeps, "cluster">): void {
  app.get("/", async (c, next) => (wantsPage(c) ? c.html((await dashboardAssets()).html) : next()));

  app.get("/dashboard/:file", async (c) => {
    const file = c.req.param("file");
    const type = ASSET_TYPES[file];
    if (!type) return c.json({ error: { code: "NOT_FOUND", message: `no dashboard file ${file}` } }, 404);
    const a = await dashboardAssets();
    return c.body(file === "app.js" ? a.js : a.css, 200, { "content-type": type, "cache-control": "public, max-age=31536000, immutable" });
  });

  app.get("/v1/cluster", (c) => c.json(cluster.snapshot()));

  app.get("/v1/cluster/events", (c) =>
    sseResponse(c, async (sink) => {
      sink.send("history", cluster.history());
      sink.send("snapshot", cluster.snapshot());
      const stop = cluster.onSample((sample, snapshot) => sink.send("sample", { sample, snapshot }));
      await clientGone(sink);
      stop();
    }),
  );
}
