/**
 * A user's own task as a JSON file (`flexidepth eval path/to/task.json`):
 *
 *   { "task": "capitals",                                  (default: the file's name)
 *     "data": { "file": "capitals.jsonl" },                 (JSONL, JSON list, CSV with a header, or parquet;
 *                                                            relative to the task file)
 *          or { "hub": "ORG/NAME", "config": "…", "split": "test" }   (a dataset in the Hugging Face cache)
 *     "prompt": "Q: What is the capital of {{ country }}?\nA:",   (jinja, over each row's fields)
 *     "choices": "options"  or  ["{{ a }}", "{{ b }}"],     (a field holding a list, or one template a choice;
 *                                                            leave out for a generation task)
 *     "target": "{{ answer }}",                             (the gold choice's index or text; generation: the text)
 *     "metric": "acc" | "acc_norm" | "exact_match",
 *     "target_delimiter": " ", "until": ["\n"], "max_tokens": 64 }   (optional)
 *
 * Multiple choice scores " " + each choice after the prompt (lm-eval's target_delimiter); generation is greedy
 * until a stop string and scores the stripped text by exact match.
 */

import { basename, dirname, extname, join } from "node:path";
import { Template } from "@huggingface/jinja";
import {
  type DataLocator,
  digestOf,
  readCsv,
  readHubSplit,
  readJson,
  readJsonl,
  readParquet,
  type Row,
} from "./data.ts";
import { EvalError } from "./errors.ts";
import type { ChoiceItem, EvalItem, GenerateItem, Grader, LoadedTask, MetricName } from "./task.ts";

interface TaskFile {
  task?: string;
  data: { file?: string; hub?: string; config?: string; split?: string };
  prompt: string;
  choices?: string | string[];
  target: string;
  metric: "acc" | "acc_norm" | "exact_match";
  target_delimiter?: string;
  until?: string[];
  max_tokens?: number;
}

export function isTaskFile(arg: string): boolean {
  return arg.endsWith(".json");
}

function bad(path: string, what: string): EvalError {
  return new EvalError(
    `task file ${path}: ${what}`,
    "see 'flexidepth eval --help' for the task file's fields",
  );
}

function checkSpec(spec: unknown, path: string): TaskFile {
  const s = spec as Partial<TaskFile>;
  if (typeof s !== "object" || s === null) throw bad(path, "not a JSON object");
  if (typeof s.prompt !== "string") throw bad(path, `"prompt" (a jinja template) is missing`);
  if (typeof s.target !== "string") throw bad(path, `"target" (a jinja template) is missing`);
  if (!s.data || (typeof s.data.file !== "string" && typeof s.data.hub !== "string")) {
    throw bad(path, `"data" needs "file" (a local file) or "hub" (ORG/NAME) with "split"`);
  }
  if (s.data.hub !== undefined && typeof s.data.split !== "string") {
    throw bad(path, `"data.split" is missing`);
  }
  const metrics = s.choices === undefined ? ["exact_match"] : ["acc", "acc_norm"];
  if (!metrics.includes(s.metric as string)) {
    throw bad(
      path,
      `"metric" must be ${metrics.join(" or ")} for a ${
        s.choices === undefined ? "generation" : "multiple-choice"
      } task, got ${JSON.stringify(s.metric)}`,
    );
  }
  if (s.choices !== undefined && typeof s.choices !== "string" && !Array.isArray(s.choices)) {
    throw bad(path, `"choices" must be a field name or a list of templates`);
  }
  return s as TaskFile;
}

async function readRows(
  spec: TaskFile,
  path: string,
  loc: DataLocator,
): Promise<{ rows: Row[]; source: string }> {
  if (spec.data.hub !== undefined) {
    const split = { repo: spec.data.hub, config: spec.data.config, split: spec.data.split! };
    return { rows: await readHubSplit(split, loc), source: `${split.repo} (${split.split})` };
  }
  const file = join(dirname(path), spec.data.file!);
  const ext = extname(file).toLowerCase();
  const rows = ext === ".jsonl"
    ? await readJsonl(file)
    : ext === ".json"
    ? await readJson(file)
    : ext === ".csv"
    ? await readCsv(file, true)
    : ext === ".parquet"
    ? await readParquet(file)
    : null;
  if (!Array.isArray(rows)) {
    throw bad(path, `${file} is not a .jsonl, .json (a list), .csv or .parquet file of rows`);
  }
  return { rows: rows as Row[], source: file };
}

