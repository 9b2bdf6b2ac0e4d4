/**
 * The training data pipeline: `--data` sources tokenized once (and cached), packed into windows of seq + 1
 * tokens, split into training and held-out documents, and given out as seeded batches.
 *
 *   const data = await openTrainingData({ sources: ["stories.txt", "tasks:sum:500*2"], tokenizer, seq: 256,
 *     seed: 1, heldOut: 0.01, cacheDir: runDir });
 *   data.restore(saved.position);               // when resuming
 *   const { inputs, targets } = data.batch(8);  // Uint32Array [8·256] each, reused by the next batch(8)
 *   for (const b of data.validation(8)) …       // the held-out windows
 *   save(data.position);                        // JSON
 */

import { UsageError } from "../../errors.ts";
import type { TextTokenizer } from "../../tokenizer/tokenizer.ts";
import { TrainingData } from "./batches.ts";
import { type DataWarning, formatWarning } from "./errors.ts";
import { DEFAULT_CHUNK_BYTES, DEFAULT_MAX_DOC_CHARS, type ReadProgress } from "./read.ts";
import { type LoadedSource, loadSource } from "./sources.ts";
import { parseSource, type SourceSpec } from "./spec.ts";
import { heldOutMasks, trainingStream, validationStream } from "./split.ts";
import { documentEos, sha256Hex, tokenizerFingerprint } from "./tokenize.ts";

export { type Batch, type DataPosition, type SourceInfo, TrainingData } from "./batches.ts";
export { DataError, type DataWarning, formatWarning } from "./errors.ts";
export { parseSource, type SourceSpec } from "./spec.ts";

export interface DataOptions {
  /** `--data` values (syntax in spec.ts), or specs already parsed. */
  sources: (string | SourceSpec)[];
  tokenizer: TextTokenizer;
  /** Tokens per row: windows are seq + 1 tokens. */
  seq: number;
  /** Decides the held-out documents, fractional weights, generated tasks and each epoch's order. */
  seed: number;
  /** Held-out documents: < 1 a fraction of each source's, ≥ 1 a count over all (default 0: none). */
  heldOut?: number;
  /** Plain text documents end at this string instead of at blank lines. */
  docSep?: string;
  /** Folder of the token cache (e.g. the run's folder); none: tokenize every time. */
  cacheDir?: string;
  /** Task samples through the chat template (default: when the tokenizer has one). */
  chat?: boolean;
  /** Bytes read at a time (default 1 MiB). */
  chunkBytes?: number;
  /** Longer documents are tokenized in pieces, longer JSONL lines skipped (default 8 Mi characters). */
  maxDocChars?: number;
  /** Skipped records (default: printed to stderr as `warning: file:line: message`). */
  onWarning?: (w: DataWarning) => void;
  /** Reading progress, per chunk. */
  onProgress?: (p: ReadProgress & { source: string }) => void;
}

/** Loads, tokenizes (or reads from the cache), splits and packs the sources. */
export async function openTrainingData(opts: DataOptions): Promise<TrainingData> {
  const { seq, seed, heldOut = 0, tokenizer } = opts;
  checkOptions(opts);
  documentEos(tokenizer); // fails early for a tokenizer that cannot end documents
  const specs = opts.sources.map((s) => typeof s === "string" ? parseSource(s) : s);
  const sourceOpts = {
    tokenizer,
    fingerprint: await tokenizerFingerprint(tokenizer),
    seed,
    docSep: opts.docSep,
    chunkBytes: opts.chunkBytes ?? DEFAULT_CHUNK_BYTES,
    maxDocChars: opts.maxDocChars ?? DEFAULT_MAX_DOC_CHARS,
    chat: opts.chat ?? tokenizer.hasChatTemplate,
    cacheDir: opts.cacheDir,
    onWarning: opts.onWarning ?? ((w: DataWarning) => console.warn(`warning: ${formatWarning(w)}`)),
    onProgress: opts.onProgress,
  };
  const loaded: LoadedSource[] = [];
  for (const spec of specs) loaded.push(await loadSource(spec, sourceOpts));
  const masks = heldOutMasks(loaded, heldOut, seed);
  const train = trainingStream(loaded, masks, seed);
  if (train.windows(seq) === 0) {
    throw new UsageError(
      `the training documents hold ${train.length} tokens, fewer than one window of --seq ${seq} + 1`,
      "give more data, a smaller --seq, or hold out fewer documents",
    );
  }
  const corpus = await corpusDigest(loaded, seq, seed, heldOut);
  const info = loaded.map((s, i) => ({
    label: s.spec.label,
    kind: s.spec.kind,
    weight: s.spec.weight,
    docs: s.docLens.length,
    tokens: s.tokens.length,
    heldOutDocs: masks[i].reduce((n, m) => n + m, 0),
    skipped: s.skipped,
    fromCache: s.fromCache,
    cacheFile: s.cacheFile,
  }));
  const validation = validationStream(loaded, masks);
  if (validation.length > 0 && validation.windows(seq) === 0) {
    sourceOpts.onWarning({
      source: "held-out split",
      message:
        `the held-out documents hold ${validation.length} tokens, fewer than one window: no validation`,
    });
  }
  return new TrainingData(train, validation, seq, seed, corpus, info);
}

function checkOptions(opts: DataOptions): void {
  const positive = (v: number | undefined, min: number) =>
    v === undefined || (Number.isSafeInteger(v) && v >= min);
  if (!positive(opts.seq, 1)) {
    throw new UsageError(`--seq ${opts.seq} is not a positive integer`, "give e.g. --seq 256");
  }
  if (!Number.isSafeInteger(opts.seed)) {
    throw new UsageError(`--seed ${opts.seed} is not an integer`, "give e.g. --seed 1");
  }
  const h = opts.heldOut ?? 0;
  if (!(h >= 0 && Number.isFinite(h)) || (h >= 1 && !Number.isInteger(h))) {
    throw new UsageError(
      `held-out ${h} is neither a fraction nor a count`,
      "give a fraction below 1 (0.01: 1% of each source's documents) or a whole number of documents",
    );
  }
  if (opts.docSep === "") {
    throw new UsageError("--doc-sep is empty", "give the string that ends each document");
  }
  if (!positive(opts.chunkBytes, 16)) throw new RangeError(`chunkBytes ${opts.chunkBytes} is under 16`);
  if (!positive(opts.maxDocChars, 1024)) {
    throw new RangeError(`maxDocChars ${opts.maxDocChars} is under 1024`);
  }
  if (opts.sources.length === 0) {
    throw new UsageError("no training data", "give --data FILE (or tasks:...), once per source");
  }
}

/**
 * What a saved data position belongs to: the sources' ids and documents (not their paths or file times, so a
 * re-copied or moved data folder still resumes), weights, and the windowing options.
 */
async function corpusDigest(loaded: LoadedSource[], seq: number, seed: number, heldOut: number) {
  const sources = [];
  for (const s of loaded) {
    sources.push({ ids: await sha256Hex(s.tokens), docs: await sha256Hex(s.docLens), weight: s.spec.weight });
  }
  return await sha256Hex(JSON.stringify({ sources, seq, seed, heldOut }));
}
