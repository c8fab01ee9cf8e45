// Streams a relayed answer to the client as it comes, counting tokens for the metrics; a worker lost mid-stream
// ends the stream with an error record instead of a hang.
import type { QueenMetrics } from "./metrics";
import type { Relayed } from "./relay";

const encoder = new TextEncoder();
const DATA = "data: ";

/** The ends of a whole stream in the dialects relayed as they are: OpenAI's [DONE], rbee's end or error event, an error record. */
const ENDED = /\[DONE\]|event: (end|error)|"error":/;

export function passThrough(relayed: Relayed, metrics: QueenMetrics, startedAt: number, errorRecord: (message: string) => string, onEnd: () => void, endsWhole = ENDED): ReadableStream<Uint8Array> {
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
  const remember = (chunk: Uint8Array) => (tail = (tail + Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1")).slice(-256));
  const finished = () => endsWhole.test(tail) || ENDED.test(tail);
  metrics.ttft.observe((last - startedAt) / 1000);
  const count = (chunk: Uint8Array) => {
    const text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1");
    let n = 0;
    for (let i = text.indexOf(DATA); i !== -1; i = text.indexOf(DATA, i + DATA.length)) n++;
    if (!n) return;
    const now = performance.now();
    metrics.tokenLatency.observe((now - last) / 1000 / n);
    last = now;
    metrics.generated(relayed.lease.worker, n);
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (relayed.first) {
        count(relayed.first);
        remember(relayed.first);
        controller.enqueue(relayed.first);
      }
    },
    async pull(controller) {
      try {
        const { value, done } = await reader.read();
        if (done) {
          end();
          if (!finished()) controller.enqueue(encoder.encode(errorRecord("the worker's stream ended before the answer was complete")));
          return controller.close();
        }
        count(value);
        remember(value);
        controller.enqueue(value);
      } catch (err) {
        end();
        controller.enqueue(encoder.encode(errorRecord(`the worker was lost mid-stream: ${err instanceof Error ? err.message : err}`)));
        controller.close();
      }
    },
    cancel() {
      end();
      void reader.cancel().catch(() => {});
    },
  });
}
