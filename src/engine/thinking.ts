/**
 * How a DMTD step runs its two layer groups, from what the generation's schedule (or a scorer) asks: which rows
 * the thinking layers run over, where their tokens come from, and the mix table that makes the decoding layers'
 * input (ops/dmtd/mix_rows.ts). Other models take no spec.
 */

import type { DmtdShape } from "../graph/stack.ts";
import type { MixRow } from "../ops/dmtd/mix_rows.ts";
import type { StepRow } from "./step_inputs.ts";

/**
 * How a DMTD step runs its thinking layers (the generation's schedule says which): over the step's own rows
 * and tokens ("step": a prompt chunk, full depth), over a refill block — positions of the step's slot ending
 * at its one row, whose tokens come from the GPU's token history (a cycle head) — or not at all ("none").
 */
export interface ThinkingSpec {
  rows: "step" | "none" | number[];
  /**
   * The decoding layers' input: e + t ("add") or t alone ("plain", the default) for every row, or per row of a
   * "step" (a scoring step teacher-forces a sequence: its heads e + t, the rows between them e alone).
   */
  input?: "add" | "plain" | RowInput[];
  /** Only the thinking layers run: no decoding, no outputs (a refill before a prompt). */
  only?: boolean;
}

/** One row's decoding-layer input: e + t, e alone, or t alone. */
export type RowInput = "add" | "embedding" | "thinking";

const ROW_MIX: Record<RowInput, { a: number; b: number }> = {
  add: { a: 1, b: 1 },
  embedding: { a: 0, b: 1 },
  thinking: { a: 1, b: 0 },
};

/** What the engine writes and the forward pass records for a step's thinking layers. */
export interface ThinkingPlan {
  /** The thinking rows ({slot, pos}) and the mix table to write. */
  rows: StepRow[];
  mix: MixRow[];
  shape: DmtdShape;
}

/**
 * The plan of a step over `rows` (`dmtd`: the model is one; otherwise only the default spec is allowed and there
 * is no plan). Without a spec every layer runs on the step's rows with d = t (the plain stack).
 */
export function planThinking(
  dmtd: boolean,
  rows: StepRow[],
  spec: ThinkingSpec = { rows: "step" },
  maxRows: number,
): ThinkingPlan | undefined {
  if (!dmtd) {
    if (spec.rows !== "step" || spec.input !== undefined && spec.input !== "plain" || spec.only) {
      throw new Error("not a DMTD model");
    }
    return undefined;
  }
  const add = spec.input === "add";
  if (spec.rows === "none") {
    return {
      rows: [],
      mix: [],
      shape: { thinkingRows: 0, thinkingOutRows: 0, fromHistory: false, mixRows: 0, thinkingOnly: false },
    };
  }
  if (spec.rows === "step") {
    const inputs = Array.isArray(spec.input)
      ? spec.input
      : rows.map((): RowInput => add ? "add" : "thinking");
    const mix = inputs.every((i) => i === "thinking") ? [] : inputs.map((i, src) => ({ src, ...ROW_MIX[i] }));
    const shape = {
      thinkingRows: rows.length,
      thinkingOutRows: spec.only ? 0 : rows.length,
      fromHistory: false,
      mixRows: mix.length,
      thinkingOnly: !!spec.only,
    };
    return { rows, mix, shape };
  }
  const block = spec.rows;
  if (rows.length !== 1 || block.length > maxRows || block.at(-1) !== rows[0].pos) {
    throw new Error(`a refill block [${block}] must end at the step's one row and hold ≤ ${maxRows} rows`);
  }
  // The head first: only its thinking output is read, so the last thinking layer runs the rest for K/V alone.
  const headFirst = [block[block.length - 1], ...block.slice(0, -1)];
  return {
    rows: headFirst.map((pos) => ({ slot: rows[0].slot, pos })),
    mix: add ? [{ src: 0, a: 1, b: 1 }] : [],
    shape: {
      thinkingRows: block.length,
      thinkingOutRows: 1,
      fromHistory: true,
      mixRows: add ? 1 : 0,
      thinkingOnly: false,
    },
  };
}
