/**
 * tokens.jsonl: one line per finished sample, appended and flushed as each sample ends, so an interrupted run
 * loses at most the sample in progress. A last line without its newline is a write cut short: it is dropped
 * (and cut from the file) and that sample runs again. run.json records the settings that decide the tokens,
 * so a resumed run cannot mix outputs of different settings.
 */

import type { StopReason } from "../generation/generate.ts";
import { ExperimentError } from "./errors.ts";
import type { TaskKind } from "./tasks.ts";
import { readCompleteLines } from "../util/jsonl.ts";

export interface TokenRecord {
  i: number;
  id: number;
  text: string;
  layers: number;
  /** Run bit (0/1) per routed layer, in routing_layers order. */
  routes: number[];
}

export interface SampleRecord {
  task: string;
  kind: TaskKind;
  sample: number;
  /** The paragraph (text tasks) or the integer list (math tasks). */
  input: string | number[];
  /** The user message (chat) or the whole raw prompt. */
  prompt: string;
  chat: boolean;
  prompt_ids: number[];
  /** Layers used at each prompt position (prefill routing). */
  prompt_layers: number[];
  tokens: TokenRecord[];
  text: string;
  stop_reason: StopReason;
  generated_tokens: number;
  mean_layers: number;
  tokens_per_s: number;
  prefill_ms: number;
  decode_ms: number;
  /** Math tasks: the true answer and whether the generated text holds it. */
  expected?: string;
  correct?: boolean;
}

export const TOKENS_FILE = "tokens.jsonl";
export const RUN_FILE = "run.json";

/** How samples are generated: recorded in run.json and, in the same order, in summary.json. */
export interface GenerationSettings {
  seed: number;
  max_tokens: number;
  chat: boolean;
  threshold: number;
  full_depth: boolean;
  /** Weight quantization at load: "none", "q8" or "q4". */
  quant: string;
  /** DMTD: tokens per cycle asked for (null: the model's). */
  cycle: number | null;
}

/** The settings that decide a sample's tokens; a resumed run must match them. */
export interface RunSettings extends GenerationSettings {
  model: string;
  paragraphs_sha256: string;
}

/** Settings added after run.json files were first written, as those files implicitly had them. */
const SETTINGS_BEFORE: Partial<RunSettings> = { quant: "none", cycle: null };

export const sampleKey = (task: string, sample: number) => `${task}#${sample}`;

/** Reads finished samples; drops (and cuts off) a truncated last line. Missing file: none finished. */
export async function readFinished(path: string): Promise<Map<string, SampleRecord>> {
  const lines = await readCompleteLines(path);
  const done = new Map<string, SampleRecord>();
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let rec: SampleRecord;
    try {
      rec = JSON.parse(line);
    } catch {
      throw new ExperimentError(
        `${path} line ${i + 1} is not valid JSON`,
        "delete that line to redo its sample, or choose a new -o folder to start over",
      );
    }
    if (typeof rec?.task !== "string" || !Number.isInteger(rec.sample) || !Array.isArray(rec.tokens)) {
      throw new ExperimentError(
        `${path} line ${i + 1} is not an experiment sample`,
        "delete that line to redo its sample, or choose a new -o folder to start over",
      );
    }
    const key = sampleKey(rec.task, rec.sample);
    if (!done.has(key)) done.set(key, rec);
  });
  return done;
}

/** Checks run.json against this run's settings (writing it when the folder holds no run yet). */
export async function checkSettings(path: string, tokensPath: string, settings: RunSettings): Promise<void> {
  let text: string | null = null;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (text === null) {
    const size = await Deno.stat(tokensPath).then((s) => s.size, () => 0);
    if (size > 0) {
      throw new ExperimentError(
        `${tokensPath} exists but ${path} (its settings) is missing, so it cannot be resumed safely`,
        "delete tokens.jsonl to start over, or choose a new -o folder",
      );
    }
    await Deno.writeTextFile(path, JSON.stringify(settings, null, 2) + "\n");
    return;
  }
  let old: Record<string, unknown>;
  try {
    old = JSON.parse(text);
  } catch {
    throw new ExperimentError(
      `${path} is not valid JSON`,
      "delete it (and tokens.jsonl) or choose a new -o folder",
    );
  }
  const diff = (Object.keys(settings) as (keyof RunSettings)[]).filter((k) =>
    (old[k] ?? SETTINGS_BEFORE[k]) !== settings[k]
  );
  if (diff.length > 0) {
    const what = diff.map((k) => `${k}: ${JSON.stringify(old[k])} there, ${JSON.stringify(settings[k])} now`);
    throw new ExperimentError(
      `the output folder holds a run with other settings (${what.join("; ")})`,
      "rerun with the same settings to resume it, or choose a new -o folder",
    );
  }
}
