/**
 * The attention half of a layer in training: n1 = input_layernorm(x); q, k, v = projections of n1 (Qwen3: each
 * head's q and k RMS-normed); RoPE on q and k; causal GQA attention over the batch's own rows; the output
 * projection into `out` (added to it, or written). The backward walks the same steps in reverse, leaving the
 * input gradient added into `dx`. Every activation the backward needs is kept.
 */

import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { TrainAttention } from "../../ops/attention/train.ts";
import { RmsNormTrain } from "../../ops/norm/train.ts";
import { RopeTrain } from "../../ops/rope/train.ts";
import type { TrainContext } from "./context.ts";
import { LinearTrain } from "./linear.ts";

export interface AttentionTrainIO {
  /** The residual stream entering the layer [N, H], and its gradient (added to). */
  x: GPUBuffer;
  dx: GPUBuffer;
  /** The projected attention output [N, H] (`accumulate`: added to), and its gradient (read). */
  out: GPUBuffer;
  dOut: GPUBuffer;
  accumulate: boolean;
  /** The backward adds n1's gradient to what is already in the scratch (a router's share), else writes it. */
  accumulateDn: boolean;
}

/** The q/k norms of a Qwen3 layer, with q and k before them. */
interface QkNorms {
  q: RmsNormTrain;
  k: RmsNormTrain;
}

export class AttentionTrain {
  /** n1 = input_layernorm(x), kept: a routed layer's router reads it too. */
  readonly n1: GPUBuffer;
  private readonly norm: RmsNormTrain;
  private readonly proj: { q: LinearTrain; k: LinearTrain; v: LinearTrain; o: LinearTrain };
  private readonly qkNorms: QkNorms | null;
  private readonly rope: RopeTrain;
  private readonly ropeBack: RopeTrain;
  private readonly attention: TrainAttention;

  constructor(ctx: TrainContext, layer: number, io: AttentionTrainIO) {
    const s = ctx.shape, N = ctx.rows, g = ctx.scratch, p = `model.layers.${layer}`;
    const qw = s.heads * s.headDim, kw = s.kvHeads * s.headDim, wg = ctx.profile.normWorkgroup;
    this.n1 = ctx.floats(`L${layer}.n1`, N * s.hidden);
    this.norm = new RmsNormTrain(ctx.kernels, {
      x: io.x,
      weight: ctx.param(`${p}.input_layernorm.weight`).value,
      dweight: ctx.param(`${p}.input_layernorm.weight`).grad,
      y: this.n1,
      rstd: ctx.floats(`L${layer}.rstd1`, N),
      dy: g.dNorm,
      dx: io.dx,
    }, { rows: N, width: s.hidden, eps: s.cfg.rmsNormEps, workgroup: wg, accumulateDx: true });
    const q = ctx.floats(`L${layer}.q`, N * qw), k = ctx.floats(`L${layer}.k`, N * kw);
    const v = ctx.floats(`L${layer}.v`, N * kw), o = ctx.floats(`L${layer}.attn`, N * qw);
    const qPre = s.qkNorm ? ctx.floats(`L${layer}.qPre`, N * qw) : q;
    const kPre = s.qkNorm ? ctx.floats(`L${layer}.kPre`, N * kw) : k;
    const dqPre = g.dqPre ?? g.dq, dkPre = g.dkPre ?? g.dk;
    const lin = (name: string, y: GPUBuffer, dy: GPUBuffer, accumulateDx: boolean) =>
      new LinearTrain(
        ctx.kernels,
        ctx.param(`${p}.self_attn.${name}.weight`),
        {
          x: this.n1,
          y,
          dy,
          dx: g.dNorm,
        },
        N,
        { accumulateDx },
      );
    this.proj = {
      q: lin("q_proj", qPre, dqPre, io.accumulateDn),
      k: lin("k_proj", kPre, dkPre, true),
      v: lin("v_proj", v, g.dv, true),
      o: new LinearTrain(
        ctx.kernels,
        ctx.param(`${p}.self_attn.o_proj.weight`),
        {
          x: o,
          y: io.out,
          dy: io.dOut,
          dx: g.dAttn,
        },
        N,
        { accumulateY: io.accumulate },
      ),
    };
    this.qkNorms = s.qkNorm ? this.headNorms(ctx, layer, { q, k, qPre, kPre }) : null;
    [this.rope, this.ropeBack, this.attention] = attentionCore(ctx, layer, { q, k, v, o });
  }

