/** `flexidepth batch`: many prompts from a file, results appended to a JSONL file; resumable. */

import { parseCommandFlags } from "./args.ts";
import {
  chatVariablesFromFlags,
  GENERATE_OPTIONS,
  generateHelp,
  generateOptionsFromFlags,
  loadOptionsFromFlags,
  MODEL_HELP,
  MODEL_OPTIONS,
  TEMPLATE_HELP,
  TEMPLATE_OPTIONS,
} from "./generate_flags.ts";
import { openModel } from "./open_model.ts";
import {
  type BatchItem,
  type BatchLineError,
  idKey,
  itemInput,
  parseBatchInput,
  readFinished,
  resultRecord,
  ResultWriter,
} from "./batch_io.ts";
import type { LoadOptions, Model } from "../generation/model.ts";
import type { GenerateOptions, PromptInput } from "../generation/generate.ts";
import type { Session } from "../generation/session.ts";
import type { ChatMessage } from "../tokenizer/tokenizer.ts";
import { ProgressBar } from "../ui/progress.ts";
import { InputError, UsageError } from "../errors.ts";

export const BATCH_HELP = `flexidepth batch — run every prompt of a file, one JSON result per line

Usage:
  flexidepth batch FILE -o RESULTS.jsonl [options]

FILE has one prompt per line (blank lines are skipped; "-" reads stdin):
  plain text                     a prompt; its id is its line number
  {"id": "q1", "prompt": "...", "options": {"max_tokens": 32}}
  {"messages": [{"role": "user", "content": "..."}]}
options may set max_tokens, temperature, top_k, top_p, seed, stop, threshold, full_depth; the flags
below are the defaults. Prompts go through the chat template when the model has one, unless --raw.

Each result is appended to RESULTS as soon as it is done and flushed to disk:
  {"id", "prompt_tokens", "text", "tokens": [{"id", "text", "layers", "routes"}], "layers_mean",
   "stop_reason", "timings"}
Run the same command again after an interruption: ids already in RESULTS are skipped. A line that
cannot run is reported on stderr with its number, the others still run, and the exit code is 1.
Ctrl-C stops after the result being written (exit code 130).

Options:
  -o, --output FILE    results file (JSONL; appended to)
${MODEL_HELP}
  --raw                do not apply the chat template to "prompt" lines
  --system TEXT        system message for "prompt" lines (chat template only)
${TEMPLATE_HELP}
${generateHelp()}
  -h, --help           this help

Examples:
  flexidepth batch prompts.txt -o results.jsonl --model ../shared/models/stories260K --max-tokens 64
  flexidepth batch eval.jsonl -o eval-results.jsonl --temperature 0.7 --seed 1
  jq -r '.layers_mean' results.jsonl
`;

const OPTIONS = {
  ...MODEL_OPTIONS,
  ...GENERATE_OPTIONS,
  ...TEMPLATE_OPTIONS,
  output: { type: "string", short: "o" },
  raw: { type: "boolean" },
  system: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

async function readInput(file: string): Promise<string> {
  if (file === "-") return await new Response(Deno.stdin.readable).text();
  try {
    return await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InputError(
        `input file ${file} not found`,
        "give the path of a file with one prompt per line",
      );
    }
    throw new InputError(`cannot read ${file} (${(e as Error).message})`);
  }
}

export async function batchCommand(argv: string[]): Promise<number> {
  const flags = parseCommandFlags("batch", argv, OPTIONS, BATCH_HELP);
  if (!flags) return 0;
  const { values: v, positionals } = flags;
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0 ? "batch: give the input FILE" : "batch: give one input FILE",
      "e.g. flexidepth batch prompts.txt -o results.jsonl",
    );
  }
  if (!v.output) throw new UsageError("batch: give the results file with -o RESULTS.jsonl");
  const output = v.output;
  const defaults = generateOptionsFromFlags(v);
  const loadOptions = loadOptionsFromFlags(v);
  const chatVariables = chatVariablesFromFlags(v);

  const plan = await planBatch(positionals[0], output, defaults);
  const run = plan.todo.length > 0
    ? await runBatch(plan, output, {
      model: v.model,
      raw: v.raw,
      system: v.system,
      loadOptions,
      chatVariables,
    })
    : { written: 0, interrupted: false };
  return reportEnd(plan, run, output);
}

interface BatchPlan {
  /** the items not yet in RESULTS, in FILE's order */
  todo: BatchItem[];
  /** items found in RESULTS already (an earlier run of the same batch) */
  skipped: number;
  /** lines that cannot run: FILE's, then the items' that failed */
  errors: BatchLineError[];
}

