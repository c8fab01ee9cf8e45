// Where the batching loop's time goes, for benchmarks: with RBEE_PROFILE_STEPS=1 the worker logs, each time it goes
// idle, the mean time per step spent in the native decode(-and-sample) call and in JavaScript between two calls.
import { logger } from "../log";

const log = logger("engine");

export class StepProfile {
  /** `nativeSplit`: the addon's own decode/sample timings of the last call, when it has them. */
  static fromEnv(nativeSplit?: () => [number, number]): StepProfile | undefined {
    return process.env.RBEE_PROFILE_STEPS === "1" ? new StepProfile(nativeSplit) : undefined;
  }

  private constructor(private readonly nativeSplit?: () => [number, number]) {}

  private steps = 0;
  private outputs = 0;
  private nativeMs = 0;
  private betweenMs = 0;
  private emitMs = 0;
  private decodeUs = 0;
  private sampleUs = 0;
  private lastReturn: number | undefined;

  /** The loop got a batch's result back (`calledAt`: when that batch was started). */
  returned(calledAt: number, outputs: number): void {
    const now = performance.now();
    this.steps++;
    this.outputs += outputs;
    this.nativeMs += now - calledAt;
    this.lastReturn = now;
    const split = this.nativeSplit?.();
    if (split) {
      this.decodeUs += split[0];
      this.sampleUs += split[1];
    }
  }

  /** The loop started the next batch. */
  started(): number {
    const now = performance.now();
    if (this.lastReturn !== undefined) this.betweenMs += now - this.lastReturn;
    this.lastReturn = undefined;
    return now;
  }

  emitted(since: number): void {
    this.emitMs += performance.now() - since;
  }

  /** Logs the busy period that just ended and starts over. */
  report(): void {
    if (this.steps === 0) return;
    const us = (ms: number) => Math.round((ms / this.steps) * 1000);
    const split = this.nativeSplit ? { decode_us: Math.round(this.decodeUs / this.steps), sample_us: Math.round(this.sampleUs / this.steps) } : {};
    log.info("step profile", { steps: this.steps, outputs_per_step: +(this.outputs / this.steps).toFixed(1), native_us: us(this.nativeMs), ...split, between_us: us(this.betweenMs), emit_us: us(this.emitMs) });
    this.steps = this.outputs = this.nativeMs = this.betweenMs = this.emitMs = this.decodeUs = this.sampleUs = 0;
    this.lastReturn = undefined;
  }
}
