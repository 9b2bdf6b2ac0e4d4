/** `flexidepth run`: a prompt in, annotated tokens out. */

import { choiceFlag, numberFlag, parseFlags } from "./args.ts";
import { DEMO_NOTICE, resolveModel } from "./resolve.ts";
import { type Format, makeRenderer } from "./render.ts";
import { Model } from "../engine/model.ts";
import type { PromptInput } from "../engine/generate.ts";
import { UsageError } from "../errors.ts";

export const RUN_HELP = `flexidepth run — generate from a prompt, each token annotated with the layers it used

Usage:
  flexidepth run [PROMPT] [options]
  echo "PROMPT" | flexidepth run [options]

Options:
  --model DIR          Hugging Face checkpoint folder (default: $FLEXIDEPTH_MODEL, else the demo model)
  --format F           ansi | plain | jsonl (default: ansi on a terminal, plain in a pipe)
  --raw                do not apply the chat template (always raw for models without one)
  --system TEXT        system message (chat template only)
  --max-tokens N       tokens to generate (default 256)
  --temperature T      0 = greedy (default 0)
  --top-k K            keep the K most likely tokens (0 = off)
  --top-p P            nucleus sampling mass (1 = off)
  --seed S             sampling seed (default 0)
  --stop TEXT          stop at this text (repeatable)
  --threshold G        FlexiDepth: run a routed layer when its gate g > G (default 0.5, as released)
  --full-depth         FlexiDepth: run every routed layer in full (the base model), for comparison
  --window N|auto      decode steps kept in flight (default auto; 1 = wait for each token)
  --context N          positions of KV cache (default: model's, at most 4096)
  --plain-kernels      use only the portable kernels (no shader-f16 / subgroups)
  --profile            time every kernel with GPU timestamps and print a table on stderr
  -h, --help           this help

Examples:
  flexidepth run "Once upon a time" --model ../shared/models/stories260K
  echo "Why is the sky blue?" | flexidepth run --model ~/models/FlexiDepth-Llama-3-8B-Instruct
  flexidepth run "2+2=" --format jsonl --max-tokens 8 | jq .layers
`;

const OPTIONS = {
  model: { type: "string" },
  format: { type: "string" },
  raw: { type: "boolean" },
  system: { type: "string" },
  "max-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  seed: { type: "string" },
  stop: { type: "string", multiple: true },
  window: { type: "string" },
  context: { type: "string" },
  "plain-kernels": { type: "boolean" },
  threshold: { type: "string" },
  "full-depth": { type: "boolean" },
  profile: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

async function readStdin(): Promise<string> {
  return (await new Response(Deno.stdin.readable).text()).replace(/\n$/, "");
}

export async function runCommand(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags("run", argv, OPTIONS);
  if (v.help) {
    console.log(RUN_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError("run: give the prompt as one argument (quote it)");
  const format = choiceFlag<Format>(
    v.format,
    "--format",
    ["ansi", "plain", "jsonl"],
    Deno.stdout.isTerminal() ? "ansi" : "plain",
  );
  const window = v.window === undefined || v.window === "auto"
    ? "auto" as const
    : numberFlag(v.window, "--window", 1, { min: 1, max: 64, integer: true });
  const gen = {
    maxTokens: numberFlag(v["max-tokens"], "--max-tokens", 256, { min: 1, integer: true }),
    temperature: numberFlag(v.temperature, "--temperature", 0, { min: 0 }),
    topK: numberFlag(v["top-k"], "--top-k", 0, { min: 0, integer: true }),
    topP: numberFlag(v["top-p"], "--top-p", 1, { min: 0, max: 1 }),
    seed: numberFlag(v.seed, "--seed", 0, { min: 0, max: 2 ** 32 - 1, integer: true }),
    stop: v.stop ?? [],
    window,
    threshold: numberFlag(v.threshold, "--threshold", 0.5, { min: 0, max: 1 }),
    fullDepth: v["full-depth"] ?? false,
  };
  const context = v.context === undefined
    ? undefined
    : numberFlag(v.context, "--context", 0, { min: 2, integer: true });

  const prompt = positionals[0] ?? await readStdin();
  const resolved = await resolveModel(v.model);
  if (resolved.demo) console.error(DEMO_NOTICE);
  const model = await Model.load(resolved.dir, {
    context,
    features: v["plain-kernels"] ? "none" : "auto",
    profile: v.profile ?? false,
  });

  let input: PromptInput = prompt;
  if (!v.raw && model.tokenizer.hasChatTemplate) {
    input = [...(v.system ? [{ role: "system", content: v.system }] : []), { role: "user", content: prompt }];
  }
  const generation = model.generate(input, gen);
  const renderer = makeRenderer(format);
  const cfg = model.engine.config;
  let started = false;
  for await (const t of generation) {
    if (!started) {
      renderer.start({
        model: resolved.dir,
        numLayers: cfg.numLayers,
        minLayers: cfg.numLayers - cfg.routingLayers.length,
        promptIds: generation.promptIds ?? undefined,
      });
      started = true;
    }
    renderer.token(t);
  }
  const summary = await generation.summary;
  if (!started) {
    renderer.start({
      model: resolved.dir,
      numLayers: cfg.numLayers,
      minLayers: cfg.numLayers - cfg.routingLayers.length,
    });
  }
  renderer.end(summary);
  const profiler = model.engine.profiler;
  if (profiler) {
    console.error(
      `\nGPU time per step (${summary.generatedTokens} steps):\n${profiler.table(summary.generatedTokens)}`,
    );
  }
  return 0;
}
