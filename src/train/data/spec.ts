/**
 * `--data` source specs. One spec names one source; several are mixed.
 *
 *   PATH                      plain text: documents split at blank lines (or at --doc-sep)
 *   PATH.jsonl | .ndjson      JSON Lines: {"text": "..."} or {"messages": [{"role", "content"}, ...]} per line
 *   text:PATH  | jsonl:PATH   the same, whatever the file's extension
 *   tasks[:LIST][:N][@FILE]   generated task samples (prompt + its correct answer), N per task (default
 *                             1000); LIST is task ids and sets, comma-separated: copy, continue, repeat, sum,
 *                             product, text (copy,continue), math (repeat,sum,product); none = all five.
 *                             Text tasks take paragraphs from FILE (plain text or JSONL, as above), else
 *                             the bundled ones.
 *
 * Any spec may end in `*W`, a positive weight: each of the source's training documents is packed W times
 * per epoch (a fraction packs a seeded subset, e.g. `*0.5` about half, `*2.5` twice and half again once).
 */

import { UsageError } from "../../errors.ts";

export type SourceSpec =
  | { kind: "text" | "jsonl"; path: string; label: string; weight: number }
  | { kind: "tasks"; tasks: string[]; count: number; paragraphs?: string; label: string; weight: number };

export const DEFAULT_TASK_SAMPLES = 1000;

/** Tasks with one correct answer to train on (summarize has none; see tasks.ts). */
export const TRAINABLE_TASKS = ["copy", "continue", "repeat", "sum", "product"] as const;
const TASK_GROUPS: Record<string, string[]> = {
  text: ["copy", "continue"],
  math: ["repeat", "sum", "product"],
  all: [...TRAINABLE_TASKS],
};

const SYNTAX = "give PATH, jsonl:PATH, text:PATH or tasks:copy,sum:500, each optionally with *WEIGHT";

/** Parses one `--data` value. */
export function parseSource(spec: string): SourceSpec {
  const { body, weight } = splitWeight(spec);
  if (body === "") throw new UsageError(`--data "${spec}" names no source`, SYNTAX);
  if (body === "tasks" || body.startsWith("tasks:") || body.startsWith("tasks@")) {
    return { ...parseTasks(body, spec), label: body, weight };
  }
  for (const kind of ["text", "jsonl"] as const) {
    if (body.startsWith(`${kind}:`)) return { kind, path: body.slice(kind.length + 1), label: body, weight };
  }
  const kind = /\.(jsonl|ndjson)$/i.test(body) ? "jsonl" : "text";
  return { kind, path: body, label: body, weight };
}

function splitWeight(spec: string): { body: string; weight: number } {
  const star = spec.lastIndexOf("*");
  if (star < 0) return { body: spec, weight: 1 };
  const w = spec.slice(star + 1);
  const weight = /^\d+(\.\d+)?$|^\.\d+$/.test(w) ? Number(w) : NaN;
  if (!(weight > 0) || !Number.isFinite(weight)) {
    throw new UsageError(
      `--data "${spec}": "*${w}" is not a weight`,
      "a weight is a positive number after *, e.g. stories.txt*2 or tasks:sum*0.5; give --data once per file",
    );
  }
  return { body: spec.slice(0, star), weight };
}

function parseTasks(
  body: string,
  spec: string,
): Omit<Extract<SourceSpec, { kind: "tasks" }>, "label" | "weight"> {
  const at = body.indexOf("@");
  const paragraphs = at < 0 ? undefined : body.slice(at + 1);
  if (paragraphs === "") throw new UsageError(`--data "${spec}": no file after @`, SYNTAX);
  const parts = (at < 0 ? body : body.slice(0, at)).split(":").slice(1);
  let count = DEFAULT_TASK_SAMPLES;
  let ids: string[] = [];
  for (const part of parts) {
    if (/^\d+$/.test(part) && Number(part) > 0) count = Number(part);
    else if (part !== "") ids = ids.concat(part.split(",").flatMap((id) => taskIds(id.trim(), spec)));
    else throw new UsageError(`--data "${spec}" has an empty part`, SYNTAX);
  }
  const tasks = ids.length === 0 ? [...TRAINABLE_TASKS] : [...new Set(ids)];
  return { kind: "tasks", tasks, count, paragraphs };
}

function taskIds(id: string, spec: string): string[] {
  if (TASK_GROUPS[id]) return TASK_GROUPS[id];
  if ((TRAINABLE_TASKS as readonly string[]).includes(id)) return [id];
  if (id === "summarize") {
    throw new UsageError(
      `--data "${spec}": summarize has no single correct answer to train on`,
      "leave it out (copy, continue, repeat, sum, product), or give your own summaries as chat JSONL",
    );
  }
  throw new UsageError(
    `--data "${spec}": unknown task "${id}"`,
    `tasks: ${
      TRAINABLE_TASKS.join(", ")
    } (or the sets text, math, all); a count is a number, e.g. tasks:sum:500`,
  );
}
