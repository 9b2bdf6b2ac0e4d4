/**
 * Causal grouped-query attention in training, over the batch's own rows (no KV cache): B sequences of T rows,
 * query head h reading KV head h / (Hq / Hkv), scores scaled by 1/√head_dim.
 * - forward (`attention_train`): out [N, Hq·hd] and the log-sum-exp lse [N, Hq], both overwritten;
 * - backward, FlashAttention-2 style from q, k, v, out, dout and lse, deterministic (no atomics):
 *   `attention_train_dq` (D = rowsum(dout ∘ out) into the scratch, and dq), then `attention_train_dkv` (each
 *   query head's share of dk and dv) and, where a KV head serves several query heads,
 *   `attention_train_dkv_sum` (the shares of each group added in order); dq, dk and dv overwritten.
 * Every kernel gives each invocation two positions of one (sequence, head), sharing each load of the other
 * side's rows between them; no barriers, which CPU software GPUs pay more for than the work. The scratch (D and,
 * with grouped heads, each query head's dk / dv share) is the op's own unless `io.scratch` gives one that
 * several layers share. A step allocates nothing: everything is bound at construction.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { storageBuffer } from "../../gpu/buffers.ts";
import { bindKernel, type Dispatch, record, uniformBuffer } from "../op.ts";

/** head_dim / 4 in registers: MAX_HD4 of lib/attention_train.wgsl. */
const MAX_HEAD_DIM = 128;
/**
 * llvmpipe stops an invocation after 65535 loop passes in all, a loop's run costing its iterations + 1
 * (kernels/README.md). With its loops over the head not unrolled, an invocation of each kernel makes at most
 * T · (2 · HD4 + 3) + 3 · HD4 + 4 (HD4 = head_dim / 4): its loop over T positions holds two over the head, and
 * three more over the head load and store.
 */
const MAX_LOOP_PASSES = 65535;
/** WebGPU's default limit on workgroups along one grid dimension. */
const MAX_GROUPS = 65535;
/** Invocations per workgroup of the group sum. */
const SUM_WG = 64;

export interface TrainAttentionShape {
  /** B sequences… */
  batch: number;
  /** …of T rows each (row r = b·T + t). */
  seqLen: number;
  numHeads: number;
  numKvHeads: number;
  /** A multiple of 4, at most 128. */
  headDim: number;
  /** Invocations per workgroup, two positions each (default 8: lavapipe's SIMD width; GPUs want 32–64). */
  workgroup?: number;
}

/** The backward's scratch, which every layer of one shape may share (`TrainAttention.scratch`). */
export interface TrainAttentionScratch {
  /** D = rowsum(dout ∘ out) per row and query head, [N, Hq]: written by the dq pass, read by the dk/dv pass. */
  delta: GPUBuffer;
  /** Each query head's share of dk and dv, [N, Hq·hd] (null with one query head per KV head). */
  dkPart: GPUBuffer | null;
  dvPart: GPUBuffer | null;
}

/** The op's buffers, f32 rows: q, out, dout, dq [N, Hq·hd]; k, v, dk, dv [N, Hkv·hd]; lse [N, Hq]. */
export interface TrainAttentionIO {
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  out: GPUBuffer;
  lse: GPUBuffer;
  dout: GPUBuffer;
  dq: GPUBuffer;
  dk: GPUBuffer;
  dv: GPUBuffer;
  /** Made for this op when not given. */
  scratch?: TrainAttentionScratch;
}

export class TrainAttention {
  private readonly forward: Dispatch;
  private readonly dq: Dispatch;
  private readonly dkv: Dispatch;
  /** The sum over each group's query heads, with its grid (null with one query head per KV head). */
  private readonly sum: { dispatch: Dispatch; grid: [number, number] } | null;
  private readonly tiles: number;

  /** The longest sequence the kernels take at `headDim` (llvmpipe's loop limit): 976 at 128, 1870 at 64. */
  static maxSeqLen(headDim: number): number {
    const hd4 = headDim / 4;
    return Math.floor((MAX_LOOP_PASSES - 3 * hd4 - 4) / (2 * hd4 + 3));
  }

  /** Scratch for the backward of `shape` (the same buffers serve every layer of that shape). */

