/** One JSONL line → a document: `{"text": string}` (raw text) or `{"messages": [{role, content}, ...]}` (a chat). */

import type { ChatMessage } from "../../tokenizer/tokenizer.ts";

export type JsonlDoc = { kind: "text"; text: string } | { kind: "chat"; messages: ChatMessage[] };

/** What was wrong with a line (the warning's message), for a line that gives no document. */
export interface JsonlProblem {
  problem: string;
}

/** The document a line holds, a problem, or null for a blank line. */
export function parseJsonlLine(line: string): JsonlDoc | JsonlProblem | null {
  if (line.trim() === "") return null;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return { problem: `not valid JSON (${(e as Error).message})` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { problem: 'not a JSON object; give {"text": ...} or {"messages": [...]}' };
  }
  const rec = value as Record<string, unknown>;
  if ("messages" in rec) return parseMessages(rec.messages);
  if (!("text" in rec)) return { problem: 'has neither "text" nor "messages"' };
  if (typeof rec.text !== "string") return { problem: `"text" is ${typeName(rec.text)}, not a string` };
  if (rec.text.trim() === "") return { problem: '"text" is empty' };
  return { kind: "text", text: rec.text };
}

function parseMessages(messages: unknown): JsonlDoc | JsonlProblem {
  if (!Array.isArray(messages)) return { problem: `"messages" is ${typeName(messages)}, not a list` };
  if (messages.length === 0) return { problem: '"messages" is empty' };
  const out: ChatMessage[] = [];
  for (const [i, m] of messages.entries()) {
    const rec = (typeof m === "object" && m !== null ? m : {}) as Record<string, unknown>;
    if (typeof rec.role !== "string" || typeof rec.content !== "string") {
      return { problem: `message ${i + 1} needs "role" and "content" strings` };
    }
    out.push({ role: rec.role, content: rec.content });
  }
  return { kind: "chat", messages: out };
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}
