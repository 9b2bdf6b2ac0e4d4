/**
 * Routing in `deno task bench`: which routed layers the decoded tokens ran, and decode with routing against
 * decode at full depth, with the speed-up that the weight bytes per token predict.
 */

import type { TokenEvent } from "../src/generation/generate.ts";
import type { Model } from "../src/generation/model.ts";
import { weightBytesPerToken } from "../src/graph/traffic.ts";
import type { Routing } from "./bench_results.ts";

/** Fraction of tokens that ran each routed layer. */
export function keepRates(tokens: TokenEvent[], routed: number): number[] {
  return Array.from(
    { length: routed },
    (_, k) => tokens.filter((t) => t.routes[k]).length / Math.max(1, tokens.length),
  );
}

/**
 * Same prompt and token count with routing and at full depth (the base model), automatic window; the two
 * alternate, so that a slow spell of a shared machine falls on both. The fastest of `repeat` each.
 */
export async function measureRouting(
  model: Model,
  prompt: number[],
  decodeTokens: number,
  repeat: number,
): Promise<Routing> {
  const cfg = model.engine.config;
  const decode = (fullDepth: boolean) =>
    model.generate({ ids: prompt }, { maxTokens: decodeTokens, fullDepth, ignoreEos: true }).collect();
  type Run = Awaited<ReturnType<typeof decode>>;
  const fastest: [Run | null, Run | null] = [null, null];
  for (let i = 0; i < repeat; i++) {
    for (const fullDepth of [false, true]) {
      const r = await decode(fullDepth), k = Number(fullDepth);
      if (!fastest[k] || r.summary.decodeTokensPerSec > fastest[k]!.summary.decodeTokensPerSec) {
        fastest[k] = r;
      }
    }
  }
  const timed = (r: Run) => ({
    ms: 1000 / r.summary.decodeTokensPerSec,
    tokens: r.tokens,
    mean: r.summary.meanLayers,
  });
  const routedRun = timed(fastest[0]!), full = timed(fastest[1]!);
  const w = model.engine.weights;
  const bytesRouted = weightBytesPerToken(w, keepRates(routedRun.tokens, cfg.routingLayers.length));
  const bytesFull = weightBytesPerToken(w, [], true);
  const measured = full.ms / routedRun.ms, ideal = bytesFull / bytesRouted;
  return {
    mean_layers: routedRun.mean,
    of_layers: cfg.numLayers,
    routed_ms_per_token: routedRun.ms,
    full_depth_ms_per_token: full.ms,
    measured_speedup: measured,
    ideal_speedup: ideal,
    measured_over_ideal: measured / ideal,
    bytes_per_token_routed: bytesRouted,
    bytes_per_token_full: bytesFull,
  };
}
