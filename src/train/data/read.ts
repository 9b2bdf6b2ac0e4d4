/**
 * Reading sources in chunks, so that a file of any size is never one string: plain text is cut into
 * documents (at blank lines or a separator) and JSONL into lines as the chunks arrive.
 */

import { DataError } from "./errors.ts";

/** Bytes read at a time. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;
/** A document (or JSONL line) longer than this many characters is handled in pieces (or skipped). */
export const DEFAULT_MAX_DOC_CHARS = 8 << 20;

export interface ReadProgress {
  bytes: number;
  totalBytes: number;
}

/** The file's text, chunk by chunk (UTF-8; a BOM is dropped; a character split across chunks is kept whole). */
export async function* readChunks(
  path: string,
  chunkBytes = DEFAULT_CHUNK_BYTES,
  onProgress?: (p: ReadProgress) => void,
): AsyncGenerator<string> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    throw new DataError(`cannot read ${path}: ${(e as Error).message}`, "check the path given to --data");
  }
  try {
    const totalBytes = (await file.stat()).size;
    const buf = new Uint8Array(chunkBytes);
    const decoder = new TextDecoder();
    let bytes = 0;
    for (let n = await file.read(buf); n !== null; n = await file.read(buf)) {
      bytes += n;
      onProgress?.({ bytes, totalBytes });
      const text = decoder.decode(buf.subarray(0, n), { stream: true });
      if (text !== "") yield text;
    }
    const tail = decoder.decode();
    if (tail !== "") yield tail;
  } finally {
    file.close();
  }
}

/** A piece of a document: a whole one, or (for one over the size limit) a part, `first`/`last` marking its ends. */
export interface TextPiece {
  text: string;
  first: boolean;
  last: boolean;
}

/** Blank lines: a newline, then lines holding only spaces or tabs, then a newline. */
const BLANK_LINES = /\n[ \t\r]*\n/g;

/**
 * Documents of plain text, split at blank lines or at `sep`. Leading blank lines and trailing whitespace
 * are cut from each document; empty documents are dropped. A document longer than `maxChars` comes in
 * pieces, cut before the last newline under the limit (or at the limit when there is none); the cuts are a
 * function of the text alone, never of how it was chunked, so the ids (and the cache) do not depend on it.
 */
export async function* textDocuments(
  chunks: AsyncIterable<string>,
  sep?: string,
  maxChars = DEFAULT_MAX_DOC_CHARS,
): AsyncGenerator<TextPiece> {
  let pending = "";
  let first = true; // the next text starts a document
  const emit = function* (text: string, last: boolean): Generator<TextPiece> {
    const cleaned = cleanPiece(text, first, last);
    if (cleaned !== "" || !first) yield { text: cleaned, first, last };
    first = last || (first && cleaned === "");
  };
  const emitDocument = function* (text: string): Generator<TextPiece> {
    for (; text.length > maxChars; text = text.slice(cutPoint(text, maxChars))) {
      yield* emit(text.slice(0, cutPoint(text, maxChars)), false);
    }
    yield* emit(text, true);
  };
  for await (const chunk of chunks) {
    pending += chunk;
    let start = 0;
    for (const [at, len] of separators(pending, sep)) {
      yield* emitDocument(pending.slice(start, at));
      start = at + len;
    }
    pending = pending.slice(start);
    for (let cut = safeCut(pending, sep, maxChars); cut !== null; cut = safeCut(pending, sep, maxChars)) {
      yield* emit(pending.slice(0, cut), false);
      pending = pending.slice(cut);
    }
  }
  yield* emitDocument(pending);
}

/** Start and length of each complete separator in `text`. */
function separators(text: string, sep: string | undefined): [number, number][] {
  if (sep === undefined) return [...text.matchAll(BLANK_LINES)].map((m) => [m.index, m[0].length]);
  const out: [number, number][] = [];
  for (let i = text.indexOf(sep); i >= 0; i = text.indexOf(sep, i + sep.length)) out.push([i, sep.length]);
  return out;
}

function cleanPiece(text: string, first: boolean, last: boolean): string {
  let out = first ? text.replace(/^(?:[ \t\r]*\n)+/, "") : text;
  if (last) out = out.trimEnd();
  return out;
}

/**
 * Where to cut a long document: before its last newline under `maxChars` (a blank line that starts there
 * stays whole), else at the limit, never inside a surrogate pair.
 */
function cutPoint(text: string, maxChars: number): number {
  const nl = text.lastIndexOf("\n", maxChars - 1);
  if (nl > 0) return nl;
  const c = text.charCodeAt(maxChars - 1);
  return c >= 0xd800 && c <= 0xdbff ? maxChars - 1 : maxChars;
}

/**
 * The cut for a document still arriving, when it is sure to be the one the whole document would get: the
 * document must run past the cut, so no separator may be starting there (a separator that more text might
 * complete).
 */
function safeCut(pending: string, sep: string | undefined, maxChars: number): number | null {
  if (pending.length <= maxChars) return null;
  if (sep !== undefined) return pending.length >= maxChars + sep.length ? cutPoint(pending, maxChars) : null;
  const cut = cutPoint(pending, maxChars);
  return /^\n[ \t\r]*$/.test(pending.slice(cut)) ? null : cut;
}

/** A line of a JSONL file: its text, or null for a line over the limit (its text is not kept). */
export interface Line {
  line: number;
  text: string | null;
}

/** The lines of the chunks, numbered from 1; a line over `maxChars` comes as `text: null`. */
export async function* lines(
  chunks: AsyncIterable<string>,
  maxChars = DEFAULT_MAX_DOC_CHARS,
): AsyncGenerator<Line> {
  let pending = "";
  let skipping = false; // inside a line over the limit
  let line = 1;
  for await (const chunk of chunks) {
    pending += chunk;
    let start = 0;
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n", start)) {
      yield { line: line++, text: skipping ? null : pending.slice(start, nl) };
      skipping = false;
      start = nl + 1;
    }
    pending = pending.slice(start);
    if (pending.length > maxChars) {
      skipping = true;
      pending = "";
    }
  }
  if (skipping || pending !== "") yield { line, text: skipping ? null : pending };
}
