/**
 * flexidepth — run FlexiDepth (adaptive-depth) LLMs on the local GPU through WebGPU.
 * The CLI only parses flags and wires tokenizer → engine → sampler → renderer together.
 */

import { describeError } from "./src/errors.ts";
import { RUN_HELP, runCommand } from "./src/cli/run.ts";
import { CHAT_HELP, chatCommand } from "./src/cli/chat.ts";
import { BATCH_HELP, batchCommand } from "./src/cli/batch.ts";
import { INFO_HELP, infoCommand } from "./src/cli/info.ts";
import { EXPERIMENT_HELP, experimentCommand } from "./src/cli/experiment.ts";
import { PULL_HELP, pullCommand } from "./src/cli/pull.ts";
import { EVAL_HELP, evalCommand } from "./src/cli/eval.ts";
import { TRAIN_HELP, trainCommand } from "./src/cli/train.ts";

const HELP = `flexidepth — FlexiDepth LLMs on your GPU, every token annotated with the layers it used

Usage: flexidepth <command> [options]

Commands:
  run [PROMPT]     generate from a prompt (argument or stdin)
  chat             multi-turn chat through the chat template, KV cache kept across turns
  batch FILE -o R  run every prompt of a file, results appended to R (JSONL); resumable
  info             a model's architecture, size and memory needs, and the GPU adapter
  experiment       layers per token across tasks (the paper's study): table, tokens.jsonl, report.html
  eval TASK…       benchmark scores per mode (MMLU, HellaSwag, ARC, WinoGrande, GSM8K, XSum), retention
  train            train FlexiDepth routers, a DMTD model, or a small model from scratch, on the GPU
  pull ORG/NAME    download a model (or --dataset) from the Hugging Face Hub (then: --model ORG/NAME)
  help [COMMAND]   help for a command

Run 'flexidepth <command> --help' for a command's options.

Examples:
  flexidepth run "Once upon a time" --model ../shared/models/stories260K
  echo "Summarise FlexiDepth in one line." | flexidepth run --format jsonl
  flexidepth pull unsloth/Llama-3.2-1B-Instruct && flexidepth run "Hi" --model unsloth/Llama-3.2-1B-Instruct
`;

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; help: string }> = {
  run: { run: runCommand, help: RUN_HELP },
  chat: { run: chatCommand, help: CHAT_HELP },
  batch: { run: batchCommand, help: BATCH_HELP },
  info: { run: infoCommand, help: INFO_HELP },
  pull: { run: pullCommand, help: PULL_HELP },
  experiment: { run: experimentCommand, help: EXPERIMENT_HELP },
  eval: { run: evalCommand, help: EVAL_HELP },
  train: { run: trainCommand, help: TRAIN_HELP },
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "-h" || cmd === "--help") {
    console.log(HELP);
    return 0;
  }
  if (cmd === "help") {
    console.log(COMMANDS[rest[0]]?.help ?? HELP);
    return 0;
  }
  const command = COMMANDS[cmd];
  if (!command) {
    console.error(`error: unknown command "${cmd}" — see 'flexidepth --help'`);
    return 2;
  }
  return await command.run(rest);
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (e) {
    const { line, exitCode } = describeError(e);
    console.error(line);
    if (Deno.env.get("FLEXIDEPTH_DEBUG")) console.error(e);
    code = exitCode;
  }
  Deno.exit(code);
}
