/**
 * Causal grouped-query attention of a step's rows over their sequences' KV cache. Three kernels, the profile
 * picks the family's (`AttentionKind`) and the step's row count the rest:
 * - `attention_serial`: one invocation per (8 heads, row), no barriers (CPU software GPUs);
 * - `attention`: one workgroup per (head, row), online softmax over tiles of the context;
 * - `attention_split` + `attention_merge` (decode on GPUs, up to SPLIT_MAX_ROWS rows): the context in
 *   SPLIT_CHUNKS chunks per (head, row), each leaving its softmax state, then merged — many workgroups
 *   rather than few long ones.
 */

import type { AttentionKind, KvDtype } from "../../gpu/profile.ts";
import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch, record, type StepOp, uniformBuffer } from "../op.ts";

/** Chunks of the context per (head, row) in split attention (≤ 128, attention_merge's MAX_CHUNKS). */
const SPLIT_CHUNKS = 32;
/** Most rows a step may have to take split attention (prefill has rows enough to fill the GPU). */
const SPLIT_MAX_ROWS = 8;
/** Heads per workgroup of the serial kernel. */
const SERIAL_HEADS = 8;

export interface AttentionShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Positions per cache slot. */
  context: number;
  kind: AttentionKind;
  /** The cache's element type (default f32); f16 is summed in f32. */
  kv?: KvDtype;
}

export interface AttentionIO {
  step: GPUBuffer;
  /** {slot, pos} per row. */
  rows: GPUBuffer;
  /** q per row, head after head, rows `qStride` floats apart. */
  q: GPUBuffer;
  qStride: number;
  /** This layer's cache, [slots, context, kv heads × head_dim]. */
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  /** [rows, heads × head_dim]. */
  out: GPUBuffer;
  /** Split attention's chunk states (`Attention.scratchBytes`), shared by every layer. */
  scratch: GPUBuffer | null;
}

export class Attention implements StepOp {
  private readonly whole: Dispatch;
  private readonly split: { chunks: Dispatch; merge: Dispatch } | null;
  /** Workgroups per row of `whole`. */
  private readonly groups: number;

  /** Bytes of the scratch that split attention needs (0 for the other kinds). */
  static scratchBytes(shape: AttentionShape): number {
    if (shape.kind !== "split") return 0;
    return SPLIT_MAX_ROWS * shape.numHeads * SPLIT_CHUNKS * (shape.headDim + 2) * 4;
  }

  constructor(kernels: KernelCache, readonly shape: AttentionShape, io: AttentionIO) {
    const { numHeads, numKvHeads, headDim, context, kind } = shape;
    if (kind !== "workgroup" && headDim % 4 !== 0) {
      throw new Error(`${kind} attention needs a head size that is a multiple of 4, not ${headDim}`);
    }
    const f16 = shape.kv === "f16";
    if (f16 && headDim % (kind === "workgroup" ? 2 : 8) !== 0) {
      throw new Error(
        `${kind} attention over an f16 KV cache needs a head size that is a multiple of ` +
          `${kind === "workgroup" ? 2 : 8}, not ${headDim} (use --kv-cache f32)`,
      );
    }
    const KV_F16 = f16 ? 1 : 0;
    const device = kernels.gpu.device;
    const head: Array<["u32" | "f32", number]> = [
      ["u32", numHeads],
      ["u32", numKvHeads],
      ["u32", headDim],
      ["u32", context],
      ["f32", 1 / Math.sqrt(headDim)],
      ["u32", io.qStride],
    ];
    const cache = [io.step, io.rows, io.q, io.kCache, io.vCache];
    const serial = kind === "serial";
    this.groups = serial ? Math.ceil(numHeads / SERIAL_HEADS) : numHeads;
    this.whole = bindKernel(
      kernels,
      serial ? "attention_serial" : "attention",
      serial ? { WG: SERIAL_HEADS, HD4: headDim / 4, KV_F16 } : { KV_F16 },
      [uniformBuffer(device, "attention", head), ...cache, io.out],
    );
    this.split = null;
    if (kind === "split") {
      if (!io.scratch) throw new Error("split attention needs its scratch buffer");
      const params = uniformBuffer(device, "attention_split", [...head, ["u32", SPLIT_CHUNKS], ["u32", 0]]);
      this.split = {
        chunks: bindKernel(kernels, "attention_split", { KV_F16 }, [params, ...cache, io.scratch]),
        merge: bindKernel(kernels, "attention_merge", {}, [params, io.step, io.scratch, io.out]),
      };
    }
  }

  encode(pass: ComputeRecorder, nRows: number): void {
    if (nRows <= 0) return;
    if (this.split && nRows <= SPLIT_MAX_ROWS) {
      record(pass, this.split.chunks, this.shape.numHeads, SPLIT_CHUNKS, nRows);
      record(pass, this.split.merge, this.shape.numHeads, nRows);
    } else {
      record(pass, this.whole, this.groups, nRows);
    }
  }
}
