/**
 * FlexiDepth's router in training, one routed layer (flexidepth-spec.md): from z = input_layernorm(x),
 *   logit = W_head · W_dec · tanh(RMSNorm_r(W_enc · z))
 * then g = sigmoid(logit), the hard route m = g > 0.5 and the branch scales (ops/route/gate_train.ts). The
 * backward takes dlogit from the gate and writes z's gradient into the scratch (the attention adds its own).
 */

import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { Unary } from "../../ops/elementwise/unary.ts";
import { RmsNormTrain } from "../../ops/norm/train.ts";
import { RouteGateTrain } from "../../ops/route/gate_train.ts";
import { routerTensorNames } from "../../model/checkpoint.ts";
import type { TrainContext } from "./context.ts";
import { LinearTrain } from "./linear.ts";

/** The gates of every routed layer [routed, N], and their gradients (the skip loss adds its share). */
export interface RouteBuffers {
  gates: GPUBuffer;
  dgates: GPUBuffer;
}

export class RouterTrain {
  /** The route m and the scales sm = m·g, sa = (1 − m)(1 − g) [N], and the scales' gradients. */
  readonly m: GPUBuffer;
  readonly sm: GPUBuffer;
  readonly sa: GPUBuffer;
  readonly dsm: GPUBuffer;
  readonly dsa: GPUBuffer;
  private readonly enc: LinearTrain;
  private readonly norm: RmsNormTrain;
  private readonly tanh: Unary;
  private readonly dec: LinearTrain;
  private readonly head: LinearTrain;
  private readonly gate: RouteGateTrain;

  /** `routedIndex`: this layer's place among the routed layers; `z`: the layer's n1. */
  constructor(ctx: TrainContext, layer: number, routedIndex: number, z: GPUBuffer, route: RouteBuffers) {
    const s = ctx.shape, N = ctx.rows, B = s.bottleneck, names = routerTensorNames(layer);
    const f = (what: string, n: number) => ctx.floats(`L${layer}.router.${what}`, n);
    const enc = f("enc", N * B), rn = f("norm", N * B), t = f("tanh", N * B), dd = f("dec", N * s.hidden);
    const dEnc = f("dEnc", N * B), dRn = f("dNorm", N * B), dT = f("dTanh", N * B);
    const logit = f("logit", N), dLogit = f("dLogit", N);
    [this.m, this.sm, this.sa, this.dsm, this.dsa] = ["m", "sm", "sa", "dsm", "dsa"].map((w) => f(w, N));
    this.enc = new LinearTrain(ctx.kernels, ctx.param(names.enc), {
      x: z,
      y: enc,
      dy: dEnc,
      dx: ctx.scratch.dNorm,
    }, N);
    const w = ctx.param(names.norm);
    this.norm = new RmsNormTrain(ctx.kernels, {
      x: enc,
      weight: w.value,
      dweight: w.grad,
      y: rn,
      rstd: f("rstd", N),
      dy: dRn,
      dx: dEnc,
    }, { rows: N, width: B, eps: s.cfg.rmsNormEps, workgroup: ctx.profile.normWorkgroup });
    this.tanh = new Unary(ctx.kernels, "tanh", { x: rn, y: t, dy: dT, dx: dRn }, N * B);
    const dDec = ctx.scratch.dBranch2;
    this.dec = new LinearTrain(ctx.kernels, ctx.param(names.dec), { x: t, y: dd, dy: dDec, dx: dT }, N);
    this.head = new LinearTrain(
      ctx.kernels,
      ctx.param(names.head),
      { x: dd, y: logit, dy: dLogit, dx: dDec },
      N,
    );
    this.gate = new RouteGateTrain(
      ctx.kernels,
      {
        logit,
        gates: route.gates,
        dgates: route.dgates,
        m: this.m,
        sm: this.sm,
        sa: this.sa,
        dsm: this.dsm,
        dsa: this.dsa,
        dlogit: dLogit,
      },
      N,
      routedIndex,
    );
  }

  forward(pass: ComputeRecorder): void {
    this.enc.forward(pass);
    this.norm.forward(pass);
    this.tanh.forward(pass);
    this.dec.forward(pass);
    this.head.forward(pass);
    this.gate.forward(pass);
  }

  /** Needs dsm and dsa (the scales' backward) and the skip loss's share of dgates; writes z's gradient. */
  backward(pass: ComputeRecorder): void {
    this.gate.backward(pass);
    this.head.backward(pass);
    this.dec.backward(pass);
    this.tanh.backward(pass);
    this.norm.backward(pass);
    this.enc.backward(pass);
  }
}
