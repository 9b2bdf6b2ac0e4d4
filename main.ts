/**
 * flexidepth — run FlexiDepth (adaptive-depth) LLMs on the local GPU through WebGPU.
 * The CLI only parses flags and wires tokenizer → engine → sampler → renderer together.
 */

import { describeError } from "./src/errors.ts";
import { RUN_HELP, runCommand } from "./src/cli/run.ts";
import { CHAT_HELP, chatCommand } from "./src/cli/chat.ts";
import { EXPERIMENT_HELP, experimentCommand } from "./src/cli/experiment.ts";

const HELP = `flexidepth — FlexiDepth LLMs on your GPU, every token annotated with the layers it used

Usage: flexidepth <command> [options]

Commands:
  run [PROMPT]     generate from a prompt (argument or stdin)
  chat             multi-turn chat through the chat template, KV cache kept across turns
  experiment       layers per token across tasks (the paper's study): table, tokens.jsonl, report.html
  help [COMMAND]   help for a command

Run 'flexidepth <command> --help' for a command's options.

Examples:
  flexidepth run "Once upon a time" --model ../shared/models/stories260K
  echo "Summarise FlexiDepth in one line." | flexidepth run --format jsonl
`;

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; help: string }> = {
  run: { run: runCommand, help: RUN_HELP },
  chat: { run: chatCommand, help: CHAT_HELP },
  experiment: { run: experimentCommand, help: EXPERIMENT_HELP },
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
