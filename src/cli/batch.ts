/** `flexidepth batch`: many prompts from a file, results appended to a JSONL file; resumable. */

import { parseFlags } from "./args.ts";
import {
  GENERATE_OPTIONS,
  generateHelp,
  generateOptionsFromFlags,
  loadOptionsFromFlags,
  MODEL_HELP,
  MODEL_OPTIONS,
} from "./generate_flags.ts";
import { DEMO_NOTICE, resolveModel } from "./resolve.ts";
import {
  type BatchLineError,
  idKey,
  itemInput,
  parseBatchInput,
  readFinished,
  resultRecord,
  ResultWriter,
} from "./batch_io.ts";
import { Model } from "../generation/model.ts";
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
  const { values: v, positionals } = parseFlags("batch", argv, OPTIONS);
  if (v.help) {
    console.log(BATCH_HELP);
    return 0;
  }
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

  const { items, errors } = parseBatchInput(await readInput(positionals[0]), defaults);
  const report = (e: BatchLineError) => console.error(`error: ${e.message}`);
  errors.forEach(report);
  const finished = await readFinished(output);
  const todo = items.filter((it) => !finished.has(idKey(it.id)));
  const skipped = items.length - todo.length;
  if (skipped > 0) {
    console.error(`batch: ${skipped} of ${items.length} prompts already in ${output}, skipping them`);
  }

  let written = 0;
  let interrupted = false;
  if (todo.length > 0) {
    const resolved = await resolveModel(v.model);
    if (resolved.demo) console.error(DEMO_NOTICE);
    const model = await Model.load(resolved.dir, loadOptions);
    const chat = !v.raw && model.tokenizer.hasChatTemplate;
    const system: ChatMessage[] = v.system ? [{ role: "system", content: v.system }] : [];
    const writer = await ResultWriter.open(output);
    const session = model.newSession();
    const bar = new ProgressBar("batch", todo.length, "items");
    let controller = new AbortController();
    const onSigint = () => {
      interrupted = true;
      controller.abort();
    };
    Deno.addSignalListener("SIGINT", onSigint);
    try {
      for (const item of todo) {
        if (interrupted) break;
        controller = new AbortController();
        session.reset(); // every prompt starts from an empty cache: results do not depend on order
        let input = itemInput(item, chat);
        if (Array.isArray(input) && item.prompt !== undefined) input = [...system, ...input];
        try {
          const { tokens, summary } = await model.generate(input, {
            ...item.options,
            signal: controller.signal,
          }, session)
            .collect();
          if (interrupted) break; // cut short: not a result; it runs again next time
          writer.write(resultRecord(item.id, tokens, summary));
          written++;
        } catch (e) {
          if (!(e instanceof InputError)) throw e;
          const err = { line: item.line, message: `line ${item.line}: ${e.message}` };
          errors.push(err);
          report(err);
        }
        bar.advance(1);
      }
    } finally {
      Deno.removeSignalListener("SIGINT", onSigint);
      bar.finish();
      writer.close();
      model.closeSession(session);
    }
  }

  const failed = errors.length ? `, ${errors.length} failed (see above)` : "";
  if (interrupted) {
    console.error(
      `batch: interrupted after ${written} results — run the same command again to continue where it stopped`,
    );
    return 130;
  }
  console.error(
    `batch: ${written} results written to ${output}${
      skipped ? `, ${skipped} were there already` : ""
    }${failed}`,
  );
  return errors.length ? 1 : 0;
}
