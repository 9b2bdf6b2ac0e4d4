/**
 * The eval loop: for each task, its items (the first --limit, per subject for MMLU), and for each item every
 * mode in turn (so an interrupted run has compared the modes on the same items); each (item, mode) not yet in
 * samples.jsonl is scored through the Scorer and appended as soon as it finishes. Then results.json and
 * report.html are written from all finished records of this plan.
 */

import { JsonlAppender } from "../util/jsonl.ts";
import { ProgressBar } from "../ui/progress.ts";
import { type EncodedChoice, fitChoice, fitGenerate, type FittedPrompt } from "./requests.ts";
import {
  checkSettings,
  type ChoiceRecord,
  type EvalRecord,
  type GenerateRecord,
  readRecords,
  recordKey,
  RUN_FILE,
  type RunSettings,
  SAMPLES_FILE,
} from "./records.ts";
import { choiceOutcome } from "./metrics.ts";
import { EvalError } from "./errors.ts";
import type { EvalMode, Scorer } from "./scorer.ts";
import type { ChoiceItem, EvalItem, GenerateItem, Grader, LoadedTask } from "./task.ts";
import { type EvalResults, type ModelSummary, summarize } from "./results.ts";
import { renderEvalReport } from "./report.ts";

export const RESULTS_FILE = "results.json";
export const REPORT_FILE = "report.html";

export interface EvalOptions {
  tasks: LoadedTask[];
  modes: EvalMode[];
  out: string;
  /** Items per task (per subject for MMLU); null: all. */
  limit: number | null;
  /** Generation prompts through the model's chat template. */
  chat: boolean;
  settings: RunSettings;
  model: ModelSummary;
  /** Stops after the (item, mode) in progress is written. */
  signal?: AbortSignal;
}

export interface EvalRunResult {
  results: EvalResults;
  planned: number;
  resumed: number;
  ran: number;
  interrupted: boolean;
}

/** The first `limit` items, per group when the task counts per group. */
export function selectItems(task: LoadedTask, limit: number | null): EvalItem[] {
  if (limit === null) return task.items;
  if (!task.limitPerGroup) return task.items.slice(0, limit);
  const seen = new Map<string, number>();
  return task.items.filter((it) => {
    const n = seen.get(it.group ?? "") ?? 0;
    seen.set(it.group ?? "", n + 1);
    return n < limit;
  });
}

async function prepareOut(out: string): Promise<void> {
  const st = await Deno.stat(out).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  });
  if (st && !st.isDirectory) {
    throw new EvalError(
      `-o ${out} exists and is not a folder`,
      "give a folder path (it is created if missing)",
    );
  }
  if (!st) await Deno.mkdir(out, { recursive: true });
}

async function scoreChoice(
  scorer: Scorer,
  task: LoadedTask,
  item: ChoiceItem,
  enc: EncodedChoice,
  mode: EvalMode,
): Promise<ChoiceRecord> {
  const requests = enc.contextIds.map((context, i) => ({ context, continuation: enc.continuationIds[i] }));
  const t0 = performance.now();
  const res = await scorer.loglikelihood(requests, mode);
  const ms = performance.now() - t0;
  const lls = res.map((r) => r.logprob);
  const o = choiceOutcome(lls, item.choices, item.gold);
  const distinct = new Set(enc.contexts).size === 1 ? 1 : enc.contexts.length;
  return {
    task: task.id,
    mode: mode.name,
    index: item.index,
    ...(item.group !== undefined ? { group: item.group } : {}),
    kind: "choice",
    shots: enc.shots,
    scores: task.metrics.includes("acc_norm") ? { acc: o.acc, acc_norm: o.acc_norm } : { acc: o.acc },
    ms,
    contexts: enc.contexts.slice(0, distinct),
    context_ids: enc.contextIds.slice(0, distinct),
    truncated: enc.truncated,
    continuations: enc.continuations,
    continuation_ids: enc.continuationIds,
    loglikelihoods: lls,
    greedy: res.map((r) => r.greedy),
    chosen: o.chosen,
    chosen_norm: o.chosen_norm,
    gold: item.gold,
    correct: o.acc === 1,
    layers: res.map((r) => r.layers),
  };
}

/** The text up to the first stop string (a scorer may or may not have cut it there). */
export function cutAtStop(text: string, stops: string[]): string {
  let end = text.length;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && i < end) end = i;
  }
  return text.slice(0, end);
}

