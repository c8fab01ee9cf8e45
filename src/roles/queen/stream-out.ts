// Streams a relayed answer to the client as it comes, counting tokens for the metrics; a worker lost mid-stream
// ends the stream with an error record instead of a hang.
import type { QueenMetrics } from "./metrics";
import type { Relayed } from "./relay";

const encoder = new TextEncoder();
const DATA = "data: ";

/** The ends of a whole stream in the dialects relayed as they are: OpenAI's [DONE], rbee's end or error event, an error record. */
const ENDED = /\[DONE\]|event: (end|error)|"error":/;

export function passThrough(relayed: Relayed, metrics: QueenMetrics, startedAt: number, errorRecord: (message: string) => string, onEnd: () => void, endsWhole?: RegExp): ReadableStream<Uint8Array> {
  const { reader } = relayed;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    relayed.lease.release();
    onEnd();
  };
  let last = performance.now();
  // The end of what came so far: a stream that stops without its dialect's ending (the worker's process died between
  // two writes) gets an error record, so that no client mistakes a cut answer for a whole one.
  let tail = "";
  const finished = () => ENDED.test(tail) || endsWhole?.test(tail) === true;
  metrics.ttft.observe((last - startedAt) / 1000);
  /** One pass over each chunk's bytes: its records are counted and its end kept. */
  const seen = (chunk: Uint8Array) => {
    const text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1");
    tail = text.length >= 256 ? text.slice(-256) : (tail + text).slice(-256);
    let n = 0;
    for (let i = text.indexOf(DATA); i !== -1; i = text.indexOf(DATA, i + DATA.length)) n++;
    if (!n) return;
    const now = performance.now();
    metrics.tokenLatency.observe((now - last) / 1000 / n);
    last = now;
    metrics.generated(relayed.lease.worker, n);
  };
  // Bun's direct stream: each chunk is written to the client as it comes, with no queue of its own between the two
  // connections (a pull-based stream cost a queue hop and a promise per chunk).
  let clientGone = false;
  return new ReadableStream<Uint8Array>({
    type: "direct",
    async pull(controller: { write(chunk: Uint8Array | string): unknown; flush(): unknown; close(): void }) {
      const write = (chunk: Uint8Array | string) => {
        controller.write(chunk);
        controller.flush();
      };
      try {
        if (relayed.first) {
          seen(relayed.first);
          write(relayed.first);
        }
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          seen(value);
          write(value);
        }
        end();
        if (!finished() && !clientGone) write(encoder.encode(errorRecord("the worker's stream ended before the answer was complete")));
      } catch (err) {
        end();
        void reader.cancel().catch(() => {});
        if (!clientGone) {
          try {
            write(encoder.encode(errorRecord(`the worker was lost mid-stream: ${err instanceof Error ? err.message : err}`)));
          } catch {}
        }
      }
      controller.close();
    },
    cancel() {
      clientGone = true;
      end();
      void reader.cancel().catch(() => {});
    },
  } as unknown as UnderlyingDefaultSource<Uint8Array>);
}
