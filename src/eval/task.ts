/**
 * What a task gives the runner: items, each able to build its prompt with k few-shot examples (the runner
 * lowers k when a prompt would not fit the model's context). Multiple-choice items give one context per
 * choice (or one shared) and the continuations scored after them; generation items give the turns of a
 * prompt, rendered raw or through the chat template, and how the answer is scored.
 */

import type { ChatMessage } from "../tokenizer/tokenizer.ts";

export type MetricName = "acc" | "acc_norm" | "exact_match" | "rouge1" | "rouge2" | "rougeL";

/** A multiple-choice prompt, split as lm-eval splits it (the continuation keeps its leading space). */
export interface ChoicePrompt {
  /** One context per choice, or a single context shared by every choice. */
  contexts: string[];
  continuations: string[];
}

/** A prompt as turns: few-shot (user, assistant) pairs, then the question. */
export interface TurnsPrompt {
  shots: { user: string; assistant: string }[];
  user: string;
}

export interface ChoiceItem {
  kind: "choice";
  /** Position in the task's documents (what --limit counts and samples.jsonl records). */
  index: number;
  /** A subset averaged on its own (MMLU's subject). */
  group?: string;
  /** lm-eval's doc_to_choice strings: acc_norm divides each log-likelihood by its length. */
  choices: string[];
  gold: number;
  /** Few-shot examples this item asks for (the runner may use fewer to fit the context). */
  shots: number;
  build(shots: number): ChoicePrompt;
}

export interface GenerateItem {
  kind: "generate";
  index: number;
  group?: string;
  gold: string;
  shots: number;
  build(shots: number): TurnsPrompt;
}

export type EvalItem = ChoiceItem | GenerateItem;

/** How a generation task turns generated text into scores. */
export interface Grader {
  stop: string[];
  maxTokens: number;
  /** The answer taken from the text and each metric's score for this item. */
  grade(
    text: string,
    gold: string,
  ): { extracted: string | null; scores: Partial<Record<MetricName, number>> };
}

/** A task ready to run: its items (all of them; --limit is applied by the runner) and how to score them. */
export interface LoadedTask {
  id: string;
  kind: "choice" | "generate";
  metrics: MetricName[];
  /** The metric retention and the table use. */
  primary: MetricName;
  /** Where the documents came from, for people. */
  source: string;
  /** sha256 of the documents, so a resumed run cannot mix data. */
  digest: string;
  /** Few-shot examples asked for (0: zero-shot). */
  shots: number;
  /** Items per group (MMLU: per subject) or per task when --limit applies. */
  limitPerGroup: boolean;
  items: EvalItem[];
  grader?: Grader;
}

/** Raw prompt text of turns, lm-eval's way: example = user + " " + assistant, examples joined by "\n\n". */
export function rawPrompt(p: TurnsPrompt): string {
  return [...p.shots.map((s) => `${s.user} ${s.assistant}`), p.user].join("\n\n");
}

/** Turns as chat messages (lm-eval's --fewshot_as_multiturn): each example a user and an assistant turn. */
export function chatMessages(p: TurnsPrompt): ChatMessage[] {
  const messages: ChatMessage[] = [];
  for (const s of p.shots) {
    messages.push({ role: "user", content: s.user.trim() }, {
      role: "assistant",
      content: s.assistant.trim(),
    });
  }
  messages.push({ role: "user", content: p.user.trim() });
  return messages;
}