function field(row: Row, dotted: string): unknown {
  return dotted.split(".").reduce<unknown>((v, k) => (v as Row | undefined)?.[k], row);
}

function choicesOf(
  spec: TaskFile,
  row: Row,
  render: (t: Template) => string,
  templates: Template[],
): string[] {
  if (typeof spec.choices === "string") {
    const v = field(row, spec.choices);
    if (!Array.isArray(v)) {
      throw new EvalError(`field "${spec.choices}" is not a list`, "name a field holding the choices");
    }
    return v.map(String);
  }
  return templates.map(render);
}

function goldIndex(target: string, choices: string[], where: string): number {
  const gold = /^\d+$/.test(target.trim()) ? Number(target) : choices.indexOf(target);
  if (gold < 0 || gold >= choices.length) {
    throw new EvalError(
      `${where}: target "${target}" is neither a choice's index nor its text`,
      "fix the target template or the data",
    );
  }
  return gold;
}

function buildItem(
  spec: TaskFile,
  row: Row,
  index: number,
  t: { prompt: Template; target: Template; choices: Template[] },
): EvalItem {
  const render = (tpl: Template) => {
    try {
      return tpl.render(row);
    } catch (e) {
      throw new EvalError(
        `task file row ${index}: a template failed (${(e as Error).message})`,
        "fix the template (see 'flexidepth eval --help') or the row's fields",
      );
    }
  };
  const prompt = render(t.prompt);
  const target = render(t.target);
  if (spec.choices === undefined) {
    const item: GenerateItem = {
      kind: "generate",
      index,
      gold: target,
      shots: 0,
      build: () => ({ shots: [], user: prompt }),
    };
    return item;
  }
  const choices = choicesOf(spec, row, render, t.choices);
  const delimiter = spec.target_delimiter ?? " ";
  const item: ChoiceItem = {
    kind: "choice",
    index,
    choices,
    gold: goldIndex(target, choices, `row ${index}`),
    shots: 0,
    build: () => ({ contexts: [prompt], continuations: choices.map((c) => delimiter + c) }),
  };
  return item;
}

function compile(path: string, what: string, source: string): Template {
  try {
    return new Template(source);
  } catch (e) {
    throw bad(path, `${what} is not a valid jinja template (${(e as Error).message})`);
  }
}

export async function loadTaskFile(path: string, loc: DataLocator): Promise<LoadedTask> {
  const text = await Deno.readTextFile(path).catch(() => {
    throw new EvalError(`task file ${path} cannot be read`, `check the path, or name a built-in task`);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(path, `not valid JSON (${(e as Error).message})`);
  }
  const spec = checkSpec(json, path);
  const templates = {
    prompt: compile(path, "prompt", spec.prompt),
    target: compile(path, "target", spec.target),
    choices: Array.isArray(spec.choices) ? spec.choices.map((c, i) => compile(path, `choices[${i}]`, c)) : [],
  };
  const { rows, source } = await readRows(spec, path, loc);
  const items = rows.map((row, i) => buildItem(spec, row, i, templates));
  const generate = spec.choices === undefined;
  const grader: Grader | undefined = generate
    ? {
      stop: spec.until ?? ["\n\n"],
      maxTokens: spec.max_tokens ?? 256,
      grade: (text, gold) => ({
        extracted: text.trim(),
        scores: { exact_match: text.trim() === gold.trim() ? 1 : 0 },
      }),
    }
    : undefined;
  return {
    id: spec.task ?? basename(path, ".json"),
    kind: generate ? "generate" : "choice",
    metrics: (generate ? ["exact_match"] : ["acc", "acc_norm"]) as MetricName[],
    primary: spec.metric,
    source,
    digest: digestOf([spec, rows]),
    shots: 0,
    limitPerGroup: false,
    items,
    grader,
  };
}
