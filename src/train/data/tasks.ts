/**
 * The experiment's tasks as training samples: the task's prompt, as `flexidepth experiment` builds it, then its
 * correct answer. Math answers are the exact ones answers.ts checks against (repeat: the list five times; sum;
 * product, as a bigint). copy's answer is the paragraph itself; continue's prompt is a paragraph's beginning,
 * cut at a seeded sentence end (a word boundary when it has one sentence), and its answer the paragraph's own
 * rest. summarize has no single answer and is not generated (spec.ts refuses it).
 *
 * Lists come from a seed derived from (seed, task), not the experiment's, so a run's training lists are not
 * the lists an experiment with the same seed measures.
 */

import { expectedAnswer } from "../../experiment/answers.ts";
import { integerList } from "../../experiment/inputs.ts";
import { fillTemplate, taskById } from "../../experiment/tasks.ts";
import { mulberry32 } from "../../util/random.ts";
import { DataError } from "./errors.ts";

export interface TaskSample {
  task: string;
  index: number;
  /** The task's instruction with its input filled in (the user message). */
  instruction: string;
  /** The correct answer (the assistant message). */
  answer: string;
}

/** Mixes a seed and a string into a 32-bit seed (FNV-1a over the string, then a murmur finalizer). */
export function mixSeed(seed: number, key: string | number): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (const c of String(key)) h = Math.imul(h ^ c.codePointAt(0)!, 0x01000193) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Where a paragraph may be cut for `continue`: after sentence ends, else between words. */
export function continueCuts(paragraph: string): number[] {
  const ends = [...paragraph.matchAll(/[.!?]["'”’)\]]*(?=\s+\S)/g)].map((m) => m.index + m[0].length);
  if (ends.length > 0) return ends;
  return [...paragraph.matchAll(/\S(?=\s+\S)/g)].map((m) => m.index + 1);
}

/** Samples of the chosen tasks; sample `index` of a task depends only on (seed, task, index, paragraphs). */
export class TaskSampler {
  readonly #paragraphs: readonly string[];
  readonly #continuable: readonly string[];

  constructor(readonly tasks: readonly string[], readonly seed: number, paragraphs: readonly string[]) {
    this.#paragraphs = paragraphs.map((p) => p.trim()).filter((p) => p !== "");
    this.#continuable = this.#paragraphs.filter((p) => continueCuts(p).length > 0);
    for (const task of tasks) {
      const pool = task === "continue" ? this.#continuable : this.#paragraphs;
      if (taskById(task).kind === "text" && pool.length === 0) {
        throw new DataError(
          `task ${task} has no paragraph to work on${task === "continue" ? " (none has two words)" : ""}`,
          "give paragraphs after @, e.g. tasks:copy,continue@stories.txt (blank-line separated, or JSONL text)",
        );
      }
    }
  }

  /** `count` samples of each task, index-major (every task's sample 0, then every task's sample 1, …). */
  *samples(count: number): Generator<TaskSample> {
    for (let i = 0; i < count; i++) for (const task of this.tasks) yield this.sample(task, i);
  }

  sample(task: string, index: number): TaskSample {
    const t = taskById(task);
    const seed = mixSeed(this.seed, `train:${task}`);
    if (t.kind === "math") {
      const list = integerList(seed, index);
      return {
        task,
        index,
        instruction: fillTemplate(t, list),
        answer: expectedAnswer(task, list)!.expected,
      };
    }
    const rand = mulberry32(mixSeed(seed, index));
    const pool = task === "continue" ? this.#continuable : this.#paragraphs;
    const paragraph = pool[permuted(index, pool.length, seed)];
    if (task === "copy") return { task, index, instruction: fillTemplate(t, paragraph), answer: paragraph };
    const cuts = continueCuts(paragraph);
    const at = cuts[Math.floor(rand() * cuts.length)];
    const head = paragraph.slice(0, at).trimEnd();
    return { task, index, instruction: fillTemplate(t, head), answer: paragraph.slice(at).trimStart() };
  }
}

/** Index `i` through a seeded permutation of 0..n (offset + i·stride mod n, the stride prime to n). */
function permuted(i: number, n: number, seed: number): number {
  const rand = mulberry32(seed);
  const offset = Math.floor(rand() * n);
  let stride = 1 + Math.floor(rand() * Math.max(1, n - 1));
  while (gcd(stride, n) !== 1) stride++;
  return (offset + (i % n) * stride) % n;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
