// A log book as server-sent events: its backlog, then each new line as it comes (`event: line`), until the client goes.
import type { Context } from "hono";
import type { LogBook } from "../log-book";
import { clientGone, sseResponse } from "./sse";

export function logStream(c: Context, book: LogBook): Response {
  return sseResponse(c, async (sink) => {
    for (const line of book.backlog()) sink.send("line", line);
    const unfollow = book.follow((line) => sink.send("line", line));
    await clientGone(sink);
    unfollow();
  });
}
