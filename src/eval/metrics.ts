/**
 * The numbers of a run, as lm-eval computes them: acc picks the choice of highest summed log-likelihood,
 * acc_norm the highest log-likelihood per character of the choice (lm-eval divides by len(choice), the
 * choice's length in characters — its bytes for ASCII text); a metric is the mean over items with the standard
 * error of that mean (sample standard deviation / √n). Retention is the FlexiDepth paper's: the mean over
 * tasks of a mode's score ÷ the full mode's score on the same task.
 */

export function mean(xs: number[]): number | null {
  return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample variance (n − 1), null under two values. */
export function sampleVariance(xs: number[]): number | null {
  const m = mean(xs);
  if (m === null || xs.length < 2) return null;
  return xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1);
}

/** lm-eval's mean_stderr: √(sample variance / n). */
export function stderrOfMean(xs: number[]): number | null {
  const v = sampleVariance(xs);
  return v === null ? null : Math.sqrt(v / xs.length);
}

/** The first index of the largest value (numpy's argmax). */
export function argmax(xs: number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/** Characters as Python's len counts them (code points). */
export function charLength(s: string): number {
  return [...s].length;
}

export interface ChoiceOutcome {
  chosen: number;
  chosen_norm: number;
  acc: number;
  acc_norm: number;
}

export function choiceOutcome(loglikelihoods: number[], choices: string[], gold: number): ChoiceOutcome {
  const chosen = argmax(loglikelihoods);
  const chosen_norm = argmax(loglikelihoods.map((ll, i) => ll / charLength(choices[i])));
  return { chosen, chosen_norm, acc: chosen === gold ? 1 : 0, acc_norm: chosen_norm === gold ? 1 : 0 };
}

export interface Estimate {
  value: number | null;
  stderr: number | null;
}

export function estimate(xs: number[]): Estimate {
  return { value: mean(xs), stderr: stderrOfMean(xs) };
}

/**
 * The macro average of groups (MMLU's subjects): the mean of their means, with the standard error of that
 * mean of independent groups, √(Σ se_g²) / G (a group of one item adds no variance).
 */
export function macroEstimate(groups: number[][]): Estimate {
  const used = groups.filter((g) => g.length > 0);
  if (used.length === 0) return { value: null, stderr: null };
  const value = mean(used.map((g) => mean(g)!))!;
  const sumVar = used.reduce((a, g) => a + (stderrOfMean(g) ?? 0) ** 2, 0);
  return { value, stderr: Math.sqrt(sumVar) / used.length };
}

export interface Retention {
  mode: string;
  /** Mean over tasks of score ÷ full score; null when no task has both. */
  retention: number | null;
  /** Per task: score ÷ full score (tasks where the full score is 0 or missing are left out). */
  tasks: Record<string, number>;
}

/** `scores[task][mode]` = the task's primary score in that mode. */
export function retention(scores: Record<string, Record<string, number | null>>, mode: string): Retention {
  const tasks: Record<string, number> = {};
  for (const [task, byMode] of Object.entries(scores)) {
    const full = byMode.full;
    const score = byMode[mode];
    if (full === null || full === undefined || full === 0 || score === null || score === undefined) continue;
    tasks[task] = score / full;
  }
  return { mode, retention: mean(Object.values(tasks)), tasks };
}