async function scoreGenerate(
  scorer: Scorer,
  task: LoadedTask,
  item: GenerateItem,
  grader: Grader,
  fitted: FittedPrompt,
  mode: EvalMode,
): Promise<GenerateRecord> {
  const t0 = performance.now();
  const res = await scorer.generate(
    { prompt: fitted.prompt, maxTokens: grader.maxTokens, stop: grader.stop },
    mode,
  );
  const ms = performance.now() - t0;
  const text = cutAtStop(res.text, grader.stop);
  const graded = grader.grade(text, item.gold);
  return {
    task: task.id,
    mode: mode.name,
    index: item.index,
    ...(item.group !== undefined ? { group: item.group } : {}),
    kind: "generate",
    shots: fitted.shots,
    scores: graded.scores,
    ms,
    prompt: fitted.prompt,
    ...(fitted.ids ? { prompt_ids: fitted.ids } : {}),
    text,
    extracted: graded.extracted,
    gold: item.gold,
    layers: res.layers,
  };
}

interface Unit {
  task: LoadedTask;
  item: EvalItem;
  modes: EvalMode[];
}

/** Runs the (item, mode) pairs not yet finished, each appended to samples.jsonl as it ends. */
async function runPending(
  scorer: Scorer,
  units: Unit[],
  opts: EvalOptions,
  done: Map<string, EvalRecord>,
  bar: ProgressBar,
): Promise<{ ran: number; interrupted: boolean }> {
  const writer = await JsonlAppender.open<EvalRecord>(`${opts.out}/${SAMPLES_FILE}`);
  const room = opts.settings.context;
  let ran = 0;
  try {
    for (const { task, item, modes } of units) {
      // Encoded once per item, scored in every mode that is still to do.
      let prepared: EncodedChoice | FittedPrompt | null = null;
      for (const mode of modes) {
        if (opts.signal?.aborted) return { ran, interrupted: true };
        let rec: EvalRecord;
        if (item.kind === "choice") {
          const enc = (prepared ??= fitChoice(scorer, item, room)) as EncodedChoice;
          rec = await scoreChoice(scorer, task, item, enc, mode);
        } else {
          const g = task.grader!;
          const fitted =
            (prepared ??= fitGenerate(scorer, item, opts.chat, room, g.maxTokens)) as FittedPrompt;
          rec = await scoreGenerate(scorer, task, item, g, fitted, mode);
        }
        writer.write(rec);
        done.set(recordKey(rec.task, rec.mode, rec.index), rec);
        ran++;
        bar.advance(1);
      }
    }
  } finally {
    writer.close();
  }
  return { ran, interrupted: false };
}

export async function runEval(scorer: Scorer, opts: EvalOptions): Promise<EvalRunResult> {
  await prepareOut(opts.out);
  const samplesPath = `${opts.out}/${SAMPLES_FILE}`;
  await checkSettings(`${opts.out}/${RUN_FILE}`, samplesPath, opts.settings);
  const done = await readRecords(samplesPath);
  const selected = opts.tasks.map((task) => ({ task, items: selectItems(task, opts.limit) }));
  const planned = selected.reduce((a, s) => a + s.items.length, 0) * opts.modes.length;
  const units: Unit[] = [];
  for (const { task, items } of selected) {
    for (const item of items) {
      const modes = opts.modes.filter((m) => !done.has(recordKey(task.id, m.name, item.index)));
      if (modes.length > 0) units.push({ task, item, modes });
    }
  }
  const todo = units.reduce((a, u) => a + u.modes.length, 0);
  const bar = new ProgressBar("eval", planned);
  if (planned > todo) bar.advance(planned - todo);
  const { ran, interrupted } = await runPending(scorer, units, opts, done, bar);
  if (!interrupted) bar.finish();

  const records = selected.flatMap(({ task, items }) =>
    items.flatMap((it) => opts.modes.map((m) => done.get(recordKey(task.id, m.name, it.index))))
  ).filter((r): r is EvalRecord => r !== undefined);
  const results = summarize(opts.tasks, opts.modes, records, opts.model, opts.settings, opts.limit);
  await Deno.writeTextFile(`${opts.out}/${RESULTS_FILE}`, JSON.stringify(results, null, 2) + "\n");
  await Deno.writeTextFile(`${opts.out}/${REPORT_FILE}`, renderEvalReport(results));
  return { results, planned, resumed: planned - todo, ran, interrupted };
}
