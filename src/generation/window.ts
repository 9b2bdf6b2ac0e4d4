/**
 * The decode window: pipelined decode steps in flight. Step i feeds the token step i-1 sampled (on the GPU)
 * at position promptLength + i - 1, so the host never waits between tokens; it reads the steps back in
 * order, a few steps behind the GPU.
 */

import type { Engine, PendingStep } from "../engine/engine.ts";
import type { PlannedStep } from "./dmtd.ts";

/** Decode steps the automatic window starts with. */
const AUTO_START_DEPTH = 4;
/** Most decode steps the automatic window keeps in flight. */
const AUTO_MAX_DEPTH = 32;
/** Tokens after the first at which the automatic window measures the step time and sizes itself. */
const AUTO_MEASURE_TOKENS = 8;

export class DecodeWindow {
  private readonly inFlight: PendingStep[] = [];
  /** DMTD: what each step in flight runs (null for other models). */
  private readonly plans: (PlannedStep | null)[] = [];
  /** The plan of the step `next` returned last. */
  lastPlan: PlannedStep | null = null;
  /** Rows the thinking layers ran for heads submitted so far (DMTD). */
  refillRows = 0;
  /** Steps submitted, the prompt's last one (it samples the first token) included. */
  private submitted = 1;
  private readonly auto: boolean;
  private depth: number;
  /** The deepest the window has been. */
  maxDepth: number;

  /** `window`: steps kept in flight (1 = wait for every token), or "auto" (the default). */
  constructor(
    private readonly engine: Engine,
    private readonly slot: number,
    private readonly promptLength: number,
    /** Tokens the generation may produce: no step is submitted past them. */
    private readonly budget: number,
    window: number | "auto" | undefined,
    /** DMTD: the plan of the step feeding each position. */
    private readonly plan?: (pos: number) => PlannedStep,
  ) {
    this.auto = window === "auto" || window === undefined;
    this.depth = typeof window === "number" ? Math.max(1, Math.floor(window)) : AUTO_START_DEPTH;
    this.maxDepth = this.depth;
  }

  /** Most steps that can be in flight at once (readback slots to reserve). */
  get mostInFlight(): number {
    return Math.min(this.auto ? AUTO_MAX_DEPTH : this.depth, this.budget);
  }

  /** The prompt's last step heads the window: it samples the first token (`plan`: DMTD, a full pass). */
  begin(first: PendingStep, plan: PlannedStep | null = null): void {
    this.inFlight.push(first);
    this.plans.push(plan);
  }

  /**
   * Submits decode steps until the window is full, none past the budget. Once aborted, only the one step
   * that brings the next token when none is in flight (an abort stops at the next token, at any window).
   */
  fill(signal?: AbortSignal): void {
    const most = signal?.aborted ? 1 : this.depth;
    while (this.inFlight.length < most && this.submitted < this.budget) {
      const pos = this.promptLength + this.submitted - 1;
      const plan = this.plan?.(pos) ?? null;
      this.refillRows += plan?.refillRows ?? 0;
      this.inFlight.push(
        this.engine.submitStep([{ slot: this.slot, pos }], [0], undefined, false, plan?.thinking)!,
      );
      this.plans.push(plan);
      this.submitted++;
    }
  }

  /** The oldest step in flight: the next token (its plan in `lastPlan`). */
  next(): PendingStep {
    this.lastPlan = this.plans.shift() ?? null;
    return this.inFlight.shift()!;
  }

  /**
   * An automatic window sizes itself once, from the step time measured since the first token: enough
   * steps in flight to cover ~3 readbacks (≥ 11 ms each, resolving in groups). On the software GPU,
   * stories260K gains up to depth ~16-32 (3.6 ms steps).
   */
  pace(generated: number, firstTokenAt: number): void {
    if (!this.auto || generated !== AUTO_MEASURE_TOKENS) return;
    const msPerStep = (performance.now() - firstTokenAt) / generated;
    this.depth = Math.max(2, Math.min(AUTO_MAX_DEPTH, Math.ceil(36 / Math.max(msPerStep, 0.1)) + 1));
    this.maxDepth = Math.max(this.maxDepth, this.depth);
  }

  /** Waits for the steps computed past a stop; their tokens are dropped. */
  async drain(): Promise<void> {
    for (const p of this.inFlight) await this.engine.await(p);
  }
}
