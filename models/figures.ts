/** What the builder reads back from its runs: a training log's figures, an experiment's per-task rows. */

import { join } from "node:path";
import { readRunState } from "../src/train/state.ts";

export interface TrainFigures {
  steps: number;
  /** Tokens trained on (steps × tokens per step), seconds of training, the last held-out loss. */
  tokens: number;
  seconds: number;
  valLoss: number;
  /** Mean LM loss and mean layers per token over the last 20 steps' training batches. */
  trainLoss: number;
  meanLayers: number;
  /** Held-out loss at each validation: [step, loss]. */
  valCurve: Array<[number, number]>;
}

export interface AlphaPoint extends TrainFigures {
  alpha: number;
  dir: string;
}

export interface DmtdPoint {
  /** Tokens per cycle (0: the base model). */
  tau: number;
  valLoss: number;
  tokensPerS: number;
}

export interface TaskRow {
  task: string;
  meanLayers: number;
  /** Math tasks: correct / total. */
  accuracy: { correct: number; total: number } | null;
  tokensPerS: number;
}

interface LogRecord {
  step: number;
  lm_loss: number;
  mean_layers: number;
  elapsed_s: number;
  tokens_per_s: number;
  val_loss?: number;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Figures of a finished run from its train.jsonl (`tokensPerStep`: batch × seq × accumulate). */
export function trainFigures(records: LogRecord[], tokensPerStep: number): TrainFigures {
  if (records.length === 0) throw new Error("the run has no steps: train it first");
  const last = records.slice(-20), vals = records.filter((r) => r.val_loss !== undefined);
  return {
    steps: records.length,
    tokens: records.length * tokensPerStep,
    seconds: records.at(-1)!.elapsed_s,
    valLoss: vals.at(-1)?.val_loss ?? NaN,
    trainLoss: mean(last.map((r) => r.lm_loss)),
    meanLayers: mean(last.map((r) => r.mean_layers)),
    valCurve: vals.map((r) => [r.step + 1, r.val_loss!]),
  };
}

export async function readTrainLog(run: string): Promise<TrainFigures> {
  const text = await Deno.readTextFile(join(run, "train.jsonl"));
  const records = text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as LogRecord);
  const state = await readRunState(run);
  if (!state) throw new Error(`${run} holds no training state: train it first`);
  const { batch, seq, accumulate } = state.settings;
  return trainFigures(records, Number(batch) * Number(seq) * Number(accumulate ?? 1));
}

/**
 * The sweep's choice, as the paper weighs α: the largest α whose held-out loss stays within `tolerance` nats of
 * the base's at full depth (the most layers skipped at the base's quality), else the smallest α.
 */
export function chooseAlpha(points: AlphaPoint[], baseLoss: number, tolerance = 0.05): AlphaPoint {
  if (points.length === 0) throw new Error("the α sweep has no runs");
  const sorted = [...points].sort((a, b) => a.alpha - b.alpha);
  const within = sorted.filter((p) => p.valLoss <= baseLoss + tolerance);
  return within.at(-1) ?? sorted[0];
}

/** An experiment's per-task rows from its summary.json. */
export async function readTaskRows(dir: string): Promise<TaskRow[]> {
  const summary = JSON.parse(await Deno.readTextFile(join(dir, "summary.json")));
  type Row = { task: string; mean_layers: number; tokens_per_s: number; accuracy: TaskRow["accuracy"] };
  return (summary.tasks as Row[]).map((t) => ({
    task: t.task,
    meanLayers: t.mean_layers,
    accuracy: t.accuracy ? { correct: t.accuracy.correct, total: t.accuracy.total } : null,
    tokensPerS: t.tokens_per_s,
  }));
}
