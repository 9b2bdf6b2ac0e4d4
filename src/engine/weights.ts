/**
 * Checkpoint → GPU. Tensors stream to the GPU one at a time (never a whole shard in memory);
 * matrices keep their checkpoint dtype (split by rows past the binding limit), norm vectors become f32.
 */

import { type Checkpoint, routerTensorNames } from "../model/checkpoint.ts";
import { readTensorBytes, type TensorInfo } from "../model/safetensors.ts";
import { decodeToF32 } from "../model/dtype.ts";
import {
  bufferFrom,
  createMatrix,
  type GpuMatrix,
  type MatrixStorageOptions,
  rowBytesFor,
  rowsPerPart,
  uploadMatrix,
  type WeightStorage,
  writeRows,
} from "../gpu/tensor.ts";
import { ropePairRows } from "./matmul.ts";
import {
  canReadStorageTextures,
  describeLimits,
  type GpuContext,
  gpuMessage,
  isSoftwareGpu,
} from "../gpu/device.ts";
import { formatBytes } from "../util/format.ts";
import { DTYPE_BYTES } from "../model/dtype.ts";
import { isQuantizedTensor, type QuantFormat } from "../model/quant.ts";
import { QuantPool } from "../model/quant_pool.ts";
import { GpuError } from "../errors.ts";
import { ProgressBar } from "../ui/progress.ts";

/**
 * Projections that read the same input are stacked into one matrix, so one matmul pass computes them:
 * [q; k; v] on a plain layer; on a routed layer q runs only for kept rows, so it stays apart from [k; v].
 * The MLP's gate and up, and the adapter's gate and down, are interleaved row by row (gate 0, up 0, gate 1,
 * …), so the matmul that computes them also applies the SiLU product (Matmul's `swiglu`).
 */
export interface LayerWeights {
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
  /** The embedding itself when tied. */
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
   * Where matmul weights live: textures on CPU software GPUs (texel fetches beat storage loads there; needs
   * WGSL that reads storage textures), storage buffers elsewhere (default by adapter). The embedding table
   * stays a buffer (its kernel gathers rows).
   */
  storage?: WeightStorage;
  /** Show a progress bar on stderr (default true). */
  progress?: boolean;
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
  opts: UploadOptions = {},
): Promise<ModelWeights> {
  // Quantizing runs on a pool of workers while the loader reads on (null: none could start; inline then).
  const pool = opts.quant ? QuantPool.open() : null;
  try {
    return await upload(gpu, ck, opts, pool ?? undefined);
  } finally {
    pool?.close();
  }
}

