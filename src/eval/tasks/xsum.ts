/**
 * XSum: one-sentence summaries of BBC articles, zero-shot, in the prompt of the local file (H2O's and HELM's
 * "###\nArticle: {document}\n\nSummarize the above article in 1 sentence.\n"), greedy until "###" or 64 tokens
 * (that file's settings); scored by ROUGE-1, ROUGE-2 and ROUGE-L F-measure against the reference summary.
 * From the hub (EdinburghNLP/xsum), the document's lines are joined by spaces, as the local file has them.
 */

import { type DataLocator, digestOf, localFile, readHubSplit, readJsonl, type Row } from "../data.ts";
import { EvalError } from "../errors.ts";
import { rougeScores } from "../rouge.ts";
import type { GenerateItem, Grader, LoadedTask } from "../task.ts";
import type { LoadOptions, TaskLoader } from "./registry.ts";

export interface XsumDoc {
  /** The whole prompt. */
  prompt: string;
  summary: string;
}

const HUB = { repo: "EdinburghNLP/xsum", split: "test" };
const FILE = "xsum_1000.jsonl";
const INSTRUCTION = "\n\nSummarize the above article in 1 sentence.\n";

export const XSUM_GRADER: Grader = {
  stop: ["###"],
  maxTokens: 64,
  grade(text, gold) {
    const summary = text.trim();
    return { extracted: summary, scores: { ...rougeScores(summary, gold) } };
  },
};

export function xsumFromHub(row: Row): XsumDoc {
  const document = String(row.document).trim().replace(/\s*\n\s*/g, " ");
  return { prompt: `###\nArticle: ${document}${INSTRUCTION}`, summary: String(row.summary) };
}

function fromLocal(r: Row, where: string): XsumDoc {
  if (typeof r.article !== "string" || typeof r.summary_gt !== "string") {
    throw new EvalError(`${where} has no "article" and "summary_gt" strings`, "see ../shared/data/README.md");
  }
  return { prompt: r.article, summary: r.summary_gt };
}

export function xsumItem(doc: XsumDoc, index: number): GenerateItem {
  return {
    kind: "generate",
    index,
    gold: doc.summary,
    shots: 0,
    build: () => ({ shots: [], user: doc.prompt }),
  };
}

export const XSUM: TaskLoader = {
  id: "xsum",
  async load(loc: DataLocator, _opts: LoadOptions): Promise<LoadedTask> {
    const path = await localFile(loc, FILE, HUB);
    const docs = path
      ? (await readJsonl(path)).map((r, i) => fromLocal(r, `${path} line ${i + 1}`))
      : (await readHubSplit(HUB, loc, FILE)).map(xsumFromHub);
    return {
      id: "xsum",
      kind: "generate",
      metrics: ["rouge1", "rouge2", "rougeL"],
      primary: "rougeL",
      source: path ?? `${HUB.repo} (${HUB.split})`,
      digest: digestOf(docs),
      shots: 0,
      limitPerGroup: false,
      items: docs.map(xsumItem),
      grader: XSUM_GRADER,
    };
  },
};
