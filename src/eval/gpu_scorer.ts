/**
 * The Scorer on the GPU engine. A question's choices share their context: the context runs once in a slot of
 * its own, its K/V is copied into one slot per choice, and then every choice's continuation is scored in the
 * same steps — the last context token and each continuation token but the last as rows, each row's next token
 * as its target — reading back two words per scored token (ops/sample/logprob.ts) and the rows' route bits.
 * Routing is exactly generation's (a token's route does not depend on how many rows its step has); a DMTD mode
 * teacher-forces the cycle: a continuation's heads get e + t, the rows between them e alone.
 */

import type { Model } from "../generation/model.ts";
import type { LoadOptions } from "../generation/model.ts";
import type { Engine, PendingStep, RowInput, StepRow, ThinkingSpec } from "../engine/engine.ts";
import type {
  EvalMode,
  GenerateRequest,
  GenerateResult,
  LoglikelihoodRequest,
  LoglikelihoodResult,
  Scorer,
} from "./scorer.ts";
import { type ScoringRow, scoringRows } from "./scoring_plan.ts";

/** What the engine must be loaded with to score: slots for a context and its choices, rows per step. */
export const SCORER_LOAD: Pick<LoadOptions, "slots" | "scoreRows" | "maxRows"> = {
  slots: 9,
  scoreRows: 64,
  maxRows: 64,
};

/** A scoring step in flight, and what its rows were. */
interface SubmittedStep {
  step: PendingStep;
  rows: ScoringRow[];
  mode: EvalMode;
  contextLength: number;
}

/** Steps whose readbacks may be in flight at once. */
const IN_FLIGHT = 8;

export function createGpuScorer(model: Model): Scorer {
  return new GpuScorer(model);
}

class GpuScorer implements Scorer {
  private readonly engine: Engine;

  constructor(private readonly model: Model) {
    this.engine = model.engine;
    if (this.engine.forward.state.scoring === null || this.engine.freeSlotCount < 2) {
      throw new Error("the model was loaded without scoring rows or spare slots: load it with SCORER_LOAD");
    }
  }

  get bos(): number | null {
    return this.model.tokenizer.promptBos;
  }

  encode(text: string): number[] {
    return this.model.tokenizer.encodeText(text);
  }

  async loglikelihood(requests: LoglikelihoodRequest[], mode: EvalMode): Promise<LoglikelihoodResult[]> {
    this.setMode(mode);
    const results: LoglikelihoodResult[] = requests.map(() => ({ logprob: 0, greedy: true, layers: [] }));
    const slots = this.takeSlots();
    const pending: SubmittedStep[] = [];
    try {
      for (const group of contextGroups(requests, slots.length - 1)) {
        for (const step of this.submitGroup(requests, group, slots, mode)) {
          pending.push(step);
          while (pending.length > IN_FLIGHT) await this.collect(pending.shift()!, results);
        }
      }
      for (const p of pending) await this.collect(p, results);
    } finally {
      for (const s of slots) this.engine.releaseSlot(s);
    }
    return results;
  }

  async generate(request: GenerateRequest, mode: EvalMode): Promise<GenerateResult> {
    const { tokens, summary } = await this.model.generate(request.prompt, {
      maxTokens: request.maxTokens,
      stop: request.stop,
      temperature: 0,
      fullDepth: mode.fullDepth,
      threshold: mode.threshold,
      dmtd: mode.cycle ? { cycle: mode.cycle } : undefined,
    }).collect();
    return { text: summary.text, layers: tokens.map((t) => t.layers) };
  }

  private setMode(mode: EvalMode): void {
    this.engine.forward.routing = { threshold: mode.threshold ?? 0.5, fullDepth: mode.fullDepth };
  }

  /** Every free slot: the first holds a context, the others its choices. */
  private takeSlots(): number[] {
    const slots: number[] = [];
    while (this.engine.freeSlotCount > 0) slots.push(this.engine.allocSlot());
    return slots;
  }

