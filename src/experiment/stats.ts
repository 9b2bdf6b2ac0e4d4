/**
 * Per-task statistics, computed from the sample records alone (so anyone can recompute them from
 * tokens.jsonl): pooled over every generated token of the task's samples.
 */

import type { GenerationSettings, SampleRecord } from "./records.ts";
import { PAPER_NUM_LAYERS, type Task, type TaskKind } from "./tasks.ts";

export interface ModelInfo {
  dir: string;
  numLayers: number;
  /** Layer indices that are routed (may be skipped per token). */
  routingLayers: number[];
  /** numLayers - routed layers: the fewest layers a token can use. */
  minLayers: number;
  chatTemplate: boolean;
}

export interface TaskStats {
  task: string;
  kind: TaskKind;
  samples: number;
  /** Generated tokens over all samples. */
  tokens: number;
  /** Mean layers per generated token (pooled over all tokens). */
  mean_layers: number | null;
  /** Population variance of layers per generated token (pooled). */
  variance_layers: number | null;
  /** mean_layers / the model's layers. */
  mean_layers_fraction: number | null;
  /** Mean layers per prompt position (prefill routing), reported apart from generated tokens. */
  mean_prompt_layers: number | null;
  paper_mean_layers: number;
  /** The paper's mean / 32 (Llama-3-8B's layers). */
  paper_fraction: number;
  /** Mean over samples (with ≥ 2 tokens) of their decode tokens/s. */
  tokens_per_s: number | null;
  /** Per routed layer: the fraction of generated tokens that ran it. */
  layer_usage: { layer: number; fraction: number | null }[];
  /** How many generated tokens used each layer count, minLayers..numLayers. */
  histogram: { layers: number; count: number }[];
  /** Math tasks: answers checked against the truth. */
  accuracy: { correct: number; total: number; rate: number | null } | null;
  stop_reasons: Record<string, number>;
}

export interface ExperimentSummary {
  model: ModelInfo;
  settings: { tasks: string; n: number } & GenerationSettings & {
    paragraphs: { source: string; count: number; sha256: string };
  };
  paper_num_layers: number;
  tasks: TaskStats[];
}

const mean = (xs: number[]) => xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;

export function taskStats(task: Task, records: SampleRecord[], model: ModelInfo): TaskStats {
  const layers = records.flatMap((r) => r.tokens.map((t) => t.layers));
  const m = mean(layers);
  const variance = m === null ? null : layers.reduce((a, l) => a + (l - m) ** 2, 0) / layers.length;
  const tokens = records.flatMap((r) => r.tokens);
  const layer_usage = model.routingLayers.map((layer, k) => ({
    layer,
    fraction: tokens.length ? tokens.filter((t) => t.routes[k] === 1).length / tokens.length : null,
  }));
  const histogram = [];
  for (let l = model.minLayers; l <= model.numLayers; l++) {
    histogram.push({ layers: l, count: layers.filter((x) => x === l).length });
  }
  const checked = records.filter((r) => typeof r.correct === "boolean");
  const correct = checked.filter((r) => r.correct).length;
  const stop_reasons: Record<string, number> = {};
  for (const r of records) stop_reasons[r.stop_reason] = (stop_reasons[r.stop_reason] ?? 0) + 1;
  return {
    task: task.id,
    kind: task.kind,
    samples: records.length,
    tokens: layers.length,
    mean_layers: m,
    variance_layers: variance,
    mean_layers_fraction: m === null ? null : m / model.numLayers,
    mean_prompt_layers: mean(records.flatMap((r) => r.prompt_layers)),
    paper_mean_layers: task.paper_mean_layers,
    paper_fraction: task.paper_mean_layers / PAPER_NUM_LAYERS,
    tokens_per_s: mean(records.filter((r) => r.generated_tokens > 1).map((r) => r.tokens_per_s)),
    layer_usage,
    histogram,
    accuracy: task.kind === "math"
      ? { correct, total: checked.length, rate: checked.length ? correct / checked.length : null }
      : null,
    stop_reasons,
  };
}
