/**
 * Token sampling on the GPU (kernels/sample.wgsl); `reference.ts` holds the same semantics in TypeScript.
 *
 * A decode step records the sampler's dispatches into its own compute pass; the chosen id lands in
 * `tokens[j]` (read by the next step's embedding gather) and in `result[j * resultStride]` (the
 * step's readback slot), so the host never has to choose a token.
 */

import { GpuError } from "../../errors.ts";
import type { Kernel, KernelCache } from "../../gpu/kernels.ts";

export interface SamplingOptions {
  /** <= 0: greedy (argmax, ties → lowest id). */
  temperature: number;
  /** 0: off. Otherwise keep the tokens whose logit >= the topK-th largest logit. */
  topK: number;
  /** >= 1: off. Otherwise keep the smallest highest-logit set holding topP of the top-k mass. */
  topP: number;
  /** u32; with the position it seeds the stateless per-token random draw. */
  seed: number;
}

export const GREEDY: SamplingOptions = Object.freeze({ temperature: 0, topK: 0, topP: 1, seed: 0 });

/** Bytes of one `SampleParams` record (temperature f32, top_k u32, top_p f32, seed u32). */
export const SAMPLE_PARAMS_BYTES = 16;

/** The sampler's workgroup and the words of its per-row records (kernels/sample.wgsl). */
const WG = 256;
const STATS_WORDS = 27;
const INFO_WORDS = 16;

export interface GpuSamplerOptions {
  vocab: number;
  /** Most rows one encode() samples. */
  maxRows: number;
  /** result[j * resultStride] receives row j's token. */
  resultStride: number;
  /** Workgroups per row for the full-vocabulary passes (the backend profile's `samplerBlocks`). */
  blocksPerRow: number;
  /**
   * (max key, index) pairs the LM head leaves for a one-row step (Matmul `argmax`): with them `encode` can
   * skip the first pass (kernels/sample.wgsl HEAD_PARTS).
   */
  headParts?: number;
}

type Binding = GPUBuffer | GPUBufferBinding;

/** What `encode` needs of a compute pass (a pass encoder, or a profiler wrapping one). */
export type SamplerPass = Pick<GPUComputePassEncoder, "setPipeline" | "setBindGroup" | "dispatchWorkgroups">;

/**
 * Samples `nRows` rows of logits on the GPU. Construct once per model; `bind` once per set of
 * buffers (it creates the bind groups); `encode` records the dispatches into a compute pass and
 * allocates nothing.
 *
 * Bindings (kernels/sample.wgsl, group 0): 0 logits f32 [rows × vocab] (read), 1 sample params
 * [rows] (SampleParams, written by the host from `paramsBytes`), 2 positions u32 [rows] (the RNG
 * counter), 3 tokens u32 [rows], 4 result u32 [rows × resultStride], 5 scratch (owned here), 6 the LM
 * head's (max key, index) pairs (`headParts`). Sizes are override constants.
 */
export class GpuSampler {
  readonly vocab: number;
  readonly maxRows: number;
  readonly resultStride: number;
  readonly blocks: number;
  private readonly kernels: Kernel[];
  /** PASS 1 combining the LM head's pairs (headParts), or null. */
  private readonly headKernel: Kernel | null;
  private readonly work: GPUBuffer;
  private groups: GPUBindGroup[] | null = null;
  private headGroup: GPUBindGroup | null = null;

  constructor(cache: KernelCache, opts: GpuSamplerOptions) {
    const { vocab, maxRows, resultStride } = opts;
    if (!(vocab >= 1 && maxRows >= 1 && resultStride >= 1)) {
      throw new GpuError(`sampler: bad sizes vocab=${vocab} maxRows=${maxRows} stride=${resultStride}`);
    }
    if (maxRows > cache.gpu.limits.maxComputeWorkgroupsPerDimension) {
      throw new GpuError(`sampler: maxRows ${maxRows} exceeds the device's dispatch limit`);
    }
    this.vocab = vocab;
    this.maxRows = maxRows;
    this.resultStride = resultStride;
    const wanted = opts.blocksPerRow;
    const chunk = Math.ceil(vocab / Math.max(1, wanted));
    this.blocks = Math.ceil(vocab / chunk);
    const sub = Math.ceil(chunk / WG);

    const offPart = maxRows * INFO_WORDS;
    const offStats = offPart + maxRows * this.blocks * 2;
    const offLevels = offStats + maxRows * this.blocks * STATS_WORDS;
    const offCand = offLevels + maxRows * this.blocks * WG * Math.ceil(sub / 8);
    const words = offCand + maxRows * vocab * 2;
    const limit = cache.gpu.limits.maxStorageBufferBindingSize;
    if (words * 4 > limit) {
      throw new GpuError(
        `sampler scratch of ${words * 4} bytes exceeds the binding limit ${limit}`,
        "sample fewer rows per step",
      );
    }
    this.work = cache.gpu.device.createBuffer({
      label: "sampler.work",
      size: words * 4,
      usage: GPUBufferUsage.STORAGE,
    });
    // Sizes go in as override constants (see the note in kernels/sample.wgsl on uniform inlining).
    const constants = {
      RESULT_STRIDE: resultStride,
      VOCAB: vocab,
      NBLOCKS: this.blocks,
      CHUNK: chunk,
      SUB: sub,
      OFF_PART: offPart,
      OFF_STATS: offStats,
      OFF_LEVELS: offLevels,
      OFF_CAND: offCand,
    };
    this.kernels = [0, 1, 2, 3].map((pass) => cache.get("sample", { PASS: pass, ...constants }));
    this.headKernel = opts.headParts
      ? cache.get("sample", { PASS: 1, HEAD_PARTS: opts.headParts, ...constants })
      : null;
  }

