/**
 * The model's weights on the GPU, in the layouts its matmuls read (model/layout.ts): what each layer holds,
 * and the load that puts them there (tensor by tensor, `WeightLoader`), checked against the GPU's limits first.
 */

import { type Checkpoint, routerTensorNames } from "../model/checkpoint.ts";
import { type GpuMatrix, rowBytesFor, rowsPerPart, type WeightStorage } from "../gpu/matrix.ts";
import { describeLimits, type GpuContext, gpuMessage } from "../gpu/device.ts";
import { formatBytes } from "../util/format.ts";
import type { QuantFormat } from "../model/quant.ts";
import { QuantPool } from "../model/quant_pool.ts";
import { GpuError } from "../errors.ts";
import { type LoadProgress, WeightLoader } from "./weight_loader.ts";
import { attentionStack } from "../model/layout.ts";
import type { HeadWeights } from "../ops/rope/rope_heads.ts";

/**
 * Projections that read the same input are stacked into one matrix, so one matmul pass computes them:
 * [q; k; v] on a plain layer; on a routed layer q runs only for kept rows, so it stays apart from [k; v].
 * The MLP's gate and up, and the adapter's gate and down, are interleaved row by row (gate 0, up 0, gate 1,
 * …), so the matmul that computes them also applies the SiLU product (Matmul's `swiglu`).
 * Qwen3's q/k norms and Qwen2's q/k/v biases (`HeadWeights`, f32) are applied per head by `rope_heads`.
 */
export interface LayerWeights extends HeadWeights {
  inputNorm: GPUBuffer;
  /**
   * [q; k; v] (plain layer), or [k; v] (routed layer) with the router's W_enc rows below when they share its
   * format (`RouterWeights.encInQkv`): all read input_layernorm(x), so one matmul computes them.
   */
  qkv: GpuMatrix;
  /** q alone, on routed layers. */
  q: GpuMatrix | null;
  o: GpuMatrix;
  postNorm: GPUBuffer;
  /** gate_proj and up_proj, rows interleaved. */
  gateUp: GpuMatrix;
  down: GpuMatrix;
  /** FlexiDepth router and adapter, on routed layers only. */
  router: RouterWeights | null;
}

/** g = sigmoid(head · dec · tanh(RMSNorm_r(enc · z))); Adapter(y) = up(silu(gate(y)) * down(y)). */
export interface RouterWeights {
  /** W_enc [bottleneck, hidden], or null when its rows are stacked below [k; v] in the layer's `qkv`. */
  enc: GpuMatrix | null;
  /** Rows of W_enc. */
  bottleneck: number;
  norm: GPUBuffer;
  /**
   * W_head · W_dec, [bottleneck] in f32: the router's last two layers are linear with no bias or
   * nonlinearity between them, so their product, formed once at load (in f64), gives the same logit as a
   * bottleneck-long dot product (done by the gate kernel) instead of two matmuls.
   */
  decHead: GPUBuffer;
  /** gate_proj and down_proj of the adapter, rows interleaved (its names are swapped: both read the input). */
  adapterGateDown: GpuMatrix;
  adapterUp: GpuMatrix;
}

export interface ModelWeights {
  embed: GpuMatrix;
  layers: LayerWeights[];
  norm: GPUBuffer;
  /** The embedding itself when tied (a copy of its own on texture weights, and quantized under --quant). */
  lmHead: GpuMatrix;
  /** Bytes of weights on the GPU. */
  bytes: number;
  /**
   * q and k rows are stored as rotation pairs (`ropePairRows`), so the attention projections apply RoPE and
   * write the KV cache in their epilogue (head_dim a multiple of 4, parts of whole 4-row groups).
   */
  ropePairs: boolean;
  /** The base model's projections were quantized at load (null: checkpoint precision). */
  quant: QuantFormat | null;
}

