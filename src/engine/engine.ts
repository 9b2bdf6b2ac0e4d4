/**
 * The engine: a model on the GPU that runs steps. A step is a batch of rows (token, slot, position);
 * prefill is one sequence's prompt chunk, decode is one row per sequence. Decode steps feed the token
 * the previous step sampled on the GPU, and their results come back through a ring of small readback
 * slots so that several steps stay in flight (readback.ts).
 */

import type { Checkpoint } from "../model/checkpoint.ts";
import type { ModelConfig } from "../model/config.ts";
import type { QuantFormat } from "../model/quant.ts";
import { describeLimits, type FitLimits, type GpuContext, withLimits } from "../gpu/device.ts";
import { KernelCache } from "../gpu/kernels.ts";
import { type BackendProfile, backendProfile, type KvDtype, prefillRows } from "../gpu/profile.ts";
import { readBuffer } from "../gpu/buffers.ts";
import { type ComputeRecorder, GpuProfiler } from "../gpu/profiler.ts";
import { GpuError } from "../errors.ts";
import { formatBytes } from "../util/format.ts";
import { GpuSampler, type SamplingOptions } from "../ops/sample/sampler.ts";
import { type ModelWeights, uploadWeights } from "../graph/weights.ts";
import type { LoadProgress } from "../graph/weight_loader.ts";
import { KvCache } from "../graph/kv_cache.ts";
import { ForwardPass } from "../graph/forward.ts";
import type { DmtdShape } from "../graph/stack.ts";
import { resultStride, routeWords } from "../graph/run_state.ts";
import { decodeReadback, ReadbackRing, type ResultLayout, type StepReadback } from "./readback.ts";
import { LostDeviceWatch, stepFault } from "./faults.ts";
import { StepInputs, type StepRow } from "./step_inputs.ts";
import { planThinking, type ThinkingSpec } from "./thinking.ts";
import { contextFor, type EngineSize, inErrorScopes } from "./load.ts";

export type { StepReadback, StepResult } from "./readback.ts";
export type { StepRow } from "./step_inputs.ts";
export type { RowInput, ThinkingSpec } from "./thinking.ts";

export interface EngineOptions {
  /** Most rows a step may have (buffers are sized by it); prompt chunks are at most this long. */
  maxRows?: number;
  /** Sequences that can be cached at once. */
  slots?: number;
  /** Most output rows a scoring step has (`submitScoring`; default 0: no scoring). */
  scoreRows?: number;
  /** Positions per sequence (default: the model's, capped at 4096). */
  context?: number;
  /** Split weights above this many bytes per binding (tests force splits with a small value). */
  maxBindingBytes?: number;
  /** Any choice of the backend profile, forced (tests and benchmarks; default: all by adapter and model). */
  backend?: Partial<BackendProfile>;
  /** Told the checkpoint bytes read so far as the weights load. */
  onProgress?: LoadProgress;
  /** Time every kernel with timestamp queries (steps then run one at a time). */
  profile?: boolean;
  /** Quantize the base model's projections at load (graph/weights.ts `UploadOptions.quant`). */
  quant?: QuantFormat | null;
  /** false: RoPE and the KV write as a kernel of their own, not in the q/k/v matmul (tests). */
  ropePairs?: boolean;
  /** The KV cache's type (default: the backend profile's, itself overridable through `backend`). */
  kvCache?: KvDtype;
  /** Treat the GPU's buffer limits as at most these (tests; checking that a model fits a smaller GPU). */
  limits?: Partial<FitLimits>;
}

/** A submitted step whose result has not been read yet. */
export interface PendingStep {
  readonly nOut: number;
  readonly done: Promise<StepReadback>;
}

export class Engine {
  readonly kernels: KernelCache;
  readonly forward: ForwardPass;
  readonly kv: KvCache;
  readonly resultWords: number;
  readonly routeWords: number;
  /** Rows per prefill step (the profile's `oneRowPrompts`, else as many as a step holds). */
  readonly prefillRows: number;
  /** Per-kernel timings when the engine was loaded with `profile`. */
  profiler: GpuProfiler | null = null;
  /** Time spent waiting for readbacks (ms), for the summary. */
  readbackWaitMs = 0;
  private readonly readbacks: ReadbackRing;
  private readonly resultLayout: ResultLayout;
  private readonly inputs: StepInputs;
  private readonly lost: LostDeviceWatch;
  private readonly freeSlots: number[];

