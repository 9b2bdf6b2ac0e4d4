/** Helpers of the training-op tests: buffers from arrays, one submitted pass, reads back as floats. */

import type { GpuContext } from "../src/gpu/device.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { bufferFrom, readBuffer, storageBuffer } from "../src/gpu/buffers.ts";
import type { ComputeRecorder } from "../src/gpu/profiler.ts";
import { testGpu } from "./harness.ts";
import type { Family } from "./harness.ts";

export interface TrainGpu {
  gpu: GpuContext;
  kernels: KernelCache;
  device: GPUDevice;
  /** An f32 storage buffer holding `data` (f64 values rounded). */
  f32(data: ArrayLike<number>, label?: string): GPUBuffer;
  /** A u32 storage buffer. */
  u32(data: ArrayLike<number>, label?: string): GPUBuffer;
  /** An f32 buffer of n floats, each `fill`. */
  filled(n: number, fill?: number, label?: string): GPUBuffer;
  /** Records `body` into one compute pass, submits it, waits, and throws on kernel and validation errors. */
  run(body: (pass: ComputeRecorder) => void): Promise<void>;
  read(b: GPUBuffer, n: number): Promise<Float32Array>;
}

const kernelCaches = new Map<Family, KernelCache>();

export async function trainGpu(family: Family): Promise<TrainGpu> {
  const gpu = await testGpu(family);
  let kernels = kernelCaches.get(family);
  if (!kernels) kernelCaches.set(family, kernels = new KernelCache(gpu));
  const device = gpu.device;
  const k = kernels;
  return {
    gpu,
    kernels: k,
    device,
    f32: (data, label = "f32") => bufferFrom(device, label, Float32Array.from(data)),
    u32: (data, label = "u32") => bufferFrom(device, label, Uint32Array.from(data)),
    filled: (n, fill = 0, label = "filled") => {
      if (fill === 0) return storageBuffer(device, label, n * 4);
      return bufferFrom(device, label, new Float32Array(n).fill(fill));
    },
    run: async (body) => {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      body(pass);
      pass.end();
      device.queue.submit([enc.finish()]);
      await k.checkErrors();
      // A bind group that does not fit its kernel (a binding the compiler dropped) fails outside any scope.
      if (gpu.uncaptured) throw new Error(`GPU error: ${gpu.uncaptured}`);
    },
    read: async (b, n) => new Float32Array(await readBuffer(device, b, n * 4)),
  };
}

/** Seeded values uniform in [lo, hi). */
export function uniform(seed: number, n: number, lo = -1, hi = 1): Float64Array {
  let a = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

/** Rounds to f32 (what the GPU holds), kept as f64 for the references. */
export const asF32 = (v: ArrayLike<number>) => Float64Array.from(Float32Array.from(v));
