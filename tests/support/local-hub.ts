// A local HTTP server laid out like the Hugging Face Hub, run as its own process so tests can kill it mid-file:
//   bun tests/support/local-hub.ts --port 0 --file ORG/REPO/REVISION/PATH=/abs/file.gguf [--rate BYTES_PER_S] [--token T] [--corrupt]
// /{org}/{repo}/resolve/{revision}/{path} redirects to /cdn/{sha256}, which serves the bytes with Range support;
// both carry X-Linked-ETag (the sha256) and X-Linked-Size. Every request is logged to stdout as a JSON line.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    host: { type: "string", default: "127.0.0.1" },
    file: { type: "string", multiple: true, default: [] },
    rate: { type: "string" },
    token: { type: "string" },
    corrupt: { type: "boolean", default: false },
  },
});

const files = new Map<string, { bytes: Uint8Array; sha256: string }>();
const bySha = new Map<string, Uint8Array>();
for (const spec of values.file!) {
  const [key, path] = spec.split("=");
  const bytes = new Uint8Array(readFileSync(path!));
  const sha256 = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
  files.set(key!, { bytes, sha256 });
  const served = values.corrupt ? bytes.slice() : bytes;
  const middle = Math.floor(served.length / 2);
  if (values.corrupt) served[middle] = served[middle]! ^ 0xff;
  bySha.set(sha256, served);
}
const rate = values.rate ? Number(values.rate) : undefined;
const CHUNK = 16 * 1024;

function linked(sha256: string, size: number) {
  return { "x-linked-etag": `"${sha256}"`, etag: `"${sha256}"`, "x-linked-size": String(size), "accept-ranges": "bytes" };
}

const server = Bun.serve({
  port: Number(values.port),
  hostname: values.host,
  idleTimeout: 0,
  fetch(req) {
    const url = new URL(req.url);
    console.log(JSON.stringify({ method: req.method, path: url.pathname, range: req.headers.get("range"), auth: req.headers.get("authorization") }));
    if (values.token && req.headers.get("authorization") !== `Bearer ${values.token}`)
      return Response.json({ error: "Invalid credentials in Authorization header" }, { status: 401, headers: { "x-error-code": "GatedRepo" } });
    // The repository's file list, as the Hub's /api/models/ORG/REPO gives it.
    const listing = /^\/api\/models\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (listing) {
      const prefix = `${listing[1]}/${listing[2]}/main/`;
      const siblings = [...files.keys()].filter((k) => k.startsWith(prefix)).map((k) => ({ rfilename: k.slice(prefix.length) }));
      if (!siblings.length) return Response.json({ error: "Repository not found" }, { status: 404 });
      return Response.json({ id: `${listing[1]}/${listing[2]}`, siblings: [...siblings, { rfilename: "README.md" }] });
    }
    const resolve = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolve) {
      const [, org, repo, revision, path] = resolve;
      const file = files.get(`${org}/${repo}/${decodeURIComponent(revision!)}/${path}`);
      if (!file) return Response.json({ error: "Entry not found" }, { status: 404, headers: { "x-error-code": "EntryNotFound" } });
      return new Response(null, { status: 302, headers: { location: `/cdn/${file.sha256}`, ...linked(file.sha256, file.bytes.length) } });
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    const bytes = cdn && bySha.get(cdn[1]!);
    if (!bytes) return new Response("not found", { status: 404 });
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Math.min(Number(range[2]), bytes.length - 1) : bytes.length - 1;
    if (start >= bytes.length) return new Response(null, { status: 416, headers: { "content-range": `bytes */${bytes.length}` } });
    const body = bytes.subarray(start, end + 1);
    const headers = { ...linked(cdn![1]!, bytes.length), "content-type": "application/octet-stream", "content-length": String(body.length), ...(range && { "content-range": `bytes ${start}-${end}/${bytes.length}` }) };
    const status = range ? 206 : 200;
    if (!rate || body.length <= CHUNK) return new Response(body as Uint8Array<ArrayBuffer>, { status, headers });
    let sent = 0;
    const stream = new ReadableStream({
      async pull(controller) {
        if (sent >= body.length) return controller.close();
        const piece = body.subarray(sent, sent + CHUNK);
        sent += piece.length;
        await Bun.sleep((piece.length / rate) * 1000);
        controller.enqueue(piece);
      },
    });
    return new Response(stream, { status, headers });
  },
});
console.log(`listening on http://${values.host}:${server.port}`);
