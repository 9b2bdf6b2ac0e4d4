/** `flexidepth eval`: benchmark tasks in several modes of one model (scores, layers per token, retention). */

import { numberFlag, parseCommandFlags } from "./args.ts";
import { openModel } from "./open_model.ts";
import { loadOptionsFromFlags } from "./generate_flags.ts";
import { UsageError } from "../errors.ts";
import { openCheckpoint } from "../model/checkpoint.ts";
import { fewestLayers, type ModelConfig } from "../model/config.ts";
import { locateData } from "../eval/data.ts";
import { createGpuScorer, SCORER_LOAD } from "../eval/gpu_scorer.ts";
import { defaultModes, type ModelCaps, parseModes } from "../eval/modes.ts";
import { SAMPLES_FILE } from "../eval/records.ts";
import { REPORT_FILE, RESULTS_FILE, runEval } from "../eval/runner.ts";
import type { EvalMode } from "../eval/scorer.ts";
import { formatEvalTable } from "../eval/table.ts";
import type { LoadedTask } from "../eval/task.ts";
import { isTaskFile, loadTaskFile } from "../eval/task_file.ts";
import { builtinTask, TASK_NAMES } from "../eval/tasks/registry.ts";

export const EVAL_HELP =
  `flexidepth eval — benchmark scores of a model in several modes, with the layers each token used

Usage:
  flexidepth eval TASK… -o OUT/ [--model M] [--modes full,routed] [options]

Tasks (lm-evaluation-harness's prompts and metrics):
  mmlu           57 subjects, 5-shot from dev; acc per subject and macro-averaged
  hellaswag      acc, acc_norm (by the ending's length)
  arc_easy       ARC-Easy test; acc, acc_norm
  arc_challenge  ARC-Challenge test; acc, acc_norm
  winogrande     partial scoring (the option fills the blank); acc
  gsm8k          greedy, 8-shot (fewer if the context is short); exact match of the number after ####,
                 else the last number; few-shot as chat turns when the model has a chat template
  xsum           one-sentence summaries, greedy; ROUGE-1/2/L F-measure
  all            every task above
  FILE.json      your own task (see below)

Modes (--modes, comma-separated; default full plus the model's own: routed, or cycle:τ for DMTD):
  full           every layer for every token
  routed         FlexiDepth routers at the released threshold 0.5
  threshold:G    routers at gate threshold G
  cycle:N        DMTD: a cycle of N tokens runs the thinking layers once

Writes to OUT/ (run the same command again to resume; Ctrl-C finishes the item in progress and exits 130):
  samples.jsonl  one line per item and mode: prompt ids, per-choice log-likelihoods, chosen, gold, correct,
                 layers of each scored token (generation: the text, the extracted answer, scores)
  results.json   per task and mode: each metric ± standard error, mean layers per scored token, tokens/s,
                 items; retention per mode
  report.html    the tables, retention and charts of layers per task and mode
  run.json       the settings, so a resumed run cannot mix others
and prints the table with retention (mean over tasks of score ÷ the full mode's score).

Data: --data DIR, else $FLEXIDEPTH_DATA, else ../shared/data/eval if it exists, holding the files of
../shared/data/README.md (arc_easy_test.json, hellaswag_val.txt, mmlu/…); a task missing there comes from
its Hugging Face dataset in the cache (flexidepth pull --dataset ORG/NAME): allenai/ai2_arc, Rowan/hellaswag,
allenai/winogrande, cais/mmlu, openai/gsm8k, EdinburghNLP/xsum.

Task file (JSON): {"task": NAME, "data": {"file": "rows.jsonl"} or {"hub": "ORG/NAME", "config": C,
  "split": S}, "prompt": JINJA, "choices": FIELD or [JINJA…] (leave out to generate), "target": JINJA (gold
  index or text), "metric": "acc" | "acc_norm" | "exact_match", "until": […], "max_tokens": N}

Options:
  -o, --out DIR      output folder (required; created if missing)
  --model DIR|ORG/NAME   checkpoint (default: $FLEXIDEPTH_MODEL, else the bundled model)
  --modes LIST       modes to run (see above)
  --limit N          the first N items of each task (of each subject for mmlu), as lm-eval's --limit
  --shots K          few-shot examples where a task has them (mmlu 5, gsm8k 8)
  --seed S           seed of gsm8k's examples drawn from the hub's train split (default 1234)
  --data DIR         folder of local evaluation files (see Data)
  --raw              generation prompts without the chat template
  --context N        positions of KV cache (default: the model's, at most 4096); prompts are fitted to it
  --quant q8|q4      quantize the model's projections at load
  --kv-cache f16|f32 the KV cache's type (default f16 where the GPU offers shader-f16, else f32)
  --plain-kernels    use only the portable kernels
  -h, --help         this help

Examples:
  flexidepth eval arc_easy hellaswag --model ../shared/models/stories260K-flexidepth --limit 20 -o out/
  flexidepth eval mmlu gsm8k --model ~/models/FlexiDepth-Llama-3-8B-Instruct --modes full,routed,threshold:0.7 -o eval/
  flexidepth eval arc_challenge --model ~/models/DMTD-Qwen3-4B --modes full,cycle:2,cycle:4 -o dmtd/
  flexidepth eval my_task.json --limit 100 -o mine/
`;