async function upload(
  gpu: GpuContext,
  ck: Checkpoint,
  opts: UploadOptions,
  pool: QuantPool | undefined,
): Promise<ModelWeights> {
  const device = gpu.device;
  checkWeightsFit(gpu, ck, opts.maxBindingBytes);
  const maxBinding = weightBufferLimit(gpu, opts.maxBindingBytes);
  const bar = opts.progress === false ? null : new ProgressBar("loading weights", ck.totalBytes, "bytes");
  let bytes = 0;
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");

  // Texture weights need WGSL that reads storage textures; without it, buffers.
  const storage = opts.storage ?? (isSoftwareGpu(gpu) && canReadStorageTextures() ? "texture" : "buffer");
  const hd = ck.config.headDim;
  // Parts of the attention projections must hold whole groups of 4 rows (rowsPerPart rounds to 4 where 4 fit).
  const projDtype = ck.tensors.get("model.layers.0.self_attn.k_proj.weight")?.dtype ?? "F32";
  const quant = opts.quant ?? null;
  const ropePairs = (opts.ropePairs ?? true) && hd % 4 === 0 &&
    rowsPerPart(rowBytesFor(projDtype, ck.config.hiddenSize, quant), maxBinding) % 4 === 0;
  /** A tensor's bytes as the GPU keeps them: q and k rows in rotation pairs when the epilogue ropes. */
  const read = async (info: TensorInfo): Promise<Uint8Array<ArrayBuffer>> => {
    const raw = await readTensorBytes(info);
    return ropePairs && /\.(q|k)_proj\.weight$/.test(info.name) ? ropePairRows(raw, info.shape[0], hd) : raw;
  };
  const layout: MatrixStorageOptions = { storage, maxTextureDimension: gpu.limits.maxTextureDimension2D };
  /** Where a tensor goes: the base model's projections quantized when asked. */
  const storageOf = (name: string): MatrixStorageOptions => ({
    ...layout,
    quant: quant && isQuantizedTensor(name) ? quant : null,
  });
  const matrix = async (name: string, as = storageOf(name)): Promise<GpuMatrix> => {
    const info = ck.tensors.get(name)!;
    if (info.shape.length !== 2) throw new GpuError(`tensor ${name} is not a matrix`);
    await pool?.room();
    const raw = await read(info);
    const m = uploadMatrix(device, name, info.dtype, info.shape[0], info.shape[1], raw, maxBinding, as, pool);
    bytes += m.bytes;
    bar?.advance(info.byteLength);
    return m;
  };
  /** Several projections with the same columns, stacked by rows, streamed in one by one. */
  const stacked = async (label: string, names: string[]): Promise<GpuMatrix> => {
    const infos = names.map((n) => ck.tensors.get(n)!);
    const dtype = infos[0].dtype, cols = infos[0].shape[1];
    if (infos.some((t) => t.dtype !== dtype || t.shape.length !== 2 || t.shape[1] !== cols)) {
      throw new GpuError(`tensors ${names.join(", ")} differ in dtype or columns; they cannot be stacked`);
    }
    const rows = infos.reduce((s, t) => s + t.shape[0], 0);
    const m = createMatrix(device, label, dtype, rows, cols, maxBinding, storageOf(names[0]));
    let row = 0;
    for (const t of infos) {
      await pool?.room();
      writeRows(device, m, row, await read(t), pool);
      row += t.shape[0];
      bar?.advance(t.byteLength);
    }
    bytes += m.bytes;
    return m;
  };
  /** Two matrices of one shape with their rows interleaved (a0, b0, a1, b1, …), written in chunks. */
  const interleaved = async (label: string, [a, b]: [string, string]): Promise<GpuMatrix> => {
    const ta = ck.tensors.get(a)!, tb = ck.tensors.get(b)!;
    if (ta.dtype !== tb.dtype || ta.shape.length !== 2 || ta.shape.join() !== tb.shape.join()) {
      throw new GpuError(`tensors ${a} and ${b} differ in dtype or shape; they cannot be interleaved`);
    }
    const [rows, cols] = ta.shape;
    const m = createMatrix(device, label, ta.dtype, 2 * rows, cols, maxBinding, storageOf(a));
    const rowBytes = cols * DTYPE_BYTES[ta.dtype];
    await pool?.room();
    const ra = await readTensorBytes(ta), rb = await readTensorBytes(tb);
    const chunk = Math.max(1, Math.floor((8 << 20) / rowBytes));
    for (let r0 = 0; r0 < rows; r0 += chunk) {
      const n = Math.min(chunk, rows - r0);
      const out = new Uint8Array(2 * n * rowBytes);
      for (let r = 0; r < n; r++) {
        const src = (r0 + r) * rowBytes;
        out.set(ra.subarray(src, src + rowBytes), 2 * r * rowBytes);
        out.set(rb.subarray(src, src + rowBytes), (2 * r + 1) * rowBytes);
      }
      writeRows(device, m, 2 * r0, out, pool);
    }
    bar?.advance(ta.byteLength + tb.byteLength);
    bytes += m.bytes;
    return m;
  };
  /** a · b for a [1, H] and b [H, B], in f64, as an f32 vector [B]. */
  const product = async (label: string, aName: string, bName: string): Promise<GPUBuffer> => {
    const ta = ck.tensors.get(aName)!, tb = ck.tensors.get(bName)!;
    const [H, B] = tb.shape;
    if (ta.shape.length !== 2 || ta.shape[0] !== 1 || ta.shape[1] !== H) {
      throw new GpuError(`tensor ${aName} [${ta.shape}] cannot multiply ${bName} [${tb.shape}]`);
    }
    const a = decodeToF32(ta.dtype, await readTensorBytes(ta)),
      b = decodeToF32(tb.dtype, await readTensorBytes(tb));
    const out = new Float32Array(B);
    for (let j = 0; j < B; j++) {
      let sum = 0;
      for (let h = 0; h < H; h++) sum += a[h] * b[h * B + j];
      out[j] = sum;
    }
    bytes += out.byteLength;
    bar?.advance(ta.byteLength + tb.byteLength);
    return bufferFrom(device, label, out);
  };
  const vector = async (name: string): Promise<GPUBuffer> => {
    const info = ck.tensors.get(name)!;
    const values = decodeToF32(info.dtype, await readTensorBytes(info));
    bytes += values.byteLength;
    bar?.advance(info.byteLength);
    // Norm weights also feed the one-row texture matmul's uniform window (gemv_tex.wgsl).
    return bufferFrom(device, name, values, storage === "texture" ? "windowed" : "storage");
  };

  /** W_enc joins [k; v] unless quantizing (router weights keep their precision) or the dtypes differ. */
  const encInQkv = (layer: number) => {
    const enc = ck.tensors.get(routerTensorNames(layer).enc)!;
    return !quant && enc.dtype === ck.tensors.get(`model.layers.${layer}.self_attn.k_proj.weight`)!.dtype;
  };
  const router = async (layer: number): Promise<RouterWeights> => {
    const n = routerTensorNames(layer);
    return {
      enc: encInQkv(layer) ? null : await matrix(n.enc),
      bottleneck: ck.tensors.get(n.enc)!.shape[0],
      norm: await vector(n.norm),
      decHead: await product(`${n.head}·dec`, n.head, n.dec),
      adapterGateDown: await interleaved(`${n.gate}+down`, [n.gate, n.down]),
      adapterUp: await matrix(n.up),
    };
  };

  const embed = await matrix("model.embed_tokens.weight", { ...layout, storage: "buffer" });
  const layers: LayerWeights[] = [];
  for (let i = 0; i < ck.config.numLayers; i++) {
    const p = `model.layers.${i}.`;
    const routed = ck.config.routingLayers.includes(i);
    const a = p + "self_attn.";
    layers.push({
      inputNorm: await vector(p + "input_layernorm.weight"),
      q: routed ? await matrix(a + "q_proj.weight") : null,
      qkv: await stacked(`${a}qkv`, [
        ...(routed ? [] : [a + "q_proj.weight"]),
        a + "k_proj.weight",
        a + "v_proj.weight",
        ...(routed && encInQkv(i) ? [routerTensorNames(i).enc] : []),
      ]),
      o: await matrix(a + "o_proj.weight"),
      postNorm: await vector(p + "post_attention_layernorm.weight"),
      gateUp: await interleaved(`${p}mlp.gate_up`, [p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"]),
      down: await matrix(p + "mlp.down_proj.weight"),
      router: routed ? await router(i) : null,
    });
  }
  const norm = await vector("model.norm.weight");
  // A tied LM head shares the embedding's buffer, or gets its own texture copy where matmuls read textures.
  const tied = !ck.tensors.has("lm_head.weight");
  const lmHead = !tied
    ? await matrix("lm_head.weight")
    : storage === "texture"
    ? await matrix("model.embed_tokens.weight")
    : embed;
  await pool?.drain(); // quantized rows still on their way to the GPU
  bar?.finish();

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
  return { embed, layers, norm, lmHead, bytes, ropePairs, quant };
}
