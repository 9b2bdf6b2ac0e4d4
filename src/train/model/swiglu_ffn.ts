/**
 * A SwiGLU feed-forward in training: out (+)= W_out · (silu(W_gate · n) ⊙ (W_up · n)). The layer's MLP
 * (gate_proj, up_proj, down_proj) and FlexiDepth's adapter (gate_proj, down_proj on the input side, up_proj on
 * the output side: the release's swapped names) are both one. The backward adds n's gradient into `dn`.
 */

import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { SwigluTrain } from "../../ops/elementwise/swiglu.ts";
import type { TrainContext } from "./context.ts";
import { LinearTrain } from "./linear.ts";

export interface FfnWeights {
  /** Parameter names: the two input-side projections (silu's, the other) and the output projection. */
  gate: string;
  up: string;
  out: string;
  /** Intermediate width. */
  width: number;
}

export interface FfnIO {
  n: GPUBuffer;
  dn: GPUBuffer;
  /** `accumulateDn`: dn += (else dn =). */
  accumulateDn: boolean;
  out: GPUBuffer;
  dOut: GPUBuffer;
  accumulateOut: boolean;
}

export class SwigluFfn {
  private readonly gate: LinearTrain;
  private readonly up: LinearTrain;
  private readonly out: LinearTrain;
  private readonly act: SwigluTrain;

  constructor(ctx: TrainContext, label: string, w: FfnWeights, io: FfnIO) {
    const N = ctx.rows, g = ctx.scratch, n = N * w.width;
    const gate = ctx.floats(`${label}.gate`, n), up = ctx.floats(`${label}.up`, n);
    const act = ctx.floats(`${label}.act`, n);
    const input = (name: string, y: GPUBuffer, dy: GPUBuffer, accumulateDx: boolean) =>
      new LinearTrain(ctx.kernels, ctx.param(name), { x: io.n, y, dy, dx: io.dn }, N, { accumulateDx });
    this.gate = input(w.gate, gate, g.dGate, io.accumulateDn);
    this.up = input(w.up, up, g.dUp, true);
    this.out = new LinearTrain(
      ctx.kernels,
      ctx.param(w.out),
      {
        x: act,
        y: io.out,
        dy: io.dOut,
        dx: g.dAct,
      },
      N,
      { accumulateY: io.accumulateOut },
    );
    this.act = new SwigluTrain(ctx.kernels, {
      gate,
      up,
      act,
      dact: g.dAct,
      dgate: g.dGate,
      dup: g.dUp,
    }, n);
  }

  forward(pass: ComputeRecorder): void {
    this.gate.forward(pass);
    this.up.forward(pass);
    this.act.forward(pass);
    this.out.forward(pass);
  }

  backward(pass: ComputeRecorder): void {
    this.out.backward(pass);
    this.act.backward(pass);
    this.gate.backward(pass);
    this.up.backward(pass);
  }
}
