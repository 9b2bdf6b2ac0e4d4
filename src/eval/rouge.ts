/**
 * ROUGE-1, ROUGE-2 and ROUGE-L F-measures (Lin 2004) of a summary against one reference, with js-rouge's
 * n-gram and LCS scoring on the tokens Google's rouge_score uses: lower case, every run of characters other
 * than a–z and 0–9 a separator, and tokens longer than three letters Porter-stemmed. ROUGE-L is the
 * sentence-level LCS (rouge_score's "rougeL", not the summary-level "rougeLsum").
 */

import * as rouge from "js-rouge";
import { stemmer } from "stemmer";

export interface RougeScores {
  rouge1: number;
  rouge2: number;
  rougeL: number;
}

export function rougeTokens(text: string, stem = true): string[] {
  const tokens = text.toLowerCase().replace(/[^a-z0-9]+/g, " ").split(/\s+/).filter((t) => t !== "");
  return stem ? tokens.map((t) => (t.length > 3 ? stemmer(t) : t)) : tokens;
}

export function rougeScores(candidate: string, reference: string, stem = true): RougeScores {
  const cand = rougeTokens(candidate, stem);
  const ref = rougeTokens(reference, stem);
  if (cand.length === 0 || ref.length === 0) return { rouge1: 0, rouge2: 0, rougeL: 0 };
  // js-rouge tokenizes strings: hand it the tokens joined, split back by a tokenizer that only splits.
  const opts = { tokenizer: (s: string) => s.split(" ") };
  const c = cand.join(" ");
  const r = ref.join(" ");
  return {
    rouge1: rouge.n(c, r, { ...opts, n: 1 }),
    rouge2: rouge.n(c, r, { ...opts, n: 2 }),
    rougeL: rouge.l(c, r, { ...opts, segmenter: (s: string) => [s] }),
  };
}
