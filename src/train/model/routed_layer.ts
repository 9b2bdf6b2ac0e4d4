/**
 * A FlexiDepth routed layer in training, exactly the inference layer (flexidepth-spec.md) with hard routing:
 *   h   = x + m · o_proj(Attention(n1))                 every row writes K/V; only kept rows take attention
 *   out = h + m·g · MLP(n2) + (1 − m)(1 − g) · Adapter(n2),  n2 = post_attention_layernorm(h)
 * where g is the router's gate and m = g > 0.5. For a skipped row h = x, so its adapter reads
 * post_attention_layernorm(x), as released. Gradients reach g through both scales and the skip loss.
 */

import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { AddInto } from "../../ops/elementwise/add.ts";
import { RowMask, RowScale } from "../../ops/elementwise/row_scale.ts";
import type { RmsNormTrain } from "../../ops/norm/train.ts";
import { routerTensorNames } from "../../model/checkpoint.ts";
import { AttentionTrain } from "./attention.ts";
import type { TrainContext } from "./context.ts";
import { type LayerIO, mlpWeights, postNorm, type TrainUnit } from "./layer.ts";
import { type RouteBuffers, RouterTrain } from "./router.ts";
import { SwigluFfn } from "./swiglu_ffn.ts";

export class RoutedLayer implements TrainUnit {
  private readonly copyX: AddInto;
  private readonly attention: AttentionTrain;
  private readonly router: RouterTrain;
  private readonly maskAttn: RowMask;
  private readonly norm: RmsNormTrain;
  private readonly mlp: SwigluFfn;
  private readonly adapter: SwigluFfn;
  private readonly copyH: AddInto;
  private readonly scaleMlp: RowScale;
  private readonly scaleAdapter: RowScale;

  constructor(ctx: TrainContext, layer: number, routedIndex: number, io: LayerIO, route: RouteBuffers) {
    const s = ctx.shape, N = ctx.rows, n = N * s.hidden, g = ctx.scratch, k = ctx.kernels;
    const h = ctx.floats(`L${layer}.h`, n), attn = ctx.floats(`L${layer}.attnOut`, n);
    const mlpOut = ctx.floats(`L${layer}.mlpOut`, n), adapterOut = ctx.floats(`L${layer}.adapterOut`, n);
    this.copyX = new AddInto(k, { x: io.x, y: h }, n, false);
    this.attention = new AttentionTrain(ctx, layer, {
      x: io.x,
      dx: io.dRes,
      out: attn,
      dOut: g.dBranch,
      accumulate: false,
      accumulateDn: true,
    });
    this.router = new RouterTrain(ctx, layer, routedIndex, this.attention.n1, route);
    const r = this.router;
    this.maskAttn = new RowMask(k, { mask: r.m, x: attn, y: h, dy: io.dRes, dx: g.dBranch }, N, s.hidden, {
      accumulateY: true,
    });
    const post = postNorm(ctx, layer, h, io.dRes);
    this.norm = post.norm;
    const ffnIO = (out: GPUBuffer, dOut: GPUBuffer, accumulateDn: boolean) => ({
      n: post.n2,
      dn: g.dNorm,
      accumulateDn,
      out,
      dOut,
      accumulateOut: false,
    });
    this.mlp = new SwigluFfn(ctx, `L${layer}.mlp`, mlpWeights(ctx, layer), ffnIO(mlpOut, g.dBranch, false));
    const a = routerTensorNames(layer);
    this.adapter = new SwigluFfn(ctx, `L${layer}.adapter`, {
      gate: a.gate,
      up: a.down,
      out: a.up,
      width: s.adapter,
    }, ffnIO(adapterOut, g.dBranch2, true));
    this.copyH = new AddInto(k, { x: h, y: io.out }, n, false);
    const scale = (sc: GPUBuffer, ds: GPUBuffer, x: GPUBuffer, dx: GPUBuffer) =>
      new RowScale(k, { s: sc, ds, x, y: io.out, dy: io.dRes, dx }, N, s.hidden, { accumulateY: true });
    this.scaleMlp = scale(r.sm, r.dsm, mlpOut, g.dBranch);
    this.scaleAdapter = scale(r.sa, r.dsa, adapterOut, g.dBranch2);
  }

  forward(pass: ComputeRecorder): void {
    this.copyX.encode(pass);
    this.attention.forward(pass);
    this.router.forward(pass);
    this.maskAttn.forward(pass);
    this.norm.forward(pass);
    this.mlp.forward(pass);
    this.adapter.forward(pass);
    this.copyH.encode(pass);
    this.scaleMlp.forward(pass);
    this.scaleAdapter.forward(pass);
  }

  /** dRes: d out on entry, d x on exit. The router writes n1's gradient first; attention adds to it. */
  backward(pass: ComputeRecorder): void {
    this.scaleMlp.backward(pass);
    this.scaleAdapter.backward(pass);
    this.mlp.backward(pass);
    this.adapter.backward(pass);
    this.norm.backward(pass);
    this.maskAttn.backward(pass);
    this.router.backward(pass);
    this.attention.backward(pass);
  }
}
