/**
 * The backend profile: every choice that depends on the GPU, made once, from the adapter and the model's
 * shape. The rest of the code reads the profile and never asks what the GPU is. Two kernel families:
 *
 * - "hardware": GPUs. Weights in storage buffers, the coop GEMV, decode attention split over the context,
 *   workgroup-wide reductions.
 * - "software": CPU software GPUs (llvmpipe / lavapipe, SwiftShader, WARP), where a storage load whose address
 *   differs across SIMD lanes becomes a loop over the lanes, barriers cost more than the work, every dispatch
 *   costs 40–70 µs of hand-off, and loops end after 65535 iterations (kernels/README.md). Weights in textures,
 *   barrier-free kernels, one-invocation reductions.
 *
 * Tests and benchmarks pass a partial profile (`want`) to force either family or any single choice.
 */

import type { ModelConfig } from "../model/config.ts";
import type { Checkpoint } from "../model/checkpoint.ts";
import { canReadStorageTextures, type GpuContext } from "./device.ts";
import { UNIFORM_WINDOW } from "./buffers.ts";
import type { WeightStorage } from "./matrix.ts";

export type KernelFamily = "hardware" | "software";

/** How attention runs: see `attentionKind`. */
export type AttentionKind = "serial" | "workgroup" | "split";

/**
 * The KV cache's element type: "f16" halves the bytes attention reads at long context (K/V rounded once when
 * written, attention sums in f32); "f32" as written. kernels/lib/kv_read.wgsl has the layout.
 */
export type KvDtype = "f16" | "f32";

export const KV_DTYPES: readonly KvDtype[] = ["f16", "f32"];

/** GEMV kernels for buffer weights: "coop" TPR threads per output row, "row" one row per invocation. */
export type BufferGemv = "coop" | "row";

export interface BackendProfile {
  family: KernelFamily;
  /** Where matmul weights live (the embedding table is always a buffer: its kernel gathers rows). */
  weightStorage: WeightStorage;
  /** The GEMV of buffer weights (texture weights have their own kernels, whatever the family). */
  bufferGemv: BufferGemv;
  /**
   * "serial": one invocation per (8 heads, row), no barriers (software GPUs); "workgroup": one workgroup per
   * (head, row); "split": decode steps split the context into chunks and merge them, prompts as "workgroup".
   */
  attention: AttentionKind;
  /** The KV cache's element type (`kvCacheDtype`). */
  kvCache: KvDtype;
  /** Invocations per RMSNorm workgroup. */
  normWorkgroup: number;
  /** Invocations of the route gate's workgroup. */
  gateWorkgroup: number;
  /** Invocations per workgroup of training attention (two positions each). */
  trainAttentionWorkgroup: number;
  /** One-row steps run each RMSNorm once into a row texture that the matmuls after it read (texture weights). */
  normsToTexture: boolean;
  /**
   * One-row steps of q8 and q4 texture weights quantize x to int8 blocks and sum in integers (quantize_x.wgsl,
   * gemv_tex XQ): on lavapipe q4 GEMVs ran ~2.2–2.5× and q8 ~1.6× faster (kernels/README.md).
   */
  quantizedX: boolean;
  /** Prompts run one row per step rather than in chunks. */
  oneRowPrompts: boolean;
  /** Workgroups per row of the sampler's full-vocabulary passes. */
  samplerBlocks: number;
  /** Most positions one sequence may hold. */
  maxContext: number;
  /** Dispatches run inline on the queue thread (Mesa's LP_NUM_THREADS=0; see `wantsInlineDispatch`). */
  inlineDispatch: boolean;
}

/** The model facts the profile depends on. */
export type ProfiledModel = Pick<ModelConfig, "hiddenSize" | "headDim" | "vocabSize">;

/** Software GPUs: serial attention loops over the context in one invocation, and llvmpipe stops at 65535. */
export const SOFTWARE_MAX_CONTEXT = 65535;

/**
 * Software GPUs: from this hidden size on, a one-row step runs each RMSNorm once into a row texture that the
 * matmuls after it read, instead of fusing it into them. Fused, every invocation recomputes 1/RMS and gathers
 * the norm weights beside x: a BF16 16384 × 2048 gate/up GEMV ran at 7.3 GB/s fused and 16 GB/s from the
 * texture on lavapipe. Below it the extra dispatch (~50 µs there) costs more than it saves.
 */
const NORM_TEXTURE_MIN_HIDDEN = 1024;

/**
 * Software GPUs: from this hidden size on, prompts run one row per step. The one-row GEMV reads x through a
 * uniform window or a texture, the many-row kernel through storage loads that llvmpipe makes lane by lane, so
 * one-row steps cost less per token once a model's matrices outweigh its dispatches. Lavapipe, BF16, 8
 * layers, prefill tokens/s one-row vs 128-row: hidden 128 111 vs 221, 256 103 vs 56, 512 65 vs 17, 1024 28 vs
 * 5.1; Llama-3.2-1B's shape 5.9 vs 0.7.
 */
const ONE_ROW_PROMPT_MIN_HIDDEN = 256;