interface BatchRun {
  written: number;
  /** Ctrl-C stopped it */
  interrupted: boolean;
}

const reportLineError = (e: BatchLineError) => console.error(`error: ${e.message}`);

/** Parses FILE (reporting the lines that cannot run) and leaves out the ids RESULTS holds already. */
async function planBatch(file: string, output: string, defaults: GenerateOptions): Promise<BatchPlan> {
  const { items, errors } = parseBatchInput(await readInput(file), defaults);
  errors.forEach(reportLineError);
  const finished = await readFinished(output);
  const todo = items.filter((it) => !finished.has(idKey(it.id)));
  const skipped = items.length - todo.length;
  if (skipped > 0) {
    console.error(`batch: ${skipped} of ${items.length} prompts already in ${output}, skipping them`);
  }
  return { todo, skipped, errors };
}

/**
 * Loads the model and runs the planned items in order, each result appended to RESULTS as soon as it is
 * done. Ctrl-C aborts the item being generated (it is not a result: it runs again next time) and stops.
 */
async function runBatch(
  plan: BatchPlan,
  output: string,
  flags: {
    model?: string;
    raw?: boolean;
    system?: string;
    loadOptions: LoadOptions;
    chatVariables: Record<string, unknown>;
  },
): Promise<BatchRun> {
  const { model } = await openModel(flags.model, flags.loadOptions, undefined, flags.chatVariables);
  const chat = !flags.raw && model.tokenizer.hasChatTemplate;
  const system: ChatMessage[] = flags.system ? [{ role: "system", content: flags.system }] : [];
  const inputOf = (item: BatchItem): PromptInput => {
    const input = itemInput(item, chat);
    return Array.isArray(input) && item.prompt !== undefined ? [...system, ...input] : input;
  };
  const writer = await ResultWriter.open(output);
  const session = model.newSession();
  const bar = new ProgressBar("batch", plan.todo.length, "items");
  const stop = new StopOnSigint();
  let written = 0;
  try {
    for (const item of plan.todo) {
      if (stop.requested) break;
      const signal = stop.nextSignal();
      session.reset(); // every prompt starts from an empty cache: results do not depend on order
      const result = await runItem(model, session, item, inputOf(item), signal);
      if ("error" in result) {
        plan.errors.push(result.error);
        reportLineError(result.error);
      } else {
        if (stop.requested) break; // cut short: not a result; it runs again next time
        writer.write(result.record);
        written++;
      }
      bar.advance(1);
    }
  } finally {
    stop.close();
    bar.finish();
    writer.close();
    model.closeSession(session);
  }
  return { written, interrupted: stop.requested };
}

/** One item's result line, or its line's error when the model cannot take it (an InputError). */
async function runItem(
  model: Model,
  session: Session,
  item: BatchItem,
  input: PromptInput,
  signal: AbortSignal,
): Promise<{ record: Record<string, unknown> } | { error: BatchLineError }> {
  try {
    const { tokens, summary } = await model.generate(input, { ...item.options, signal }, session).collect();
    return { record: resultRecord(item.id, tokens, summary) };
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    return { error: { line: item.line, message: `line ${item.line}: ${e.message}` } };
  }
}

/** Ctrl-C during a batch: aborts the signal of the item in progress and asks the loop to stop. */
class StopOnSigint {
  requested = false;
  #controller = new AbortController();
  readonly #onSigint = () => {
    this.requested = true;
    this.#controller.abort();
  };

  constructor() {
    Deno.addSignalListener("SIGINT", this.#onSigint);
  }

  /** The signal for the next item. */
  nextSignal(): AbortSignal {
    this.#controller = new AbortController();
    return this.#controller.signal;
  }

  close(): void {
    Deno.removeSignalListener("SIGINT", this.#onSigint);
  }
}

/** The closing line on stderr, and the exit code: 130 interrupted, 1 when a line failed, else 0. */
function reportEnd(plan: BatchPlan, run: BatchRun, output: string): number {
  const { errors, skipped } = plan;
  const failed = errors.length ? `, ${errors.length} failed (see above)` : "";
  if (run.interrupted) {
    console.error(
      `batch: interrupted after ${run.written} results — run the same command again to continue where it stopped`,
    );
    return 130;
  }
  console.error(
    `batch: ${run.written} results written to ${output}${
      skipped ? `, ${skipped} were there already` : ""
    }${failed}`,
  );
  return errors.length ? 1 : 0;
}
