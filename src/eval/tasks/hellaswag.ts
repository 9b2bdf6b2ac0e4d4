/**
 * HellaSwag as lm-eval's hellaswag: zero-shot, context preprocess(activity_label + ": " + ctx_a + " " +
 * capitalize(ctx_b)), each preprocessed ending after a space as the continuation; acc and acc_norm.
 *
 * The local file (llama.cpp's layout: "activity: context", the gold index, four endings) joins ctx_a and
 * ctx_b and does not capitalize ctx_b, so the split is recovered: an ActivityNet ctx_b is the lowercase
 * start of a sentence after ctx_a's last full stop ("… on a roof. he"), which is capitalized as lm-eval does.
 */

import { type DataLocator, digestOf, localFile, readHubSplit, type Row } from "../data.ts";
import { EvalError } from "../errors.ts";
import type { ChoiceItem, LoadedTask } from "../task.ts";
import type { LoadOptions, TaskLoader } from "./registry.ts";

export interface HellaswagDoc {
  query: string;
  endings: string[];
  gold: number;
}

const HUB = { repo: "Rowan/hellaswag", split: "validation" };
const FILE = "hellaswag_val.txt";

/** lm-eval's preprocess: WikiHow's " [title]" marks become sentence ends, other [tags] go, double spaces too. */
export function preprocess(text: string): string {
  return text.trim().replaceAll(" [title]", ". ").replace(/\[.*?\]/g, "").replaceAll("  ", " ");
}

/** Python's str.capitalize(): the first character upper case, the rest lower case. */
export function capitalize(s: string): string {
  return s.length === 0 ? s : s[0].toUpperCase() + s.slice(1).toLowerCase();
}

export function hellaswagFromHub(row: Row): HellaswagDoc {
  const ctx = `${row.ctx_a} ${capitalize(String(row.ctx_b ?? ""))}`;
  return {
    query: preprocess(`${row.activity_label}: ${ctx}`),
    endings: (row.endings as string[]).map(preprocess),
    gold: Number(row.label),
  };
}

/** The text after the last ". " when it starts lower case: where ctx_b begins in a joined context. */
export function restoreCtxB(context: string): string {
  const cut = context.lastIndexOf(". ");
  if (cut < 0) return context;
  const tail = context.slice(cut + 2);
  return /^[a-z]/.test(tail) ? context.slice(0, cut + 2) + capitalize(tail) : context;
}

/** Six lines an item: "activity: context", the gold index, four endings. */
export function parseHellaswagText(text: string, path: string): HellaswagDoc[] {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines.length % 6 !== 0) {
    throw new EvalError(`${path} has ${lines.length} lines, not 6 per item`, "see ../shared/data/README.md");
  }
  const docs: HellaswagDoc[] = [];
  for (let i = 0; i < lines.length; i += 6) {
    const gold = Number(lines[i + 1]);
    if (!Number.isInteger(gold) || gold < 0 || gold > 3) {
      throw new EvalError(`${path} line ${i + 2}: "${lines[i + 1]}" is not a gold index 0–3`, "fix the file");
    }
    docs.push({
      query: preprocess(restoreCtxB(lines[i])),
      endings: lines.slice(i + 2, i + 6).map(preprocess),
      gold,
    });
  }
  return docs;
}

export function hellaswagItem(doc: HellaswagDoc, index: number): ChoiceItem {
  return {
    kind: "choice",
    index,
    choices: doc.endings,
    gold: doc.gold,
    shots: 0,
    build: () => ({ contexts: [doc.query], continuations: doc.endings.map((e) => ` ${e}`) }),
  };
}

export const HELLASWAG: TaskLoader = {
  id: "hellaswag",
  async load(loc: DataLocator, _opts: LoadOptions): Promise<LoadedTask> {
    const path = await localFile(loc, FILE, HUB);
    const docs = path
      ? parseHellaswagText(await Deno.readTextFile(path), path)
      : (await readHubSplit(HUB, loc, FILE)).map(hellaswagFromHub);
    return {
      id: "hellaswag",
      kind: "choice",
      metrics: ["acc", "acc_norm"],
      primary: "acc_norm",
      source: path ?? `${HUB.repo} (${HUB.split})`,
      digest: digestOf(docs),
      shots: 0,
      limitPerGroup: false,
      items: docs.map(hellaswagItem),
    };
  },
};
