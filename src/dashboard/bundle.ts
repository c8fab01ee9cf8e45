// Runs at bundle time (a Bun macro, see assets.ts): the dashboard's page, script and styles as strings, so that the
// compiled rbee carries them and nothing is fetched at run time. Bun.build cannot run inside a macro: the CLI does.
import { readFileSync } from "node:fs";
import { join } from "node:path";

export function bundleDashboard(): { html: string; js: string; css: string; version: string } {
  const dir = import.meta.dir;
  const built = Bun.spawnSync([process.execPath, "build", join(dir, "app.ts"), "--target=browser", "--minify"], { stderr: "pipe" });
  if (built.exitCode !== 0) throw new Error(`the dashboard does not build: ${built.stderr.toString()}`);
  const js = built.stdout.toString();
  const css = [readFileSync(Bun.resolveSync("uplot/dist/uPlot.min.css", dir), "utf8"), readFileSync(join(dir, "style.css"), "utf8")].join("\n");
  const version = Bun.hash(js + css).toString(36);
  const html = readFileSync(join(dir, "index.html"), "utf8").replaceAll("{{version}}", version);
  return { html, js, css, version };
}
