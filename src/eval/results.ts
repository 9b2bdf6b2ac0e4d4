/**
 * results.json, computed from the sample records alone (anyone can recompute it from samples.jsonl): per task
 * and mode, each metric with its standard error, mean layers per scored token (continuation tokens of
 * multiple choice, generated tokens of generation), tokens scored per second of scorer time, items; MMLU's
 * subjects one by one and macro-averaged; and per mode its retention against the full mode.
 */

import { type Estimate, estimate, macroEstimate, mean, type Retention, retention } from "./metrics.ts";
import type { EvalRecord, RunSettings } from "./records.ts";
import type { EvalMode } from "./scorer.ts";
import type { LoadedTask, MetricName } from "./task.ts";

export interface ModelSummary {
  dir: string;
  numLayers: number;
  routingLayers: number[];
  /** The fewest layers a token can run. */
  minLayers: number;
  chatTemplate: boolean;
  /** DMTD models: their cycle τ. */
  dmtdCycle: number | null;
}

export interface GroupResult {
  group: string;
  items: number;
  metrics: Partial<Record<MetricName, Estimate>>;
}

export interface ModeResult {
  mode: string;
  items: number;
  /** The task's metrics (MMLU: the macro average over subjects). */
  metrics: Partial<Record<MetricName, Estimate>>;
  /** MMLU: the mean over all its items (lm-eval's group weights subjects by size). */
  micro?: Partial<Record<MetricName, Estimate>>;
  groups?: GroupResult[];
  mean_layers: number | null;
  mean_layers_fraction: number | null;
  scored_tokens: number;
  seconds: number;
  scored_tokens_per_s: number | null;
  /** Mean few-shot examples in the prompts, and items whose context was cut from the left. */
  mean_shots: number | null;
  truncated_items: number;
}

export interface TaskResult {
  task: string;
  kind: "choice" | "generate";
  source: string;
  shots: number;
  metrics: MetricName[];
  primary: MetricName;
  modes: ModeResult[];
}

export interface EvalResults {
  model: ModelSummary;
  settings: Omit<RunSettings, "tasks"> & { modes: string[]; limit: number | null };
  tasks: TaskResult[];
  /** Per mode other than full: mean over tasks of its primary score ÷ full's. */
  retention: Retention[];
}

function metricEstimates(
  records: EvalRecord[],
  metrics: MetricName[],
): Partial<Record<MetricName, Estimate>> {
  return Object.fromEntries(metrics.map((m) => [m, estimate(records.map((r) => r.scores[m] ?? 0))]));
}

function groupsOf(records: EvalRecord[], metrics: MetricName[]): GroupResult[] {
  const by = new Map<string, EvalRecord[]>();
  for (const r of records) {
    if (!by.has(r.group!)) by.set(r.group!, []);
    by.get(r.group!)!.push(r);
  }
  return [...by].map(([group, rs]) => ({ group, items: rs.length, metrics: metricEstimates(rs, metrics) }));
}

function tokenLayers(r: EvalRecord): number[] {
  return r.kind === "choice" ? r.layers.flat() : r.layers;
}

function scoredTokens(r: EvalRecord): number {
  return r.kind === "choice" ? r.continuation_ids.reduce((a, c) => a + c.length, 0) : r.layers.length;
}

export function modeResult(
  task: LoadedTask,
  mode: string,
  records: EvalRecord[],
  model: ModelSummary,
): ModeResult {
  const grouped = records.some((r) => r.group !== undefined);
  const groups = grouped ? groupsOf(records, task.metrics) : undefined;
  const metrics = groups
    ? Object.fromEntries(task.metrics.map((m) => [
      m,
      macroEstimate(
        groups.map((g) => records.filter((r) => r.group === g.group).map((r) => r.scores[m] ?? 0)),
      ),
    ]))
    : metricEstimates(records, task.metrics);
  const layers = records.flatMap(tokenLayers);
  const meanLayers = mean(layers);
  const tokens = records.reduce((a, r) => a + scoredTokens(r), 0);
  const seconds = records.reduce((a, r) => a + r.ms, 0) / 1000;
  return {
    mode,
    items: records.length,
    metrics,
    ...(groups ? { micro: metricEstimates(records, task.metrics), groups } : {}),
    mean_layers: meanLayers,
    mean_layers_fraction: meanLayers === null ? null : meanLayers / model.numLayers,
    scored_tokens: tokens,
    seconds,
    scored_tokens_per_s: seconds > 0 ? tokens / seconds : null,
    mean_shots: mean(records.map((r) => r.shots)),
    truncated_items: records.filter((r) => r.kind === "choice" && r.truncated > 0).length,
  };
}

export function summarize(
  tasks: LoadedTask[],
  modes: EvalMode[],
  records: EvalRecord[],
  model: ModelSummary,
  settings: RunSettings,
  limit: number | null,
): EvalResults {
  const results: TaskResult[] = tasks.map((task) => ({
    task: task.id,
    kind: task.kind,
    source: task.source,
    shots: task.shots,
    metrics: task.metrics,
    primary: task.primary,
    modes: modes.map((m) =>
      modeResult(task, m.name, records.filter((r) => r.task === task.id && r.mode === m.name), model)
    ),
  }));
  const scores: Record<string, Record<string, number | null>> = {};
  for (const t of results) {
    scores[t.task] = Object.fromEntries(
      t.modes.map((m) => [m.mode, m.items > 0 ? m.metrics[t.primary]?.value ?? null : null]),
    );
  }
  const { tasks: _, ...rest } = settings;
  return {
    model,
    settings: { ...rest, modes: modes.map((m) => m.name), limit },
    tasks: results,
    retention: modes.filter((m) => m.name !== "full").map((m) => retention(scores, m.name)),
  };
}
