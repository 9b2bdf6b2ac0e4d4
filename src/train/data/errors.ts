/** Errors and warnings of the training data pipeline; each error's message carries the fix. */

import { FlexiError } from "../../errors.ts";

/** A data source that cannot be used as given, or a saved position that belongs to other data. */
export class DataError extends FlexiError {}

/** A problem that skips one record (a bad JSONL line) and lets the run go on. */
export interface DataWarning {
  /** The `--data` source as given (weight left out). */
  source: string;
  /** The file, where the problem is in one. */
  file?: string;
  /** 1-based line number, where the problem is on one line. */
  line?: number;
  message: string;
}

/** `file:line: message` (or `source: message`), the line a CLI prints after `warning: `. */
export function formatWarning(w: DataWarning): string {
  const where = w.file === undefined ? w.source : w.line === undefined ? w.file : `${w.file}:${w.line}`;
  return `${where}: ${w.message}`;
}
