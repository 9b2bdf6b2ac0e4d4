/**
 * The KV cache: per layer, K and V of shape [slots, context, kv_heads × head_dim] (f32). A slot holds one
 * sequence; a step's rows name their slot and position, so prefill of one sequence and decode of several
 * share one code path.
 */

import { GpuError } from "../errors.ts";
import type { ModelConfig } from "../model/config.ts";
import { storageBuffer } from "../gpu/buffers.ts";
import { formatBytes } from "../util/format.ts";

export class KvCache {
  readonly k: GPUBuffer[] = [];
  readonly v: GPUBuffer[] = [];
  readonly kvDim: number;
  readonly bytes: number;

  constructor(
    device: GPUDevice,
    cfg: ModelConfig,
    readonly slots: number,
    readonly context: number,
    maxBinding: number,
  ) {
    this.kvDim = cfg.numKvHeads * cfg.headDim;
    const layerBytes = slots * context * this.kvDim * 4;
    if (layerBytes > maxBinding) {
      const fit = Math.floor(maxBinding / (slots * this.kvDim * 4));
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
}
