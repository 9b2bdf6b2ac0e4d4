/** `flexidepth chat`: a multi-turn conversation through the model's chat template, KV cache kept across turns. */

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
import { type Format, formatFromFlag, layerColor, summaryJson } from "./render.ts";
import { Conversation, requireChatTemplate, statsLine } from "./conversation.ts";
import { readLines, writeAll } from "./io.ts";
import { Model } from "../generation/model.ts";
import type { GenerationSummary, TokenEvent } from "../generation/generate.ts";
import { describeError, InputError, UsageError } from "../errors.ts";

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
  system: { type: "string" },
  format: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const COMMANDS_HELP = "/stats · /save FILE · /reset · /help · /exit";

export async function chatCommand(argv: string[]): Promise<number> {
  const { values: v, positionals } = parseFlags("chat", argv, OPTIONS);
  if (v.help) {
    console.log(CHAT_HELP);
    return 0;
  }
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

  const resolved = await resolveModel(v.model);
  if (resolved.demo) console.error(DEMO_NOTICE);
  await requireChatTemplate(resolved.dir);
  const model = await Model.load(resolved.dir, loadOptions);
  const conv = new Conversation(model, v.system, gen);
  const cfg = model.engine.config;
  const minLayers = cfg.numLayers - cfg.routingLayers.length;
  const say = (s: string) => writeAll(Deno.stdout, s);
  const dim = (s: string) => format === "ansi" ? `\x1b[2m${s}\x1b[0m` : s;
  const json = (o: unknown) => say(JSON.stringify(o) + "\n");

  if (format === "jsonl") {
    json({ type: "header", model: resolved.dir, num_layers: cfg.numLayers, min_layers: minLayers });
  } else if (format === "ansi") {
    const steps = [];
    for (let l = minLayers; l <= cfg.numLayers; l++) {
      steps.push(`${layerColor(l, minLayers, cfg.numLayers)} ${l} \x1b[0m`);
    }
    say(`${dim("layers used:")} ${steps.join("")}\n`);
    if (interactive) say(dim(`${COMMANDS_HELP} · Ctrl-C stops an answer · Ctrl-D leaves`) + "\n");
  }

  // Ctrl-C: stops the answer being written; at the prompt, the second one leaves.
  let answering: AbortController | null = null;
  let sigints = 0;
  let unseen = false;
  let wake: (() => void) | null = null;
  const onSigint = () => {
    if (answering) {
      answering.abort();
      return;
    }
    sigints++;
    unseen = true;
    wake?.();
  };
  Deno.addSignalListener("SIGINT", onSigint);

  const lines = readLines(Deno.stdin.readable);
  let pending: Promise<IteratorResult<string>> | null = null;
  let failed = false;
  try {
    while (true) {
      if (interactive) say(format === "ansi" ? "\n\x1b[1m›\x1b[0m " : "\n> ");
      const interrupted = new Promise<"sigint">((res) => wake = () => res("sigint"));
      pending ??= lines.next();
      const next = unseen ? "sigint" : await Promise.race([pending, interrupted]);
      wake = null;
      unseen = false;
      if (next === "sigint") {
        if (sigints >= 2) break;
        say(`\n${dim("(Ctrl-C again or Ctrl-D to leave)")}`);
        continue;
      }
      pending = null;
      if (next.done) break;
      sigints = 0;
      const text = next.value.trim();
      if (!text) continue;

      if (text.startsWith("/")) {
        const [cmd, ...args] = text.split(/\s+/);
        const arg = text.slice(cmd.length).trim();
        if (cmd === "/exit" || cmd === "/quit") break;
        if (cmd === "/reset") {
          conv.reset();
          if (format === "jsonl") json({ type: "reset" });
          else say(dim("(conversation cleared)") + "\n");
        } else if (cmd === "/stats") {
          if (format === "jsonl") {
            json({ type: "stats", turn: conv.turns, ...(conv.last ? summaryJson(conv.last) : {}) });
          } else say(dim(statsLine(conv.last, cfg.numLayers)) + "\n");
        } else if (cmd === "/save") {
          if (args.length === 0) {
            console.error("error: /save needs a file name — e.g. /save chat.json");
            continue;
          }
          try {
            await Deno.writeTextFile(arg, JSON.stringify(conv.toJSON(resolved.dir), null, 2) + "\n");
            if (format === "jsonl") json({ type: "saved", file: arg, messages: conv.history().length });
            else say(dim(`(saved ${conv.history().length} messages to ${arg})`) + "\n");
          } catch (e) {
            console.error(`error: cannot write ${arg}: ${(e as Error).message} — choose a writable path`);
          }
        } else if (cmd === "/help") {
          say(`${COMMANDS_HELP}\n`);
        } else {
          console.error(`error: unknown command ${cmd} — commands: ${COMMANDS_HELP}`);
        }
        continue;
      }

      answering = new AbortController();
      const turn = conv.ask(text, answering.signal);
      const number = conv.turns + 1;
      let summary: GenerationSummary;
      try {
        for await (const t of turn.generation) say(renderToken(t, format, number, minLayers, cfg.numLayers));
        summary = await turn.done;
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        if (format !== "jsonl") say("\n");
        console.error(describeError(e).line + " (/reset starts over)");
        failed = true;
        continue;
      } finally {
        answering = null;
      }
      if (format === "jsonl") {
        json({ type: "summary", turn: number, ...summaryJson(summary) });
      } else if (format === "ansi") {
        const stopped = summary.stopReason === "aborted" ? "stopped · " : "";
        say(
          `\n${
            dim(
              `(${stopped}${summary.generatedTokens} tokens · ${
                summary.decodeTokensPerSec.toFixed(1)
              } tokens/s · ` +
                `mean ${summary.meanLayers.toFixed(2)} of ${cfg.numLayers} layers)`,
            )
          }\n`,
        );
      } else {
        say("\n");
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
    conv.close();
  }
  if (interactive && format !== "jsonl") say("\n");
  return failed && !interactive ? 1 : 0;
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
      return JSON.stringify({
        turn,
        i: t.i,
        id: t.id,
        text: t.text,
        layers: t.layers,
        routes: t.routes.map(Number),
      }) +
        "\n";
  }
}
