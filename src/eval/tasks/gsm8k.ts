/**
 * GSM8K as lm-eval's gsm8k: "Question: {question}\nAnswer:", k worked examples before it (each that text, a
 * space and its full answer ending "#### N", joined by "\n\n"; with a chat template, lm-eval's
 * --fewshot_as_multiturn: one user and one assistant turn each), greedy until "Question:", "</s>" or
 * "<|im_end|>" or 256 tokens; scored by exact match of the number after "####", else the last number.
 *
 * The examples: 8 by default (the chain-of-thought papers' count; the runner uses fewer for an item whose
 * prompt would not fit the context). From the hub they are drawn from the train split with --seed, the same
 * for every item (lm-eval draws per item); the local file is the test split alone, so its last 8 problems are
 * held out as the examples and not scored.
 */

import { type DataLocator, digestOf, localFile, readHubSplit, readJsonl, type Row } from "../data.ts";
import { EvalError } from "../errors.ts";
import { exactMatch, extractAnswer } from "../answers.ts";
import type { GenerateItem, Grader, LoadedTask } from "../task.ts";
import type { LoadOptions, TaskLoader } from "./registry.ts";
import { mulberry32 } from "../../util/random.ts";

export interface Gsm8kDoc {
  question: string;
  answer: string;
}

const HUB_TEST = { repo: "openai/gsm8k", config: "main", split: "test" };
const HUB_TRAIN = { repo: "openai/gsm8k", config: "main", split: "train" };
const FILE = "gsm8k_test.jsonl";
export const GSM8K_DEFAULT_SHOTS = 8;
/** Problems at the end of the local test file kept as examples. */
export const LOCAL_POOL = 8;

export const GSM8K_GRADER: Grader = {
  stop: ["Question:", "</s>", "<|im_end|>"],
  maxTokens: 256,
  grade(text, gold) {
    const { answer } = extractAnswer(text);
    return { extracted: answer, scores: { exact_match: exactMatch(answer, gold) } };
  },
};

const question = (d: Gsm8kDoc) => `Question: ${d.question}\nAnswer:`;

export function gsm8kItem(doc: Gsm8kDoc, index: number, pool: Gsm8kDoc[], shots: number): GenerateItem {
  return {
    kind: "generate",
    index,
    gold: doc.answer,
    shots,
    build: (k) => ({
      shots: pool.slice(0, k).map((d) => ({ user: question(d), assistant: d.answer })),
      user: question(doc),
    }),
  };
}

function toDoc(r: Row, where: string): Gsm8kDoc {
  if (typeof r.question !== "string" || typeof r.answer !== "string") {
    throw new EvalError(`${where} has no "question" and "answer" strings`, "see ../shared/data/README.md");
  }
  return { question: r.question, answer: r.answer };
}

/** `n` examples drawn from `train` with `seed` (a seeded Fisher–Yates prefix). */
export function drawExamples(train: Gsm8kDoc[], n: number, seed: number): Gsm8kDoc[] {
  const order = train.map((_, i) => i);
  const rand = mulberry32(seed);
  for (let i = 0; i < Math.min(n, order.length); i++) {
    const j = i + Math.floor(rand() * (order.length - i));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order.slice(0, n).map((i) => train[i]);
}

export const GSM8K: TaskLoader = {
  id: "gsm8k",
  async load(loc: DataLocator, opts: LoadOptions): Promise<LoadedTask> {
    const shots = opts.shots ?? GSM8K_DEFAULT_SHOTS;
    const path = await localFile(loc, FILE, HUB_TEST);
    let docs: Gsm8kDoc[];
    let pool: Gsm8kDoc[];
    if (path) {
      const all = (await readJsonl(path)).map((r, i) => toDoc(r, `${path} line ${i + 1}`));
      if (shots > LOCAL_POOL) {
        throw new EvalError(
          `the local GSM8K file holds only the test split, whose last ${LOCAL_POOL} problems are the examples`,
          `use --shots ${LOCAL_POOL} or less, or the hub's openai/gsm8k (its train split) without --data`,
        );
      }
      docs = all.slice(0, -LOCAL_POOL);
      pool = all.slice(-LOCAL_POOL);
    } else {
      docs = (await readHubSplit(HUB_TEST, loc, FILE)).map((r, i) => toDoc(r, `${HUB_TEST.repo} row ${i}`));
      const train = (await readHubSplit(HUB_TRAIN, loc)).map((r, i) =>
        toDoc(r, `${HUB_TRAIN.repo} row ${i}`)
      );
      pool = drawExamples(train, shots, opts.seed);
    }
    return {
      id: "gsm8k",
      kind: "generate",
      metrics: ["exact_match"],
      primary: "exact_match",
      source: path ?? `${HUB_TEST.repo}/main (test; examples from train)`,
      digest: digestOf([docs, pool.slice(0, shots)]),
      shots,
      limitPerGroup: false,
      items: docs.map((d, i) => gsm8kItem(d, i, pool, shots)),
      grader: GSM8K_GRADER,
    };
  },
};
