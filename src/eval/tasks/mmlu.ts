/**
 * MMLU as lm-eval's mmlu (the default template): per subject, the description "The following are multiple
 * choice questions (with answers) about {subject}.\n\n", the first k `dev` questions (k = --shots, default
 * 5) each as "{question}\nA. …\nB. …\nC. …\nD. …\nAnswer: {letter}", joined and followed by "\n\n", then the
 * question the same way ending "Answer:"; the continuations are " A" … " D". acc per subject, and their
 * macro average (--limit counts per subject, as lm-eval's per-subject tasks do).
 */

import { join } from "node:path";
import { type DataLocator, digestOf, localFile, readCsv, readHubSplit, type Row } from "../data.ts";
import { EvalError } from "../errors.ts";
import type { ChoiceItem, LoadedTask } from "../task.ts";
import type { LoadOptions, TaskLoader } from "./registry.ts";

export interface MmluDoc {
  subject: string;
  question: string;
  choices: string[];
  /** 0–3 */
  answer: number;
}

const LETTERS = ["A", "B", "C", "D"];
const HUB_TEST = { repo: "cais/mmlu", config: "all", split: "test" };
const HUB_DEV = { repo: "cais/mmlu", config: "all", split: "dev" };
export const MMLU_DEFAULT_SHOTS = 5;

export function mmluQuestion(d: MmluDoc): string {
  return `${d.question.trim()}\n${d.choices.map((c, i) => `${LETTERS[i]}. ${c}`).join("\n")}\nAnswer:`;
}

/** The context of `doc` with the subject's first `k` dev questions. */
export function mmluContext(doc: MmluDoc, dev: MmluDoc[], k: number): string {
  const description = `The following are multiple choice questions (with answers) about ${
    doc.subject.replaceAll("_", " ")
  }.\n\n`;
  const shots = dev.slice(0, k).map((d) => `${mmluQuestion(d)} ${LETTERS[d.answer]}\n\n`).join("");
  return description + shots + mmluQuestion(doc);
}

export function mmluItem(doc: MmluDoc, index: number, dev: MmluDoc[], shots: number): ChoiceItem {
  return {
    kind: "choice",
    index,
    group: doc.subject,
    choices: LETTERS,
    gold: doc.answer,
    shots: Math.min(shots, dev.length),
    build: (k) => ({ contexts: [mmluContext(doc, dev, k)], continuations: LETTERS.map((l) => ` ${l}`) }),
  };
}

/** A row of a local CSV: question, A, B, C, D, answer letter. */
function fromCsv(row: string[], subject: string, where: string): MmluDoc {
  const answer = LETTERS.indexOf(row[5]);
  if (row.length !== 6 || answer < 0) {
    throw new EvalError(`${where} is not "question,A,B,C,D,answer letter"`, "see ../shared/data/README.md");
  }
  return { subject, question: row[0], choices: row.slice(1, 5), answer };
}

async function localDocs(dir: string, split: "test" | "dev"): Promise<Map<string, MmluDoc[]>> {
  const suffix = `_${split}.csv`;
  const names: string[] = [];
  for await (const e of Deno.readDir(join(dir, split))) if (e.name.endsWith(suffix)) names.push(e.name);
  const bySubject = new Map<string, MmluDoc[]>();
  for (const name of names.sort()) {
    const subject = name.slice(0, -suffix.length);
    const rows = await readCsv(join(dir, split, name), false) as string[][];
    bySubject.set(subject, rows.map((r, i) => fromCsv(r, subject, `${join(dir, split, name)} row ${i + 1}`)));
  }
  return bySubject;
}

/** cais/mmlu's "all" config: question, subject, choices, answer (0–3), sorted by subject as the files are. */
function hubDocs(rows: Row[]): Map<string, MmluDoc[]> {
  const bySubject = new Map<string, MmluDoc[]>();
  for (const r of rows) {
    const d = {
      subject: String(r.subject),
      question: String(r.question),
      choices: r.choices as string[],
      answer: Number(r.answer),
    };
    if (!bySubject.has(d.subject)) bySubject.set(d.subject, []);
    bySubject.get(d.subject)!.push(d);
  }
  return new Map([...bySubject].sort(([a], [b]) => (a < b ? -1 : 1)));
}

export const MMLU: TaskLoader = {
  id: "mmlu",
  async load(loc: DataLocator, opts: LoadOptions): Promise<LoadedTask> {
    const dir = await localFile(loc, "mmlu", HUB_TEST);
    const test = dir ? await localDocs(dir, "test") : hubDocs(await readHubSplit(HUB_TEST, loc, "mmlu/"));
    const dev = dir ? await localDocs(dir, "dev") : hubDocs(await readHubSplit(HUB_DEV, loc, "mmlu/"));
    const shots = opts.shots ?? MMLU_DEFAULT_SHOTS;
    const items: ChoiceItem[] = [];
    for (const [subject, docs] of test) {
      const examples = dev.get(subject) ?? [];
      if (shots > examples.length) {
        throw new EvalError(
          `MMLU's ${subject} has ${examples.length} dev examples, fewer than --shots ${shots}`,
          `use --shots ${examples.length} or less`,
        );
      }
      for (const d of docs) items.push(mmluItem(d, items.length, examples, shots));
    }
    return {
      id: "mmlu",
      kind: "choice",
      metrics: ["acc"],
      primary: "acc",
      source: dir ?? `${HUB_TEST.repo}/all (test, dev)`,
      digest: digestOf([[...test], [...dev]]),
      shots,
      limitPerGroup: true,
      items,
    };
  },
};
