/**
 * The engine: a model on the GPU that runs steps. A step is a batch of rows (token, slot, position);
 * prefill is one sequence's prompt chunk, decode is one row per sequence. Decode steps feed the token
 * the previous step sampled on the GPU, and their results come back through a ring of small readback
 * slots so that several steps stay in flight (Deno's readback costs ≥ 11 ms, but overlapped
 * readbacks resolve together).
 */

import type { Checkpoint } from "../model/checkpoint.ts";
import type { ModelConfig } from "../model/config.ts";
import {
  describeLimits,
  type FitLimits,
  type GpuContext,
  gpuMessage,
  isSoftwareGpu,
  withLimits,
} from "../gpu/device.ts";
import { KernelCache } from "../gpu/kernels.ts";
import { readBuffer } from "../gpu/tensor.ts";
import { type ComputeRecorder, GpuProfiler } from "../gpu/profiler.ts";
import { GpuError } from "../errors.ts";
import { type ModelWeights, uploadWeights } from "./weights.ts";
import type { WeightStorage } from "../gpu/tensor.ts";
import { KvCache } from "./kv_cache.ts";
import { ForwardPass, resultStride, routeWords } from "./forward.ts";
import { GpuSampler, type SamplingOptions } from "./sampling.ts";
import { formatBytes } from "../util/format.ts";
import type { QuantFormat } from "../model/quant.ts";

export interface EngineOptions {
  /** Most rows a step may have (buffers are sized by it); prompt chunks are at most this long. */
  maxRows?: number;
  /** Rows per prefill step, ≤ maxRows (default by model and adapter: `defaultPrefillRows`). */
  prefillRows?: number;
  /** Sequences that can be cached at once. */
  slots?: number;
  /** Positions per sequence (default: the model's, capped at 4096). */
  context?: number;
  /** Split weights above this many bytes per binding (tests force splits with a small value). */
  maxBindingBytes?: number;
  /** Where matmul weights live (default by adapter: textures on CPU software GPUs). */
  storage?: WeightStorage;
  progress?: boolean;
  /** Time every kernel with timestamp queries (steps then run one at a time). */
  profile?: boolean;
  /**
   * Take the kernels chosen for hardware GPUs — decode attention split over the context, a workgroup-wide
   * route gate — or those for CPU software GPUs (default: by adapter; tests run both on either).
   */
  gpuKernels?: boolean;
  /**
   * One-row steps on texture weights run each RMSNorm once into a row texture that the matmuls after it read,
   * rather than fused into them (default: from hidden size 1024 on, forward.ts NORM_TEXTURE_MIN_HIDDEN; tests
   * force it on small models).
   */
  normTextures?: boolean;
  /** Quantize the base model's projections at load (weights.ts `UploadOptions.quant`). */
  quant?: QuantFormat | null;
  /** false: RoPE and the KV write as a kernel of their own, not in the q/k/v matmul (tests). */
  ropePairs?: boolean;
  /** Treat the GPU's buffer limits as at most these (tests; checking that a model fits a smaller GPU). */
  limits?: Partial<FitLimits>;
}

/** One row of a step. */
export interface StepRow {
  slot: number;
  pos: number;
}

/** What a step returns per output row. */
export interface StepResult {
  id: number;
  layers: number;
  /** Route words (bit l = routed layer l ran); empty for a plain model. */
  routes: number[];
}

/** What a step reads back: one result per output, and every row's route words when asked. */
export interface StepReadback {
  results: StepResult[];
  /** [rows × routeWords] when the step was submitted with rowRoutes (routed models only). */
  routesOfRows: Uint32Array | null;
}

/** A submitted step whose result has not been read yet. */
export interface PendingStep {
  readonly nOut: number;
  readonly done: Promise<StepReadback>;
}

/** Most positions the software GPUs' attention covers (one loop over the context; llvmpipe stops at 65535). */
export const SOFTWARE_MAX_CONTEXT = 65535;