const OPTIONS = {
  out: { type: "string", short: "o" },
  model: { type: "string" },
  modes: { type: "string" },
  limit: { type: "string" },
  shots: { type: "string" },
  seed: { type: "string" },
  data: { type: "string" },
  raw: { type: "boolean" },
  context: { type: "string" },
  quant: { type: "string" },
  "kv-cache": { type: "string" },
  "plain-kernels": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Task names and files from the command line, checked before anything loads. */
export function parseTaskArgs(args: string[]): string[] {
  if (args.length === 0) {
    throw new UsageError(
      "eval: which tasks?",
      `name one or more of ${TASK_NAMES.join(", ")}, all, or a task file (.json)`,
    );
  }
  const names = args.flatMap((a) => (a === "all" ? TASK_NAMES : [a]));
  for (const a of names) {
    if (!isTaskFile(a) && !builtinTask(a)) {
      throw new UsageError(
        `eval: unknown task "${a}"`,
        `use ${TASK_NAMES.join(", ")}, all, or a task file ending .json`,
      );
    }
  }
  return [...new Set(names)];
}

export function modelCaps(cfg: Pick<ModelConfig, "routingLayers" | "dmtd">): ModelCaps {
  return { routed: cfg.routingLayers.length > 0, dmtdCycle: cfg.dmtd?.cycle ?? null };
}

async function loadTasks(names: string[], dataFlag: string | undefined, shots: number | null, seed: number) {
  const loc = await locateData(dataFlag);
  const tasks: LoadedTask[] = [];
  for (const name of names) {
    tasks.push(
      isTaskFile(name) ? await loadTaskFile(name, loc) : await builtinTask(name)!.load(loc, { shots, seed }),
    );
  }
  const ids = tasks.map((t) => t.id);
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice) {
    throw new UsageError(`eval: two tasks are named ${twice}`, `give a task file its own "task" name`);
  }
  return tasks;
}

export async function evalCommand(argv: string[]): Promise<number> {
  const flags = parseCommandFlags("eval", argv, OPTIONS, EVAL_HELP);
  if (!flags) return 0;
  const { values: v, positionals } = flags;
  const names = parseTaskArgs(positionals);
  if (!v.out) {
    throw new UsageError("eval: -o OUT is required", "give a folder for the results, e.g. -o eval/");
  }
  const limit = v.limit === undefined ? null : numberFlag(v.limit, "--limit", 0, { min: 1, integer: true });
  const shots = v.shots === undefined
    ? null
    : numberFlag(v.shots, "--shots", 0, { min: 0, max: 64, integer: true });
  const seed = numberFlag(v.seed, "--seed", 1234, { min: 0, max: 2 ** 32 - 1, integer: true });
  const loadOptions = { ...loadOptionsFromFlags(v), ...SCORER_LOAD };

  const tasks = await loadTasks(names, v.data, shots, seed);
  let modes: EvalMode[] = [];
  const { model, dir } = await openModel(v.model, loadOptions, async (d) => {
    const caps = modelCaps((await openCheckpoint(d)).config);
    modes = parseModes(v.modes ?? defaultModes(caps), caps);
  });
  const cfg = model.engine.config;
  const chat = !v.raw && model.tokenizer.hasChatTemplate;
  const abort = new AbortController();
  const onInterrupt = () => abort.abort();
  Deno.addSignalListener("SIGINT", onInterrupt);
  let run;
  try {
    run = await runEval(createGpuScorer(model), {
      tasks,
      modes,
      out: v.out,
      limit,
      chat,
      settings: {
        model: await Deno.realPath(dir),
        quant: model.engine.weights.quant ?? "none",
        chat,
        seed,
        context: model.engine.context,
        tasks: Object.fromEntries(
          tasks.map((t) => [t.id, { source: t.source, digest: t.digest, shots: t.shots }]),
        ),
      },
      model: {
        dir,
        numLayers: cfg.numLayers,
        routingLayers: [...cfg.routingLayers],
        minLayers: fewestLayers(cfg),
        chatTemplate: model.tokenizer.hasChatTemplate,
        dmtdCycle: cfg.dmtd?.cycle ?? null,
      },
      signal: abort.signal,
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
  if (run.resumed > 0) console.error(`resumed: ${run.resumed} of ${run.planned} were already done`);
  console.log(formatEvalTable(run.results));
  console.log(`\nwrote ${v.out}/${SAMPLES_FILE}, ${v.out}/${RESULTS_FILE}, ${v.out}/${REPORT_FILE}`);
  if (run.interrupted) {
    console.error(
      `interrupted after ${run.resumed + run.ran} of ${run.planned}; run the same command again to resume`,
    );
    return 130;
  }
  return 0;
}
