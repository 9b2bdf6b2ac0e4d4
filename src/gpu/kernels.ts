/**
 * Kernels are data: WGSL files in `kernels/`, loaded by name, specialised through `override`
 * constants, compiled once and cached. Host code never splices WGSL strings: the one textual step is
 * the `//! use lib/<file>.wgsl` directive, which appends a shared library file (kernels/README.md).
 */

import { GpuError } from "../errors.ts";
import type { GpuContext } from "./device.ts";

const KERNEL_DIR = new URL("../../kernels/", import.meta.url);

/** `//! use lib/step.wgsl`: a library file, by its path in the kernel directory. */
const USE_LINE = /^\/\/! use[ \t]+(\S+)[ \t\r]*$/gm;
/** Global directives: WGSL takes them only at the very top of a module, so a library cannot hold one. */
const GLOBAL_DIRECTIVE = /^[ \t]*(enable[ \t]|requires[ \t]|diagnostic[ \t]*\()/m;

const sourceCache = new Map<string, string>();

/**
 * The WGSL text of `kernels/<name>.wgsl` with the library files it uses (`//! use`, transitively, each
 * once) appended after its own text. `dir`: another kernel directory (tests, bench/matmul_ab.ts).
 */
export function kernelSource(name: string, dir: URL = KERNEL_DIR): string {
  const key = new URL(`${name}.wgsl`, dir).href;
  let src = sourceCache.get(key);
  if (src === undefined) {
    src = resolveKernel(name, dir);
    sourceCache.set(key, src);
  }
  return src;
}

function resolveKernel(name: string, dir: URL): string {
  let main: string;
  try {
    main = Deno.readTextFileSync(new URL(`${name}.wgsl`, dir));
  } catch (e) {
    throw new GpuError(`kernel "${name}" not found: ${(e as Error).message}`, "reinstall flexidepth");
  }
  const libs = new Map<string, string>(); // path → text, in the order first used
  const visit = (user: string, text: string) => {
    for (const [, lib] of text.matchAll(USE_LINE)) {
      if (libs.has(lib)) continue;
      const libText = readLibrary(name, user, lib, dir);
      libs.set(lib, libText);
      visit(lib, libText);
    }
  };
  visit(`${name}.wgsl`, main);
  return [main, ...[...libs].map(([lib, text]) => `// ---- ${lib} (//! use)\n${text}`)].join("\n");
}

function readLibrary(kernel: string, user: string, lib: string, dir: URL): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(new URL(lib, dir));
  } catch (e) {
    throw new GpuError(
      `kernel "${kernel}": library ${lib} (used by ${user}) not found: ${(e as Error).message}`,
      `restore kernels/${lib} (reinstall flexidepth) or correct the "//! use ${lib}" line in kernels/${user}`,
    );
  }
  const directive = GLOBAL_DIRECTIVE.exec(text);
  if (directive) {
    throw new GpuError(
      `kernel "${kernel}": library ${lib} holds the global directive "${directive[1].match(/[a-z]+/)![0]}"`,
      `move it to the top of each kernel that uses ${lib}: WGSL allows directives only before all else`,
    );
  }
  return text;
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

  /** `kernelDir`: another kernel directory (tests, bench/matmul_ab.ts). */
  constructor(readonly gpu: GpuContext, private readonly kernelDir?: URL) {}

  get(name: string, constants: Constants = {}): Kernel {
    const key = `${name}|${JSON.stringify(constants)}`;
    let k = this.pipelines.get(key);
    if (k) return k;
    const device = this.gpu.device;
    let module = this.modules.get(name);
    if (!module) {
      module = device.createShaderModule({ label: name, code: kernelSource(name, this.kernelDir) });
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
