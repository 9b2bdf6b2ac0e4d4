/**
 * A plain transformer layer in training (Llama, Qwen3), as the inference layer computes it:
 *   h   = x + o_proj(Attention(input_layernorm(x)))
 *   out = h + MLP(post_attention_layernorm(h))
 * Forward keeps what the backward reads; the backward takes out's gradient in `dRes` and leaves x's there.
 */

import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { AddInto } from "../../ops/elementwise/add.ts";
import { RmsNormTrain } from "../../ops/norm/train.ts";
import { AttentionTrain } from "./attention.ts";
import type { TrainContext } from "./context.ts";
import { SwigluFfn } from "./swiglu_ffn.ts";

/** A layer kind of the training graph: records its forward and its backward. */
export interface TrainUnit {
  forward(pass: ComputeRecorder): void;
  backward(pass: ComputeRecorder): void;
}

/** A layer's residual stream: its input x, its output, and the gradient buffer both share in the backward. */
export interface LayerIO {
  x: GPUBuffer;
  out: GPUBuffer;
  dRes: GPUBuffer;
}

/** post_attention_layernorm over h into a new n2, its backward adding into dRes. */
export function postNorm(ctx: TrainContext, layer: number, h: GPUBuffer, dRes: GPUBuffer) {
  const s = ctx.shape, N = ctx.rows, w = ctx.param(`model.layers.${layer}.post_attention_layernorm.weight`);
  const n2 = ctx.floats(`L${layer}.n2`, N * s.hidden);
  const norm = new RmsNormTrain(ctx.kernels, {
    x: h,
    weight: w.value,
    dweight: w.grad,
    y: n2,
    rstd: ctx.floats(`L${layer}.rstd2`, N),
    dy: ctx.scratch.dNorm,
    dx: dRes,
  }, {
    rows: N,
    width: s.hidden,
    eps: s.cfg.rmsNormEps,
    workgroup: ctx.profile.normWorkgroup,
    accumulateDx: true,
  });
  return { n2, norm };
}

/** The layer's MLP weights by name. */
export function mlpWeights(ctx: TrainContext, layer: number) {
  const p = `model.layers.${layer}.mlp`;
  return {
    gate: `${p}.gate_proj.weight`,
    up: `${p}.up_proj.weight`,
    out: `${p}.down_proj.weight`,
    width: ctx.shape.intermediate,
  };
}

export class PlainLayer implements TrainUnit {
  private readonly copyX: AddInto;
  private readonly attention: AttentionTrain;
  private readonly norm: RmsNormTrain;
  private readonly copyH: AddInto;
  private readonly mlp: SwigluFfn;

  constructor(ctx: TrainContext, layer: number, io: LayerIO) {
    const n = ctx.rows * ctx.shape.hidden;
    const h = ctx.floats(`L${layer}.h`, n);
    this.copyX = new AddInto(ctx.kernels, { x: io.x, y: h }, n, false);
    this.attention = new AttentionTrain(ctx, layer, {
      x: io.x,
      dx: io.dRes,
      out: h,
      dOut: io.dRes,
      accumulate: true,
      accumulateDn: false,
    });
    const post = postNorm(ctx, layer, h, io.dRes);
    this.norm = post.norm;
    this.copyH = new AddInto(ctx.kernels, { x: h, y: io.out }, n, false);
    this.mlp = new SwigluFfn(ctx, `L${layer}.mlp`, mlpWeights(ctx, layer), {
      n: post.n2,
      dn: ctx.scratch.dNorm,
      accumulateDn: false,
      out: io.out,
      dOut: io.dRes,
      accumulateOut: true,
    });
  }

  forward(pass: ComputeRecorder): void {
    this.copyX.encode(pass);
    this.attention.forward(pass);
    this.norm.forward(pass);
    this.copyH.encode(pass);
    this.mlp.forward(pass);
  }

  /** dRes holds d out = d h's residual share; the MLP and norm add theirs (d h), then attention adds (d x). */
  backward(pass: ComputeRecorder): void {
    this.mlp.backward(pass);
    this.norm.backward(pass);
    this.attention.backward(pass);
  }
}