/**
 * CPU software GPUs: from this hidden size on, prompts run one row per step. There the one-row GEMV reads x
 * through a uniform window or a texture, the many-row kernel through storage loads that llvmpipe makes lane
 * by lane, so one-row steps cost less per token once a model's matrices outweigh its dispatches. Measured on
 * lavapipe (BF16, 8 layers, prefill tokens/s, one-row vs 128-row steps): hidden 128 111 vs 221, 256 103 vs
 * 56, 512 65 vs 17, 1024 28 vs 5.1; Llama-3.2-1B's shape 5.9 vs 0.7.
 */
const ONE_ROW_PREFILL_MIN_HIDDEN = 256;

/** Rows per prefill step: one on CPU software GPUs (texture weights) for models from ONE_ROW_PREFILL_MIN_HIDDEN. */
export function defaultPrefillRows(
  gpu: GpuContext,
  cfg: ModelConfig,
  weights: ModelWeights,
  maxRows: number,
) {
  const oneRow = isSoftwareGpu(gpu) && weights.layers[0]?.qkv.storage === "texture" &&
    cfg.hiddenSize >= ONE_ROW_PREFILL_MIN_HIDDEN;
  return oneRow ? 1 : maxRows;
}

export class Engine {
  readonly kernels: KernelCache;
  readonly forward: ForwardPass;
  readonly kv: KvCache;
  readonly resultWords: number;
  readonly routeWords: number;
  private readonly staging: GPUBuffer[] = [];
  private readonly stagingBusy: boolean[] = [];
  private nextStaging = 0;
  private readonly freeSlots: number[];
  /**
   * Waits in progress, released when the device is lost. One `device.lost` handler, registered once:
   * racing each step against `device.lost` itself would pile up a reaction per generated token on a
   * promise that normally never settles.
   */
  private readonly lostWaiters = new Set<(v: null) => void>();
  /** Host-side scratch for a step's inputs (no allocation per step). */
  private readonly scratch: {
    step: Uint32Array<ArrayBuffer>;
    outStep: Uint32Array<ArrayBuffer>;
    rows: Uint32Array<ArrayBuffer>;
    tokens: Uint32Array<ArrayBuffer>;
    outRows: Uint32Array<ArrayBuffer>;
    positions: Uint32Array<ArrayBuffer>;
  };
  /** Per-kernel timings when the engine was loaded with `profile`. */
  profiler: GpuProfiler | null = null;
  /** Time spent waiting for readbacks (ms), for the summary. */
  readbackWaitMs = 0;
  /** Rows per prefill step (EngineOptions.prefillRows). */
  readonly prefillRows: number;

  private constructor(
    readonly gpu: GpuContext,
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
    readonly maxRows: number,
    opts:
      & Required<Pick<EngineOptions, "slots" | "context">>
      & Pick<EngineOptions, "gpuKernels" | "normTextures" | "prefillRows">,
  ) {
    this.prefillRows = Math.max(
      1,
      Math.min(maxRows, opts.prefillRows ?? defaultPrefillRows(gpu, config, weights, maxRows)),
    );
    this.kernels = new KernelCache(gpu);
    this.kv = new KvCache(
      gpu.device,
      config,
      opts.slots,
      opts.context,
      gpu.limits.maxStorageBufferBindingSize,
    );
    this.forward = new ForwardPass(
      this.kernels,
      config,
      weights,
      this.kv,
      maxRows,
      opts.slots,
      opts.gpuKernels,
      opts.normTextures,
    );
    this.resultWords = resultStride(config);
    this.routeWords = routeWords(config);
    this.freeSlots = Array.from({ length: opts.slots }, (_, i) => opts.slots - 1 - i);
    gpu.device.lost.then(() => {
      for (const release of this.lostWaiters) release(null);
      this.lostWaiters.clear();
    });
    this.scratch = {
      step: new Uint32Array(4),
      outStep: new Uint32Array(4),
      rows: new Uint32Array(2 * maxRows),
      tokens: new Uint32Array(maxRows),
      outRows: new Uint32Array(opts.slots),
      positions: new Uint32Array(opts.slots),
    };
  }

