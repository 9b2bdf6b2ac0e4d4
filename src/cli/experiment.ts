/** `flexidepth experiment`: the paper's layer-allocation study (which tasks get more layers per token). */

import { choiceFlag, numberFlag, parseCommandFlags } from "./args.ts";
import { openModel } from "./open_model.ts";
import { KV_CACHE_HELP, loadOptionsFromFlags } from "./generate_flags.ts";
import { UsageError } from "../errors.ts";
import { loadParagraphs } from "../experiment/inputs.ts";
import { REPORT_FILE, runExperiment, SUMMARY_FILE } from "../experiment/runner.ts";
import { TOKENS_FILE } from "../experiment/records.ts";
import { formatTable } from "../experiment/table.ts";
import { selectTasks, TASK_SETS, type TaskSet } from "../experiment/tasks.ts";

export const EXPERIMENT_HELP =
  `flexidepth experiment — layers per token across tasks (the FlexiDepth paper's study)

Usage:
  flexidepth experiment [text|math|all] -o OUT/ [options]

Runs each task over n samples, greedy, and writes to OUT/:
  tokens.jsonl   one line per sample: prompt, prompt ids and layers, every token {id, text, layers, routes}
  summary.json   per task: samples, tokens, mean and variance of layers per token, per-layer usage,
                 histogram, tokens/s, math accuracy, the paper's number
  report.html    per-token heat-map (one row per sample), per-layer usage chart, histograms
and prints the summary table. An interrupted run resumes: run the same command again.

Tasks (prompts/tasks.json):
  text   copy, summarize, continue a paragraph   (bundled paragraphs, or --paragraphs FILE)
  math   repeat a list 5 times, its sum, its product   (5–10 integers in [10, 99], from --seed)

Options:
  -o, --out DIR        output folder (required; created if missing)
  --model DIR          Hugging Face checkpoint folder (default: $FLEXIDEPTH_MODEL, else the bundled model)
  -n N                 samples per task (default 100; text tasks: at most the number of paragraphs)
  --seed S             seed of the integer lists (default 0)
  --max-tokens N       tokens to generate per sample (default 256)
  --raw                do not apply the chat template (always raw for models without one)
  --paragraphs FILE    your paragraphs: one per line, or JSON Lines {"text": ...} (XSum's "document" too)
  --threshold G        run a routed layer when its gate g > G (default 0.5, as released)
  --full-depth         run every layer for every token (the base model), for comparison
  --cycle N            DMTD models: tokens per cycle (default: the model's)
  --context N          positions of KV cache (default: model's, at most 4096)
  --quant q8|q4        quantize the model's projections at load (default: none)
${KV_CACHE_HELP}
  --plain-kernels      use only the portable kernels (no shader-f16 / subgroups)
  -h, --help           this help

Examples:
  flexidepth experiment all --model ../shared/models/stories260K-flexidepth -n 20 --max-tokens 64 -o out/
  flexidepth experiment text --model ~/models/FlexiDepth-Llama-3-8B-Instruct --paragraphs xsum.jsonl -o xsum/
`;

const OPTIONS = {
  out: { type: "string", short: "o" },
  model: { type: "string" },
  n: { type: "string", short: "n" },
  seed: { type: "string" },
  "max-tokens": { type: "string" },
  raw: { type: "boolean" },
  paragraphs: { type: "string" },
  threshold: { type: "string" },
  "full-depth": { type: "boolean" },
  cycle: { type: "string" },
  context: { type: "string" },
  quant: { type: "string" },
  "kv-cache": { type: "string" },
  "plain-kernels": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export async function experimentCommand(argv: string[]): Promise<number> {
  const flags = parseCommandFlags("experiment", argv, OPTIONS, EXPERIMENT_HELP);
  if (!flags) return 0;
  const { values: v, positionals } = flags;
  if (positionals.length > 1) {
    throw new UsageError(`experiment: give one task set (text, math or all), got "${positionals.join(" ")}"`);
  }
  const taskSet = choiceFlag<TaskSet>(positionals[0], "task set", TASK_SETS, "all");
  if (!v.out) {
    throw new UsageError("experiment: -o OUT is required", "give a folder for the results, e.g. -o out/");
  }
  const n = numberFlag(v.n, "-n", 100, { min: 1, integer: true });
  const seed = numberFlag(v.seed, "--seed", 0, { min: 0, max: 2 ** 32 - 1, integer: true });
  const maxTokens = numberFlag(v["max-tokens"], "--max-tokens", 256, { min: 1, integer: true });
  const threshold = numberFlag(v.threshold, "--threshold", 0.5, { min: 0, max: 1 });
  const loadOptions = loadOptionsFromFlags(v);

  const tasks = selectTasks(taskSet);
  const paragraphs = await loadParagraphs(v.paragraphs);
  const { model, dir } = await openModel(v.model, loadOptions);
  const chat = !v.raw && model.tokenizer.hasChatTemplate;
  if (!chat && !v.raw) console.error("note: the model has no chat template; prompts go raw");
  if (tasks.some((t) => t.kind === "text") && n > paragraphs.paragraphs.length) {
    console.error(
      `note: ${paragraphs.paragraphs.length} paragraphs (${paragraphs.source}), so text tasks run ` +
        `${paragraphs.paragraphs.length} samples, not ${n}; give more with --paragraphs FILE`,
    );
  }

  const abort = new AbortController();
  const onInterrupt = () => abort.abort();
  Deno.addSignalListener("SIGINT", onInterrupt);
  let result;
  try {
    result = await runExperiment(model, dir, {
      taskSet,
      tasks,
      n,
      seed,
      maxTokens,
      chat,
      paragraphs,
      out: v.out,
      threshold,
      fullDepth: v["full-depth"] ?? false,
      cycle: v.cycle === undefined
        ? null
        : numberFlag(v.cycle, "--cycle", 4, { min: 1, max: 64, integer: true }),
      signal: abort.signal,
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
  if (result.resumed > 0) {
    console.error(`resumed: ${result.resumed} of ${result.planned} samples were already done`);
  }
  console.log(formatTable(result.summary));
  console.log(`\nwrote ${v.out}/${TOKENS_FILE}, ${v.out}/${SUMMARY_FILE}, ${v.out}/${REPORT_FILE}`);
  if (result.interrupted) {
    const done = result.resumed + result.ran;
    console.error(
      `interrupted after ${done} of ${result.planned} samples; run the same command again to resume`,
    );
    return 130;
  }
  return 0;
}
