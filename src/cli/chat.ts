/** `flexidepth chat`: a multi-turn conversation through the model's chat template, KV cache kept across turns. */

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
import { type Format, formatFromFlag, layerColor, summaryJson, tokenJson } from "./render.ts";
import { Conversation, requireChatTemplate, statsLine } from "./conversation.ts";
import { ChatInput } from "./chat_input.ts";
import { writeAll } from "./io.ts";
import type { GenerationSummary, TokenEvent } from "../generation/generate.ts";
import { describeError, InputError, UsageError } from "../errors.ts";
import { fewestLayers } from "../model/config.ts";

export const CHAT_HELP = `flexidepth chat — talk to a model through its chat template, turn after turn

Usage:
  flexidepth chat [options]
  printf 'first question\\nsecond question\\n' | flexidepth chat [options]

Each turn sends the whole conversation; the KV cache is kept, so earlier turns are not computed again.
On a terminal: type a message and press Enter. Ctrl-C stops the answer being written; at the prompt,
Ctrl-C twice or Ctrl-D leaves. In a pipe: every line of stdin is one user turn, answers are printed plain.

Commands (typed as a message):
  /stats               the last turn: tokens, tokens/s, mean layers, prompt tokens reused from the cache
  /save FILE           write the conversation as JSON ({model, messages: [{role, content}]})
  /reset               forget the conversation (the system message stays)
  /help                these commands
  /exit                leave

Options:
${MODEL_HELP}
  --system TEXT        system message
${TEMPLATE_HELP}
  --format F           ansi | plain | jsonl (default: ansi on a terminal, plain in a pipe); jsonl prints
                       a header, one object per token {turn, i, id, text, layers, routes} and per turn a
                       summary {type: "summary", turn, prompt_tokens, reused_tokens, ...}
${generateHelp()}
  -h, --help           this help

Examples:
  flexidepth chat --model ~/models/FlexiDepth-Llama-3-8B-Instruct --system "Answer briefly."
  printf 'Hi!\\nWhat did I just say?\\n/stats\\n' | flexidepth chat --max-tokens 64
  flexidepth chat --format jsonl < questions.txt > answers.jsonl
`;

