/**
 * Prompts into token ids the way lm-eval makes them, fitted to the model's context.
 *
 * A (context, continuation) pair: trailing whitespace of the context moves to the continuation; the context is
 * encoded alone and the two together, and the continuation is the tokens the whole has beyond the context's
 * (so " Paris" after "Answer:" is scored as the model would write it). BOS, when the model has one, leads the
 * context. A prompt too long for the context drops few-shot examples first, then (multiple choice) context
 * tokens from the left, as lm-eval truncates.
 */

import type { Scorer } from "./scorer.ts";
import { chatMessages, type ChoiceItem, type GenerateItem, rawPrompt, type TurnsPrompt } from "./task.ts";
import type { ChatMessage } from "../tokenizer/tokenizer.ts";
import { EvalError } from "./errors.ts";

/** lm-eval's _encode_pair split: the context's trailing whitespace goes with the continuation. */
export function splitPair(context: string, continuation: string): [string, string] {
  const spaces = context.length - context.trimEnd().length;
  return spaces > 0
    ? [context.slice(0, -spaces), context.slice(-spaces) + continuation]
    : [context, continuation];
}

export function encodePair(
  scorer: Scorer,
  context: string,
  continuation: string,
): { context: number[]; continuation: number[] } {
  const [ctx, cont] = splitPair(context, continuation);
  const whole = scorer.encode(ctx + cont);
  const ids = scorer.encode(ctx);
  return { context: scorer.bos === null ? ids : [scorer.bos, ...ids], continuation: whole.slice(ids.length) };
}

export interface EncodedChoice {
  shots: number;
  /** Per choice. */
  contexts: string[];
  continuations: string[];
  contextIds: number[][];
  continuationIds: number[][];
  truncated: number;
}

function encodeChoices(scorer: Scorer, item: ChoiceItem, shots: number): EncodedChoice {
  const p = item.build(shots);
  const contexts = item.choices.map((_, i) => p.contexts.length === 1 ? p.contexts[0] : p.contexts[i]);
  const pairs = contexts.map((c, i) => encodePair(scorer, c, p.continuations[i]));
  for (const pair of pairs) {
    if (pair.context.length === 0) {
      throw new EvalError(
        `item ${item.index} has an empty context and the model has no BOS token to stand for it`,
        "give the task a prompt",
      );
    }
  }
  return {
    shots,
    contexts,
    continuations: p.continuations,
    contextIds: pairs.map((x) => x.context),
    continuationIds: pairs.map((x) => x.continuation),
    truncated: 0,
  };
}

const longest = (e: EncodedChoice) =>
  Math.max(...e.contextIds.map((c, i) => c.length + e.continuationIds[i].length));

/** The item's requests with as many of its shots as fit `room` positions (null: no limit). */
export function fitChoice(scorer: Scorer, item: ChoiceItem, room: number | null): EncodedChoice {
  let enc = encodeChoices(scorer, item, item.shots);
  for (let k = item.shots - 1; room !== null && k >= 0 && longest(enc) > room; k--) {
    enc = encodeChoices(scorer, item, k);
  }
  if (room === null || longest(enc) <= room) return enc;
  // Still too long: drop context tokens after BOS, keeping each continuation whole.
  const keep = scorer.bos === null ? 0 : 1;
  const drop = longest(enc) - room;
  // Without BOS the last context token stays, so the first continuation token has something before it.
  enc.contextIds = enc.contextIds.map((c) =>
    keep ? [c[0], ...c.slice(keep + drop)] : c.slice(Math.min(c.length - 1, drop))
  );
  enc.truncated = drop;
  return enc;
}

export interface FittedPrompt {
  shots: number;
  prompt: string | ChatMessage[];
  /** Raw prompts: the ids as the model sees them (BOS first). */
  ids?: number[];
}

/** Tokens a chat template adds around each message, at most (an estimate: the scorer renders it). */
const CHAT_OVERHEAD = 16;

function promptTokens(
  scorer: Scorer,
  p: TurnsPrompt,
  chat: boolean,
): { prompt: string | ChatMessage[]; n: number; ids?: number[] } {
  if (chat) {
    const messages = chatMessages(p);
    const n = messages.reduce((a, m) => a + scorer.encode(m.content).length + CHAT_OVERHEAD, 0);
    return { prompt: messages, n };
  }
  const text = rawPrompt(p);
  const ids = scorer.bos === null ? scorer.encode(text) : [scorer.bos, ...scorer.encode(text)];
  return { prompt: text, n: ids.length, ids };
}

/** The generation prompt with as many shots as leave `maxTokens` of room (0 shots if none does). */
export function fitGenerate(
  scorer: Scorer,
  item: GenerateItem,
  chat: boolean,
  room: number | null,
  maxTokens: number,
): FittedPrompt {
  for (let k = item.shots;; k--) {
    const t = promptTokens(scorer, item.build(k), chat);
    if (room === null || k === 0 || t.n + maxTokens <= room) {
      return { shots: k, prompt: t.prompt, ids: t.ids };
    }
  }
}