  /** Qwen3's per-head RMSNorm of q and k: rows of head_dim, before RoPE. */
  private headNorms(
    ctx: TrainContext,
    layer: number,
    b: { q: GPUBuffer; k: GPUBuffer; qPre: GPUBuffer; kPre: GPUBuffer },
  ): QkNorms {
    const s = ctx.shape, N = ctx.rows, g = ctx.scratch, p = `model.layers.${layer}.self_attn`;
    const norm = (which: "q" | "k", heads: number) => {
      const w = ctx.param(`${p}.${which}_norm.weight`);
      return new RmsNormTrain(ctx.kernels, {
        x: which === "q" ? b.qPre : b.kPre,
        weight: w.value,
        dweight: w.grad,
        y: which === "q" ? b.q : b.k,
        rstd: ctx.floats(`L${layer}.rstd_${which}`, N * heads),
        dy: which === "q" ? g.dq : g.dk,
        dx: which === "q" ? g.dqPre! : g.dkPre!,
      }, { rows: N * heads, width: s.headDim, eps: s.cfg.rmsNormEps, workgroup: ctx.profile.normWorkgroup });
    };
    return { q: norm("q", s.heads), k: norm("k", s.kvHeads) };
  }

  forward(pass: ComputeRecorder): void {
    this.norm.forward(pass);
    this.proj.q.forward(pass);
    this.proj.k.forward(pass);
    this.proj.v.forward(pass);
    this.qkNorms?.q.forward(pass);
    this.qkNorms?.k.forward(pass);
    this.rope.encode(pass);
    this.attention.encodeForward(pass);
    this.proj.o.forward(pass);
  }

  backward(pass: ComputeRecorder): void {
    this.proj.o.backward(pass);
    this.attention.encodeBackward(pass);
    this.ropeBack.encode(pass);
    this.qkNorms?.q.backward(pass);
    this.qkNorms?.k.backward(pass);
    this.proj.q.backward(pass);
    this.proj.k.backward(pass);
    this.proj.v.backward(pass);
    this.norm.backward(pass);
  }
}

/** RoPE on q and k (and its inverse on their gradients) and the attention over the batch's rows. */
function attentionCore(
  ctx: TrainContext,
  layer: number,
  b: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; o: GPUBuffer },
): [RopeTrain, RopeTrain, TrainAttention] {
  const s = ctx.shape, g = ctx.scratch;
  const ropeShape = { rows: ctx.rows, seqLen: ctx.size.seq, headDim: s.headDim };
  const part = (x: GPUBuffer, heads: number) => ({ x, stride: heads * s.headDim, offset: 0, heads });
  const rope = (q: GPUBuffer, k: GPUBuffer, inverse: boolean) =>
    new RopeTrain(ctx.kernels, ropeShape, ctx.cosSin, [part(q, s.heads), part(k, s.kvHeads)], inverse);
  const attention = new TrainAttention(ctx.kernels, ctx.attentionShape, {
    q: b.q,
    k: b.k,
    v: b.v,
    out: b.o,
    lse: ctx.floats(`L${layer}.lse`, ctx.rows * s.heads),
    dout: g.dAttn,
    dq: g.dq,
    dk: g.dk,
    dv: g.dv,
    scratch: ctx.attentionScratch,
  });
  return [rope(b.q, b.k, false), rope(g.dq, g.dk, true), attention];
}
