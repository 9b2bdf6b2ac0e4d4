/**
 * Prefill: the prompt runs in chunks of the engine's prefill rows; the last chunk samples the first token.
 * Routed models also read back every prompt position's route bits, to count the layers each one ran.
 */

import type { Engine, PendingStep, ThinkingSpec } from "../engine/engine.ts";

/** Prefill steps whose route readbacks may be in flight at once (prompts of many one-row steps). */
export const PREFILL_READBACKS = 8;

/** A DMTD prompt: how its chunks run, and the reused positions whose thinking-layer K/V is missing. */
export interface DmtdPrompt {
  chunks: ThinkingSpec;
  /** Positions before `from` refilled first, thinking layers only (a chat's earlier turns left them). */
  refill: number[];
}

/**
 * Runs prompt positions `from`.. of `ids` in KV slot `slot`; returns the last chunk's pending step
 * (it samples the first token). The other chunks' route bits are counted into `layers`.
 */
export async function prefill(
  engine: Engine,
  slot: number,
  ids: number[],
  from: number,
  layers: PromptLayers,
  dmtd?: DmtdPrompt,
): Promise<PendingStep> {
  if (dmtd) refillThinking(engine, slot, ids, dmtd.refill);
  const routed = engine.config.routingLayers.length > 0;
  const pending: PendingStep[] = [];
  for (let c = from; c < ids.length; c += engine.prefillRows) {
    const chunk = ids.slice(c, c + engine.prefillRows);
    const last = c + chunk.length === ids.length;
    const rows = chunk.map((_, i) => ({ slot, pos: c + i }));
    const p = engine.submitStep(rows, last ? [chunk.length - 1] : [], chunk, routed, dmtd?.chunks);
    if (p) pending.push(p);
    // One-row prefill steps of a long prompt: a bounded number of readbacks in flight, not one per token.
    while (!last && pending.length > PREFILL_READBACKS) {
      layers.count((await engine.await(pending.shift()!)).routesOfRows!);
    }
  }
  const first = pending.pop()!;
  for (const p of pending) layers.count((await engine.await(p)).routesOfRows!);
  return first;
}

/** The thinking layers over `positions` of `ids` (consecutive), in chunks; nothing to read back. */
function refillThinking(engine: Engine, slot: number, ids: number[], positions: number[]): void {
  for (let c = 0; c < positions.length; c += engine.maxRows) {
    const rows = positions.slice(c, c + engine.maxRows).map((pos) => ({ slot, pos }));
    engine.submitStep(rows, [], rows.map((r) => ids[r.pos]), false, { rows: "step", only: true });
  }
}

/** Layers each prompt position ran, counted from its route words. */
export class PromptLayers {
  private readonly counts: number[] = [];

  constructor(private readonly engine: Engine) {}

  /** Adds the positions of one step's route words ([rows × routeWords], bit l = routed layer l ran). */
  count(words: Uint32Array): void {
    const cfg = this.engine.config;
    const perRow = this.engine.routeWords;
    for (let i = 0; i < words.length; i += perRow) {
      let kept = 0;
      for (let w = 0; w < perRow; w++) kept += popcount(words[i + w]);
      this.counts.push(cfg.numLayers - cfg.routingLayers.length + kept);
    }
  }

  /** Layers at each of the `ran` positions that ran: counted, or every layer for a plain model. */
  perPosition(ran: number): number[] {
    const cfg = this.engine.config;
    if (cfg.routingLayers.length > 0) return this.counts;
    return Array.from({ length: ran }, () => cfg.numLayers);
  }
}

function popcount(v: number): number {
  let n = 0;
  for (; v; v &= v - 1) n++;
  return n;
}
