/**
 * train.jsonl: one line per step, appended and flushed as the run goes (a resumed run appends after the last
 * line of the step it resumed at, having dropped lines past it), and the progress line on the terminal.
 */

import { join } from "node:path";
import { readCompleteLines } from "../util/jsonl.ts";
import { writeFileAtomic } from "./atomic.ts";

export const LOG_FILE = "train.jsonl";

/** What a step reports. */
export interface StepRecord {
  step: number;
  /** The loss optimised: L_lm + α·L_skip. */
  loss: number;
  lm_loss: number;
  skip_loss: number | null;
  /** Mean layers per trained token (FlexiDepth: the kept routed layers; DMTD and others: every layer). */
  mean_layers: number;
  /** FlexiDepth: the fraction of tokens that ran each routed layer. */
  routed_fraction: number[] | null;
  lr: number;
  grad_norm: number;
  tokens_per_s: number;
  /** Validation loss, on the steps it is measured. */
  val_loss?: number;
  elapsed_s: number;
}

/** The records in `dir`'s log up to step `upTo` (a resumed run's), the file cut back to them. */
export async function resumeLog(dir: string, upTo: number): Promise<StepRecord[]> {
  const path = join(dir, LOG_FILE);
  const lines = await readCompleteLines(path).catch(() => [] as string[]);
  const kept = lines.map((l) => JSON.parse(l) as StepRecord).filter((r) => r.step < upTo);
  await writeFileAtomic(path, kept.map((r) => JSON.stringify(r) + "\n").join(""));
  return kept;
}

export class StepLog {
  private readonly file: Deno.FsFile;

  private constructor(file: Deno.FsFile, readonly records: StepRecord[]) {
    this.file = file;
  }

  static async open(dir: string, records: StepRecord[]): Promise<StepLog> {
    const file = await Deno.open(join(dir, LOG_FILE), { append: true, create: true });
    return new StepLog(file, records);
  }

  async append(r: StepRecord): Promise<void> {
    this.records.push(r);
    const bytes = new TextEncoder().encode(JSON.stringify(r) + "\n");
    for (let off = 0; off < bytes.length;) off += await this.file.write(bytes.subarray(off));
  }

  close(): void {
    this.file.close();
  }
}

/** The one-line progress of a step: step, loss, L_skip, layers, tokens/s, ETA. */
export function progressLine(r: StepRecord, steps: number): string {
  const per = r.elapsed_s / Math.max(1, r.step + 1);
  const eta = Math.max(0, (steps - r.step - 1) * per);
  const skip = r.skip_loss === null ? "" : ` L_skip ${r.skip_loss.toFixed(3)}`;
  const val = r.val_loss === undefined ? "" : ` val ${r.val_loss.toFixed(4)}`;
  return `step ${r.step + 1}/${steps} loss ${r.loss.toFixed(4)}${skip}${val} layers ${
    r.mean_layers.toFixed(2)
  } ` +
    `${r.tokens_per_s.toFixed(0)} tok/s ETA ${formatSeconds(eta)}`;
}

function formatSeconds(s: number): string {
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${Math.round(s % 60).toString().padStart(2, "0")}s` : `${Math.round(s)}s`;
}
