/**
 * One-row steps of q8 and q4 texture weights with `quantizedX` (the backend profile's choice): quantize_x.wgsl
 * turns x (through the norm, if any) into int8 blocks in a small rgba32uint row texture, which gemv_tex.wgsl's
 * XQ path reads instead of x: integer sums, two weight products per 32-bit multiply (kernels/README.md). The
 * blocks pair x's values as the weights' words pair theirs, so a quantized row serves one format.
 */

import type { Kernel, KernelCache } from "../../gpu/kernels.ts";
import type { GpuMatrix } from "../../gpu/matrix.ts";
import type { QuantFormat } from "../../model/quant.ts";
import { UNIFORM_WINDOW, unusedRowTexture } from "../../gpu/buffers.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import type { MatmulIO, MatmulOptions } from "./options.ts";

/** Invocations per workgroup of quantize_x (one per block of 32 values). */
const QX_WG = 64;

/** x's row in int8 blocks (quantize_x.wgsl or rmsnorm.wgsl QUANT writes it), paired for `format` weights. */
export interface QuantizedRow {
  texture: GPUTexture;
  format: QuantFormat;
}

/** Whether a matmul's one-row steps quantize x: quantized texture weights whose x fits the window, when asked. */
export function wantsQuantizedX(w: GpuMatrix, opts: MatmulOptions): boolean {
  return !!opts.quantizedX && w.storage === "texture" && w.quant !== null && w.cols * 4 <= UNIFORM_WINDOW;
}

/** Texels of a quantized x row of K values: 4 per block of 32, then one per block (scale, offset sum). */
export function quantizedXTexels(K: number): number {
  return 5 * Math.ceil(K / 32);
}

/**
 * A row texture for K values quantized (quantize_x.wgsl, or rmsnorm.wgsl QUANT, writes it); `extraUsage`:
 * e.g. COPY_SRC for a test that reads it back.
 */
export function quantizedRowTexture(
  device: GPUDevice,
  K: number,
  label = "xq_texture",
  extraUsage = 0,
): GPUTexture {
  return device.createTexture({
    label,
    size: [quantizedXTexels(K), 1],
    format: "rgba32uint",
    usage: GPUTextureUsage.STORAGE_BINDING | extraUsage,
  });
}

/** The row texture quantize_x writes, and its dispatch before gemv_tex. */
export class XQuantizer {
  readonly texture: GPUTexture;
  private readonly kernel: Kernel;
  private readonly bind: GPUBindGroup;
  private readonly workgroups: number;

  constructor(kernels: KernelCache, w: GpuMatrix, io: MatmulIO, opts: MatmulOptions, params: GPUBuffer) {
    const device = kernels.gpu.device;
    this.texture = quantizedRowTexture(device, w.cols, `${w.name}.xq`);
    this.kernel = kernels.get("quantize_x", {
      NORM: opts.norm && !io.xTexture ? 1 : 0,
      XTEX: io.xTexture ? 1 : 0,
      Q8: w.quant === "q8" ? 1 : 0,
    });
    const window = (buffer: GPUBuffer) => ({ buffer, size: UNIFORM_WINDOW });
    // Without NORM the norm window is any windowed buffer: x's own.
    const entries: [number, GPUBindingResource][] = [
      [0, { buffer: params }],
      [2, window(io.x)],
      [6, window(opts.norm?.weight ?? io.x)],
      [11, io.xTexture?.createView() ?? unusedRowTexture(device)],
      [13, this.texture.createView()],
    ];
    this.bind = device.createBindGroup({
      label: `quantize_x ${w.name}`,
      layout: this.kernel.pipeline.getBindGroupLayout(0),
      entries: entries.map(([binding, resource]) => ({ binding, resource })),
    });
    this.workgroups = Math.ceil(Math.ceil(w.cols / 32) / QX_WG);
  }

  encode(pass: ComputeRecorder): void {
    pass.setPipeline(this.kernel.pipeline);
    pass.setBindGroup(0, this.bind);
    pass.dispatchWorkgroups(this.workgroups);
  }

  destroy(): void {
    this.texture.destroy();
  }
}
