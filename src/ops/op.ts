/**
 * What every op host shares: a kernel bound to its buffers once (a `Dispatch`), recorded per step without
 * allocating, and `StepOp`, the unit the forward pass records in order.
 */

import type { Constants, KernelCache } from "../gpu/kernels.ts";
import type { ComputeRecorder } from "../gpu/profiler.ts";
import { bufferFrom, uniformData } from "../gpu/buffers.ts";

/** A pipeline and the bind group of its buffers, made once. */
export interface Dispatch {
  kernel: GPUComputePipeline;
  group: GPUBindGroup;
}

/** A step's piece of work: records its dispatches for a step of `nRows` rows. */
export interface StepOp {
  encode(pass: ComputeRecorder, nRows: number): void;
}

/** An op with nothing to record (a fusion made it unnecessary). */
export const NO_OP: StepOp = { encode() {} };

export type Resource = GPUBuffer | GPUBufferBinding | GPUTextureView;

/** Kernel `name` (specialised by `constants`) bound to `resources`, binding i ← resources[i]. */
export function bindKernel(
  kernels: KernelCache,
  name: string,
  constants: Constants,
  resources: Resource[],
  label?: string,
): Dispatch {
  const k = kernels.get(name, constants);
  return { kernel: k.pipeline, group: k.bind(resources, label) };
}

/** Records one dispatch of `d` over a grid of (x, y, z) workgroups. */
export function record(pass: ComputeRecorder, d: Dispatch, x: number, y = 1, z = 1): void {
  pass.setPipeline(d.kernel);
  pass.setBindGroup(0, d.group);
  pass.dispatchWorkgroups(x, y, z);
}

/** A uniform buffer holding `fields` in declaration order (kernel `params` structs). */
export function uniformBuffer(
  device: GPUDevice,
  label: string,
  fields: Array<["u32" | "f32", number]>,
): GPUBuffer {
  return bufferFrom(device, label, new Uint8Array(uniformData(fields)), "uniform");
}
