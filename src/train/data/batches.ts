/**
 * Batches of training windows in a seeded order, shuffled anew each epoch, and the held-out windows in a
 * fixed order. Epoch e's order is a function of (seed, e) only, so (epoch, index) is the whole state a
 * resumed run needs; the position also names the data it belongs to, so it is not restored onto other data.
 */

import { mulberry32 } from "../../util/random.ts";
import { DataError } from "./errors.ts";
import type { Stream } from "./split.ts";
import { mixSeed } from "./tasks.ts";

/** `rows` windows: row r's inputs are window[0..seq), its targets window[1..seq+1) (next-token targets). */
export interface Batch {
  /** rows × seq token ids. */
  inputs: Uint32Array;
  /** rows × seq token ids, each the one after the input at the same place. */
  targets: Uint32Array;
  rows: number;
}

/** Where the training order stands; JSON-serializable. */
export interface DataPosition {
  /** Epochs completed. */
  epoch: number;
  /** Windows of this epoch already given out. */
  index: number;
  seed: number;
  /** Training windows per epoch, and the digest of the data and options; a position fits only its own data. */
  windows: number;
  corpus: string;
}

/** A source as loaded, for the run's log. */
export interface SourceInfo {
  label: string;
  kind: string;
  weight: number;
  docs: number;
  tokens: number;
  heldOutDocs: number;
  /** Records skipped with a warning (bad JSONL lines). */
  skipped: number;
  fromCache: boolean;
  cacheFile?: string;
}

/** The training data of a run: what the training loop asks for batches. */
export class TrainingData {
  readonly #order: Uint32Array;
  readonly #window: Uint32Array;
  readonly #batches = new Map<number, Batch>();
  #epoch = 0;
  #index = 0;
  #orderEpoch = -1;

  constructor(
    readonly train: Stream,
    readonly validationStream: Stream,
    readonly seq: number,
    readonly seed: number,
    readonly corpus: string,
    readonly sources: SourceInfo[],
  ) {
    this.#order = new Uint32Array(train.windows(seq));
    this.#window = new Uint32Array(seq + 1);
  }

  /** Training windows per epoch. */
  get windows(): number {
    return this.#order.length;
  }

  get validationWindows(): number {
    return this.validationStream.windows(this.seq);
  }

  /**
   * The next `rows` windows of the shuffled order (across an epoch's end when it comes). The arrays are
   * reused: they hold this batch until the next call with the same `rows`.
   */
  batch(rows: number): Batch {
    if (this.windows === 0) throw new DataError("there are no training windows", "give more training data");
    const out = this.#batchArrays(rows);
    for (let r = 0; r < rows; r++) {
      this.#fill(this.train, this.#shuffled(this.#index++), out, r);
      if (this.#index === this.windows) {
        this.#epoch++;
        this.#index = 0;
      }
    }
    return out;
  }

  get position(): DataPosition {
    return {
      epoch: this.#epoch,
      index: this.#index,
      seed: this.seed,
      windows: this.windows,
      corpus: this.corpus,
    };
  }

  /** Continues from a saved position (of the same data, seed and sequence length). */
  restore(p: DataPosition): void {
    if (p.corpus !== this.corpus || p.seed !== this.seed || p.windows !== this.windows) {
      throw new DataError(
        "the saved data position belongs to other data (sources, tokenizer, seed, --seq or held-out split changed)",
        "resume with the run's own --data, --seed, --seq and held-out options, or start a new run",
      );
    }
    if (!(Number.isSafeInteger(p.epoch) && p.epoch >= 0 && Number.isSafeInteger(p.index))) {
      throw new DataError(`the saved data position ${JSON.stringify(p)} is damaged`, "start a new run");
    }
    if (p.index < 0 || p.index >= this.windows) {
      throw new DataError(`the saved window ${p.index} is out of range`, "start a new run");
    }
    this.#epoch = p.epoch;
    this.#index = p.index;
  }

  /** The held-out windows in order, `rows` at a time (the last batch may have fewer rows). */
  *validation(rows: number): Generator<Batch> {
    const n = this.validationWindows;
    const full = this.#batchArrays(rows, "validation");
    for (let start = 0; start < n; start += rows) {
      const count = Math.min(rows, n - start);
      for (let r = 0; r < count; r++) this.#fill(this.validationStream, start + r, full, r);
      yield count === rows ? full : {
        inputs: full.inputs.subarray(0, count * this.seq),
        targets: full.targets.subarray(0, count * this.seq),
        rows: count,
      };
    }
  }

  /** Training window `w` in packing order (seq + 1 tokens, a new array), for inspection and tests. */
  trainWindow(w: number): Uint32Array {
    return this.#window_(this.train, w, this.windows);
  }

  /** Held-out window `w` (seq + 1 tokens, a new array). */
  validationWindow(w: number): Uint32Array {
    return this.#window_(this.validationStream, w, this.validationWindows);
  }

  #window_(stream: Stream, w: number, n: number): Uint32Array {
    if (!(Number.isInteger(w) && w >= 0 && w < n)) throw new RangeError(`window ${w} is not in 0..${n - 1}`);
    const out = new Uint32Array(this.seq + 1);
    stream.copy(w * this.seq, out);
    return out;
  }

  #fill(stream: Stream, w: number, out: Batch, row: number): void {
    stream.copy(w * this.seq, this.#window);
    out.inputs.set(this.#window.subarray(0, this.seq), row * this.seq);
    out.targets.set(this.#window.subarray(1), row * this.seq);
  }

  /** Window at place `i` of the current epoch's order (a seeded Fisher–Yates shuffle, made once per epoch). */
  #shuffled(i: number): number {
    if (this.#orderEpoch !== this.#epoch) {
      const order = this.#order;
      for (let k = 0; k < order.length; k++) order[k] = k;
      const rand = mulberry32(mixSeed(this.seed, `epoch:${this.#epoch}`));
      for (let k = order.length - 1; k > 0; k--) {
        const j = Math.floor(rand() * (k + 1));
        [order[k], order[j]] = [order[j], order[k]];
      }
      this.#orderEpoch = this.#epoch;
    }
    return this.#order[i];
  }

  #batchArrays(rows: number, kind = "train"): Batch {
    if (!(Number.isSafeInteger(rows) && rows > 0)) {
      throw new RangeError(`batch rows must be a positive integer, got ${rows}`);
    }
    const key = kind === "train" ? rows : -rows;
    let b = this.#batches.get(key);
    if (!b) {
      b = { inputs: new Uint32Array(rows * this.seq), targets: new Uint32Array(rows * this.seq), rows };
      this.#batches.set(key, b);
    }
    return b;
  }
}
