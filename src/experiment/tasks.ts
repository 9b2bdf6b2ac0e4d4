/**
 * The six tasks of the paper's layer-allocation study (prompts/tasks.json) and the prompt each sample gets.
 * Bundled as JSON imports so that `deno compile` carries them.
 */

import bundled from "../../prompts/tasks.json" with { type: "json" };
import type { PromptInput } from "../generation/generate.ts";
import { UsageError } from "../errors.ts";

export type TaskKind = "text" | "math";
export type TaskSet = TaskKind | "all";

export interface Task {
  id: string;
  kind: TaskKind;
  /** Contains `{paragraph}` (text) or `{list}` (math). */
  template: string;
  /** The paper's average layers per generated token (FlexiDepth-Llama-3-8B-Instruct, of PAPER_NUM_LAYERS). */
  paper_mean_layers: number;
}

export const TASKS: readonly Task[] = bundled.tasks as Task[];
export const PAPER_NUM_LAYERS: number = bundled.paper_num_layers;
export const TASK_SETS: TaskSet[] = ["text", "math", "all"];

export function selectTasks(set: TaskSet): Task[] {
  return TASKS.filter((t) => set === "all" || t.kind === set);
}

export function taskById(id: string): Task {
  const t = TASKS.find((t) => t.id === id);
  if (!t) throw new UsageError(`unknown task "${id}"`, `tasks: ${TASKS.map((t) => t.id).join(", ")}`);
  return t;
}

/** A list as it appears in prompts: `[12, 47, 80]`. */
export function formatList(list: number[]): string {
  return `[${list.join(", ")}]`;
}

/** The instruction with its input filled in (the user message of a chat). */
export function fillTemplate(task: Task, input: string | number[]): string {
  return task.kind === "text"
    ? task.template.replace("{paragraph}", input as string)
    : task.template.replace("{list}", formatList(input as number[]));
}

export interface BuiltPrompt {
  /** The text given to the model: the user message (chat) or the whole raw prompt. */
  prompt: string;
  chat: boolean;
  input: PromptInput;
}

/** Chat template when `chat`, else raw: instruction, blank line, input, blank line. */
export function buildPrompt(task: Task, input: string | number[], chat: boolean): BuiltPrompt {
  const filled = fillTemplate(task, input);
  if (chat) return { prompt: filled, chat, input: [{ role: "user", content: filled }] };
  const raw = `${filled}\n\n`;
  return { prompt: raw, chat, input: raw };
}