  private constructor(
    readonly gpu: GpuContext,
    readonly config: ModelConfig,
    readonly weights: ModelWeights,
    readonly backend: BackendProfile,
    readonly maxRows: number,
    size: EngineSize,
  ) {
    this.prefillRows = prefillRows(backend, maxRows);
    this.kernels = new KernelCache(gpu);
    this.kv = new KvCache(
      gpu.device,
      config,
      size.slots,
      size.context,
      gpu.limits.maxStorageBufferBindingSize,
      size.kv,
    );
    this.forward = new ForwardPass(this.kernels, config, weights, this.kv, backend, {
      maxRows,
      slots: size.slots,
      scoreRows: size.scoreRows,
    });
    this.resultWords = resultStride(config);
    this.routeWords = routeWords(config);
    this.resultLayout = {
      resultWords: this.resultWords,
      routeWords: this.routeWords,
      routed: config.routingLayers.length > 0,
      numLayers: config.numLayers,
    };
    this.readbacks = new ReadbackRing(
      gpu.device,
      (Math.max(size.slots * this.resultWords, 2 * size.scoreRows) + maxRows * this.routeWords) * 4,
    );
    this.inputs = new StepInputs(
      gpu.device.queue,
      this.forward.state,
      maxRows,
      Math.max(size.slots, size.scoreRows),
    );
    this.lost = new LostDeviceWatch(gpu);
    this.freeSlots = Array.from({ length: size.slots }, (_, i) => size.slots - 1 - i);
  }