/**
 * Texture weights (CPU software GPUs): gemv_tex_rows's rows per invocation (NR). A step of 2 to 8 rows takes
 * the smallest that holds it, or, beyond the largest, row groups of at most that many, a dispatch each
 * (src/ops/matmul/plan.ts). On lavapipe each row costs its multiply-adds (no fused multiply-add) and 8 rows'
 * sums outgrow the registers: kernels/README.md has the figures that chose these.
 */
export const FEW_ROW_SIZES = [2, 3, 4];
/** The most activation rows a step may have and still take gemv_tex_rows (in row groups). */
export const FEW_ROW_MAX = 8;

/** Matrices this small make every dispatch short, so per-dispatch overhead dominates. */
const SMALL_MATRIX_BYTES = 1 << 20;

/** The family of an adapter: "software" for CPU software GPUs. The only place that asks. */
export function kernelFamily(gpu: GpuContext): KernelFamily {
  const i = gpu.adapterInfo;
  if ((i as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter) return "software";
  const text = `${i.vendor} ${i.architecture} ${i.device} ${i.description}`;
  return /llvmpipe|lavapipe|swiftshader|software|warp/i.test(text) ? "software" : "hardware";
}

/**
 * Decided before the adapter opens (Mesa reads LP_NUM_THREADS when the first adapter is made): a model whose
 * matrices are all under 1 MiB runs its dispatches inline on a CPU software GPU (stories260K 276 vs 188
 * tokens/s); one with large matrices needs the driver's worker threads (the demo model: 19 vs 9 tokens/s).
 * Other drivers ignore the setting.
 */
export function wantsInlineDispatch(ck: Checkpoint): boolean {
  return [...ck.tensors.values()].every((t) => t.shape.length !== 2 || t.byteLength < SMALL_MATRIX_BYTES);
}

/** Every choice for `model` on `gpu`; `want` overrides any of them (tests, benchmarks). */
export function backendProfile(
  gpu: GpuContext,
  model: ProfiledModel,
  want: Partial<BackendProfile> = {},
): BackendProfile {
  const family = want.family ?? kernelFamily(gpu);
  const software = family === "software";
  const weightStorage = want.weightStorage ??
    (software && canReadStorageTextures() ? "texture" : "buffer");
  const texture = weightStorage === "texture";
  const H = model.hiddenSize;
  const normsToTexture = (want.normsToTexture ?? (software && H >= NORM_TEXTURE_MIN_HIDDEN)) && texture &&
    H * 4 <= UNIFORM_WINDOW;
  return {
    family,
    weightStorage,
    bufferGemv: software ? "row" : "coop",
    attention: attentionKind(family, model.headDim),
    kvCache: kvCacheDtype(gpu.hasF16, model.headDim),
    normWorkgroup: software ? 8 : 64,
    gateWorkgroup: software ? 1 : 128,
    trainAttentionWorkgroup: software ? 8 : 32,
    oneRowPrompts: software && texture && H >= ONE_ROW_PROMPT_MIN_HIDDEN,
    quantizedX: software && texture,
    samplerBlocks: samplerBlocks(family, model.vocabSize),
    maxContext: software ? SOFTWARE_MAX_CONTEXT : Infinity,
    inlineDispatch: software && Deno.env.get("LP_NUM_THREADS") === "0",
    ...want,
    normsToTexture,
  };
}

/**
 * Attention for a family and head size. Software GPUs: one invocation per (head, row) with vec4 loads and no
 * barriers (head_dim a multiple of 4, as in every Llama). GPUs: decode split over the context — on an H100
 * (Llama-3-8B shape) one workgroup per head cost 4.2 ms per token at a 128-token context and ~55 ms at 2048;
 * split, 0.9 and 1.9 ms (head_dim a multiple of 4, at most 256).
 */
export function attentionKind(family: KernelFamily, headDim: number): AttentionKind {
  if (headDim % 4 !== 0) return "workgroup";
  if (family === "software") return "serial";
  return headDim <= 256 ? "split" : "workgroup";
}

/**
 * The KV cache's type: f16 where the adapter offers shader-f16 (a GPU with f16 arithmetic, where halving the
 * cache's bytes pays; the packed words themselves need no feature) and the head size is a multiple of 8 (the
 * vec4 attention kernels read 8 f16 a load); else f32. `--kv-cache` overrides it.
 */
export function kvCacheDtype(hasF16: boolean, headDim: number): KvDtype {
  return hasF16 && headDim % 8 === 0 ? "f16" : "f32";
}

/**
 * Workgroups per row for the sampler's full-vocabulary passes. A CPU driver runs a workgroup per core and
 * pays a fixed cost per workgroup, so about one per core; a GPU wants many (one per 4096 logits, at most 64).
 */
export function samplerBlocks(family: KernelFamily, vocab: number): number {
  if (family === "software") return Math.max(2, Math.min(8, navigator.hardwareConcurrency || 2));
  return Math.max(1, Math.min(64, Math.ceil(vocab / 4096)));
}

/** Rows per prefill step: one where the profile says so, else as many as a step holds. */
export function prefillRows(profile: BackendProfile, maxRows: number): number {
  return profile.oneRowPrompts ? 1 : maxRows;
}
