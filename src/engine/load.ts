/** Loading an engine: the context a model and backend allow, and the set-up inside error scopes. */

import type { ModelConfig } from "../model/config.ts";
import type { BackendProfile, KvDtype } from "../gpu/profile.ts";
import { describeLimits, type GpuContext, gpuMessage } from "../gpu/device.ts";
import { GpuError } from "../errors.ts";
import { formatBytes } from "../util/format.ts";
import type { ModelWeights } from "../graph/weights.ts";
import { kvCacheBytes } from "../graph/kv_cache.ts";

/** Sequences cached, positions per sequence, output rows of a scoring step. */
export interface EngineSize {
  slots: number;
  context: number;
  scoreRows: number;
  /** The KV cache's element type. */
  kv: KvDtype;
}

/**
 * Positions per sequence: asked for or the model's (capped at 4096), never more than the model's or the
 * backend's (serial attention on a software GPU loops over the context in one invocation, and llvmpipe ends
 * any loop after 65535 iterations: a longer context would silently attend to a prefix).
 */
export function contextFor(cfg: ModelConfig, backend: BackendProfile, asked?: number): number {
  const context = Math.min(asked ?? Math.min(cfg.maxPositions, 4096), cfg.maxPositions);
  if (context > backend.maxContext) {
    throw new GpuError(
      `a context of ${context} positions is more than attention on a software GPU can cover ` +
        `(${backend.maxContext})`,
      `pass --context ${backend.maxContext} or less`,
    );
  }
  return context;
}

/** Builds the engine inside error scopes: out of memory or invalid set-up becomes a GpuError with sizes. */
export async function inErrorScopes<T>(
  gpu: GpuContext,
  c: ModelConfig,
  weights: ModelWeights,
  size: EngineSize,
  build: () => T,
): Promise<T> {
  gpu.device.pushErrorScope("out-of-memory");
  gpu.device.pushErrorScope("validation");
  let engine: T | null = null;
  let failure: unknown = null;
  try {
    engine = build();
  } catch (e) {
    failure = e;
  }
  const invalid = await gpu.device.popErrorScope();
  const oom = await gpu.device.popErrorScope();
  if (failure) throw failure;
  const kvBytes = kvCacheBytes(c, size.slots * size.context, size.kv);
  const sizes =
    `${formatBytes(weights.bytes)} of weights and a ${formatBytes(kvBytes)} ${size.kv} KV cache of ` +
    `${size.context} positions (${describeLimits(gpu.limits)})`;
  if (oom) {
    throw new GpuError(
      `out of GPU memory for the KV cache and activations after the weights: ${sizes}: ${gpuMessage(oom)}`,
      `lower --context (now ${size.context}) or use a smaller model`,
    );
  }
  if (invalid) throw new GpuError(`GPU setup failed for ${sizes}: ${gpuMessage(invalid)}`);
  return engine!;
}