  static async load(base: GpuContext, ck: Checkpoint, opts: EngineOptions = {}): Promise<Engine> {
    const gpu = withLimits(base, opts.limits);
    const backend = backendProfile(gpu, ck.config, {
      ...opts.backend,
      ...opts.kvCache && { kvCache: opts.kvCache },
    });
    const context = contextFor(ck.config, backend, opts.context);
    const weights = await uploadWeights(gpu, ck, {
      maxBindingBytes: opts.maxBindingBytes ?? gpu.limits.maxStorageBufferBindingSize,
      storage: backend.weightStorage,
      onProgress: opts.onProgress,
      quant: opts.quant,
      ropePairs: opts.ropePairs,
    });
    const size = { slots: opts.slots ?? 1, context, scoreRows: opts.scoreRows ?? 0, kv: backend.kvCache };
    const engine = await inErrorScopes(
      gpu,
      ck.config,
      weights,
      size,
      () => new Engine(gpu, ck.config, weights, backend, opts.maxRows ?? 64, size),
    );
    await engine.kernels.checkErrors();
    if (opts.profile) engine.profiler = new GpuProfiler(gpu);
    return engine;
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

  /** KV slots not in use. */
  get freeSlotCount(): number {
    return this.freeSlots.length;
  }

  /** Copies the K/V of positions [0, positions) of slot `from` into the slots `to` (queue-ordered with steps). */
  copyPrefix(from: number, to: number[], positions: number): void {
    const enc = this.gpu.device.createCommandEncoder();
    this.kv.encodeCopyPrefix(this.gpu.device, enc, from, to, positions);
    this.gpu.device.queue.submit([enc.finish()]);
  }

  /** Sampling settings per output row; written once per generation, not per step. */
  setSampling(options: SamplingOptions[]): void {
    this.gpu.device.queue.writeBuffer(this.forward.state.sampleParams, 0, GpuSampler.paramsBytes(options));
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
    thinking?: ThinkingSpec,
  ): PendingStep | null {
    return this.submit(rows, outRows, tokens, rowRoutes, thinking);
  }

  /**
   * Submits a scoring step (engines loaded with `scoreRows`): rows of host tokens, and for each output row the
   * target token whose log-probability (and whether it is the greedy choice) comes back in `scores`, with every
   * row's route bits (routed models: the layers each scored token ran).
   */
  submitScoring(
    rows: StepRow[],
    outRows: number[],
    tokens: ArrayLike<number>,
    targets: ArrayLike<number>,
    thinking?: ThinkingSpec,
  ): PendingStep {
    return this.submit(rows, outRows, tokens, true, thinking, targets)!;
  }

  private submit(
    rows: StepRow[],
    outRows: number[],
    tokens: ArrayLike<number> | undefined,
    rowRoutes: boolean,
    thinking: ThinkingSpec | undefined,
    targets?: ArrayLike<number>,
  ): PendingStep | null {
    const device = this.gpu.device;
    const s = this.forward.state;
    const n = rows.length, nOut = outRows.length;
    this.inputs.write(rows, outRows, tokens);
    if (targets) this.inputs.writeTargets(s.scoring!, targets);
    const dmtd = this.writeThinking(rows, thinking);
    const enc = device.createCommandEncoder();
    this.record(enc, (pass) => this.forward.encode(pass, n, nOut, targets ? "score" : "sample", dmtd));
    const layout = this.resultLayout;
    const resultBytes = nOut * (targets ? 8 : this.resultWords * 4);
    const routeBytes = rowRoutes && layout.routed ? n * this.routeWords * 4 : 0;
    if (resultBytes + routeBytes === 0) {
      device.queue.submit([enc.finish()]);
      return null;
    }
    const read = this.readbacks.read(enc, [
      { buffer: targets ? s.scoring!.scores : s.result, bytes: resultBytes },
      { buffer: s.routes, bytes: routeBytes },
    ]);
    device.queue.submit([enc.finish()]);
    const done = read().then((data) => decodeReadback(data, nOut, layout, !!targets));
    // Steps computed past a stop may never be awaited: a GPU fault must not become an unhandled rejection.
    done.catch(() => {});
    return { nOut, done };
  }

  /**
   * Makes the readback ring hold at least `count` slots, so that a generation keeping that many steps in
   * flight allocates nothing once it runs (generation reserves its window before the prompt).
   */
  reserveReadbacks(count: number): void {
    this.readbacks.reserve(count);
  }

  /** Waits for a pending step, counting the wait; a lost device or a GPU error fails it with a GpuError. */
  async await(p: PendingStep): Promise<StepReadback> {
    const t = performance.now();
    let r: StepReadback | null = null;
    let cause: unknown = null;
    try {
      r = await this.lost.race(p.done);
    } catch (e) {
      cause = e;
    }
    this.readbackWaitMs += performance.now() - t;
    if (r === null) throw await stepFault(this.gpu, this.describe(), cause);
    await this.profiler?.collect();
    if (this.gpu.lost || this.gpu.uncaptured) throw await stepFault(this.gpu, this.describe(), null);
    return r;
  }

  /**
   * Runs `tokens` at positions start.. of `slot` (in chunks) and returns the logits of the last one.
   * Synchronous and slow: tests and diagnostics only.
   */
  async logitsAfter(slot: number, tokens: number[], start: number): Promise<Float32Array> {
    const device = this.gpu.device;
    for (let c = 0; c < tokens.length; c += this.maxRows) {
      const chunk = tokens.slice(c, c + this.maxRows);
      const outRows = c + chunk.length === tokens.length ? [chunk.length - 1] : [];
      const rows = chunk.map((_, i) => ({ slot, pos: start + c + i }));
      this.inputs.write(rows, outRows, chunk);
      const dmtd = this.writeThinking(rows);
      const enc = device.createCommandEncoder();
      this.record(enc, (pass) => this.forward.encode(pass, chunk.length, outRows.length, "logits", dmtd));
      device.queue.submit([enc.finish()]);
      await this.profiler?.collect();
    }
    return new Float32Array(await readBuffer(device, this.forward.state.logits, this.config.vocabSize * 4));
  }

  /** A DMTD step's thinking rows and mix written to the GPU, and its shape (thinking.ts). */
  private writeThinking(rows: StepRow[], spec?: ThinkingSpec): DmtdShape | undefined {
    const d = this.forward.state.dmtd;
    const plan = planThinking(d !== null, rows, spec, this.maxRows);
    if (plan && d) this.inputs.writeThinking(d, plan.rows, plan.mix);
    return plan?.shape;
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

  /** The model as errors describe it. */
  private describe(): string {
    return `a model of ${formatBytes(this.weights.bytes)} of weights and a ${
      formatBytes(this.kv.bytes)
    } ${this.kv.dtype} KV ` +
      `cache of ${this.context} positions (${describeLimits(this.gpu.limits)})`;
  }
}
