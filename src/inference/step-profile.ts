// Where the batching loop's time goes, for benchmarks: with RBEE_PROFILE_STEPS=1 the worker logs, each time it goes
// idle, the mean per step of: the time from one step to the next; in the native step, the wait for the decode in flight,
// the sampling, the hand-over of the tokens and the start of the next decode (and the CPU time of that start); the
// JavaScript that turns tokens into events; and the JavaScript between the decode starting and the next step
// (releasing slots, preparing the next batch). Also the slowest periods between steps.
import { logger } from "../log";
import { NATIVE_STEP_PARTS } from "./addon";

const log = logger("engine");
const SLOWEST_KEPT = 4;

export class StepProfile {
  /** `nativeSplit`: the rebuilt addon's own timings of its last step (NATIVE_STEP_PARTS, µs), when it has them. */
  static fromEnv(nativeSplit?: () => number[]): StepProfile | undefined {
    return process.env.RBEE_PROFILE_STEPS === "1" ? new StepProfile(nativeSplit) : undefined;
  }

  private constructor(private readonly nativeSplit?: () => number[]) {}

  private steps = 0;
  private outputs = 0;
  private periodMs = 0;
  private tokensMs = 0;
  private emitMs = 0;
  private afterLaunchMs = 0;
  private split = NATIVE_STEP_PARTS.map(() => 0);
  /** The longest periods between steps, longest first (a prompt's step, a graph rebuilt or captured again). */
  private slowestMs: number[] = [];
  private lastCall: number | undefined;
  private lastLaunch: number | undefined;

  /** A step was called. */
  called(): void {
    const now = performance.now();
    if (this.lastCall !== undefined) {
      this.periodMs += now - this.lastCall;
      this.slowestMs = [...this.slowestMs, now - this.lastCall].sort((a, b) => b - a).slice(0, SLOWEST_KEPT);
    }
    if (this.lastLaunch !== undefined) this.afterLaunchMs += now - this.lastLaunch;
    this.lastCall = now;
    this.lastLaunch = undefined;
  }

  /** Its tokens arrived. */
  sampled(outputs: number): void {
    this.steps++;
    this.outputs += outputs;
    if (this.lastCall !== undefined) this.tokensMs += performance.now() - this.lastCall;
  }

  emitted(since: number): void {
    this.emitMs += performance.now() - since;
  }

  /** Its next decode started. */
  launched(): void {
    this.lastLaunch = performance.now();
    const split = this.nativeSplit?.();
    if (split) split.forEach((us, i) => (this.split[i]! += us));
  }

  /** Logs the busy period that just ended and starts over; `totals`: counters to log with it (so far, not per period). */
  report(totals: Record<string, number> = {}): void {
    if (this.steps > 1) {
      const us = (ms: number, steps = this.steps) => Math.round((ms / steps) * 1000);
      const native = this.nativeSplit ? Object.fromEntries(NATIVE_STEP_PARTS.map((part, i) => [`${part}_us`, Math.round(this.split[i]! / this.steps)])) : {};
      log.info("step profile", {
        steps: this.steps,
        outputs_per_step: +(this.outputs / this.steps).toFixed(1),
        step_us: us(this.periodMs, this.steps - 1),
        tokens_us: us(this.tokensMs),
        ...native,
        emit_us: us(this.emitMs),
        after_launch_us: us(this.afterLaunchMs, this.steps - 1),
        ...totals,
        slowest_us: this.slowestMs.map((ms) => Math.round(ms * 1000)),
      });
    }
    this.steps = this.outputs = this.periodMs = this.tokensMs = this.emitMs = this.afterLaunchMs = 0;
    this.split = NATIVE_STEP_PARTS.map(() => 0);
    this.slowestMs = [];
    this.lastCall = this.lastLaunch = undefined;
  }
}
