/**
 * The DMTD rows of `deno task bench`: decode at full depth and at τ = 2, 3, 4, 6 on the same prompt, the
 * runs alternating so that a slow spell of a shared machine falls on all of them; the ideal speed-up from
 * weight bytes per token (graph/traffic.ts) and measured ÷ ideal, from each mode's best run and paired round
 * by round (`pairedOverIdeal`: the median of the rounds' full depth ÷ τ; on a software GPU also by process
 * CPU time, which a shared machine's other load disturbs far less than the wall clock); and where the
 * difference goes: a run with one head only gives a step between heads, from which each τ's head step and the
 * cost of its thinking layers over τ rows against one row follow (`betweenHeadsMs`, `headStepCosts`; the ideal
 * counts them as one).
 */

import process from "node:process";
import type { Model } from "../src/generation/model.ts";
import { dmtdBytesPerToken } from "../src/graph/traffic.ts";
import { median } from "./stats.ts";

export const DMTD_CYCLES = [2, 3, 4, 6];

export interface DmtdRow {
  thinking_layers: number;
  decoding_layers: number;
  full_depth_ms_per_token: number;
  /** A step between heads (decoding layers and LM head only), from a run with one head. */
  between_heads_ms_per_step: number;
  cycles: {
    cycle: number;
    ms_per_token: number;
    mean_layers: number;
    measured_speedup: number;
    ideal_speedup: number;
    measured_over_ideal: number;
    /** The median over rounds of (full depth ÷ τ) by wall clock, ÷ the ideal. */
    paired_over_ideal: number;
    /** The same by process CPU time: software GPUs only (the GPU's work is this process's), else null. */
    paired_over_ideal_cpu: number | null;
    /** A head step over a block of τ rows (thinking, decoding layers and LM head). */
    head_ms_per_step: number;
    /** Its thinking layers over τ rows ÷ the same layers over one row (the ideal: 1). */
    refill_over_one_row: number;
  }[];
}

/**
 * A step between heads, from decode times of `steps` steps (tokens − 1: the first token comes from the
 * prefill) at full depth (`fullMs` a step) and with a single head (`oneHeadMs` a step: the first step, whose
 * block is its own row and costs a full-depth step, then steps between heads). NaN under 2 steps.
 */
export function betweenHeadsMs(steps: number, fullMs: number, oneHeadMs: number): number {
  return steps < 2 ? NaN : (oneHeadMs * steps - fullMs) / (steps - 1);
}

/**
 * For a cycle of τ (`cycleMs` a step, heads at steps 0, τ, 2τ…, the first over one row): the head step over τ
 * rows and its thinking layers over τ rows ÷ over one row (a full-depth step less a step between heads is
 * those layers over one row). NaN where the decode holds fewer than two heads.
 */
export function headStepCosts(
  steps: number,
  fullMs: number,
  betweenMs: number,
  cycle: number,
  cycleMs: number,
): { headMs: number; refillOverOneRow: number } {
  const heads = Math.ceil(steps / cycle);
  const headMs = heads < 2 ? NaN : (cycleMs * steps - fullMs - (steps - heads) * betweenMs) / (heads - 1);
  return { headMs, refillOverOneRow: (headMs - betweenMs) / (fullMs - betweenMs) };
}

/** One decode: wall and process CPU ms a token from its first token to its last (as the summary's rate). */
interface DecodeRun {
  ms: number;
  cpuMs: number;
  meanLayers: number;
}

async function decodeOnce(model: Model, prompt: number[], tokens: number, cycle: number): Promise<DecodeRun> {
  const gen = model.generate({ ids: prompt }, {
    maxTokens: tokens,
    ignoreEos: true,
    fullDepth: cycle === 0,
    dmtd: cycle ? { cycle } : undefined,
  });
  let from: ReturnType<typeof process.cpuUsage> | undefined;
  let n = 0;
  for await (const _ of gen) {
    from ??= process.cpuUsage();
    n++;
  }
  const cpu = process.cpuUsage(from);
  const summary = await gen.summary;
  return {
    ms: 1000 / summary.decodeTokensPerSec,
    cpuMs: (cpu.user + cpu.system) / 1000 / Math.max(1, n - 1),
    meanLayers: summary.meanLayers,
  };
}

