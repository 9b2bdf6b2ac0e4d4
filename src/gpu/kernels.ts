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

/** A compiled pipeline and its compile error (null when it compiled), which arrives asynchronously. */
interface Compiled {
  kernel: Kernel;
  error: Promise<string | null>;
}

/**
 * Pipelines by device, kernel directory, name and constants: every engine on a device shares them, so a second
 * model (a test's, a reload's) does not compile them again — on llvmpipe compiles are most of a load.
 */
const compiledByDevice = new WeakMap<GPUDevice, Map<string, Compiled>>();
/** Shader modules by device, kernel directory and name (a module serves every set of constants). */
const modulesByDevice = new WeakMap<GPUDevice, Map<string, GPUShaderModule>>();

function shaderModule(device: GPUDevice, name: string, dir?: URL): GPUShaderModule {
  let modules = modulesByDevice.get(device);
  if (!modules) modulesByDevice.set(device, modules = new Map());
  const key = `${dir?.href ?? ""}|${name}`;
  let module = modules.get(key);
  if (!module) {
    modules.set(key, module = device.createShaderModule({ label: name, code: kernelSource(name, dir) }));
  }
  return module;
}

function compile(device: GPUDevice, name: string, constants: Constants, dir?: URL): Compiled {
  const module = shaderModule(device, name, dir);
  device.pushErrorScope("validation");
  const pipeline = device.createComputePipeline({
    label: name,
    layout: "auto",
    compute: { module, entryPoint: "main", constants },
  });
  const error = device.popErrorScope().then((err) => err ? `kernel ${name}: ${err.message}` : null);
  return { kernel: new Kernel(name, pipeline, device), error };
}

/** Compiles kernels on first use on the device and hands them out by name and constants. */
export class KernelCache {
  private used = new Map<string, Compiled>();

  /** `kernelDir`: another kernel directory (tests, bench/matmul_ab.ts). */
  constructor(readonly gpu: GpuContext, private readonly kernelDir?: URL) {}

  get(name: string, constants: Constants = {}): Kernel {
    const key = `${this.kernelDir?.href ?? ""}|${name}|${JSON.stringify(constants)}`;
    let c = this.used.get(key);
    if (c) return c.kernel;
    const device = this.gpu.device;
    let shared = compiledByDevice.get(device);
    if (!shared) compiledByDevice.set(device, shared = new Map());
    c = shared.get(key);
    if (!c) shared.set(key, c = compile(device, name, constants, this.kernelDir));
    this.used.set(key, c);
    return c.kernel;
  }

  /** Throws a GpuError naming the kernel if any pipeline this cache handed out failed to compile. */
  async checkErrors(): Promise<void> {
    await this.gpu.device.queue.onSubmittedWorkDone();
    const errors = (await Promise.all([...this.used.values()].map((c) => c.error))).filter((e) => e !== null);
    if (errors.length) throw new GpuError(errors.join("; "));
  }
}
