/** `deno task bench --profile`: GPU time per kernel and matrix of a decode, layers folded together. */

import { GpuProfiler, type KernelTiming } from "../src/gpu/profiler.ts";
import type { Model } from "../src/generation/model.ts";

export interface Profile {
  full_depth: boolean;
  steps: number;
  /** Wall time per step with the profiler attached (window 1, every dispatch in its own timed pass). */
  wall_ms_per_step: number;
  gpu_ms_per_step: number;
  kernels: { kernel: string; calls_per_step: number; ms_per_step: number }[];
}

/**
 * Per-kernel GPU time of a decode after a one-token prompt (window 1), with timestamps around every dispatch.
 * Dispatches are labelled by kernel and the matrix they read; layer numbers are folded (`layers.N`), so a
 * row is one kind of work summed over the layers.
 */
export async function profileDecode(
  model: Model,
  first: number,
  tokens: number,
  fullDepth: boolean,
): Promise<Profile> {
  const profiler = new GpuProfiler(model.engine.gpu);
  profiler.byDispatch = true;
  model.engine.profiler = profiler;
  let r;
  try {
    r = await model.generate({ ids: [first] }, { maxTokens: tokens, window: 1, fullDepth, ignoreEos: true })
      .collect();
  } finally {
    model.engine.profiler = null;
  }
  const steps = r.summary.generatedTokens;
  const folded = new Map<string, KernelTiming>();
  for (const k of profiler.report()) {
    const name = k.kernel.replace(/\.\d+\./g, ".N.");
    const f = folded.get(name) ?? { kernel: name, calls: 0, totalMs: 0 };
    f.calls += k.calls;
    f.totalMs += k.totalMs;
    folded.set(name, f);
  }
  const kernels = [...folded.values()].sort((a, b) => b.totalMs - a.totalMs).map((k) => ({
    kernel: k.kernel,
    calls_per_step: k.calls / steps,
    ms_per_step: k.totalMs / steps,
  }));
  return {
    full_depth: fullDepth,
    steps,
    wall_ms_per_step: 1000 / r.summary.decodeTokensPerSec,
    gpu_ms_per_step: kernels.reduce((t, k) => t + k.ms_per_step, 0),
    kernels,
  };
}
