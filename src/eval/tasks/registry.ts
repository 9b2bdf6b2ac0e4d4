/** The built-in tasks by name, and what `flexidepth eval TASK…` accepts: those names or task files. */

import type { DataLocator } from "../data.ts";
import type { LoadedTask } from "../task.ts";
import { ARC_CHALLENGE, ARC_EASY } from "./arc.ts";
import { GSM8K } from "./gsm8k.ts";
import { HELLASWAG } from "./hellaswag.ts";
import { MMLU } from "./mmlu.ts";
import { WINOGRANDE } from "./winogrande.ts";
import { XSUM } from "./xsum.ts";

export interface LoadOptions {
  /** --shots (null: the task's default). */
  shots: number | null;
  seed: number;
}

export interface TaskLoader {
  id: string;
  load(loc: DataLocator, opts: LoadOptions): Promise<LoadedTask>;
}

export const BUILTIN_TASKS: TaskLoader[] = [
  MMLU,
  HELLASWAG,
  ARC_EASY,
  ARC_CHALLENGE,
  WINOGRANDE,
  GSM8K,
  XSUM,
];

export const TASK_NAMES = BUILTIN_TASKS.map((t) => t.id);

export function builtinTask(name: string): TaskLoader | null {
  return BUILTIN_TASKS.find((t) => t.id === name) ?? null;
}
