/**
 * The held-out split and the packed streams. Documents are held out by seed (never packed for training);
 * the training stream is the rest, each source's documents packed `weight` times; the validation stream is
 * the held-out documents once each. A stream is a list of runs of adjacent documents, so the tokens are
 * never copied into one corpus-sized array.
 */

import type { LoadedSource } from "./sources.ts";
import { mixSeed } from "./tasks.ts";

/** A document's place in [0, 1) (53 random bits), a function of (seed, source, salt, document) only. */
function docHasher(seed: number, label: string, salt = ""): (doc: number) => number {
  const s = mixSeed(seed, `${salt}${label}`);
  return (doc) => (mixSeed(s, doc) * 2 ** 21 + (mixSeed(s ^ 0x9e3779b9, doc) >>> 11)) / 2 ** 53;
}

/**
 * Which documents are held out, per source: `heldOut` < 1 is a fraction of each source's documents (rounded),
 * ≥ 1 a count over all sources; the documents with the smallest seeded hashes are chosen.
 */
export function heldOutMasks(sources: LoadedSource[], heldOut: number, seed: number): Uint8Array[] {
  const hashes = sources.map((s) => {
    const hash = docHasher(seed, s.spec.label);
    return Float64Array.from(s.docLens, (_, d) => hash(d));
  });
  const masks = sources.map((s) => new Uint8Array(s.docLens.length));
  if (heldOut <= 0) return masks;
  if (heldOut < 1) {
    hashes.forEach((h, i) => markSmallest([h], [masks[i]], Math.round(heldOut * h.length)));
  } else {
    markSmallest(hashes, masks, Math.floor(heldOut));
  }
  return masks;
}

function markSmallest(hashes: Float64Array[], masks: Uint8Array[], k: number): void {
  if (k <= 0) return;
  const all = new Float64Array(hashes.reduce((n, h) => n + h.length, 0));
  let at = 0;
  for (const h of hashes) all.set(h, (at += h.length) - h.length);
  all.sort();
  const threshold = all[Math.min(k, all.length) - 1];
  hashes.forEach((h, i) => h.forEach((v, d) => masks[i][d] = v <= threshold ? 1 : 0));
}

/** Runs of adjacent documents, in stream order; windows are cut from their concatenation. */
export class Stream {
  readonly #tokens: Uint32Array[];
  readonly #source: Uint32Array;
  readonly #start: Float64Array;
  /** Where each run begins in the stream; one more entry, the total. */
  readonly #offset: Float64Array;

  constructor(sources: LoadedSource[], runs: { source: number; start: number; length: number }[]) {
    this.#tokens = sources.map((s) => s.tokens);
    this.#source = Uint32Array.from(runs, (r) => r.source);
    this.#start = Float64Array.from(runs, (r) => r.start);
    this.#offset = new Float64Array(runs.length + 1);
    runs.forEach((r, i) => this.#offset[i + 1] = this.#offset[i] + r.length);
  }

  get length(): number {
    return this.#offset[this.#offset.length - 1];
  }

  /** Windows of `seq + 1` tokens, each starting `seq` after the last (so every token but the first is a target once). */
  windows(seq: number): number {
    return this.length > seq ? Math.floor((this.length - 1) / seq) : 0;
  }

  /** Copies `out.length` tokens starting at stream offset `at` into `out`. */
  copy(at: number, out: Uint32Array): void {
    let run = this.#runAt(at);
    for (let done = 0; done < out.length; run++) {
      const from = this.#start[run] + (at + done - this.#offset[run]);
      const n = Math.min(out.length - done, this.#offset[run + 1] - (at + done));
      out.set(this.#tokens[this.#source[run]].subarray(from, from + n), done);
      done += n;
    }
  }

  /** The run holding stream offset `at` (binary search). */
  #runAt(at: number): number {
    let lo = 0;
    let hi = this.#offset.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#offset[mid] <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/**
 * The training stream: each source's kept documents ⌊w⌋ times, plus once more for a seeded fraction w − ⌊w⌋
 * of them; copy r of every document before copy r + 1.
 */
export function trainingStream(sources: LoadedSource[], masks: Uint8Array[], seed: number): Stream {
  const runs = new RunList();
  sources.forEach((s, i) => {
    const whole = Math.floor(s.spec.weight);
    const frac = s.spec.weight - whole;
    const hash = docHasher(seed, s.spec.label, "weight:");
    for (let copy = 0; copy < Math.ceil(s.spec.weight); copy++) {
      forEachDoc(s, (d, start, len) => {
        const keep = copy < whole || hash(d) < frac;
        if (!masks[i][d] && keep) runs.add(i, start, len);
      });
    }
  });
  return new Stream(sources, runs.runs);
}

/** The validation stream: the held-out documents, once each, in source order. */
export function validationStream(sources: LoadedSource[], masks: Uint8Array[]): Stream {
  const runs = new RunList();
  sources.forEach((s, i) => forEachDoc(s, (d, start, len) => masks[i][d] && runs.add(i, start, len)));
  return new Stream(sources, runs.runs);
}

function forEachDoc(s: LoadedSource, fn: (doc: number, start: number, length: number) => void): void {
  let start = 0;
  s.docLens.forEach((len, d) => {
    fn(d, start, len);
    start += len;
  });
}

/** Runs, merging a document into the previous run when it follows it in the same source. */
class RunList {
  readonly runs: { source: number; start: number; length: number }[] = [];

  add(source: number, start: number, length: number): void {
    const last = this.runs.at(-1);
    if (last && last.source === source && last.start + last.length === start) last.length += length;
    else if (length > 0) this.runs.push({ source, start, length });
  }
}
