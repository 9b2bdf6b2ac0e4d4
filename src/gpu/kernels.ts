/**
 * Kernels are data: WGSL files in `kernels/`, loaded by name, specialised through `override`
 * constants, compiled once and cached. Host code never splices WGSL strings.
 */

import { GpuError } from "../errors.ts";
import type { GpuContext } from "./device.ts";

const KERNEL_DIR = new URL("../../kernels/", import.meta.url);

const sourceCache = new Map<string, string>();

/** The WGSL text of `kernels/<name>.wgsl`. */
export function kernelSource(name: string): string {
  let src = sourceCache.get(name);
  if (src === undefined) {
    try {
      src = Deno.readTextFileSync(new URL(`${name}.wgsl`, KERNEL_DIR));
    } catch (e) {
      throw new GpuError(`kernel "${name}" not found: ${(e as Error).message}`, "reinstall flexidepth");
    }
    sourceCache.set(name, src);
  }
  return src;
}

export type Constants = Record<string, number>;

/** A compiled compute pipeline plus the helper that binds buffers to it. */
export class Kernel {
  constructor(readonly name: string, readonly pipeline: GPUComputePipeline, private device: GPUDevice) {}

  /**
   * Bind group for group 0; `buffers[i]` goes to binding i. Create once and reuse: never per token.
   * The label names the dispatch in profiles (e.g. the weight matrix it reads).
   */
  bind(resources: (GPUBuffer | GPUBufferBinding | GPUTextureView)[], label = this.name): GPUBindGroup {
    return this.device.createBindGroup({
      label,
      layout: this.pipeline.getBindGroupLayout(0),
      entries: resources.map((r, i) => ({
        binding: i,
        resource: r instanceof GPUTextureView || "buffer" in r ? r : { buffer: r },
      })),
    });
  }
}

/** Compiles kernels on first use and caches them by name and constants. */
export class KernelCache {
  private pipelines = new Map<string, Kernel>();
  private modules = new Map<string, GPUShaderModule>();

  constructor(readonly gpu: GpuContext) {}

  get(name: string, constants: Constants = {}): Kernel {
    const key = `${name}|${JSON.stringify(constants)}`;
    let k = this.pipelines.get(key);
    if (k) return k;
    const device = this.gpu.device;
    let module = this.modules.get(name);
    if (!module) {
      module = device.createShaderModule({ label: name, code: kernelSource(name) });
      this.modules.set(name, module);
    }
    device.pushErrorScope("validation");
    const pipeline = device.createComputePipeline({
      label: name,
      layout: "auto",
      compute: { module, entryPoint: "main", constants },
    });
    // Compilation errors surface asynchronously; record them so `checkErrors` can report the kernel by name.
    device.popErrorScope().then((err) => {
      if (err) this.errors.push(`kernel ${name}: ${err.message}`);
    });
    k = new Kernel(name, pipeline, device);
    this.pipelines.set(key, k);
    return k;
  }

  /** Kernel compile/validation failures seen so far. */
  readonly errors: string[] = [];

  /** Throws a GpuError naming the kernel if any pipeline failed to compile. */
  async checkErrors(): Promise<void> {
    await this.gpu.device.queue.onSubmittedWorkDone();
    if (this.errors.length) throw new GpuError(this.errors.join("; "));
  }
}