  /** Creates the bind groups for these buffers (once; call again only when a buffer changes). */
  bind(
    logits: Binding,
    samplerParams: Binding,
    positions: Binding,
    tokens: Binding,
    result: Binding,
    headParts?: Binding,
  ): void {
    if (this.headKernel && !headParts) {
      throw new GpuError("sampler: headParts configured but no buffer bound");
    }
    // Binding 6 is read only under HEAD_PARTS: any buffer stands in for it otherwise.
    const buffers = [
      logits,
      samplerParams,
      positions,
      tokens,
      result,
      { buffer: this.work },
      headParts ?? logits,
    ];
    this.groups = this.kernels.map((k) => k.bind(buffers));
    this.headGroup = this.headKernel ? this.headKernel.bind(buffers) : null;
  }

  /**
   * Records the sampling dispatches for rows 0..nRows-1 into `pass`. With `greedyOnly` (every row's
   * temperature is <= 0) only the two passes greedy needs are recorded. With `fromHead` (one row, and the LM
   * head wrote its `headParts` pairs in this step: by default, whenever one row is sampled with them bound)
   * the first pass is left out.
   */
  encode(
    pass: SamplerPass,
    nRows: number,
    greedyOnly = false,
    fromHead = nRows === 1 && this.headGroup !== null,
  ): void {
    const groups = this.groups;
    if (!groups) throw new GpuError("sampler: encode() before bind()");
    if (nRows > this.maxRows) throw new GpuError(`sampler: ${nRows} rows > maxRows ${this.maxRows}`);
    if (nRows <= 0) return;
    if (fromHead && (nRows !== 1 || !this.headGroup)) {
      throw new GpuError("sampler: fromHead needs one row and headParts");
    }
    const last = greedyOnly ? 2 : 4;
    for (let i = fromHead ? 1 : 0; i < last; i++) {
      const head = fromHead && i === 1;
      pass.setPipeline((head ? this.headKernel! : this.kernels[i]).pipeline);
      pass.setBindGroup(0, head ? this.headGroup! : groups[i]);
      pass.dispatchWorkgroups(i === 3 ? 1 : this.blocks, nRows);
    }
  }

  /** The `SampleParams` array bytes for these rows (write them to the samplerParams buffer). */
  static paramsBytes(rows: SamplingOptions[]): ArrayBuffer {
    const buf = new ArrayBuffer(Math.max(16, rows.length * SAMPLE_PARAMS_BYTES));
    GpuSampler.writeParams(new DataView(buf), rows);
    return buf;
  }

  /** Writes the `SampleParams` records into `view` (no allocation; for per-step updates). */
  static writeParams(view: DataView, rows: SamplingOptions[], byteOffset = 0): void {
    for (let i = 0; i < rows.length; i++) {
      const o = byteOffset + i * SAMPLE_PARAMS_BYTES;
      const r = rows[i];
      // the same sanitising as `sanitize`, without allocating
      view.setFloat32(o, Number.isNaN(r.temperature) ? 0 : r.temperature, true);
      view.setUint32(o + 4, Math.max(0, Math.min(0xffffffff, Math.floor(r.topK) || 0)), true);
      view.setFloat32(o + 8, Number.isNaN(r.topP) ? 1 : r.topP, true);
      view.setUint32(o + 12, r.seed >>> 0, true);
    }
  }

  /** Frees the sampler's own buffers. */
  destroy(): void {
    this.work.destroy();
    this.groups = null;
  }
}
