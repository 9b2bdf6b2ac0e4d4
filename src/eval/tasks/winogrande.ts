/**
 * WinoGrande as lm-eval's winogrande (partial scoring): each option fills the blank, so the contexts are
 * sentence[:blank] + option, one per choice, and the shared continuation is " " + the sentence after the
 * blank, stripped; acc (lm-eval reports no acc_norm here: the continuation is the same for both).
 */

import { type DataLocator, digestOf, localFile, readHubSplit, readJson, type Row } from "../data.ts";
import { EvalError } from "../errors.ts";
import type { ChoiceItem, LoadedTask } from "../task.ts";
import type { LoadOptions, TaskLoader } from "./registry.ts";

export interface WinograndeDoc {
  sentence: string;
  options: [string, string];
  gold: number;
}

const HUB = { repo: "allenai/winogrande", config: "winogrande_xl", split: "validation" };
const FILE = "winogrande_dev.json";
const LOCAL =
  /^Please choose the correct answer to fill in the blank to complete the given sentence: ([\s\S]*)\n\nOption1: ([\s\S]*) Option2: ([\s\S]*) Answer format: option1\/option2$/;

export function winograndeFromLocal(row: Row, where: string): WinograndeDoc {
  const m = LOCAL.exec(String(row.instruction ?? ""));
  const gold = /^option([12])$/.exec(String(row.answer ?? ""));
  if (!m || !gold || !m[1].includes("_")) {
    throw new EvalError(
      `${where} is not a WinoGrande item of the expected layout`,
      "see ../shared/data/README.md",
    );
  }
  return { sentence: m[1], options: [m[2], m[3]], gold: Number(gold[1]) - 1 };
}

export function winograndeFromHub(row: Row, where: string): WinograndeDoc {
  const answer = String(row.answer);
  if (answer !== "1" && answer !== "2") {
    throw new EvalError(
      `${where} has answer "${answer}", not 1 or 2`,
      "the test split has no answers: use validation",
    );
  }
  return {
    sentence: String(row.sentence),
    options: [String(row.option1), String(row.option2)],
    gold: +answer - 1,
  };
}

export function winograndeItem(doc: WinograndeDoc, index: number): ChoiceItem {
  const blank = doc.sentence.indexOf("_");
  const contexts = doc.options.map((o) => doc.sentence.slice(0, blank) + o);
  const rest = doc.sentence.slice(blank + 1).trim();
  return {
    kind: "choice",
    index,
    // lm-eval's doc_to_choice is the contexts here (the "multiple input" form).
    choices: contexts,
    gold: doc.gold,
    shots: 0,
    build: () => ({ contexts, continuations: contexts.map(() => ` ${rest}`) }),
  };
}

export const WINOGRANDE: TaskLoader = {
  id: "winogrande",
  async load(loc: DataLocator, _opts: LoadOptions): Promise<LoadedTask> {
    const path = await localFile(loc, FILE, HUB);
    let docs: WinograndeDoc[];
    if (path) {
      const rows = await readJson(path);
      if (!Array.isArray(rows)) {
        throw new EvalError(`${path} is not a JSON list`, "see ../shared/data/README.md");
      }
      docs = rows.map((r, i) => winograndeFromLocal(r, `${path} item ${i}`));
    } else {
      docs = (await readHubSplit(HUB, loc, FILE)).map((r, i) => winograndeFromHub(r, `${HUB.repo} row ${i}`));
    }
    return {
      id: "winogrande",
      kind: "choice",
      metrics: ["acc"],
      primary: "acc",
      source: path ?? `${HUB.repo}/${HUB.config} (${HUB.split})`,
      digest: digestOf(docs),
      shots: 0,
      limitPerGroup: false,
      items: docs.map(winograndeItem),
    };
  },
};
