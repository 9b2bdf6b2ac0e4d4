/**
 * What the training data tests (test/train_data*.test.ts) share: the stories260K tokenizer (BOS 1, EOS 2, no
 * chat template), temporary folders, story files, the source options, and helpers that read streams,
 * documents, windows and batches back.
 */

import { join } from "node:path";
import { TextTokenizer } from "../src/tokenizer/tokenizer.ts";
import { openTrainingData, TrainingData } from "../src/train/data/mod.ts";
import type { SourceOptions } from "../src/train/data/sources.ts";
import { tokenizerFingerprint } from "../src/train/data/tokenize.ts";
import { tempDirs } from "./temp_dir.ts";

export const STORIES = new URL("../../shared/models/stories260K", import.meta.url).pathname;
export const TINYSTORIES =
  new URL("../../shared/data/text/tinystories_valid_excerpt.txt", import.meta.url).pathname;
export const storiesConfig = JSON.parse(await Deno.readTextFile(join(STORIES, "tokenizer_config.json")));
export const stories = await TextTokenizer.load(join(STORIES, "tokenizer.json"), storiesConfig, {
  bosTokenId: 1,
  eosTokenIds: [2],
});
export const BOS = 1;
export const EOS = 2;

/** Runs `fn` in a fresh temporary folder, removed afterwards. */
export const withTempDir = tempDirs("flexidepth-data-");

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** The text in chunks of `size` characters. */
export async function* chunked(text: string, size: number): AsyncGenerator<string> {
  for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
}

/** What each document should pack as: BOS, its ids, EOS. */
export function packed(tok: TextTokenizer, doc: string): number[] {
  return [...tok.encodePrompt(doc), EOS];
}

/** `n` documents, each with a marker ("Story 17:") found nowhere else. */
export function storyDocs(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `Story ${i}: the cat number ${i} sat on the mat and sang.`);
}

/** The documents in a file `name` in `dir`, a blank line between them. */
export async function storiesFile(dir: string, docs: string[], name = "s.txt"): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, docs.join("\n\n"));
  return path;
}

/** What loadSource needs, for `tok` (stories260K unless given), with `over` changed. */
export async function sourceOptions(
  over: Partial<SourceOptions> = {},
  tok = stories,
): Promise<SourceOptions> {
  return {
    tokenizer: tok,
    fingerprint: await tokenizerFingerprint(tok),
    seed: 1,
    chunkBytes: 64,
    maxDocChars: 1 << 20,
    chat: tok.hasChatTemplate,
    onWarning: () => {},
    ...over,
  };
}

/** The stream the windows were cut from: each window after the first overlaps the last by one token. */
export function joinWindows(n: number, window: (w: number) => Uint32Array): number[] {
  const out: number[] = [];
  for (let w = 0; w < n; w++) out.push(...window(w).subarray(w === 0 ? 0 : 1));
  return out;
}

/** A source's tokens cut into its documents. */
export function splitDocs(tokens: Uint32Array, lens: Uint32Array): number[][] {
  let at = 0;
  return [...lens].map((n) => [...tokens.subarray(at, at += n)]);
}

/** The training data of `path` (or paths) with stories260K: seq 8, 10% held out, unless `over` says. */
export function open(
  path: string | string[],
  seed: number,
  over: Partial<Parameters<typeof openTrainingData>[0]> = {},
) {
  return openTrainingData({
    sources: [path].flat(),
    tokenizer: stories,
    seq: 8,
    seed,
    heldOut: 0.1,
    ...over,
  });
}

/** `n` batches of `rows`, copied (the arrays are reused). */
export function take(data: TrainingData, n: number, rows: number): number[][] {
  return Array.from({ length: n }, () => [...data.batch(rows).inputs]);
}
