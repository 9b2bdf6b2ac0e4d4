/**
 * What the training ops' hosts share: their parameter blocks (uniform buffers, written once at construction),
 * workgroup grids wider than one dimension allows, and checks that a buffer holds what a kernel will index.
 */

import { bufferFrom, uniformData } from "../gpu/buffers.ts";
import type { ComputeRecorder } from "../gpu/profiler.ts";
import type { Dispatch } from "./op.ts";

/** Workgroups per grid dimension (WebGPU's guaranteed limit). */
export const MAX_GROUPS_X = 65535;

/**
 * A kernel's `params` block as a uniform buffer (fields in declaration order), written once at construction.
 * llvmpipe's recompiles on changed uniform values (kernels/README.md, gemv_tex) did not show with these
 * kernels: rmsnorm_train and mm_nt alternating three shapes ran as fast as one shape.
 */
export function paramsBuffer(
  device: GPUDevice,
  label: string,
  fields: Array<["u32" | "f32" | "i32", number]>,
): GPUBuffer {
  return bufferFrom(device, label, new Uint8Array(uniformData(fields)), "uniform");
}

/** `groups` workgroups as an (x, y) grid: x at most 65535; kernels take the flat index (lib/grid.wgsl). */
export function grid2d(groups: number): [number, number] {
  const x = Math.max(1, Math.min(groups, MAX_GROUPS_X));
  return [x, Math.max(1, Math.ceil(groups / x))];
}

/** Records `d` over `groups` workgroups laid out by grid2d (nothing for none). */
export function recordFlat(pass: ComputeRecorder, d: Dispatch, groups: number): void {
  if (groups <= 0) return;
  const [x, y] = grid2d(groups);
  pass.setPipeline(d.kernel);
  pass.setBindGroup(0, d.group);
  pass.dispatchWorkgroups(x, y);
}

/** Throws unless buffer `b` holds at least `floats` f32 values. */
export function needFloats(op: string, name: string, b: GPUBuffer, floats: number): void {
  needElements(op, name, b, floats, 4);
}

/** Throws unless buffer `b` holds at least `n` elements of `bytes` bytes each. */
export function needElements(op: string, name: string, b: GPUBuffer, n: number, bytes: number): void {
  if (b.size < n * bytes) {
    const what = bytes === 4 ? "floats" : `${bytes * 8}-bit values`;
    throw new Error(`${op}: ${name} holds ${b.size} bytes, fewer than the ${n} ${what} it needs`);
  }
}
