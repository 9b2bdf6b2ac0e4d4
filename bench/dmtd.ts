/**
 * The DMTD rows of `deno task bench`: decode at full depth and at τ = 2, 3, 4, 6 on the same prompt, the
 * runs alternating so that a slow spell of a shared machine falls on all of them; the ideal speed-up from
 * weight bytes per token (graph/traffic.ts) and measured ÷ ideal.
 */

import type { Model } from "../src/generation/model.ts";
import { dmtdBytesPerToken } from "../src/graph/traffic.ts";

export const DMTD_CYCLES = [2, 3, 4, 6];

export interface DmtdRow {
  thinking_layers: number;
  decoding_layers: number;
  full_depth_ms_per_token: number;
  cycles: {
    cycle: number;
    ms_per_token: number;
    mean_layers: number;
    measured_speedup: number;
    ideal_speedup: number;
    measured_over_ideal: number;
  }[];
}

export async function measureDmtd(
  model: Model,
  prompt: number[],
  tokens: number,
  repeat: number,
): Promise<DmtdRow> {
  const cfg = model.engine.config.dmtd!;
  const modes = [0, ...DMTD_CYCLES]; // 0: full depth
  const best = new Map<number, { ms: number; mean: number }>();
  for (let i = 0; i < repeat; i++) {
    for (const cycle of modes) {
      const r = await model.generate({ ids: prompt }, {
        maxTokens: tokens,
        ignoreEos: true,
        fullDepth: cycle === 0,
        dmtd: cycle ? { cycle } : undefined,
      }).collect();
      const ms = 1000 / r.summary.decodeTokensPerSec, was = best.get(cycle);
      if (!was || ms < was.ms) best.set(cycle, { ms, mean: r.summary.meanLayers });
    }
  }
  const w = model.engine.weights, full = best.get(0)!.ms;
  const fullBytes = dmtdBytesPerToken(w, cfg.thinkingLayers, 1);
  return {
    thinking_layers: cfg.thinkingLayers,
    decoding_layers: cfg.decodingLayers,
    full_depth_ms_per_token: full,
    cycles: DMTD_CYCLES.map((cycle) => {
      const { ms, mean } = best.get(cycle)!;
      const measured = full / ms, ideal = fullBytes / dmtdBytesPerToken(w, cfg.thinkingLayers, cycle);
      return {
        cycle,
        ms_per_token: ms,
        mean_layers: mean,
        measured_speedup: measured,
        ideal_speedup: ideal,
        measured_over_ideal: measured / ideal,
      };
    }),
  };
}

export function printDmtd(d: DmtdRow): void {
  console.log(
    `  DMTD (${d.thinking_layers} thinking + ${d.decoding_layers} decoding layers): full depth ` +
      `${d.full_depth_ms_per_token.toFixed(2)} ms/token`,
  );
  for (const c of d.cycles) {
    console.log(
      `    τ = ${c.cycle}: ${c.ms_per_token.toFixed(2).padStart(7)} ms/token at ${
        c.mean_layers.toFixed(2)
      } layers; ` +
        `${c.measured_speedup.toFixed(3)}× measured, ${c.ideal_speedup.toFixed(3)}× ideal: ÷ ${
          c.measured_over_ideal.toFixed(2)
        }`,
    );
  }
}