  /** A context's steps: its prefix in slot 0, copied to the choices' slots, then the choices' rows. */
  private *submitGroup(
    requests: LoglikelihoodRequest[],
    group: number[],
    slots: number[],
    mode: EvalMode,
  ): Generator<SubmittedStep> {
    const e = this.engine;
    const context = this.fitContext(requests, group);
    const prefix = context.length - 1;
    for (let c = 0; c < prefix; c += e.maxRows) {
      const n = Math.min(e.maxRows, prefix - c);
      const rows = Array.from({ length: n }, (_, i) => ({ slot: slots[0], pos: c + i }));
      e.submitStep(rows, [], context.slice(c, c + n), false, promptThinking(e, mode));
    }
    e.copyPrefix(slots[0], slots.slice(1, group.length + 1), prefix);
    const choices = group.map((r, k) => ({
      request: r,
      slot: slots[k + 1],
      continuation: requests[r].continuation,
    }));
    for (const rows of scoringRows(context, choices, e.maxRows)) {
      const stepRows: StepRow[] = rows.map((r) => ({ slot: r.slot, pos: r.pos }));
      const thinking = this.scoringThinking(rows, context.length, mode);
      const step = e.submitScoring(
        stepRows,
        rows.map((_, i) => i),
        rows.map((r) => r.token),
        rows.map((r) => r.target),
        thinking,
      );
      yield { step, rows, mode, contextLength: context.length };
    }
  }

  /** The group's context, cut from the left so that context and the longest continuation fit the cache. */
  private fitContext(requests: LoglikelihoodRequest[], group: number[]): number[] {
    const longest = Math.max(...group.map((r) => requests[r].continuation.length));
    const room = Math.max(1, this.engine.context - longest);
    const context = requests[group[0]].context;
    if (context.length === 0) throw new Error("a log-likelihood request needs a context (at least BOS)");
    return context.slice(Math.max(0, context.length - room));
  }

  /** DMTD: every row thinks; the context's last row and the continuation's heads get e + t, others e. */
  private scoringThinking(
    rows: ScoringRow[],
    contextLength: number,
    mode: EvalMode,
  ): ThinkingSpec | undefined {
    const dmtd = this.engine.config.dmtd;
    if (!dmtd) return undefined;
    if (mode.fullDepth) return { rows: "step", input: "plain" };
    const cycle = mode.cycle ?? dmtd.cycle;
    const input = rows.map((r): RowInput => {
      const j = r.pos - contextLength; // the continuation token at this row's position: g_j, or the context's
      return j < 0 || j % cycle === 0 ? "add" : "embedding";
    });
    return { rows: "step", input };
  }

  /** A step's scores added into its requests' results, with each scored token's layers. */
  private async collect(p: SubmittedStep, results: LoglikelihoodResult[]): Promise<void> {
    const r = await this.engine.await(p.step);
    const layers = this.layersOfRows(r.routesOfRows, p);
    p.rows.forEach((row, i) => {
      const out = results[row.request], s = r.scores![i];
      out.logprob += s.logprob;
      out.greedy &&= s.greedy;
      out.layers.push(layers[i]);
    });
  }

  /** Layers of each row's pass: from its route bits (routed models), its DMTD role, or the depth. */
  private layersOfRows(routes: Uint32Array | null, p: SubmittedStep): number[] {
    const cfg = this.engine.config, words = this.engine.routeWords;
    if (routes && cfg.routingLayers.length) {
      return p.rows.map((_, i) => {
        let kept = 0;
        for (let w = 0; w < words; w++) kept += popcount(routes[i * words + w]);
        return cfg.numLayers - cfg.routingLayers.length + kept;
      });
    }
    const dmtd = cfg.dmtd;
    if (!dmtd || p.mode.fullDepth) return p.rows.map(() => cfg.numLayers);
    const cycle = p.mode.cycle ?? dmtd.cycle;
    // The row at position P − 1 + i ran every layer when it was the context's or a head's (g_{i−1}, i − 1 ≡ 0).
    return p.rows.map((r) => {
      const j = r.pos - p.contextLength;
      return j < 0 || j % cycle === 0 ? cfg.numLayers : dmtd.decodingLayers;
    });
  }
}

/** The thinking spec of a context's rows: prompt rows (e + t as the released code, or every layer plainly). */
function promptThinking(e: Engine, mode: EvalMode): ThinkingSpec | undefined {
  if (!e.config.dmtd) return undefined;
  return { rows: "step", input: mode.fullDepth ? "plain" : "add" };
}

/** Runs of consecutive requests with the same context, at most `most` per run. */
function* contextGroups(requests: LoglikelihoodRequest[], most: number): Generator<number[]> {
  let group: number[] = [];
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
  for (let r = 0; r < requests.length; r++) {
    if (group.length && (group.length === most || !same(requests[group[0]].context, requests[r].context))) {
      yield group;
      group = [];
    }
    group.push(r);
  }
  if (group.length) yield group;
}

function popcount(v: number): number {
  let n = 0;
  for (; v; v &= v - 1) n++;
  return n;
}
