/**
 * `flexidepth batch` input and output. Input: one prompt per line — plain text, or a JSON object
 * {id?, prompt | messages, options?}. Output: one JSON result per line, appended and fsynced as each
 * prompt finishes, so an interrupted batch restarted on the same output loses nothing and skips what
 * is done (a torn last line is cut away first).
 */

import type { GenerateOptions, GenerationSummary, PromptInput, TokenEvent } from "../generation/generate.ts";
import type { ChatMessage } from "../tokenizer/tokenizer.ts";
import { InputError } from "../errors.ts";
import { generateOptionsFromJson } from "./generate_flags.ts";
import { readCompleteLines } from "../util/jsonl.ts";
import { tokenJson } from "./render.ts";

export type BatchId = string | number;

export interface BatchItem {
  /** 1-based line number in the input file. */
  line: number;
  id: BatchId;
  /** A raw prompt (the chat template may still be applied) or chat messages. */
  prompt?: string;
  messages?: ChatMessage[];
  options: GenerateOptions;
}

export interface BatchLineError {
  line: number;
  message: string;
}

/** The key an id is matched by (1 and "1" are different ids). */
export function idKey(id: BatchId): string {
  return JSON.stringify(id);
}

const LINE_KEYS = ["id", "prompt", "messages", "options"];

function parseMessages(v: unknown, where: string): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) {
    throw new InputError(
      `${where}: "messages" must be a non-empty list`,
      `e.g. [{"role": "user", "content": "Hi"}]`,
    );
  }
  return v.map((m, i) => {
    const ok = typeof m === "object" && m !== null && typeof m.role === "string" &&
      typeof m.content === "string";
    if (!ok) {
      throw new InputError(
        `${where}: messages[${i}] must be {"role": string, "content": string}`,
        `e.g. {"role": "user", "content": "Hi"}`,
      );
    }
    return { role: m.role, content: m.content };
  });
}

/** One input line (not blank) → an item; InputError names the line and the fix. */
export function parseBatchLine(text: string, line: number, defaults: GenerateOptions): BatchItem {
  const where = `line ${line}`;
  if (!text.trimStart().startsWith("{")) return { line, id: line, prompt: text, options: { ...defaults } };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(
      `${where}: not valid JSON (${(e as Error).message})`,
      `write {"prompt": "..."} or plain text that does not start with "{"`,
    );
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new InputError(`${where}: expected a JSON object`, `write {"prompt": "..."}`);
  }
  const o = json as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!LINE_KEYS.includes(key)) {
      throw new InputError(`${where}: unknown key "${key}"`, `a line may have ${LINE_KEYS.join(", ")}`);
    }
  }
  let id: BatchId = line;
  if (o.id !== undefined) {
    if (!(typeof o.id === "string" || (typeof o.id === "number" && Number.isFinite(o.id)))) {
      throw new InputError(`${where}: "id" must be a string or a number`);
    }
    id = o.id;
  }
  if ((o.prompt === undefined) === (o.messages === undefined)) {
    throw new InputError(`${where}: give exactly one of "prompt" and "messages"`);
  }
  const options = generateOptionsFromJson(o.options, defaults, where);
  if (o.prompt !== undefined) {
    if (typeof o.prompt !== "string") throw new InputError(`${where}: "prompt" must be a string`);
    return { line, id, prompt: o.prompt, options };
  }
  return { line, id, messages: parseMessages(o.messages, where), options };
}

/** The whole input: items to run, and the lines that cannot run (blank lines are skipped). */
export function parseBatchInput(
  text: string,
  defaults: GenerateOptions,
): { items: BatchItem[]; errors: BatchLineError[] } {
  const items: BatchItem[] = [];
  const errors: BatchLineError[] = [];
  const seen = new Map<string, number>();
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  lines.forEach((raw, i) => {
    const line = i + 1;
    const text = raw.replace(/\r$/, "");
    if (text.trim() === "") return;
    try {
      const item = parseBatchLine(text, line, defaults);
      const key = idKey(item.id);
      const first = seen.get(key);
      if (first !== undefined) {
        throw new InputError(
          `line ${line}: id ${key} is already used on line ${first}`,
          "give every line its own id",
        );
      }
      seen.set(key, line);
      items.push(item);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      errors.push({ line, message: e.message });
    }
  });
  return { items, errors };
}

/** What a prompt of an item sends to the model. */
export function itemInput(item: BatchItem, chat: boolean): PromptInput {
  if (item.messages) return item.messages;
  return chat ? [{ role: "user", content: item.prompt! }] : item.prompt!;
}

/** One result line. */
export function resultRecord(
  id: BatchId,
  tokens: TokenEvent[],
  s: GenerationSummary,
): Record<string, unknown> {
  return {
    id,
    prompt_tokens: s.promptTokens,
    text: s.text,
    tokens: tokens.map(({ i: _, ...t }) => tokenJson(t)),
    layers_mean: s.meanLayers,
    stop_reason: s.stopReason,
    timings: {
      prefill_ms: s.prefillMs,
      decode_ms: s.decodeMs,
      prefill_tokens_per_s: s.prefillTokensPerSec,
      decode_tokens_per_s: s.decodeTokensPerSec,
    },
  };
}

/**
 * Reads an existing output file: the ids already done. A last line without its newline (a write cut
 * short) is truncated away; any other line that is not a result means the file is not ours.
 */
export async function readFinished(path: string): Promise<Set<string>> {
  let lines: string[];
  try {
    lines = await readCompleteLines(path);
  } catch (e) {
    throw new InputError(`cannot read ${path} (${(e as Error).message})`, "choose another -o file");
  }
  const done = new Set<string>();
  lines.forEach((text, i) => {
    if (text.trim() === "") return;
    let rec: unknown;
    try {
      rec = JSON.parse(text);
    } catch {
      rec = null;
    }
    const id = (rec as { id?: unknown } | null)?.id;
    if (typeof id !== "string" && typeof id !== "number") {
      throw new InputError(
        `${path} line ${i + 1} is not a batch result`,
        "-o must name a new file or the output of an earlier run of the same batch",
      );
    }
    done.add(idKey(id));
  });
  return done;
}

/** Appends result lines, each written whole and flushed to disk before the next prompt starts. */
export class ResultWriter {
  readonly #file: Deno.FsFile;
  readonly #enc = new TextEncoder();

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  static async open(path: string): Promise<ResultWriter> {
    try {
      return new ResultWriter(await Deno.open(path, { append: true, create: true }));
    } catch (e) {
      throw new InputError(`cannot write ${path} (${(e as Error).message})`, "choose a writable -o path");
    }
  }

  write(record: unknown): void {
    const bytes = this.#enc.encode(JSON.stringify(record) + "\n");
    let off = 0;
    while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
    this.#file.syncSync();
  }

  close(): void {
    this.#file.close();
  }
}
