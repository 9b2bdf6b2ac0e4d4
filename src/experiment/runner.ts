/**
 * The experiment loop: every (task, sample) not yet in tokens.jsonl runs greedily and is appended as soon as
 * it ends; then summary.json and report.html are written from all finished samples of this plan.
 */

import { JsonlAppender } from "../util/jsonl.ts";
import type { Model } from "../generation/model.ts";
import { ProgressBar } from "../ui/progress.ts";
import { expectedAnswer } from "./answers.ts";
import { ExperimentError } from "./errors.ts";
import { integerList, paragraphsDigest, type ParagraphSource } from "./inputs.ts";
import {
  checkSettings,
  type GenerationSettings,
  readFinished,
  RUN_FILE,
  type RunSettings,
  sampleKey,
  type SampleRecord,
  TOKENS_FILE,
} from "./records.ts";
import { renderReport } from "./report.ts";
import { type ExperimentSummary, type ModelInfo, taskStats } from "./stats.ts";
import { buildPrompt, PAPER_NUM_LAYERS, type Task, type TaskSet } from "./tasks.ts";
import { fewestLayers } from "../model/config.ts";

export const SUMMARY_FILE = "summary.json";
export const REPORT_FILE = "report.html";

export interface ExperimentOptions {
  taskSet: TaskSet;
  tasks: Task[];
  /** Samples per task (text tasks: at most the number of paragraphs). */
  n: number;
  seed: number;
  maxTokens: number;
  /** Apply the model's chat template (false: raw prompts). */
  chat: boolean;
  paragraphs: ParagraphSource;
  out: string;
  threshold: number;
  fullDepth: boolean;
  /** DMTD: tokens per cycle (null: the model's). */
  cycle: number | null;
  /** Stops after the sample in progress is abandoned (it is not written; a rerun redoes it). */
  signal?: AbortSignal;
}

export interface PlannedSample {
  task: Task;
  sample: number;
  input: string | number[];
}

export interface ExperimentResult {
  summary: ExperimentSummary;
  records: SampleRecord[];
  planned: number;
  /** Samples found finished in tokens.jsonl at the start. */
  resumed: number;
  /** Samples run now. */
  ran: number;
  interrupted: boolean;
}

/** Samples per task for this plan: n, but no more text samples than paragraphs. */
export function samplesFor(task: Task, n: number, paragraphs: string[]): number {
  return task.kind === "text" ? Math.min(n, paragraphs.length) : n;
}

export function planSamples(tasks: Task[], n: number, seed: number, paragraphs: string[]): PlannedSample[] {
  const plan: PlannedSample[] = [];
  for (const task of tasks) {
    for (let i = 0; i < samplesFor(task, n, paragraphs); i++) {
      plan.push({ task, sample: i, input: task.kind === "text" ? paragraphs[i] : integerList(seed, i) });
    }
  }
  return plan;
}

export function modelInfo(model: Model, dir: string): ModelInfo {
  const cfg = model.engine.config;
  return {
    dir,
    numLayers: cfg.numLayers,
    routingLayers: [...cfg.routingLayers],
    minLayers: fewestLayers(cfg),
    chatTemplate: model.tokenizer.hasChatTemplate,
  };
}