const OPTIONS = {
  ...MODEL_OPTIONS,
  ...GENERATE_OPTIONS,
  ...TEMPLATE_OPTIONS,
  system: { type: "string" },
  format: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const COMMANDS_HELP = "/stats · /save FILE · /reset · /help · /exit";

export async function chatCommand(argv: string[]): Promise<number> {
  const flags = parseCommandFlags("chat", argv, OPTIONS, CHAT_HELP);
  if (!flags) return 0;
  const { values: v, positionals } = flags;
  if (positionals.length > 0) {
    throw new UsageError(
      `chat: unexpected argument "${positionals[0]}"`,
      "type messages at the prompt or pipe them in, one per line",
    );
  }
  const interactive = Deno.stdin.isTerminal();
  const format = formatFromFlag(v.format);
  const gen = generateOptionsFromFlags(v);
  const loadOptions = loadOptionsFromFlags(v);
  const chatVariables = chatVariablesFromFlags(v);

  const { model, dir } = await openModel(v.model, loadOptions, requireChatTemplate, chatVariables);
  const conv = new Conversation(model, v.system, gen);
  const cfg = model.engine.config;
  const view: ChatView = {
    format,
    interactive,
    numLayers: cfg.numLayers,
    minLayers: fewestLayers(cfg),
  };
  printHeader(view, dir);
  const input = new ChatInput();
  let failed = false;
  try {
    failed = await converse({ ...view, conv, input, modelDir: dir });
  } finally {
    input.close();
    conv.close();
  }
  if (interactive && format !== "jsonl") say("\n");
  return failed && !interactive ? 1 : 0;
}

/** How the chat is shown. */
interface ChatView {
  format: Format;
  /** stdin is a terminal: a prompt is shown, and a failed turn does not fail the command */
  interactive: boolean;
  numLayers: number;
  minLayers: number;
}

/** What the steps of one chat share. */
interface ChatSession extends ChatView {
  conv: Conversation;
  input: ChatInput;
  modelDir: string;
}

const say = (s: string) => writeAll(Deno.stdout, s);
const json = (o: unknown) => say(JSON.stringify(o) + "\n");
const dim = (format: Format, s: string) => format === "ansi" ? `\x1b[2m${s}\x1b[0m` : s;

/** jsonl: the header object; ansi: the layer colour scale and, on a terminal, the commands. */
function printHeader(view: ChatView, modelDir: string): void {
  const { format, numLayers, minLayers } = view;
  if (format === "jsonl") {
    json({ type: "header", model: modelDir, num_layers: numLayers, min_layers: minLayers });
  } else if (format === "ansi") {
    const steps = [];
    for (let l = minLayers; l <= numLayers; l++) {
      steps.push(`${layerColor(l, minLayers, numLayers)} ${l} \x1b[0m`);
    }
    say(`${dim(format, "layers used:")} ${steps.join("")}\n`);
    if (view.interactive) {
      say(dim(format, `${COMMANDS_HELP} · Ctrl-C stops an answer · Ctrl-D leaves`) + "\n");
    }
  }
}

/** The read–answer loop until /exit, the end of input or a second Ctrl-C; true when a turn failed. */
async function converse(chat: ChatSession): Promise<boolean> {
  let failed = false;
  while (true) {
    if (chat.interactive) say(chat.format === "ansi" ? "\n\x1b[1m›\x1b[0m " : "\n> ");
    const read = await chat.input.read();
    if (read.kind === "interrupt") {
      if (read.leave) break;
      say(`\n${dim(chat.format, "(Ctrl-C again or Ctrl-D to leave)")}`);
      continue;
    }
    if (read.kind === "end") break;
    const text = read.text.trim();
    if (!text) continue;
    if (text.startsWith("/")) {
      if (await slashCommand(chat, text) === "exit") break;
      continue;
    }
    if (!await answer(chat, text)) failed = true;
  }
  return failed;
}

/** A message starting with "/": one of the commands, or an error naming them. */
async function slashCommand(chat: ChatSession, text: string): Promise<"exit" | "done"> {
  const { conv, format } = chat;
  const [cmd, ...args] = text.split(/\s+/);
  if (cmd === "/exit" || cmd === "/quit") return "exit";
  if (cmd === "/reset") {
    conv.reset();
    if (format === "jsonl") json({ type: "reset" });
    else say(dim(format, "(conversation cleared)") + "\n");
  } else if (cmd === "/stats") {
    if (format === "jsonl") {
      json({ type: "stats", turn: conv.turns, ...(conv.last ? summaryJson(conv.last) : {}) });
    } else say(dim(format, statsLine(conv.last, chat.numLayers)) + "\n");
  } else if (cmd === "/save") {
    if (args.length === 0) console.error("error: /save needs a file name — e.g. /save chat.json");
    else await save(chat, text.slice(cmd.length).trim());
  } else if (cmd === "/help") {
    say(`${COMMANDS_HELP}\n`);
  } else {
    console.error(`error: unknown command ${cmd} — commands: ${COMMANDS_HELP}`);
  }
  return "done";
}

/** /save FILE: the conversation as JSON; a file that cannot be written is an error, not the end. */
async function save(chat: ChatSession, file: string): Promise<void> {
  const { conv, format } = chat;
  try {
    await Deno.writeTextFile(file, JSON.stringify(conv.toJSON(chat.modelDir), null, 2) + "\n");
    if (format === "jsonl") json({ type: "saved", file, messages: conv.history().length });
    else say(dim(format, `(saved ${conv.history().length} messages to ${file})`) + "\n");
  } catch (e) {
    console.error(`error: cannot write ${file}: ${(e as Error).message} — choose a writable path`);
  }
}

/**
 * One turn: the answer written as it comes, then its summary. A turn the model cannot take (an
 * InputError, e.g. the context is full) is reported and returns false; the chat goes on.
 */
async function answer(chat: ChatSession, text: string): Promise<boolean> {
  const { conv, format } = chat;
  const turn = conv.ask(text, chat.input.startAnswer());
  const number = conv.turns + 1;
  let summary: GenerationSummary;
  try {
    for await (const t of turn.generation) {
      say(renderToken(t, format, number, chat.minLayers, chat.numLayers));
    }
    summary = await turn.done;
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    if (format !== "jsonl") say("\n");
    console.error(describeError(e).line + " (/reset starts over)");
    return false;
  } finally {
    chat.input.endAnswer();
  }
  say(turnEnd(summary, number, chat));
  return true;
}

/** What follows an answer: jsonl its summary object, ansi a dim line of numbers, plain a newline. */
function turnEnd(summary: GenerationSummary, turn: number, view: ChatView): string {
  if (view.format === "jsonl") {
    return JSON.stringify({ type: "summary", turn, ...summaryJson(summary) }) + "\n";
  }
  if (view.format !== "ansi") return "\n";
  const stopped = summary.stopReason === "aborted" ? "stopped · " : "";
  const speed = `${summary.decodeTokensPerSec.toFixed(1)} tokens/s`;
  const depth = `mean ${summary.meanLayers.toFixed(2)} of ${view.numLayers} layers`;
  return `\n${dim(view.format, `(${stopped}${summary.generatedTokens} tokens · ${speed} · ${depth})`)}\n`;
}

function renderToken(
  t: TokenEvent,
  format: Format,
  turn: number,
  minLayers: number,
  numLayers: number,
): string {
  switch (format) {
    case "plain":
      return t.text;
    case "ansi":
      return t.text ? `${layerColor(t.layers, minLayers, numLayers)}${t.text}\x1b[0m` : "";
    case "jsonl":
      return JSON.stringify({ turn, ...tokenJson(t) }) + "\n";
  }
}