  static async load(base: GpuContext, ck: Checkpoint, opts: EngineOptions = {}): Promise<Engine> {
    const gpu = withLimits(base, opts.limits);
    const maxBinding = opts.maxBindingBytes ?? gpu.limits.maxStorageBufferBindingSize;
    const context = Math.min(opts.context ?? Math.min(ck.config.maxPositions, 4096), ck.config.maxPositions);
    // The software GPUs' attention loops over the context in one invocation, and llvmpipe ends any loop after
    // 65535 iterations (kernels/README.md): a longer context would silently attend to a prefix.
    if (!(opts.gpuKernels ?? !isSoftwareGpu(gpu)) && context > SOFTWARE_MAX_CONTEXT) {
      throw new GpuError(
        `a context of ${context} positions is more than attention on a software GPU can cover ` +
          `(${SOFTWARE_MAX_CONTEXT})`,
        `pass --context ${SOFTWARE_MAX_CONTEXT} or less`,
      );
    }
    const weights = await uploadWeights(gpu, ck, {
      maxBindingBytes: maxBinding,
      storage: opts.storage,
      progress: opts.progress,
      quant: opts.quant,
      ropePairs: opts.ropePairs,
    });
    gpu.device.pushErrorScope("out-of-memory");
    gpu.device.pushErrorScope("validation");
    let engine: Engine | null = null;
    let failure: unknown = null;
    try {
      engine = new Engine(gpu, ck.config, weights, opts.maxRows ?? 64, {
        slots: opts.slots ?? 1,
        context,
        gpuKernels: opts.gpuKernels,
        normTextures: opts.normTextures,
        prefillRows: opts.prefillRows,
      });
    } catch (e) {
      failure = e;
    }
    const invalid = await gpu.device.popErrorScope();
    const oom = await gpu.device.popErrorScope();
    if (failure) throw failure;
    const c = ck.config;
    const kvBytes = 2 * c.numLayers * (opts.slots ?? 1) * context * c.numKvHeads * c.headDim * 4;
    const sizes = `${formatBytes(weights.bytes)} of weights and a ${formatBytes(kvBytes)} KV cache of ` +
      `${context} positions (${describeLimits(gpu.limits)})`;
    if (oom) {
      throw new GpuError(
        `out of GPU memory for the KV cache and activations after the weights: ${sizes}: ${gpuMessage(oom)}`,
        `lower --context (now ${context}) or use a smaller model`,
      );
    }
    if (invalid) throw new GpuError(`GPU setup failed for ${sizes}: ${gpuMessage(invalid)}`);
    await engine!.kernels.checkErrors();
    if (opts.profile) engine!.profiler = new GpuProfiler(gpu);
    return engine!;
  }

  get context(): number {
    return this.kv.context;
  }

  /** Takes a free KV slot (one per cached sequence). */
  allocSlot(): number {
    const s = this.freeSlots.pop();
    if (s === undefined) throw new GpuError("all KV cache slots are in use", "raise the engine's slots");
    return s;
  }

  releaseSlot(slot: number): void {
    if (!this.freeSlots.includes(slot)) this.freeSlots.push(slot);
  }

  /** Sampling settings per output row; written once per generation, not per step. */
  setSampling(options: SamplingOptions[]): void {
    this.gpu.device.queue.writeBuffer(this.forward.buffers.sampleParams, 0, GpuSampler.paramsBytes(options));
    this.forward.greedy = options.every((o) => o.temperature <= 0);
  }