export interface UploadOptions {
  /** Split matrices above this many bytes per binding (default: the device's limit). */
  maxBindingBytes?: number;
  /**
   * Where matmul weights live (the backend profile's `weightStorage`). The embedding table stays a buffer (its
   * kernel gathers rows).
   */
  storage: WeightStorage;
  /** Told the checkpoint bytes read so far as the load goes. */
  onProgress?: LoadProgress;
  /** Quantize the base model's projections at load (the tensors of `isQuantizedTensor`). */
  quant?: QuantFormat | null;
  /** false: q and k rows in checkpoint order and RoPE as a kernel of its own (tests; default where it fits). */
  ropePairs?: boolean;
}

/** Bytes one GPU buffer of weights may hold: a binding, and never more than a buffer. */
export function weightBufferLimit(gpu: GpuContext, maxBindingBytes?: number): number {
  const l = gpu.limits;
  return Math.min(maxBindingBytes ?? Infinity, l.maxStorageBufferBindingSize, l.maxBufferSize);
}

/**
 * Checks, before anything is uploaded, that every tensor fits the GPU's buffers: matrices are split by
 * rows, so one row must fit; vectors (stored as f32) must fit whole.
 */
export function checkWeightsFit(gpu: GpuContext, ck: Checkpoint, maxBindingBytes?: number): void {
  const limit = weightBufferLimit(gpu, maxBindingBytes);
  for (const t of ck.tensors.values()) {
    const [unit, bytes] = t.shape.length === 2
      ? ["rows", rowBytesFor(t.dtype, t.shape[1])]
      : ["values", t.shape.reduce((a, b) => a * b, 1) * 4];
    if (bytes > limit) {
      throw new GpuError(
        `the model does not fit this GPU: tensor ${t.name} [${t.shape.join(", ")}] needs ${unit} of ` +
          `${formatBytes(bytes)} in one buffer, over the GPU's limit of ${formatBytes(limit)} ` +
          `(${describeLimits(gpu.limits)}); the model has ${formatBytes(ck.totalBytes)} of weights`,
        "use a smaller model, or a GPU with larger buffers",
      );
    }
  }
}

export async function uploadWeights(
  gpu: GpuContext,
  ck: Checkpoint,
  opts: UploadOptions,
): Promise<ModelWeights> {
  checkWeightsFit(gpu, ck, opts.maxBindingBytes);
  // Quantizing runs on a pool of workers while the loader reads on (null: none could start; inline then).
  const pool = opts.quant ? QuantPool.open() : null;
  const device = gpu.device;
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  let weights: ModelWeights;
  try {
    weights = await upload(gpu, ck, opts, pool ?? undefined);
    await pool?.drain(); // quantized rows still on their way to the GPU
  } finally {
    pool?.close();
  }
  const invalid = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (oom) {
    throw new GpuError(
      `out of GPU memory loading the model's ${formatBytes(ck.totalBytes)} of weights ` +
        `(${describeLimits(gpu.limits)}): ${gpuMessage(oom)}`,
      "the model is larger than this GPU's memory: use a smaller model (or 16-bit weights), or free GPU memory",
    );
  }
  if (invalid) {
    throw new GpuError(
      `the GPU refused the model's weights (${formatBytes(ck.totalBytes)}; ${describeLimits(gpu.limits)}): ` +
        gpuMessage(invalid),
      "use a smaller model",
    );
  }
  return weights;
}

/**
 * q and k rows go in rotation pairs where the epilogue can rope: head_dim and parts in whole 4-row groups, and
 * nothing to apply to a whole head before RoPE (Qwen3's norms need all of a head, Qwen2's biases its order).
 */
function canPairRope(ck: Checkpoint, opts: UploadOptions, maxBinding: number): boolean {
  const c = ck.config;
  const projDtype = ck.tensors.get("model.layers.0.self_attn.k_proj.weight")?.dtype ?? "F32";
  const rowBytes = rowBytesFor(projDtype, c.hiddenSize, opts.quant ?? null);
  return (opts.ropePairs ?? true) && c.headDim % 4 === 0 && !c.qkNorm && !c.attentionBias &&
    rowsPerPart(rowBytes, maxBinding) % 4 === 0;
}

