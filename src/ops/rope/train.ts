/**
 * RoPE in training (kernels/rope_train.wgsl): rotate-half in place on q and k heads at position t = r mod T
 * of each batch row, from the cos/sin table (`ropeTable`, Llama-3's scaled frequencies included); its
 * backward applies the inverse (transposed) rotation to dq and dk in place, overwriting them with the
 * gradient before RoPE. One dispatch per part: q and k in buffers of their own, or one part covering both
 * where they sit side by side in a fused [q | k | v] projection output.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch, record, uniformBuffer } from "../op.ts";

const WG = 64;
/** Most workgroups along one grid dimension (WebGPU's default limit). */
const MAX_GROUPS = 65535;

export interface RopeTrainShape {
  /** N = B·T rows. */
  rows: number;
  /** T: row r sits at position r mod T. */
  seqLen: number;
  headDim: number;
}

/** `heads` heads of head_dim floats from column `offset` of each row of `x`, rows `stride` floats apart. */
export interface RopePart {
  x: GPUBuffer;
  stride: number;
  offset: number;
  heads: number;
}

export class RopeTrain {
  private readonly parts: Array<{ dispatch: Dispatch; grid: [number, number] }>;

  /** `inverse`: the backward (the gradient rotated back), on the gradients' buffers. */
  constructor(
    kernels: KernelCache,
    shape: RopeTrainShape,
    cosSin: GPUBuffer,
    parts: RopePart[],
    inverse: boolean,
  ) {
    const { rows, seqLen, headDim } = shape;
    if (headDim % 2 !== 0) throw new Error(`RoPE needs an even head size, not ${headDim}`);
    if (cosSin.size < seqLen * headDim * 4) {
      throw new Error(`the RoPE table (${cosSin.size} bytes) holds fewer than ${seqLen} positions`);
    }
    const device = kernels.gpu.device;
    this.parts = parts.map((p) => {
      if (p.offset + p.heads * headDim > p.stride) {
        throw new Error(`RoPE part: ${p.heads} heads from column ${p.offset} overrun rows of ${p.stride}`);
      }
      const params = uniformBuffer(device, "rope_train", [
        ["u32", rows],
        ["u32", seqLen],
        ["u32", headDim],
        ["u32", p.heads],
        ["u32", p.stride],
        ["u32", p.offset],
        ["f32", inverse ? -1 : 1],
        ["u32", 0],
      ]);
      const groups = Math.ceil((rows * p.heads * headDim) / 2 / WG);
      const x = Math.min(groups, MAX_GROUPS);
      return {
        dispatch: bindKernel(kernels, "rope_train", { WG }, [params, cosSin, p.x]),
        grid: [x, Math.ceil(groups / x)] as [number, number],
      };
    });
  }

  encode(pass: ComputeRecorder): void {
    for (const p of this.parts) record(pass, p.dispatch, p.grid[0], p.grid[1]);
  }
}
