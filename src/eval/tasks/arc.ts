/**
 * ARC-Easy and ARC-Challenge as lm-eval's arc_easy / arc_challenge: zero-shot, context
 * "Question: {question}\nAnswer:", each choice's text after a space as the continuation; acc and acc_norm.
 */

import {
  type DataLocator,
  digestOf,
  type HubSplit,
  localFile,
  readHubSplit,
  readJson,
  type Row,
} from "../data.ts";
import { EvalError } from "../errors.ts";
import type { ChoiceItem, LoadedTask } from "../task.ts";
import type { LoadOptions, TaskLoader } from "./registry.ts";

export interface ArcDoc {
  question: string;
  choices: string[];
  gold: number;
}

const LOCAL_QUESTION =
  /^Please choose the correct answer to the question: ([\s\S]*)\n\nAnswer1: ([\s\S]*)\n\nAnswer format: \S+$/;

/** A row of the local layout: the question and "Answer1: … Answer2: …" inside `instruction`. */
export function arcFromLocal(row: Row, where: string): ArcDoc {
  const m = LOCAL_QUESTION.exec(String(row.instruction ?? ""));
  const gold = /^answer(\d+)$/.exec(String(row.answer ?? ""));
  if (!m || !gold) {
    throw new EvalError(`${where} is not an ARC item of the expected layout`, "see ../shared/data/README.md");
  }
  const parts = `Answer1: ${m[2]}`.split(/(?:^| )Answer\d+: /).slice(1);
  return { question: m[1], choices: parts, gold: Number(gold[1]) - 1 };
}

/** A row of allenai/ai2_arc: question, choices {text, label}, answerKey. */
export function arcFromHub(row: Row, where: string): ArcDoc {
  const choices = row.choices as { text?: string[]; label?: string[] } | undefined;
  const gold = choices?.label?.indexOf(String(row.answerKey)) ?? -1;
  if (!choices?.text || gold < 0) {
    throw new EvalError(`${where} has no choices or answerKey`, "pull allenai/ai2_arc again");
  }
  return { question: String(row.question), choices: choices.text, gold };
}

export function arcItem(doc: ArcDoc, index: number): ChoiceItem {
  return {
    kind: "choice",
    index,
    choices: doc.choices,
    gold: doc.gold,
    shots: 0,
    build: () => ({
      contexts: [`Question: ${doc.question}\nAnswer:`],
      continuations: doc.choices.map((c) => ` ${c}`),
    }),
  };
}

function arcLoader(id: string, file: string, hub: HubSplit): TaskLoader {
  return {
    id,
    async load(loc: DataLocator, _opts: LoadOptions): Promise<LoadedTask> {
      const path = await localFile(loc, file, hub);
      let docs: ArcDoc[];
      if (path) {
        const rows = await readJson(path);
        if (!Array.isArray(rows)) {
          throw new EvalError(`${path} is not a JSON list`, "see ../shared/data/README.md");
        }
        docs = rows.map((r, i) => arcFromLocal(r, `${path} item ${i}`));
      } else {
        docs = (await readHubSplit(hub, loc, file)).map((r, i) => arcFromHub(r, `${hub.repo} row ${i}`));
      }
      return {
        id,
        kind: "choice",
        metrics: ["acc", "acc_norm"],
        primary: "acc_norm",
        source: path ?? `${hub.repo}/${hub.config} (${hub.split})`,
        digest: digestOf(docs),
        shots: 0,
        limitPerGroup: false,
        items: docs.map(arcItem),
      };
    },
  };
}

export const ARC_EASY = arcLoader("arc_easy", "arc_easy_test.json", {
  repo: "allenai/ai2_arc",
  config: "ARC-Easy",
  split: "test",
});
export const ARC_CHALLENGE = arcLoader("arc_challenge", "arc_challenge_test.json", {
  repo: "allenai/ai2_arc",
  config: "ARC-Challenge",
  split: "test",
});