async function prepareOut(out: string): Promise<void> {
  try {
    const st = await Deno.stat(out);
    if (!st.isDirectory) {
      throw new ExperimentError(
        `-o ${out} exists and is not a folder`,
        "give a folder path (it is created if missing)",
      );
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    await Deno.mkdir(out, { recursive: true });
  }
}

/** Runs one planned sample; null when aborted mid-way. */
async function runSample(
  model: Model,
  p: PlannedSample,
  opts: ExperimentOptions,
): Promise<SampleRecord | null> {
  const built = buildPrompt(p.task, p.input, opts.chat);
  const { tokens, summary } = await model.generate(built.input, {
    maxTokens: opts.maxTokens,
    temperature: 0,
    threshold: opts.threshold,
    fullDepth: opts.fullDepth,
    dmtd: opts.cycle === null ? undefined : { cycle: opts.cycle },
    signal: opts.signal,
  }).collect();
  if (summary.stopReason === "aborted") return null;
  const rec: SampleRecord = {
    task: p.task.id,
    kind: p.task.kind,
    sample: p.sample,
    input: p.input,
    prompt: built.prompt,
    chat: built.chat,
    prompt_ids: summary.promptIds,
    prompt_layers: summary.promptLayers,
    tokens: tokens.map((t) => ({
      i: t.i,
      id: t.id,
      text: t.text,
      layers: t.layers,
      routes: t.routes.map(Number),
    })),
    text: summary.text,
    stop_reason: summary.stopReason,
    generated_tokens: summary.generatedTokens,
    mean_layers: summary.meanLayers,
    tokens_per_s: summary.decodeTokensPerSec,
    prefill_ms: summary.prefillMs,
    decode_ms: summary.decodeMs,
  };
  if (Array.isArray(p.input)) {
    const want = expectedAnswer(p.task.id, p.input);
    if (want) {
      rec.expected = want.expected;
      rec.correct = want.check(summary.text);
    }
  }
  return rec;
}

/** Runs the samples not yet done, each appended to tokens.jsonl (and `finished`) as it ends. */
async function runPending(
  model: Model,
  todo: PlannedSample[],
  opts: ExperimentOptions,
  tokensPath: string,
  finished: Map<string, SampleRecord>,
  bar: ProgressBar,
): Promise<{ ran: number; interrupted: boolean }> {
  const writer = await JsonlAppender.open<SampleRecord>(tokensPath);
  let ran = 0;
  try {
    for (const p of todo) {
      if (opts.signal?.aborted) return { ran, interrupted: true };
      const rec = await runSample(model, p, opts);
      if (!rec) return { ran, interrupted: true };
      writer.write(rec);
      finished.set(sampleKey(rec.task, rec.sample), rec);
      ran++;
      bar.advance(1);
    }
  } finally {
    writer.close();
  }
  return { ran, interrupted: false };
}

export async function runExperiment(
  model: Model,
  modelDir: string,
  opts: ExperimentOptions,
): Promise<ExperimentResult> {
  await prepareOut(opts.out);
  const digest = await paragraphsDigest(opts.paragraphs.paragraphs);
  const generation: GenerationSettings = {
    seed: opts.seed,
    max_tokens: opts.maxTokens,
    chat: opts.chat,
    threshold: opts.threshold,
    full_depth: opts.fullDepth,
    quant: model.engine.weights.quant ?? "none",
    cycle: opts.cycle,
  };
  // Key order is file order: run.json and summary.json list the settings as they always did.
  const settings: RunSettings = {
    model: await Deno.realPath(modelDir),
    ...generation,
    paragraphs_sha256: digest,
  };
  const tokensPath = `${opts.out}/${TOKENS_FILE}`;
  await checkSettings(`${opts.out}/${RUN_FILE}`, tokensPath, settings);
  const finished = await readFinished(tokensPath);
  const plan = planSamples(opts.tasks, opts.n, opts.seed, opts.paragraphs.paragraphs);
  const todo = plan.filter((p) => !finished.has(sampleKey(p.task.id, p.sample)));
  const resumed = plan.length - todo.length;

  const bar = new ProgressBar("samples", plan.length);
  if (resumed > 0) bar.advance(resumed);
  const { ran, interrupted } = await runPending(model, todo, opts, tokensPath, finished, bar);
  if (!interrupted) bar.finish();

  const info = modelInfo(model, modelDir);
  const records = plan.map((p) => finished.get(sampleKey(p.task.id, p.sample)))
    .filter((r): r is SampleRecord => r !== undefined);
  const summary: ExperimentSummary = {
    model: info,
    settings: {
      tasks: opts.taskSet,
      n: opts.n,
      ...generation,
      paragraphs: {
        source: opts.paragraphs.source,
        count: opts.paragraphs.paragraphs.length,
        sha256: digest,
      },
    },
    paper_num_layers: PAPER_NUM_LAYERS,
    tasks: opts.tasks.map((t) => taskStats(t, records.filter((r) => r.task === t.id), info)),
  };
  await Deno.writeTextFile(`${opts.out}/${SUMMARY_FILE}`, JSON.stringify(summary, null, 2) + "\n");
  await Deno.writeTextFile(`${opts.out}/${REPORT_FILE}`, renderReport(summary, records));
  return { summary, records, planned: plan.length, resumed, ran, interrupted };
}
