/**
 * What every layer unit builds its ops with: the model's dims, the step's buffers (RunState), the KV cache,
 * and the backend profile's choices, applied here so that the units themselves read like the equations.
 */

import type { ModelConfig } from "../model/config.ts";
import type { KernelCache } from "../gpu/kernels.ts";
import type { BackendProfile } from "../gpu/profile.ts";
import type { ComputeRecorder } from "../gpu/profiler.ts";
import type { GpuMatrix } from "../gpu/matrix.ts";
import { Matmul } from "../ops/matmul/matmul.ts";
import type { MatmulOptions } from "../ops/matmul/options.ts";
import { NO_OP, type StepOp } from "../ops/op.ts";
import { RmsNorm, RowTextureNorm } from "../ops/norm/rmsnorm.ts";
import { Attention } from "../ops/attention/attention.ts";
import { type HeadWeights, type RopeColumns, RopeHeads } from "../ops/rope/rope_heads.ts";
import type { KvCache } from "./kv_cache.ts";
import { attentionShape, type RunState } from "./run_state.ts";

/** How routed layers decide (changeable between generations without reloading). */
export interface RoutingMode {
  /** Run a routed layer when g > threshold (0.5 as released). */
  threshold: number;
  /** Every routed layer runs in full with g = 1: the base model. */
  fullDepth: boolean;
}

/** A decoder layer of some kind: builds its dispatches once, records them per step. */
export interface LayerUnit {
  /**
   * Records the layer over `nRows` rows; where only the first `outRows` rows' outputs are read, a unit may
   * write the other rows' K/V and compute no more for them.
   */
  encode(pass: ComputeRecorder, nRows: number, routing: RoutingMode, outRows?: number): void;
}

/** Where a matmul reads and writes besides x and y (`MatmulIO`). */
export interface MatmulExtras {
  /** Per-row scale (FlexiDepth's g) for `scaleMode`. */
  rowScale?: GPUBuffer;
  /** Steps of few rows read x from this row texture (already normalized when the matmul has a norm). */
  xTexture?: GPUTexture | null;
  /** One-row steps leave argmax pairs here (the LM head). */
  argmax?: GPUBuffer | null;
}

export class LayerBuilder {
  readonly qDim: number;
  readonly kvDim: number;

  constructor(
    readonly kernels: KernelCache,
    readonly cfg: ModelConfig,
    readonly profile: BackendProfile,
    readonly state: RunState,
    readonly kv: KvCache,
    /** q and k rows are stored in rotation pairs: the projections rope and write K/V in their epilogue. */
    readonly ropePairs: boolean,
  ) {
    this.qDim = cfg.numHeads * cfg.headDim;
    this.kvDim = cfg.numKvHeads * cfg.headDim;
  }

  /** y (+)= W · x over the rows the `step` uniform counts, with the profile's GEMV. */
  matmul(
    w: GpuMatrix,
    x: GPUBuffer,
    y: GPUBuffer,
    step: GPUBuffer,
    opts: MatmulOptions = {},
    extras: MatmulExtras = {},
  ): Matmul {
    return new Matmul(this.kernels, w, {
      x,
      y,
      yStride: opts.swiglu ? w.rows / 2 : w.rows,
      step,
      rowScale: extras.rowScale,
      xTexture: extras.xTexture ?? undefined,
      // The norm that writes the row texture writes its int8 blocks too (quantized matmuls read those).
      xq: extras.xTexture && extras.xTexture === this.state.xnTexture
        ? this.state.xq ?? undefined
        : undefined,
      argmax: extras.argmax ?? undefined,
    }, { gemv: this.profile.bufferGemv, quantizedX: this.profile.quantizedX, ...opts });
  }

  /** x read through RMSNorm with these weights. */
  normed(weight: GPUBuffer): MatmulOptions {
    return { norm: { weight, eps: this.cfg.rmsNormEps } };
  }

  /** The MLP's (or adapter's) first matmul: RMSNorm in, SiLU(gate) · up out. */
  mlp(weight: GPUBuffer): MatmulOptions {
    return { ...this.normed(weight), swiglu: true };
  }

  /**
   * An attention projection of layer `l` ([q; k; v], [k; v] or q; `qRows` and `kvRows` of each): RMSNorm in,
   * and RoPE with the KV write out where the weights are in rotation pairs (else `ropeKv` does it).
   */
  projection(norm: GPUBuffer, l: number, rows: GPUBuffer, qRows: number, kvRows: number): MatmulOptions {
    if (!this.ropePairs) return this.normed(norm);
    return {
      ...this.normed(norm),
      rope: {
        rows,
        cosSin: this.state.cosSin,
        kCache: this.kv.k[l],
        vCache: this.kv.v[l],
        headDim: this.cfg.headDim,
        qRows,
        kvDim: kvRows,
        ctx: this.kv.context,
        kvF16: this.kv.dtype === "f16",
      },
    };
  }

  /**
   * RoPE and the KV write of layer `l` (whose per-head weights `L` has: Qwen3's q/k norms, Qwen2's biases) as a
   * kernel of their own, where the projection's epilogue cannot do them (`rope_heads`).
   */
  ropeKv(
    L: HeadWeights,
    l: number,
    step: GPUBuffer,
    rows: GPUBuffer,
    src: GPUBuffer,
    at: RopeColumns,
  ): StepOp {
    if (this.ropePairs) return NO_OP;
    const c = this.cfg;
    const shape = {
      numHeads: c.numHeads,
      numKvHeads: c.numKvHeads,
      headDim: c.headDim,
      context: this.kv.context,
      eps: c.rmsNormEps,
      kvF16: this.kv.dtype === "f16",
    };
    const io = {
      step,
      rows,
      cosSin: this.state.cosSin,
      qkv: src,
      kCache: this.kv.k[l],
      vCache: this.kv.v[l],
    };
    return new RopeHeads(this.kernels, shape, at, io, L);
  }

  /** Attention of layer `l` for the rows in `rows`, q read from rows of `qStride` floats; out: `state.att`. */
  attention(l: number, step: GPUBuffer, rows: GPUBuffer, q: GPUBuffer, qStride: number): Attention {
    const shape = { ...attentionShape(this.cfg, this.profile), context: this.kv.context, kv: this.kv.dtype };
    return new Attention(this.kernels, shape, {
      step,
      rows,
      q,
      qStride,
      kCache: this.kv.k[l],
      vCache: this.kv.v[l],
      out: this.state.att,
      scratch: this.state.attentionScratch,
    });
  }

  /**
   * The RMSNorm of x into the row texture that the next matmuls read (where the profile has one), in steps of up
   * to `maxRows` rows: by default as many as the texture has, the steps whose matmuls read x there.
   */
  rowNorm(weight: GPUBuffer, maxRows?: number): StepOp {
    const s = this.state;
    if (!s.xnTexture) return NO_OP;
    return new RowTextureNorm(
      new RmsNorm(this.kernels, {
        x: s.x,
        weight,
        y: s.xn!,
        step: s.step,
        outRows: s.outRows,
        texture: s.xnTexture,
        quantized: s.xq ?? undefined,
      }, {
        hidden: this.cfg.hiddenSize,
        eps: this.cfg.rmsNormEps,
        workgroup: this.profile.normWorkgroup,
      }),
      maxRows ?? s.xnTexture.height,
    );
  }
}
