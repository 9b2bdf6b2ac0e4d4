/**
 * DMTD's cycle schedule on the host (../shared/design/dmtd-spec.md §0, §2.4–2.7): which steps are heads and
 * what each one's refill block is, known before the step runs, so the decode window never waits. Cycles are
 * anchored at the start of generation: the step feeding position p is a head when (p − P) mod τ = 0 (P the
 * prompt length), and a head's refill block is every position from the first whose thinking-layer K/V is
 * missing up to p — [P] at the first head, then the τ − 1 positions the last cycle skipped and the head.
 */

import type { DmtdConfig } from "../model/config.ts";
import type { ThinkingSpec } from "../engine/engine.ts";
import type { DmtdPrompt } from "./prefill.ts";

/** How a generation decodes a DMTD model. */
export interface DmtdOptions {
  /** τ, tokens per cycle (default: the checkpoint's `mtp_horizon`). */
  cycle?: number;
  /**
   * The prompt rows' decoding-layer input: "reference" e + t (the released code, the default) or "plain" t (the
   * authors' vLLM port).
   */
  prefill?: "reference" | "plain";
}

/** One decode step: the position it feeds, whether it is a cycle head, the positions its thinking layers run. */
export interface CycleStep {
  pos: number;
  head: boolean;
  /** The refill block (a head), or empty. */
  refill: number[];
}

/** The schedule of one generation of one sequence. */
export class CycleSchedule {
  /**
   * `thinkValid`: leading positions whose thinking-layer K/V the cache holds (the prompt's, after prefill).
   * Steps must be asked for in order of position.
   */
  constructor(readonly cycle: number, readonly promptLength: number, private thinkValid: number) {
    if (!(Number.isInteger(cycle) && cycle >= 1)) {
      throw new RangeError(`a DMTD cycle must be ≥ 1, not ${cycle}`);
    }
  }

  /** Leading positions whose thinking-layer K/V the steps so far leave valid. */
  get thinkingValid(): number {
    return this.thinkValid;
  }

  at(pos: number): CycleStep {
    const head = (pos - this.promptLength) % this.cycle === 0;
    if (!head) return { pos, head, refill: [] };
    const refill = Array.from({ length: pos + 1 - this.thinkValid }, (_, i) => this.thinkValid + i);
    this.thinkValid = pos + 1;
    return { pos, head, refill };
  }
}

/** What one step of a DMTD generation runs, for the engine, and the layers its output token gets. */
export interface PlannedStep {
  thinking: ThinkingSpec;
  /** The pass ran every layer (a prompt's or a head's). */
  head: boolean;
  layers: number;
  /** Rows the thinking layers ran for a head (its refill block, the head included). */
  refillRows: number;
}

/** Turns a DMTD model's schedule into engine steps: prompt chunks, refills, heads and the steps between. */
export class DmtdPlanner {
  readonly cycle: number;

  constructor(
    private readonly cfg: DmtdConfig,
    private readonly opts: DmtdOptions & { fullDepth?: boolean },
  ) {
    this.cycle = opts.cycle ?? cfg.cycle;
  }

  get numLayers(): number {
    return this.cfg.thinkingLayers + this.cfg.decodingLayers;
  }

  /** A prompt chunk: every layer; the decoding layers read e + t (reference) or t (plain, and full depth). */
  prompt(): ThinkingSpec {
    const add = !this.opts.fullDepth && (this.opts.prefill ?? "reference") === "reference";
    return { rows: "step", input: add ? "add" : "plain" };
  }

  /** The decode step feeding `pos`: full depth runs every layer on every token, plainly. */
  decode(schedule: CycleSchedule, pos: number): PlannedStep {
    if (this.opts.fullDepth) {
      return {
        thinking: { rows: "step", input: "plain" },
        head: true,
        layers: this.numLayers,
        refillRows: 0,
      };
    }
    const step = schedule.at(pos);
    if (!step.head) {
      return { thinking: { rows: "none" }, head: false, layers: this.cfg.decodingLayers, refillRows: 0 };
    }
    const refillRows = step.refill.length;
    return { thinking: { rows: step.refill, input: "add" }, head: true, layers: this.numLayers, refillRows };
  }

  /** A new schedule for a generation whose prompt has `promptLength` tokens, every one's K/V valid. */
  schedule(promptLength: number): CycleSchedule {
    return new CycleSchedule(this.cycle, promptLength, promptLength);
  }
}

/** One generation's DMTD plan: its prompt, the step feeding each position after it, what it leaves valid. */
export class DmtdRun {
  readonly schedule: CycleSchedule;
  /** The prompt's last step (it samples the first token): every layer. */
  readonly full: PlannedStep;
  /** The plan of the step feeding `pos` (positions in order). */
  readonly step = (pos: number): PlannedStep => this.planner.decode(this.schedule, pos);

  /** `thinkValid`: leading positions whose thinking-layer K/V the session's cache holds before the prompt. */
  constructor(
    private readonly planner: DmtdPlanner,
    promptLength: number,
    private readonly thinkValid: number,
    private readonly fullDepth: boolean,
  ) {
    this.schedule = planner.schedule(promptLength);
    this.full = { thinking: planner.prompt(), head: true, layers: planner.numLayers, refillRows: 0 };
  }

  /** The prompt's chunks, and the reused positions before `reused` whose thinking-layer K/V must be refilled. */
  prompt(reused: number): DmtdPrompt {
    const refill = Array.from(
      { length: Math.max(0, reused - this.thinkValid) },
      (_, i) => this.thinkValid + i,
    );
    return { chunks: this.planner.prompt(), refill };
  }

  /** Leading positions whose thinking-layer K/V the generation's steps leave valid. */
  get thinkingValid(): number {
    return this.fullDepth ? Infinity : this.schedule.thinkingValid;
  }

  /** τ (0 at full depth). */
  get cycle(): number {
    return this.fullDepth ? 0 : this.planner.cycle;
  }
}