async function upload(
  gpu: GpuContext,
  ck: Checkpoint,
  opts: UploadOptions,
  pool: QuantPool | undefined,
): Promise<ModelWeights> {
  const maxBinding = weightBufferLimit(gpu, opts.maxBindingBytes);
  const quant = opts.quant ?? null;
  const ropePairs = canPairRope(ck, opts, maxBinding);
  const storage = opts.storage;
  const load = new WeightLoader(
    gpu.device,
    ck,
    {
      storage,
      maxTextureDimension: gpu.limits.maxTextureDimension2D,
      maxBinding,
      quant,
      ropePairs,
    },
    pool,
    opts.onProgress,
  );
  const embed = await load.matrix("model.embed_tokens.weight", "buffer");
  const layers: LayerWeights[] = [];
  for (let i = 0; i < ck.config.numLayers; i++) layers.push(await layerWeights(load, ck, i, !quant));
  const norm = await load.vector("model.norm.weight");
  // A tied LM head shares the embedding's buffer, or gets a copy of its own where matmuls read textures or the
  // model is quantized (the head is quantized as an untied one is; the gathered embedding keeps its precision).
  const tied = !ck.tensors.has("lm_head.weight");
  const lmHead = !tied
    ? await load.matrix("lm_head.weight")
    : storage === "texture" || quant
    ? await load.matrix("model.embed_tokens.weight", undefined, "lm_head.weight")
    : embed;
  return { embed, layers, norm, lmHead, bytes: load.bytes, ropePairs, quant };
}

/** Layer `i`'s weights; `mayStackEnc`: W_enc may join [k; v] (not when quantizing: routers keep precision). */
async function layerWeights(
  load: WeightLoader,
  ck: Checkpoint,
  i: number,
  mayStackEnc: boolean,
): Promise<LayerWeights> {
  const p = `model.layers.${i}.`, a = p + "self_attn.";
  const routed = ck.config.routingLayers.includes(i);
  const enc = routerTensorNames(i).enc;
  const encInQkv = routed && mayStackEnc &&
    ck.tensors.get(enc)!.dtype === ck.tensors.get(a + "k_proj.weight")!.dtype;
  return {
    inputNorm: await load.vector(p + "input_layernorm.weight"),
    q: routed ? await load.matrix(a + "q_proj.weight") : null,
    qkv: await load.stacked(`${a}qkv`, attentionStack(i, routed, encInQkv ? enc : undefined)),
    o: await load.matrix(a + "o_proj.weight"),
    postNorm: await load.vector(p + "post_attention_layernorm.weight"),
    gateUp: await load.interleaved(`${p}mlp.gate_up`, [p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"]),
    down: await load.matrix(p + "mlp.down_proj.weight"),
    router: routed ? await routerWeights(load, ck, i, encInQkv) : null,
    ...await headWeights(load, ck, a),
  };
}

/** Qwen3's q/k norms and Qwen2's q/k/v biases of the layer whose attention tensors start with `a`. */
async function headWeights(load: WeightLoader, ck: Checkpoint, a: string): Promise<HeadWeights> {
  const c = ck.config;
  return {
    qkNorm: c.qkNorm
      ? { q: await load.vector(a + "q_norm.weight"), k: await load.vector(a + "k_norm.weight") }
      : null,
    bias: c.attentionBias
      ? {
        q: await load.vector(a + "q_proj.bias"),
        k: await load.vector(a + "k_proj.bias"),
        v: await load.vector(a + "v_proj.bias"),
      }
      : null,
  };
}

async function routerWeights(
  load: WeightLoader,
  ck: Checkpoint,
  layer: number,
  encInQkv: boolean,
): Promise<RouterWeights> {
  const n = routerTensorNames(layer);
  return {
    enc: encInQkv ? null : await load.matrix(n.enc),
    bottleneck: ck.tensors.get(n.enc)!.shape[0],
    norm: await load.vector(n.norm),
    decHead: await load.product(`${n.head}·dec`, n.head, n.dec),
    adapterGateDown: await load.interleaved(`${n.gate}+down`, [n.gate, n.down]),
    adapterUp: await load.matrix(n.up),
  };
}
