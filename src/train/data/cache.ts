/**
 * The token cache: one `.tokens` file per source, so a resumed run (or the next run over the same data)
 * reads ids instead of tokenizing again. Numbers are little-endian (words are written as the machine holds them;
 * every machine flexidepth runs on is little-endian):
 *
 *   bytes 0–7    "FDTOKENS"
 *   bytes 8–11   u32: the header's length H in bytes (a multiple of 4)
 *   12 … 12+H    the header, JSON (UTF-8, padded with spaces): {format, identity, stamp, tokenizer, docs,
 *                tokens, skipped, written}
 *   then         u32 × docs: each document's length in tokens, in source order
 *   then         u32 × tokens: the documents' ids, concatenated (BOS/EOS included)
 *
 * `identity` is what the ids are a function of (the source, the tokenizer's fingerprint, the options that
 * change tokenization, the seed for generated tasks); the file name carries its digest. `stamp` is the source
 * file's size and modification time: a file that changed since is tokenized again and the cache rewritten.
 */

import { basename, join } from "node:path";
import { sha256Hex } from "./tokenize.ts";

const MAGIC = "FDTOKENS";
export const CACHE_FORMAT = 1;

export interface CacheIdentity {
  kind: string;
  /** The source file's absolute path, or the tasks spec. */
  source: string;
  tokenizer: string;
  [option: string]: unknown;
}

/** A source file's size and modification time (ms); null for generated sources. */
export type CacheStamp = { size: number; mtimeMs: number } | null;

export interface CachedTokens {
  docLens: Uint32Array;
  tokens: Uint32Array;
  skipped: number;
}

interface Header {
  format: number;
  identity: CacheIdentity;
  stamp: CacheStamp;
  tokenizer: string;
  docs: number;
  tokens: number;
  skipped: number;
  written: string;
}

/** The cache file for this identity in `dir`: a readable name plus the identity's digest. */
export async function cachePath(dir: string, label: string, identity: CacheIdentity): Promise<string> {
  const slug = basename(label).replace(/[^A-Za-z0-9._-]+/g, "_").slice(-48);
  return join(dir, `${slug}-${(await sha256Hex(JSON.stringify(identity))).slice(0, 16)}.tokens`);
}

/** The cached ids, or null when the file is missing, from another identity or stamp, or damaged. */
export async function readCache(
  path: string,
  identity: CacheIdentity,
  stamp: CacheStamp,
): Promise<CachedTokens | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return null;
  }
  const header = parseHeader(bytes);
  if (header === null) return null;
  const same = JSON.stringify(header.identity) === JSON.stringify(identity) &&
    JSON.stringify(header.stamp) === JSON.stringify(stamp) && header.format === CACHE_FORMAT;
  const start = 12 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  if (!same || bytes.byteLength !== start + 4 * (header.docs + header.tokens)) return null;
  if ((bytes.byteOffset + start) % 4 !== 0) bytes = bytes.slice(); // a Uint32Array view needs alignment
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset + start, header.docs + header.tokens);
  return {
    docLens: words.subarray(0, header.docs),
    tokens: words.subarray(header.docs),
    skipped: header.skipped,
  };
}

function parseHeader(bytes: Uint8Array): Header | null {
  if (bytes.byteLength < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) return null;
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  if (length % 4 !== 0 || 12 + length > bytes.byteLength) return null;
  try {
    const h = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length))) as Header;
    return Number.isSafeInteger(h.docs) && Number.isSafeInteger(h.tokens) ? h : null;
  } catch {
    return null;
  }
}

/** Writes the cache (to a temporary file first, so an interrupted write never leaves a damaged one). */
export async function writeCache(
  path: string,
  identity: CacheIdentity,
  stamp: CacheStamp,
  tokenizerName: string,
  data: CachedTokens,
): Promise<void> {
  const header: Header = {
    format: CACHE_FORMAT,
    identity,
    stamp,
    tokenizer: tokenizerName,
    docs: data.docLens.length,
    tokens: data.tokens.length,
    skipped: data.skipped,
    written: new Date().toISOString(),
  };
  let json = new TextEncoder().encode(JSON.stringify(header));
  json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat((4 - json.byteLength % 4) % 4));
  const prefix = new Uint8Array(12);
  prefix.set(new TextEncoder().encode(MAGIC));
  new DataView(prefix.buffer).setUint32(8, json.byteLength, true);
  const tmp = `${path}.${Deno.pid}.tmp`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    for (const part of [prefix, json, asBytes(data.docLens), asBytes(data.tokens)]) {
      await writeAll(file, part);
    }
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
}

function asBytes(words: Uint32Array): Uint8Array {
  return new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.byteLength;) done += await file.write(bytes.subarray(done));
}
