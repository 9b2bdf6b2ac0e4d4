/**
 * The attention heads' last touches before attention, as a kernel of their own (kernels/rope_heads.wgsl), for
 * layers whose projections cannot do them in their epilogue: per (row, head), Qwen2's bias, Qwen3's per-head
 * RMSNorm (q_norm / k_norm), RoPE, and the KV write. Rotates q in place and/or writes k and v into the layer's
 * cache at each row's (slot, pos).
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { storageBuffer } from "../../gpu/buffers.ts";
import { bindKernel, type Dispatch, record, type StepOp, uniformBuffer } from "../op.ts";

/** Invocations per workgroup: one per (row, head), a row's heads spread over ceil(heads / WG) workgroups. */
const WG = 32;

export interface RopeHeadsShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Positions per cache slot. */
  context: number;
  /** The q/k norms' epsilon (the model's rms_norm_eps). */
  eps: number;
  /** The cache holds f16 pairs (head size a multiple of 4), not f32. */
  kvF16?: boolean;
}

/** Columns of q, k and v in the projection output's rows; a part left out is not touched (k and v go together). */
export interface RopeColumns {
  stride: number;
  q?: number;
  k?: number;
  v?: number;
}

export interface RopeHeadsIO {
  step: GPUBuffer;
  rows: GPUBuffer;
  /** [ctx, head_dim / 2] (cos, sin): `ropeTable`. */
  cosSin: GPUBuffer;
  /** The projection output holding q, k, v at `RopeColumns` (q and k biased and normalized in place). */
  qkv: GPUBuffer;
  kCache: GPUBuffer;
  vCache: GPUBuffer;
}

/** A layer's per-head weights (f32), where its architecture has them. */
export interface HeadWeights {
  /** Qwen3: q_norm and k_norm, [head_dim] each. */
  qkNorm: { q: GPUBuffer; k: GPUBuffer } | null;
  /** Qwen2/2.5: the q, k and v projections' biases. */
  bias: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer } | null;
}

/** One small buffer per device bound where a layer has no such weights (the kernel never reads it then). */
const placeholders = new WeakMap<GPUDevice, GPUBuffer>();

function placeholder(device: GPUDevice): GPUBuffer {
  let b = placeholders.get(device);
  if (!b) placeholders.set(device, b = storageBuffer(device, "rope_heads.none", 16));
  return b;
}

export class RopeHeads implements StepOp {
  private readonly dispatch: Dispatch;
  /** Workgroups along a row: its heads (q and/or k and v) over WG invocations. */
  private readonly groups: number;

  constructor(kernels: KernelCache, shape: RopeHeadsShape, at: RopeColumns, io: RopeHeadsIO, w: HeadWeights) {
    const device = kernels.gpu.device, none = placeholder(device);
    const doQ = at.q !== undefined, doKv = at.k !== undefined;
    const flags = (doQ ? 1 : 0) | (doKv ? 2 : 0) | (w.qkNorm ? 4 : 0) | (w.bias ? 8 : 0) |
      (shape.kvF16 ? 16 : 0);
    if (shape.kvF16 && shape.headDim % 4 !== 0) {
      throw new Error(`an f16 KV cache needs a head size that is a multiple of 4, not ${shape.headDim}`);
    }
    const params = uniformBuffer(device, "rope_heads", [
      ["u32", shape.numHeads],
      ["u32", shape.numKvHeads],
      ["u32", shape.headDim],
      ["u32", shape.context],
      ["u32", at.stride],
      ["u32", at.q ?? 0],
      ["u32", at.k ?? 0],
      ["u32", at.v ?? 0],
      ["u32", flags],
      ["f32", shape.eps],
    ]);
    this.dispatch = bindKernel(kernels, "rope_heads", { WG }, [
      params,
      io.step,
      io.rows,
      io.cosSin,
      io.qkv,
      io.kCache,
      io.vCache,
      w.qkNorm?.q ?? none,
      w.qkNorm?.k ?? none,
      w.bias?.q ?? none,
      w.bias?.k ?? none,
      w.bias?.v ?? none,
    ]);
    const heads = (doQ ? shape.numHeads : 0) + (doKv ? 2 * shape.numKvHeads : 0);
    this.groups = Math.max(1, Math.ceil(heads / WG));
  }

  encode(pass: ComputeRecorder, nRows: number): void {
    if (nRows > 0) record(pass, this.dispatch, nRows, this.groups);
  }
}
