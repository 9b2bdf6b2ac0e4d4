/**
 * Checkpoint → GPU. Tensors stream to the GPU one at a time (never a whole shard in memory);
 * matrices keep their checkpoint dtype (split by rows past the binding limit), norm vectors become f32.
 */

import { type Checkpoint, routerTensorNames } from "../model/checkpoint.ts";
import { readTensorBytes } from "../model/safetensors.ts";
import { decodeToF32 } from "../model/dtype.ts";
import { bufferFrom, type GpuMatrix, uploadMatrix } from "../gpu/tensor.ts";
import type { GpuContext } from "../gpu/device.ts";
import { GpuError } from "../errors.ts";
import { ProgressBar } from "../ui/progress.ts";

export interface LayerWeights {
  inputNorm: GPUBuffer;
  q: GpuMatrix;
  k: GpuMatrix;
  v: GpuMatrix;
  o: GpuMatrix;
  postNorm: GPUBuffer;
  gate: GpuMatrix;
  up: GpuMatrix;
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
  adapterGate: GpuMatrix;
  adapterDown: GpuMatrix;
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
      adapterGate: await matrix(n.gate),
      adapterDown: await matrix(n.down),
      adapterUp: await matrix(n.up),
    };
  };

  const embed = await matrix("model.embed_tokens.weight");
  const layers: LayerWeights[] = [];
  for (let i = 0; i < ck.config.numLayers; i++) {
    const p = `model.layers.${i}.`;
    layers.push({
      inputNorm: await vector(p + "input_layernorm.weight"),
      q: await matrix(p + "self_attn.q_proj.weight"),
      k: await matrix(p + "self_attn.k_proj.weight"),
      v: await matrix(p + "self_attn.v_proj.weight"),
      o: await matrix(p + "self_attn.o_proj.weight"),
      postNorm: await vector(p + "post_attention_layernorm.weight"),
      gate: await matrix(p + "mlp.gate_proj.weight"),
      up: await matrix(p + "mlp.up_proj.weight"),
      down: await matrix(p + "mlp.down_proj.weight"),
      router: ck.config.routingLayers.includes(i) ? await router(i) : null,
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
