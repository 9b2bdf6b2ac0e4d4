/**
 * Answers from generated text, as lm-eval's gsm8k scores them: the number after "#### " (its strict-match
 * filter), else the last number in the text (its flexible-extract filter), compared with the gold answer by
 * exact match after dropping commas, "$", everything up to "#### " and a final full stop, ignoring case.
 */

const STRICT = /#### (-?[0-9.,]+)/;
const FLEXIBLE = /(-?[$0-9.,]{2,})|(-?[0-9]+)/g;

export interface Extracted {
  answer: string | null;
  /** Which rule found it. */
  how: "strict" | "flexible" | "none";
}

export function extractAnswer(text: string): Extracted {
  const strict = STRICT.exec(text);
  if (strict) return { answer: strict[1], how: "strict" };
  const all = [...text.matchAll(FLEXIBLE)];
  if (all.length === 0) return { answer: null, how: "none" };
  const last = all[all.length - 1];
  return { answer: last[1] ?? last[2], how: "flexible" };
}

/** lm-eval's exact_match regexes_to_ignore for gsm8k, then ignore_case. */
export function normalizeAnswer(s: string): string {
  return s.replaceAll(",", "").replaceAll("$", "").replace(/^[\s\S]*#### /, "").replace(/\.$/, "")
    .toLowerCase();
}

export function exactMatch(extracted: string | null, gold: string): number {
  return extracted !== null && normalizeAnswer(extracted) === normalizeAnswer(gold) ? 1 : 0;
}
