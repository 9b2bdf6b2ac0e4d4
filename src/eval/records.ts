/**
 * samples.jsonl: one line per (task, item, mode), appended and flushed as each finishes, so an interrupted
 * run loses nothing finished; a last line cut short is dropped and redone. run.json keeps the settings that
 * decide the scores (model, weights, prompts, data), so a resumed run cannot mix outputs of other settings;
 * tasks may be added to a folder later, but a task's data and few-shot count must stay what they were.
 */

import type { ChatMessage } from "../tokenizer/tokenizer.ts";
import { readCompleteLines } from "../util/jsonl.ts";
import { EvalError } from "./errors.ts";
import type { MetricName } from "./task.ts";

interface RecordBase {
  task: string;
  mode: string;
  index: number;
  group?: string;
  /** Few-shot examples in the prompt (fewer than asked when the prompt would not fit the context). */
  shots: number;
  /** Per-item scores: acc and acc_norm, or the generation task's metrics. */
  scores: Partial<Record<MetricName, number>>;
  /** Milliseconds the scorer took. */
  ms: number;
}

export interface ChoiceRecord extends RecordBase {
  kind: "choice";
  /** The distinct contexts (one, or one per choice) and their token ids as scored (BOS first). */
  contexts: string[];
  context_ids: number[][];
  /** Context tokens dropped from the left to fit the model's context (lm-eval truncates the same way). */
  truncated: number;
  continuations: string[];
  continuation_ids: number[][];
  loglikelihoods: number[];
  greedy: boolean[];
  chosen: number;
  chosen_norm: number;
  gold: number;
  correct: boolean;
  /** Layers each continuation token ran, per choice. */
  layers: number[][];
}

export interface GenerateRecord extends RecordBase {
  kind: "generate";
  /** The raw prompt, or the chat messages the template renders. */
  prompt: string | ChatMessage[];
  /** Raw prompts: their ids (BOS first). */
  prompt_ids?: number[];
  text: string;
  extracted: string | null;
  gold: string;
  layers: number[];
}

export type EvalRecord = ChoiceRecord | GenerateRecord;

export const SAMPLES_FILE = "samples.jsonl";
export const RUN_FILE = "run.json";

export const recordKey = (task: string, mode: string, index: number) => `${task}#${mode}#${index}`;

/** Records finished so far; a truncated last line is cut off. A missing file: none. */
export async function readRecords(path: string): Promise<Map<string, EvalRecord>> {
  const done = new Map<string, EvalRecord>();
  (await readCompleteLines(path)).forEach((line, i) => {
    if (line.trim() === "") return;
    let rec: EvalRecord;
    try {
      rec = JSON.parse(line);
    } catch {
      throw new EvalError(`${path} line ${i + 1} is not valid JSON`, "delete that line to redo its item");
    }
    if (typeof rec?.task !== "string" || typeof rec.mode !== "string" || !Number.isInteger(rec.index)) {
      throw new EvalError(
        `${path} line ${i + 1} is not an eval sample`,
        "delete that line, or choose a new -o folder",
      );
    }
    done.set(recordKey(rec.task, rec.mode, rec.index), rec);
  });
  return done;
}

/** What decides the scores of every task. */
export interface RunSettings {
  model: string;
  quant: string;
  chat: boolean;
  seed: number;
  /** Positions of the model's context: prompts are fitted to it. */
  context: number;
  /** Per task: where its documents came from, their digest, few-shot examples asked for. */
  tasks: Record<string, { source: string; digest: string; shots: number }>;
}

type Global = Exclude<keyof RunSettings, "tasks">;
const GLOBAL: Global[] = ["model", "quant", "chat", "seed", "context"];

function differences(old: RunSettings, now: RunSettings): string[] {
  const diff = GLOBAL.filter((k) => old[k] !== now[k])
    .map((k) => `${k}: ${JSON.stringify(old[k])} there, ${JSON.stringify(now[k])} now`);
  for (const [task, t] of Object.entries(now.tasks)) {
    const o = old.tasks?.[task];
    if (o && o.digest !== t.digest) diff.push(`${task}'s data differs (${o.source} there, ${t.source} now)`);
    if (o && o.shots !== t.shots) diff.push(`${task}: ${o.shots} shots there, ${t.shots} now`);
  }
  return diff;
}

/** Checks run.json against this run (adding tasks new to the folder), or writes it for a new folder. */
export async function checkSettings(path: string, samplesPath: string, now: RunSettings): Promise<void> {
  const text = await Deno.readTextFile(path).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  });
  if (text === null) {
    const size = await Deno.stat(samplesPath).then((s) => s.size, () => 0);
    if (size > 0) {
      throw new EvalError(
        `${samplesPath} exists but ${path} (its settings) is missing, so it cannot be resumed safely`,
        "delete samples.jsonl to start over, or choose a new -o folder",
      );
    }
    await Deno.writeTextFile(path, JSON.stringify(now, null, 2) + "\n");
    return;
  }
  let old: RunSettings;
  try {
    old = JSON.parse(text);
  } catch {
    throw new EvalError(
      `${path} is not valid JSON`,
      "delete it (and samples.jsonl) or choose a new -o folder",
    );
  }
  const diff = differences(old, now);
  if (diff.length > 0) {
    throw new EvalError(
      `the output folder holds a run with other settings (${diff.join("; ")})`,
      "rerun with the same settings to resume it, or choose a new -o folder",
    );
  }
  const merged = { ...old, tasks: { ...old.tasks, ...now.tasks } };
  await Deno.writeTextFile(path, JSON.stringify(merged, null, 2) + "\n");
}
