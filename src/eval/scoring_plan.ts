/**
 * The rows that score continuations after a shared context: for each choice, its row at position P − 1 feeds
 * the context's last token and targets the continuation's first; its row at P − 1 + i feeds continuation token
 * i − 1 and targets token i. Rows go into steps of at most `maxRows`, choices in order (a long choice spans
 * steps: its earlier rows' K/V are written by then).
 */

export interface ScoringRow {
  /** The request this row scores a token of. */
  request: number;
  slot: number;
  pos: number;
  /** The token fed at `pos`. */
  token: number;
  /** The token whose log-probability the row's logits give. */
  target: number;
}

export interface ScoredChoice {
  request: number;
  slot: number;
  continuation: number[];
}

export function* scoringRows(
  context: number[],
  choices: ScoredChoice[],
  maxRows: number,
): Generator<ScoringRow[]> {
  const P = context.length;
  let step: ScoringRow[] = [];
  for (const c of choices) {
    for (let i = 0; i < c.continuation.length; i++) {
      const token = i === 0 ? context[P - 1] : c.continuation[i - 1];
      step.push({ request: c.request, slot: c.slot, pos: P - 1 + i, token, target: c.continuation[i] });
      if (step.length === maxRows) {
        yield step;
        step = [];
      }
    }
  }
  if (step.length) yield step;
}
