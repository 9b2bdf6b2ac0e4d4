/**
 * Checkpoint → GPU. Tensors stream to the GPU one at a time (never a whole shard in memory);
 * matrices keep their checkpoint dtype (split by rows past the binding limit), norm vectors become f32.
 */

import { type Checkpoint, routerTensorNames } from "../model/checkpoint.ts";
import { readTensorBytes } from "../model/safetensors.ts";
import { decodeToF32 } from "../model/dtype.ts";
import { bufferFrom, createMatrix, type GpuMatrix, uploadMatrix, writeRows } from "../gpu/tensor.ts";
import type { GpuContext } from "../gpu/device.ts";
import { GpuError } from "../errors.ts";
import { ProgressBar } from "../ui/progress.ts";

/**
 * Projections that read the same input are stacked into one matrix, so one matmul pass computes them:
 * [q; k; v] on a plain layer; on a routed layer q runs only for kept rows, so it stays apart from [k; v].
 * The MLP's [gate; up] and the adapter's [gate; down] likewise.
 */
export interface LayerWeights {
  inputNorm: GPUBuffer;
  /** [q; k; v] (plain layer) or [k; v] (routed layer). */
  qkv: GpuMatrix;
  /** q alone, on routed layers. */
  q: GpuMatrix | null;
  o: GpuMatrix;
  postNorm: GPUBuffer;
  gateUp: GpuMatrix;
  down: GpuMatrix;
  /** FlexiDepth router and adapter, on routed layers only. */
  router: RouterWeights | null;
}

/** g = sigmoid(head · dec · tanh(RMSNorm_r(enc · z))); Adapter(y) = up(silu(gate(y)) * down(y)). */
export interface RouterWeights {
  enc: GpuMatrix;
  norm: GPUBuffer;
  dec: GpuMatrix;
  head: GpuMatrix;
  /** [gate_proj; down_proj] of the adapter (its names are swapped: both read the input). */
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
}

export interface UploadOptions {
  /** Split matrices above this many bytes per binding (default: the device's limit). */
  maxBindingBytes?: number;
  /** Show a progress bar on stderr (default true). */
  progress?: boolean;
}

export async function uploadWeights(
  gpu: GpuContext,
  ck: Checkpoint,
  opts: UploadOptions = {},
): Promise<ModelWeights> {
  const device = gpu.device;
  const maxBinding = opts.maxBindingBytes ?? gpu.limits.maxStorageBufferBindingSize;
  const bar = opts.progress === false ? null : new ProgressBar("loading weights", ck.totalBytes, "bytes");
  let bytes = 0;
  device.pushErrorScope("out-of-memory");

  const matrix = async (name: string): Promise<GpuMatrix> => {
    const info = ck.tensors.get(name)!;
    if (info.shape.length !== 2) throw new GpuError(`tensor ${name} is not a matrix`);
    const raw = await readTensorBytes(info);
    const m = uploadMatrix(device, name, info.dtype, info.shape[0], info.shape[1], raw, maxBinding);
    bytes += m.bytes;
    bar?.advance(info.byteLength);
    return m;
  };
  /** Several matrices with the same columns, stacked by rows, streamed in one by one. */
  const stacked = async (label: string, names: string[]): Promise<GpuMatrix> => {
    const infos = names.map((n) => ck.tensors.get(n)!);
    const dtype = infos[0].dtype, cols = infos[0].shape[1];
    if (infos.some((t) => t.dtype !== dtype || t.shape.length !== 2 || t.shape[1] !== cols)) {
      throw new GpuError(`tensors ${names.join(", ")} differ in dtype or columns; they cannot be stacked`);
    }
    const m = createMatrix(device, label, dtype, infos.reduce((s, t) => s + t.shape[0], 0), cols, maxBinding);
    let row = 0;
    for (const t of infos) {
      writeRows(device, m, row, await readTensorBytes(t));
      row += t.shape[0];
      bar?.advance(t.byteLength);
    }
    bytes += m.bytes;
    return m;
  };
  const vector = async (name: string): Promise<GPUBuffer> => {
    const info = ck.tensors.get(name)!;
    const values = decodeToF32(info.dtype, await readTensorBytes(info));
    bytes += values.byteLength;
    bar?.advance(info.byteLength);
    return bufferFrom(device, name, values);
  };

  const router = async (layer: number): Promise<RouterWeights> => {
    const n = routerTensorNames(layer);
    return {
      enc: await matrix(n.enc),
      norm: await vector(n.norm),
      dec: await matrix(n.dec),
      head: await matrix(n.head),
      adapterGateDown: await stacked(`${n.gate}+down`, [n.gate, n.down]),
      adapterUp: await matrix(n.up),
    };
  };

  const embed = await matrix("model.embed_tokens.weight");
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
      ]),
      o: await matrix(a + "o_proj.weight"),
      postNorm: await vector(p + "post_attention_layernorm.weight"),
      gateUp: await stacked(`${p}mlp.gate_up`, [p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"]),
      down: await matrix(p + "mlp.down_proj.weight"),
      router: routed ? await router(i) : null,
    });
  }
  const norm = await vector("model.norm.weight");
  const lmHead = ck.tensors.has("lm_head.weight") ? await matrix("lm_head.weight") : embed;
  bar?.finish();

  const oom = await device.popErrorScope();
  if (oom) {
    throw new GpuError(
      `out of GPU memory loading ${(ck.totalBytes / 2 ** 30).toFixed(2)} GiB of weights (${oom.message})`,
      "use a GPU with more memory or a smaller model",
    );
  }
  return { embed, layers, norm, lmHead, bytes };
}
