/**
 * Token sampling on the GPU (kernels/sample.wgsl) and its plain-TypeScript reference.
 *
 * A decode step records the sampler's dispatches into its own compute pass; the chosen id lands in
 * `tokens[j]` (read by the next step's embedding gather) and in `result[j * resultStride]` (the
 * step's readback slot), so the host never has to choose a token. The semantics are written out in
 * the header of kernels/sample.wgsl; `referenceSample` follows them step for step.
 */

import { GpuError } from "../errors.ts";
import type { GpuContext } from "../gpu/device.ts";
import type { Kernel, KernelCache } from "../gpu/kernels.ts";

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

const WG = 256;
const STATS_WORDS = 27;
const INFO_WORDS = 16;
const X_MIN = -24;
const W_SCALE = 2 ** 31;
const P_ONE = 2 ** 24;
const INV_T_MAX = Math.fround(1e30);

/** Options as the GPU sees them: NaN temperature → greedy, NaN top-p → off, top-k a u32. */
function sanitize(o: SamplingOptions): SamplingOptions {
  return {
    temperature: Number.isNaN(o.temperature) ? 0 : o.temperature,
    topK: Math.max(0, Math.min(0xffffffff, Math.floor(o.topK) || 0)),
    topP: Number.isNaN(o.topP) ? 1 : o.topP,
    seed: o.seed >>> 0,
  };
}

/** The PCG hash (Jarzynski & Olano), u32 → u32. */
export function pcg(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul((s >>> ((s >>> 28) + 4)) ^ s, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/** The 24 random bits the GPU draws for (seed, position). */
export function rng24(seed: number, position: number): number {
  return pcg((seed >>> 0) ^ pcg(position >>> 0)) >>> 8;
}

/** The uniform draw in [0, 1) for (seed, position): exactly the GPU's u = r / 2^24. */
export function rngUniform(seed: number, position: number): number {
  return rng24(seed, position) / P_ONE;
}

/** f32 bit pattern → u32 that sorts like the value (-0 counts as +0). */
function sortKey(bits: number): number {
  if (bits === 0x80000000) bits = 0;
  return bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
}

const keyF32 = new Float32Array(1);
const keyU32 = new Uint32Array(keyF32.buffer);

function keyToFloat(k: number): number {
  keyU32[0] = k & 0x80000000 ? k & 0x7fffffff : ~k >>> 0;
  return keyF32[0];
}

/** The GPU's 1/T (f32, capped so that (l - m) * inv_t stays finite). */
function invTemperature(t: number): number {
  return Math.min(Math.fround(1 / Math.fround(t)), INV_T_MAX);
}

/** Integer weight of a logit: u32(exp(x) * 2^31) for x = (l - m) * inv_t >= -24, else 0. */
function weightOf(l: number, m: number, invT: number): number {
  const x = Math.fround(Math.fround(l - m) * invT);
  return x >= X_MIN ? Math.floor(Math.fround(Math.exp(x)) * W_SCALE) : 0;
}

function topP24(p: number): number {
  const c = Math.min(Math.max(Math.fround(p), 0), 1);
  return Math.floor(c * P_ONE);
}

/** floor (or ceil) of r * m / 2^24, exact. */
function mulShift24(r: number, m: number, roundUp: boolean): number {
  const prod = BigInt(r) * BigInt(m);
  let q = prod >> 24n;
  if (roundUp && (prod & 0xffffffn) !== 0n) q += 1n;
  return Number(q);
}

/**
 * The sampling semantics in plain TypeScript (tests and diagnostics). Integer weights are summed in
 * f64, which is exact for these sizes (< 2^53), so this matches the GPU's 64-bit sums; only exp()
 * may differ by an ulp between the two.
 */
export function referenceSample(logits: Float32Array, options: SamplingOptions, position: number): number {
  const opts = sanitize(options);
  const vocab = logits.length;
  const bits = new Uint32Array(logits.buffer, logits.byteOffset, vocab);
  const keys = new Uint32Array(vocab);
  let best = 0;
  for (let i = 0; i < vocab; i++) {
    const k = sortKey(bits[i]);
    keys[i] = k;
    if (k > keys[best]) best = i;
  }
  const temperature = Math.fround(opts.temperature);
  if (!(temperature > 0)) return best;
  const m = keyToFloat(keys[best]);
  const invT = invTemperature(temperature);
  const w = new Float64Array(vocab);
  for (let i = 0; i < vocab; i++) w[i] = weightOf(logits[i], m, invT);

  // top-k: the topK-th largest key
  const k = opts.topK >>> 0;
  let tau = 0;
  if (k > 0 && k < vocab) {
    const sorted = keys.slice().sort();
    tau = sorted[vocab - k];
  }
  let mk = 0;
  for (let i = 0; i < vocab; i++) if (keys[i] >= tau) mk += w[i];

  // top-p: the largest key whose kept tokens at or above it reach the target mass
  const p24 = topP24(opts.topP);
  if (p24 < P_ONE) {
    const target = Math.max(1, mulShift24(p24, mk, true));
    const kept = keys.filter((key) => key >= tau).sort();
    let cum = 0;
    for (let i = kept.length - 1; i >= 0; i--) {
      cum += weightOf(keyToFloat(kept[i]), m, invT);
      if ((i === 0 || kept[i - 1] !== kept[i]) && cum >= target) {
        tau = kept[i];
        break;
      }
    }
  }

  let mass = 0;
  for (let i = 0; i < vocab; i++) if (keys[i] >= tau) mass += w[i];
  if (mass === 0) return best;
  const target = mulShift24(rng24(opts.seed, position), mass, false);
  let cum = 0;
  let last = best;
  for (let i = 0; i < vocab; i++) {
    if (keys[i] < tau) continue;
    cum += w[i];
    last = i;
    if (cum > target) return i;
  }
  return last;
}

export interface GpuSamplerOptions {
  vocab: number;
  /** Most rows one encode() samples. */
  maxRows: number;
  /** result[j * resultStride] receives row j's token. */
  resultStride: number;
  /** Workgroups per row for the full-vocabulary passes (default: `defaultBlocksPerRow`). */
  blocksPerRow?: number;
  /**
   * (max key, index) pairs the LM head leaves for a one-row step (Matmul `argmax`): with them `encode` can
   * skip the first pass (kernels/sample.wgsl HEAD_PARTS).
   */
  headParts?: number;
}

/**
 * Workgroups per row for the full-vocabulary passes. A CPU driver (llvmpipe) runs a workgroup per
 * core and pays a fixed cost per workgroup, so about one per core; a GPU wants many (one per 4096
 * logits, at most 64).
 */
export function defaultBlocksPerRow(gpu: GpuContext, vocab: number): number {
  const i = gpu.adapterInfo;
  const name = `${i.vendor} ${i.architecture} ${i.device} ${i.description}`;
  const fallback = (i as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  if (fallback || /llvmpipe|lavapipe|swiftshader|software|cpu/i.test(name)) {
    return Math.max(2, Math.min(8, navigator.hardwareConcurrency || 2));
  }
  return Math.max(1, Math.min(64, Math.ceil(vocab / 4096)));
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
    const wanted = opts.blocksPerRow ?? defaultBlocksPerRow(cache.gpu, vocab);
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
   * head wrote its `headParts` pairs in this step) the first pass is left out.
   */
  encode(pass: SamplerPass, nRows: number, greedyOnly = false, fromHead = false): void {
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