  static scratch(device: GPUDevice, shape: TrainAttentionShape): TrainAttentionScratch {
    const floats = shape.batch * shape.seqLen * shape.numHeads;
    const grouped = shape.numHeads !== shape.numKvHeads;
    const part = (name: string) =>
      grouped ? storageBuffer(device, `attention_train.${name}`, floats * shape.headDim * 4) : null;
    return {
      delta: storageBuffer(device, "attention_train.delta", floats * 4),
      dkPart: part("dk_part"),
      dvPart: part("dv_part"),
    };
  }

  constructor(kernels: KernelCache, readonly shape: TrainAttentionShape, io: TrainAttentionIO) {
    const { batch, seqLen, numHeads, numKvHeads, headDim } = checkShape(shape);
    const device = kernels.gpu.device;
    const wg = shape.workgroup ?? 8;
    this.tiles = Math.ceil(seqLen / (2 * wg)); // two positions per invocation
    const params = uniformBuffer(device, "attention_train", [
      ["u32", batch * seqLen],
      ["u32", seqLen],
      ["u32", numHeads],
      ["u32", numKvHeads],
      ["f32", 1 / Math.sqrt(headDim)],
      ["u32", 0],
      ["u32", 0],
      ["u32", 0],
    ]);
    const c = { WG: wg, HD4: headDim / 4 };
    const { q, k, v, out, lse, dout } = io;
    const s = io.scratch ?? TrainAttention.scratch(device, shape);
    const dkPart = s.dkPart ?? io.dk, dvPart = s.dvPart ?? io.dv;
    this.forward = bindKernel(kernels, "attention_train", c, [params, q, k, v, out, lse]);
    this.dq = bindKernel(kernels, "attention_train_dq", c, [params, q, k, v, out, dout, lse, io.dq, s.delta]);
    this.dkv = bindKernel(kernels, "attention_train_dkv", c, [
      params,
      q,
      k,
      v,
      dout,
      lse,
      s.delta,
      dkPart,
      dvPart,
    ]);
    this.sum = null;
    if (numHeads !== numKvHeads) {
      if (!s.dkPart || !s.dvPart) throw new Error("grouped training attention needs dk/dv share scratch");
      const groups = Math.ceil((batch * seqLen * numKvHeads * headDim) / 4 / SUM_WG);
      const x = Math.min(groups, MAX_GROUPS);
      const sumKernel = bindKernel(kernels, "attention_train_dkv_sum", { WG: SUM_WG, HD4: headDim / 4 }, [
        params,
        s.dkPart,
        s.dvPart,
        io.dk,
        io.dv,
      ]);
      this.sum = { dispatch: sumKernel, grid: [x, Math.ceil(groups / x)] };
    }
  }

  /** out and lse from q, k and v. */
  encodeForward(pass: ComputeRecorder): void {
    record(pass, this.forward, this.tiles, this.shape.numHeads, this.shape.batch);
  }

  /** dq, dk and dv from q, k, v, out, lse (the forward's) and dout: 2 dispatches, 3 with grouped heads. */
  encodeBackward(pass: ComputeRecorder): void {
    record(pass, this.dq, this.tiles, this.shape.numHeads, this.shape.batch);
    record(pass, this.dkv, this.tiles, this.shape.numHeads, this.shape.batch);
    if (this.sum) record(pass, this.sum.dispatch, this.sum.grid[0], this.sum.grid[1]);
  }
}

function checkShape(s: TrainAttentionShape): TrainAttentionShape {
  const maxSeq = TrainAttention.maxSeqLen(s.headDim);
  const problem = s.headDim % 4 !== 0 || s.headDim < 4 || s.headDim > MAX_HEAD_DIM
    ? `a head size that is a multiple of 4 up to ${MAX_HEAD_DIM}, not ${s.headDim}`
    : s.numKvHeads < 1 || s.numHeads % s.numKvHeads !== 0
    ? `query heads (${s.numHeads}) in whole groups per KV head (${s.numKvHeads})`
    : s.seqLen < 1 || s.seqLen > maxSeq
    ? `1 to ${maxSeq} positions per sequence at head size ${s.headDim}, not ${s.seqLen}`
    : s.batch < 1 || s.batch > MAX_GROUPS
    ? `1 to ${MAX_GROUPS} sequences, not ${s.batch}`
    : null;
  if (problem) throw new Error(`training attention needs ${problem}`);
  return s;
}