/** Measured ÷ ideal paired round by round: the median of full[i] ÷ cycle[i] (ms a token), ÷ the ideal. */
export function pairedOverIdeal(full: number[], cycle: number[], ideal: number): number {
  return median(full.map((f, i) => f / cycle[i])) / ideal;
}

export async function measureDmtd(
  model: Model,
  prompt: number[],
  tokens: number,
  repeat: number,
): Promise<DmtdRow> {
  const cfg = model.engine.config.dmtd!;
  const oneHead = tokens; // a cycle no shorter than the decode: one head, at its first step
  const modes = [0, ...DMTD_CYCLES, oneHead]; // 0: full depth
  const runs = new Map<number, DecodeRun[]>(modes.map((m) => [m, []]));
  for (let i = 0; i < repeat; i++) {
    // The order flips every round, so that no mode always runs first (or just after another) in a round.
    for (const cycle of i % 2 ? [...modes].reverse() : modes) {
      runs.get(cycle)!.push(await decodeOnce(model, prompt, tokens, cycle));
    }
  }
  const best = (cycle: number) => runs.get(cycle)!.reduce((a, b) => b.ms < a.ms ? b : a);
  const w = model.engine.weights, full = best(0).ms, steps = tokens - 1;
  const fullBytes = dmtdBytesPerToken(w, cfg.thinkingLayers, 1);
  const between = betweenHeadsMs(steps, full, best(oneHead).ms);
  const series = (cycle: number, of: "ms" | "cpuMs") => runs.get(cycle)!.map((r) => r[of]);
  const cpuIsGpu = model.engine.backend.family === "software";
  return {
    thinking_layers: cfg.thinkingLayers,
    decoding_layers: cfg.decodingLayers,
    full_depth_ms_per_token: full,
    between_heads_ms_per_step: between,
    cycles: DMTD_CYCLES.map((cycle) => {
      const { ms, meanLayers } = best(cycle);
      const measured = full / ms, ideal = fullBytes / dmtdBytesPerToken(w, cfg.thinkingLayers, cycle);
      const { headMs, refillOverOneRow } = headStepCosts(steps, full, between, cycle, ms);
      return {
        cycle,
        ms_per_token: ms,
        mean_layers: meanLayers,
        measured_speedup: measured,
        ideal_speedup: ideal,
        measured_over_ideal: measured / ideal,
        paired_over_ideal: pairedOverIdeal(series(0, "ms"), series(cycle, "ms"), ideal),
        paired_over_ideal_cpu: cpuIsGpu
          ? pairedOverIdeal(series(0, "cpuMs"), series(cycle, "cpuMs"), ideal)
          : null,
        head_ms_per_step: headMs,
        refill_over_one_row: refillOverOneRow,
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
    const cpu = c.paired_over_ideal_cpu === null ? "" : `, ${c.paired_over_ideal_cpu.toFixed(2)} by CPU time`;
    console.log(
      `    τ = ${c.cycle}: ${c.ms_per_token.toFixed(2).padStart(7)} ms/token at ${
        c.mean_layers.toFixed(2)
      } layers; ` +
        `${c.measured_speedup.toFixed(3)}× measured, ${c.ideal_speedup.toFixed(3)}× ideal: ÷ ${
          c.measured_over_ideal.toFixed(2)
        }; paired by run ÷ ${c.paired_over_ideal.toFixed(2)}${cpu}`,
    );
  }
  // "—" where the decode is too short to tell (--tokens below a few cycles).
  const num = (v: number) => Number.isFinite(v) ? v.toFixed(2) : "—";
  const list = (f: (c: DmtdRow["cycles"][number]) => string) => d.cycles.map(f).join(", ");
  console.log(
    `    where it goes: a step between heads ${num(d.between_heads_ms_per_step)} ms; head steps ` +
      `(τ = ${list((c) => `${c.cycle}`)}) ${list((c) => num(c.head_ms_per_step))} ms, their thinking ` +
      `layers over τ rows ${list((c) => `${num(c.refill_over_one_row)}×`)} one row's cost (the ideal: 1×)`,
  );
}
