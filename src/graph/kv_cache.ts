/**
 * The KV cache: per layer, K and V of shape [slots, context, kv_heads × head_dim], f32 or f16 (two to a
 * u32 word: kernels/lib/kv_read.wgsl) as the backend profile says. A slot holds one sequence; a step's rows
 * name their slot and position, so prefill of one sequence and decode of several share one code path.
 */

import { GpuError } from "../errors.ts";
import type { ModelConfig } from "../model/config.ts";
import { storageBuffer } from "../gpu/buffers.ts";
import { formatBytes } from "../util/format.ts";
import type { KvDtype } from "../gpu/profile.ts";

/** Bytes of one cached element. */
export function kvElementBytes(dtype: KvDtype): number {
  return dtype === "f16" ? 2 : 4;
}

/** Bytes of a KV cache: K and V of every layer, `positions` positions of every slot. */
export function kvCacheBytes(cfg: ModelConfig, positions: number, dtype: KvDtype): number {
  return 2 * cfg.numLayers * positions * cfg.numKvHeads * cfg.headDim * kvElementBytes(dtype);
}

export class KvCache {
  readonly k: GPUBuffer[] = [];
  readonly v: GPUBuffer[] = [];
  readonly kvDim: number;
  readonly bytes: number;
  /** Bytes of one position's K (or V) of a layer. */
  readonly positionBytes: number;

  constructor(
    device: GPUDevice,
    cfg: ModelConfig,
    readonly slots: number,
    readonly context: number,
    maxBinding: number,
    readonly dtype: KvDtype = "f32",
  ) {
    this.kvDim = cfg.numKvHeads * cfg.headDim;
    if (dtype === "f16" && this.kvDim % 2 !== 0) {
      throw new Error("an f16 KV cache needs an even kv_heads × head_dim");
    }
    this.positionBytes = this.kvDim * kvElementBytes(dtype);
    const layerBytes = slots * context * this.positionBytes;
    if (layerBytes > maxBinding) {
      const fit = Math.floor(maxBinding / (slots * this.positionBytes));
      const need = formatBytes(layerBytes), limit = formatBytes(maxBinding);
      throw new GpuError(
        `a KV cache of ${context} positions × ${slots} sequences needs ${need} per layer, ` +
          `over the GPU's binding limit of ${limit} (maxStorageBufferBindingSize)`,
        `use --context ${fit} or fewer`,
      );
    }
    for (let l = 0; l < cfg.numLayers; l++) {
      this.k.push(storageBuffer(device, `k_cache.${l}`, layerBytes));
      this.v.push(storageBuffer(device, `v_cache.${l}`, layerBytes));
    }
    this.bytes = 2 * cfg.numLayers * layerBytes;
  }

  /** One slot's positions of a layer, for copies between slots (WebGPU copies no buffer onto itself). */
  private staging: GPUBuffer | null = null;

  /**
   * Records copies of the K/V of positions [0, positions) of slot `from` into each slot of `to`, every layer:
   * sequences that share a prefix (a question's choices) compute it once. Through one staging buffer made at
   * the first copy; the copies are ordered with the steps around them.
   */
  encodeCopyPrefix(
    device: GPUDevice,
    enc: GPUCommandEncoder,
    from: number,
    to: number[],
    positions: number,
  ): void {
    const bytes = positions * this.positionBytes, slotBytes = this.context * this.positionBytes;
    if (bytes === 0 || to.length === 0) return;
    this.staging ??= storageBuffer(device, "kv_prefix", slotBytes);
    for (const layer of [...this.k, ...this.v]) {
      enc.copyBufferToBuffer(layer, from * slotBytes, this.staging, 0, bytes);
      for (const slot of to) enc.copyBufferToBuffer(this.staging, 0, layer, slot * slotBytes, bytes);
    }
  }
}
