/**
 * DMTD's two layer groups (../shared/design/dmtd-spec.md §0, §2.4–2.7): layers [0, T) think, layers [T, T + D)
 * decode. Per step:
 *   a prompt chunk:  t = thinking(e) over its rows;       d = e + t (the released code) or t (plain)
 *   a cycle head:    t = thinking(e) over the refill block — every position whose thinking K/V is missing, up
 *                    to the head, on the real tokens (from the GPU's token history); d = e + t of the head
 *   any other step:  d = e (no thinking layer runs)
 * then the decoding layers on d. `e` is the token embedding; `t` the residual stream after layer T − 1.
 */

import type { ComputeRecorder } from "../../gpu/profiler.ts";
import type { ModelConfig } from "../../model/config.ts";
import type { StepOp } from "../../ops/op.ts";
import { Embedding } from "../../ops/embed/embed.ts";
import { MixRows } from "../../ops/dmtd/mix_rows.ts";
import { TokenHistory } from "../../ops/dmtd/token_history.ts";
import type { LayerBuilder, LayerUnit, RoutingMode } from "../layer_builder.ts";
import type { ModelWeights } from "../weights.ts";
import type { DmtdShape, LayerStack } from "../stack.ts";
import { LlamaLayer } from "./llama.ts";

export class DmtdStack implements LayerStack {
  readonly history: TokenHistory;
  private readonly thinking: LayerUnit[];
  private readonly decoding: LayerUnit[];
  /** x = e of the thinking rows, e kept aside, and x = e of a non-head step's row. */
  private readonly embedThinking: StepOp;
  private readonly keepEmbedding: StepOp;
  private readonly embedDecoding: StepOp;
  private readonly mix: MixRows;

  /** `b` builds over the step's (decoding) rows, `think` over the thinking rows. */
  constructor(b: LayerBuilder, think: LayerBuilder, cfg: ModelConfig, weights: ModelWeights, slots: number) {
    const T = cfg.dmtd!.thinkingLayers;
    if (cfg.routingLayers.length) throw new Error("a DMTD model has no FlexiDepth routers");
    const s = b.state, d = s.dmtd!, k = b.kernels;
    this.thinking = weights.layers.slice(0, T).map((L, l) => new LlamaLayer(think, L, l));
    this.decoding = weights.layers.slice(T).map((L, l) => new LlamaLayer(b, L, T + l));
    this.embedThinking = new Embedding(k, weights.embed, { step: d.thinkStep, tokens: s.tokens, x: s.x });
    this.keepEmbedding = new Embedding(k, weights.embed, { step: d.thinkStep, tokens: s.tokens, x: d.e });
    this.embedDecoding = new Embedding(k, weights.embed, s);
    this.mix = new MixRows(k, cfg.hiddenSize, d.mix, s.x, d.e);
    this.history = new TokenHistory(k, slots, b.kv.context, {
      step: s.step,
      rows: s.rows,
      outRows: s.outRows,
      blockStep: d.thinkStep,
      blockRows: d.thinkRows,
      tokens: s.tokens,
    });
  }

  /** Without a shape, every layer runs on the step's rows, d = t: the plain stack (full depth, tests). */
  encode(pass: ComputeRecorder, nRows: number, routing: RoutingMode, shape?: DmtdShape): void {
    const sh = shape ??
      { thinkingRows: nRows, thinkingOutRows: nRows, fromHistory: false, mixRows: 0, thinkingOnly: false };
    if (sh.thinkingRows > 0) {
      if (sh.fromHistory) this.history.gather(pass, sh.thinkingRows);
      this.embedThinking.encode(pass, sh.thinkingRows);
      if (sh.mixRows > 0) this.keepEmbedding.encode(pass, sh.thinkingRows);
      const last = this.thinking.length - 1;
      this.thinking.forEach((layer, l) =>
        layer.encode(pass, sh.thinkingRows, routing, l === last ? sh.thinkingOutRows : undefined)
      );
      if (sh.thinkingOnly) return;
      this.mix.encode(pass, sh.mixRows);
    } else {
      this.embedDecoding.encode(pass, nRows);
    }
    for (const layer of this.decoding) layer.encode(pass, nRows, routing);
  }

  afterSampling(pass: ComputeRecorder, nOut: number): void {
    this.history.record(pass, nOut);
  }
}