  /**
   * Submits one step. `tokens` are host-provided input ids (prefill); when omitted, each row reads the
   * id the previous step sampled for it (decode). `outRows` lists the rows that get logits and a sample.
   * `rowRoutes` also reads back every row's route bits (prompt positions' layer counts).
   * Returns null when there is nothing to read back.
   */
  submitStep(
    rows: StepRow[],
    outRows: number[],
    tokens?: ArrayLike<number>,
    rowRoutes = false,
  ): PendingStep | null {
    const device = this.gpu.device;
    const b = this.forward.buffers;
    const n = rows.length;
    const nOut = outRows.length;
    const q = device.queue;
    this.writeInputs(rows, outRows, tokens);

    const enc = device.createCommandEncoder();
    this.record(enc, (pass) => this.forward.encode(pass, n, nOut));
    const routed = this.config.routingLayers.length > 0;
    const resultBytes = nOut * this.resultWords * 4;
    const routeBytes = rowRoutes && routed ? n * this.routeWords * 4 : 0;
    if (resultBytes + routeBytes === 0) {
      q.submit([enc.finish()]);
      return null;
    }
    const { buffer, index } = this.takeStaging();
    if (resultBytes) enc.copyBufferToBuffer(b.result, 0, buffer, 0, resultBytes);
    if (routeBytes) enc.copyBufferToBuffer(b.routes, 0, buffer, resultBytes, routeBytes);
    q.submit([enc.finish()]);
    const words = this.resultWords, rw = this.routeWords, numLayers = this.config.numLayers;
    const done: Promise<StepReadback> = buffer.mapAsync(GPUMapMode.READ, 0, resultBytes + routeBytes).then(
      () => {
        const data = new Uint32Array(buffer.getMappedRange(0, resultBytes + routeBytes).slice(0));
        buffer.unmap();
        this.stagingBusy[index] = false;
        const results: StepResult[] = [];
        for (let j = 0; j < nOut; j++) {
          const w = data.subarray(j * words, (j + 1) * words);
          results.push({
            id: w[0],
            layers: routed ? w[1] : numLayers,
            routes: routed ? Array.from(w.subarray(2, 2 + rw)) : [],
          });
        }
        const routesOfRows = routeBytes ? data.slice(resultBytes / 4) : null;
        return { results, routesOfRows };
      },
    );
    // Steps computed past a stop may never be awaited: a GPU fault must not become an unhandled rejection.
    done.catch(() => {});
    return { nOut, done };
  }

  /**
   * Writes a step's inputs: counts, rows, host tokens (prefill; decode rows read the sampled ids), the
   * output rows and their RNG positions. Queue-ordered, so a step in flight keeps the inputs it was
   * submitted with; the arrays are views of scratch allocated once.
   */
  private writeInputs(rows: StepRow[], outRows: number[], tokens?: ArrayLike<number>): void {
    const q = this.gpu.device.queue;
    const b = this.forward.buffers;
    const s = this.scratch;
    const n = rows.length, nOut = outRows.length;
    s.step.set([n, nOut]);
    q.writeBuffer(b.step, 0, s.step);
    s.outStep[0] = nOut;
    q.writeBuffer(b.outStep, 0, s.outStep);
    rows.forEach((r, i) => {
      s.rows[2 * i] = r.slot;
      s.rows[2 * i + 1] = r.pos;
    });
    q.writeBuffer(b.rows, 0, s.rows, 0, 2 * n);
    if (tokens) {
      s.tokens.set(tokens);
      q.writeBuffer(b.tokens, 0, s.tokens, 0, tokens.length);
    }
    if (nOut) {
      outRows.forEach((r, j) => {
        s.outRows[j] = r;
        s.positions[j] = rows[r].pos;
      });
      q.writeBuffer(b.outRows, 0, s.outRows, 0, nOut);
      q.writeBuffer(b.positions, 0, s.positions, 0, nOut);
    }
  }

  /** Records into one compute pass, or into timed passes per dispatch when profiling. */
  private record(enc: GPUCommandEncoder, body: (pass: ComputeRecorder) => void): void {
    if (this.profiler) {
      body(this.profiler.pass(enc));
      this.profiler.finish(enc);
      return;
    }
    const pass = enc.beginComputePass();
    body(pass);
    pass.end();
  }

  /** Waits for a pending step, counting the wait; a lost device or a GPU error fails it with a GpuError. */
  async await(p: PendingStep): Promise<StepReadback> {
    const t = performance.now();
    let r: StepReadback | null = null;
    let cause: unknown = null;
    try {
      // A lost device may leave a readback pending forever: whichever settles first.
      let release: (v: null) => void = () => {};
      const lost = new Promise<null>((resolve) => {
        release = resolve;
        this.lostWaiters.add(resolve);
      });
      if (this.gpu.lost) release(null);
      try {
        r = await Promise.race([p.done, lost]);
      } finally {
        this.lostWaiters.delete(release);
      }
    } catch (e) {
      cause = e;
    }
    this.readbackWaitMs += performance.now() - t;
    if (r === null) throw await this.fault(cause);
    await this.profiler?.collect();
    if (this.gpu.lost || this.gpu.uncaptured) throw await this.fault(null);
    return r;
  }

