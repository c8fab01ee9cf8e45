// One step of the batching loop, as the engine sees it: sample the outputs of the batch in flight, append the sequences
// that go on to the batch being prepared, and start decoding it. rbee's rebuilt addon does it in one native call that
// hands the tokens over while the decode starts; the stock addon needs a call per sampled sequence and one decode call.
import type { LlamaModel, Token } from "node-llama-cpp";
import { type AddonContext, type AddonSampler, type SampleThenDecode, sampleThenDecodeOf } from "./addon";
import { RbeeError } from "../errors";
import type { Backend } from "./backend";

/** What to do with one output of the batch in flight. */
export interface OutputPlan {
  /** null: the sequence ended meanwhile; its output is dropped. */
  sampler: AddonSampler | null;
  /** The output's index in that batch. */
  index: number;
  slot: number;
  /** Where its next token goes in the sequence; -1: this token is its last (length). */
  position: number;
  /** An end-of-generation token ends the sequence (not when the request ignores EOS). */
  stopAtEog: boolean;
  /** The request's first token: it is handed over before the next decode starts, for the time to first token. */
  first: boolean;
}

export interface Step {
  /** tokens[i] for output i (-1: none), and whether its sequence was appended to the batch now decoding. */
  sampled: Promise<{ tokens: Int32Array; goesOn: (i: number) => boolean }>;
  /**
   * Settles once the next decode has started (stock addon: finished), if the batch held anything (prompt tokens or a
   * sequence that goes on); until then the context must not be touched.
   */
  launched: Promise<void>;
}

/** An output of the prompt chunks already in the batch: its index there and the sampler that will sample it. */
export interface PreparedOutput {
  index: number;
  sampler: AddonSampler;
}

/**
 * `preparedTokens`: tokens already in the batch (prompt chunks), before the sequences that go on; `prepared`: their
 * outputs (whose samplers say where the native step may pick their tokens on the backend, where that is on).
 */
export type Stepper = (outputs: OutputPlan[], preparedTokens: number, prepared: PreparedOutput[]) => Step;

/** On a GPU, starting a decode returns before the decode ends; on the CPU the start is the decode. */
export function decodeRunsAheadOn(backend: Backend): boolean {
  return backend !== "cpu";
}

/**
 * Tokens picked on the backend, in the decode's graph (native/backend-sampling.cpp), only with RBEE_BACKEND_SAMPLING=1:
 * on an H100 it gained nothing for greedy requests and lost 15% at one stream and half at 32 for drawn ones, whose own
 * chains make llama.cpp reserve its graphs again (docs/performance.md, issue 21).
 */
export function backendSamplingWanted(env: Record<string, string | undefined> = process.env): boolean {
  const value = env.RBEE_BACKEND_SAMPLING ?? "";
  if (!["", "0", "1"].includes(value)) throw new RbeeError("BAD_REQUEST", `RBEE_BACKEND_SAMPLING=${value}: 1 (on) or 0 (off, the default)`);
  return value === "1";
}

/**
 * `decodeRunsAhead`: starting a decode returns before it ends (decodeRunsAheadOn). The native step then hands the tokens over after
 * the start, so that JavaScript's work on them does not slow the start down, except for a request's first token.
 */
export function stepperFor(model: LlamaModel, addon: AddonContext, { decodeRunsAhead }: { decodeRunsAhead: boolean }): { step: Stepper; native: boolean } {
  const sampleThenDecode = sampleThenDecodeOf(model);
  return sampleThenDecode ? { step: nativeStepper(addon, sampleThenDecode, decodeRunsAhead), native: true } : { step: stockStepper(model, addon), native: false };
}

function nativeStepper(addon: AddonContext, sampleThenDecode: SampleThenDecode, decodeRunsAhead: boolean): Stepper {
  return (outputs, _preparedTokens, prepared) => {
    const n = outputs.length;
    let resolveSampled!: (r: Int32Array) => void;
    let rejectSampled!: (err: unknown) => void;
    const raw = new Promise<Int32Array>((resolve, reject) => ((resolveSampled = resolve), (rejectSampled = reject)));
    const launched = sampleThenDecode(
      addon,
      outputs.map((o) => o.sampler),
      Int32Array.from(outputs, (o) => o.index),
      Int32Array.from(outputs, (o) => o.slot),
      Int32Array.from(outputs, (o) => o.position),
      Uint8Array.from(outputs, (o) => (o.stopAtEog ? 1 : 0)),
      resolveSampled,
      !decodeRunsAhead || outputs.some((o) => o.first && o.sampler),
      prepared.map((p) => p.sampler),
      Int32Array.from(prepared, (p) => p.index),
    );
    if (n === 0) resolveSampled(new Int32Array(0));
    // A failed step may fail before sampling: the tokens never come then.
    launched.catch(rejectSampled);
    const sampled = raw.then((r) => ({ tokens: r.subarray(0, n), goesOn: (i: number) => r[n + i] === 1 }));
    return withHandledRejections({ sampled, launched });
  };
}

function stockStepper(model: LlamaModel, addon: AddonContext): Stepper {
  return (outputs, preparedTokens) => {
    const sampled = (async () => {
      const tokens = Int32Array.from(await Promise.all(outputs.map((o) => (o.sampler ? addon.sampleToken(o.index, o.sampler) : -1))));
      const goesOn = outputs.map((o, i) => tokens[i]! >= 0 && o.position >= 0 && !(o.stopAtEog && model.isEogToken(tokens[i]! as Token)));
      outputs.forEach((o, i) => goesOn[i] && addon.addToBatch(o.slot, o.position, Uint32Array.of(tokens[i]!), Uint32Array.of(0)));
      return { tokens, goesOn: (i: number) => goesOn[i]! };
    })();
    const launched = sampled.then((s) => (preparedTokens > 0 || outputs.some((_, i) => s.goesOn(i)) ? addon.decodeBatch() : undefined));
    return withHandledRejections({ sampled, launched });
  };
}

/** The engine awaits each promise in turn; one that fails while it awaits another must not count as unhandled. */
function withHandledRejections(step: Step): Step {
  for (const p of [step.sampled, step.launched]) p.catch(() => {});
  return step;
}
