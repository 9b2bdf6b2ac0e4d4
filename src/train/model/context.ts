/**
 * What every unit of the training graph is built from: the kernels, the batch's size (B sequences of T rows,
 * N = B·T), the model's shape, its parameters, the backend profile's workgroups, the RoPE table, and the
 * gradient scratch that the layers share — the backward runs one layer at a time, so one set serves all.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { BackendProfile } from "../../gpu/profile.ts";
import { storageBuffer } from "../../gpu/buffers.ts";
import type { Param, ParamStore } from "../params.ts";
import {
  TrainAttention,
  type TrainAttentionScratch,
  type TrainAttentionShape,
} from "../../ops/attention/train.ts";
import type { TrainShape } from "./shape.ts";

export interface TrainBatchSize {
  batch: number;
  seq: number;
}

/** Gradient scratch shared by every layer ([N, width] f32 each). */
export interface GradScratch {
  /** The input-side norm outputs' gradient [N, H] (n1, n2). */
  dNorm: GPUBuffer;
  /** A branch output's gradient [N, H] (masked attention, MLP, adapter). */
  dBranch: GPUBuffer;
  dBranch2: GPUBuffer;
  /** Attention: dout [N, Hq·hd], dq, dk, dv, and before the q/k norms. */
  dAttn: GPUBuffer;
  dq: GPUBuffer;
  dk: GPUBuffer;
  dv: GPUBuffer;
  dqPre: GPUBuffer | null;
  dkPre: GPUBuffer | null;
  /** MLP: [N, I] ×3 (dact, dgate, dup). */
  dAct: GPUBuffer;
  dGate: GPUBuffer;
  dUp: GPUBuffer;
}

export class TrainContext {
  readonly rows: number;
  readonly scratch: GradScratch;
  /** The attention's shape, and its backward's scratch that every layer shares. */
  readonly attentionShape: TrainAttentionShape;
  readonly attentionScratch: TrainAttentionScratch;
  private readonly allocated: GPUBuffer[] = [];

  constructor(
    readonly kernels: KernelCache,
    readonly profile: BackendProfile,
    readonly shape: TrainShape,
    readonly store: ParamStore,
    readonly size: TrainBatchSize,
    /** RoPE cos/sin [seq, headDim] (ops/rope/table.ts). */
    readonly cosSin: GPUBuffer,
  ) {
    this.rows = size.batch * size.seq;
    const s = shape, N = this.rows, qw = s.heads * s.headDim, kw = s.kvHeads * s.headDim;
    this.scratch = {
      dNorm: this.floats("dNorm", N * s.hidden),
      dBranch: this.floats("dBranch", N * s.hidden),
      dBranch2: this.floats("dBranch2", N * s.hidden),
      dAttn: this.floats("dAttn", N * qw),
      dq: this.floats("dq", N * qw),
      dk: this.floats("dk", N * kw),
      dv: this.floats("dv", N * kw),
      dqPre: s.qkNorm ? this.floats("dqPre", N * qw) : null,
      dkPre: s.qkNorm ? this.floats("dkPre", N * kw) : null,
      dAct: this.floats("dAct", N * Math.max(s.intermediate, s.adapter)),
      dGate: this.floats("dGate", N * Math.max(s.intermediate, s.adapter)),
      dUp: this.floats("dUp", N * Math.max(s.intermediate, s.adapter)),
    };
    this.attentionShape = {
      batch: size.batch,
      seqLen: size.seq,
      numHeads: s.heads,
      numKvHeads: s.kvHeads,
      headDim: s.headDim,
      workgroup: profile.trainAttentionWorkgroup,
    };
    this.attentionScratch = TrainAttention.scratch(this.device, this.attentionShape);
  }

  get device(): GPUDevice {
    return this.kernels.gpu.device;
  }

  /** A zeroed f32 buffer of `n` floats (at least one), freed with the context. */
  floats(label: string, n: number): GPUBuffer {
    const b = storageBuffer(this.device, label, Math.max(1, n) * 4);
    this.allocated.push(b);
    return b;
  }

  param(name: string): Param {
    return this.store.get(name);
  }

  /** Bytes of activations and scratch this context holds. */
  get bytes(): number {
    return this.allocated.reduce((s, b) => s + b.size, 0);
  }

  destroy(): void {
    for (const b of this.allocated) b.destroy();
  }
}