  /** The one-line error for a failed step: the device lost, an error no scope caught, or a failed readback. */
  private async fault(cause: unknown): Promise<GpuError> {
    if (!this.gpu.lost && !this.gpu.uncaptured) {
      // The readback may fail a moment before the device reports itself lost.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.gpu.device.lost,
        new Promise((resolve) => timer = setTimeout(resolve, 100)),
      ]);
      clearTimeout(timer);
    }
    const model = `a model of ${formatBytes(this.weights.bytes)} of weights and a ` +
      `${formatBytes(this.kv.bytes)} KV cache of ${this.context} positions (${
        describeLimits(this.gpu.limits)
      })`;
    const lost = this.gpu.lost;
    if (lost) {
      return new GpuError(
        `the GPU device was lost (${lost.reason}${
          lost.message ? `: ${gpuMessage(lost)}` : ""
        }) while running ${model}`,
        lost.reason === "destroyed"
          ? "the device was closed while generating"
          : "the GPU driver reset it (a watchdog timeout, or out of memory): run again; if it recurs, lower --context or use a smaller model",
      );
    }
    if (this.gpu.uncaptured) {
      return new GpuError(
        `GPU error while running ${model}: ${gpuMessage({ message: this.gpu.uncaptured })}`,
        "lower --context or use a smaller model; if it persists, report it with `flexidepth info`",
      );
    }
    return new GpuError(
      `reading results back from the GPU failed while running ${model}: ${gpuMessage(cause as Error)}`,
      "run again; if it persists, report it with `flexidepth info`",
    );
  }

  /**
   * Makes the readback ring hold at least `count` slots, so that a generation keeping that many steps in
   * flight allocates nothing once it runs (generate.ts reserves its window before the prompt).
   */
  reserveReadbacks(count: number): void {
    while (this.staging.length < count) this.addStaging();
  }

  private addStaging(): number {
    this.staging.push(this.gpu.device.createBuffer({
      label: `readback.${this.staging.length}`,
      size: Math.max(16, (this.forward.maxOut * this.resultWords + this.maxRows * this.routeWords) * 4),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    }));
    this.stagingBusy.push(false);
    return this.staging.length - 1;
  }

  /** A free readback slot; the ring grows when every slot is still in flight. */
  private takeStaging(): { buffer: GPUBuffer; index: number } {
    let index = -1;
    for (let i = 0; i < this.staging.length && index < 0; i++) {
      const j = (this.nextStaging + i) % this.staging.length;
      if (!this.stagingBusy[j]) index = j;
    }
    if (index < 0) index = this.addStaging();
    this.nextStaging = (index + 1) % this.staging.length;
    this.stagingBusy[index] = true;
    return { buffer: this.staging[index], index };
  }

  /**
   * Runs `tokens` at positions start.. of `slot` (in chunks) and returns the logits of the last one.
   * Synchronous and slow: tests and diagnostics only.
   */
  async logitsAfter(slot: number, tokens: number[], start: number): Promise<Float32Array> {
    const device = this.gpu.device;
    const b = this.forward.buffers;
    for (let c = 0; c < tokens.length; c += this.maxRows) {
      const chunk = tokens.slice(c, c + this.maxRows);
      const last = c + chunk.length === tokens.length;
      const outRows = last ? [chunk.length - 1] : [];
      this.writeInputs(chunk.map((_, i) => ({ slot, pos: start + c + i })), outRows, chunk);
      const enc = device.createCommandEncoder();
      this.record(enc, (pass) => this.forward.encode(pass, chunk.length, outRows.length, false));
      device.queue.submit([enc.finish()]);
      await this.profiler?.collect();
    }
    return new Float32Array(await readBuffer(device, b.logits, this.config.vocabSize * 4));
  }
}
