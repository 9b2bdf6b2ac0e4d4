/** `flexidepth run`: a prompt in, annotated tokens out. */

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
import { formatFromFlag, makeRenderer } from "./render.ts";
import type { PromptInput } from "../generation/generate.ts";
import { UsageError } from "../errors.ts";
import { fewestLayers } from "../model/config.ts";

export const RUN_HELP = `flexidepth run — generate from a prompt, each token annotated with the layers it used

Usage:
  flexidepth run [PROMPT] [options]
  echo "PROMPT" | flexidepth run [options]

Ctrl-C stops generating: the text so far and the closing summary are still written (exit code 130).

Options:
${MODEL_HELP}
  --format F           ansi | plain | jsonl (default: ansi on a terminal, plain in a pipe)
  --raw                do not apply the chat template (always raw for models without one)
  --system TEXT        system message (chat template only)
${TEMPLATE_HELP}
${generateHelp()}
  --profile            time every kernel with GPU timestamps and print a table on stderr
  -h, --help           this help

Examples:
  flexidepth run "Once upon a time" --model ../shared/models/stories260K
  echo "Why is the sky blue?" | flexidepth run --model ~/models/FlexiDepth-Llama-3-8B-Instruct
  flexidepth run "2+2=" --format jsonl --max-tokens 8 | jq .layers
`;

const OPTIONS = {
  ...MODEL_OPTIONS,
  ...GENERATE_OPTIONS,
  ...TEMPLATE_OPTIONS,
  format: { type: "string" },
  raw: { type: "boolean" },
  system: { type: "string" },
  profile: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

async function readStdin(): Promise<string> {
  return (await new Response(Deno.stdin.readable).text()).replace(/\n$/, "");
}

export async function runCommand(argv: string[]): Promise<number> {
  const flags = parseCommandFlags("run", argv, OPTIONS, RUN_HELP);
  if (!flags) return 0;
  const { values: v, positionals } = flags;
  if (positionals.length > 1) throw new UsageError("run: give the prompt as one argument (quote it)");
  const format = formatFromFlag(v.format);
  const gen = generateOptionsFromFlags(v);
  const loadOptions = loadOptionsFromFlags(v);
  const chatVariables = chatVariablesFromFlags(v);

  const prompt = positionals[0] ?? await readStdin();
  const load = { ...loadOptions, profile: v.profile ?? false };
  const { model, dir } = await openModel(v.model, load, undefined, chatVariables);

  let input: PromptInput = prompt;
  if (!v.raw && model.tokenizer.hasChatTemplate) {
    input = [...(v.system ? [{ role: "system", content: v.system }] : []), { role: "user", content: prompt }];
  }
  // Ctrl-C stops at the next token: what was generated and the summary are still written (exit 130).
  // A second Ctrl-C quits at once.
  const interrupt = new AbortController();
  const onSigint = () => {
    if (interrupt.signal.aborted) Deno.exit(130);
    interrupt.abort();
  };
  const generation = model.generate(input, { ...gen, signal: interrupt.signal });
  const renderer = makeRenderer(format);
  const cfg = model.engine.config;
  const context = {
    model: dir,
    numLayers: cfg.numLayers,
    minLayers: fewestLayers(cfg),
    // A raw prompt is continued: show it, so the continuation reads whole.
    rawPrompt: typeof input === "string" ? prompt : undefined,
  };
  let started = false;
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    for await (const t of generation) {
      if (!started) {
        renderer.start({ ...context, promptIds: generation.promptIds ?? undefined });
        started = true;
      }
      renderer.token(t);
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
  const summary = await generation.summary;
  if (!started) {
    renderer.start(context);
  }
  renderer.end(summary);
  const profiler = model.engine.profiler;
  if (profiler) {
    console.error(
      `\nGPU time per step (${summary.generatedTokens} steps):\n${profiler.table(summary.generatedTokens)}`,
    );
  }
  return summary.stopReason === "aborted" ? 130 : 0;
}
