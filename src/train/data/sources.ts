/**
 * One `--data` source → its documents' token ids: from the cache when it holds them, else read (in chunks),
 * tokenized document by document, and cached. Bad JSONL lines are warnings and skipped; a source with no
 * usable document is a DataError.
 */

import { resolve } from "node:path";
import { BUNDLED_PARAGRAPHS, paragraphsDigest } from "../../experiment/inputs.ts";
import { InputError } from "../../errors.ts";
import type { ChatMessage, TextTokenizer } from "../../tokenizer/tokenizer.ts";
import {
  type CachedTokens,
  type CacheIdentity,
  cachePath,
  type CacheStamp,
  readCache,
  writeCache,
} from "./cache.ts";
import { DataError, type DataWarning } from "./errors.ts";
import { parseJsonlLine } from "./jsonl.ts";
import { lines, readChunks, type ReadProgress, textDocuments } from "./read.ts";
import type { SourceSpec } from "./spec.ts";
import { TaskSampler } from "./tasks.ts";
import { encodeChatDocument, encodePiece, U32Buffer } from "./tokenize.ts";

/** Paragraphs read for text tasks at most (the first ones of the file). */
export const MAX_TASK_PARAGRAPHS = 100_000;

export interface SourceOptions {
  tokenizer: TextTokenizer;
  /** tokenizerFingerprint(tokenizer). */
  fingerprint: string;
  seed: number;
  docSep?: string;
  chunkBytes: number;
  maxDocChars: number;
  /** Task samples as chats through the template (else raw text). */
  chat: boolean;
  cacheDir?: string;
  onWarning: (w: DataWarning) => void;
  onProgress?: (p: ReadProgress & { source: string }) => void;
}

export interface LoadedSource extends CachedTokens {
  spec: SourceSpec;
  identity: CacheIdentity;
  stamp: CacheStamp;
  /** The cache file read or written (none without a cache folder). */
  cacheFile?: string;
  fromCache: boolean;
}

type Doc =
  | { kind: "piece"; text: string; first: boolean; last: boolean }
  | { kind: "chat"; messages: ChatMessage[]; line?: number };

/** Skips a record: warns, and counts it. */
type Skip = (message: string, line?: number) => void;

export async function loadSource(spec: SourceSpec, opts: SourceOptions): Promise<LoadedSource> {
  const { identity, stamp, docs } = await describe(spec, opts);
  const cacheFile = opts.cacheDir === undefined
    ? undefined
    : await cachePath(opts.cacheDir, spec.label, identity);
  if (cacheFile !== undefined) {
    const cached = await readCache(cacheFile, identity, stamp);
    if (cached !== null) return { spec, identity, stamp, ...cached, cacheFile, fromCache: true };
  }
  let skipped = 0;
  const file = spec.kind === "tasks" ? undefined : spec.path;
  const skip: Skip = (message, line) => {
    skipped++;
    opts.onWarning({ source: spec.label, file, line, message });
  };
  const { docLens, tokens } = await tokenizeDocs(docs(skip), opts.tokenizer, skip, file ?? spec.label);
  if (docLens.length === 0) throw noDocuments(spec, skipped);
  const data = { docLens, tokens, skipped };
  if (cacheFile !== undefined) await saveCache(cacheFile, identity, stamp, data, spec, opts);
  return { spec, identity, stamp, ...data, cacheFile, fromCache: false };
}

/** Writes the cache; a cache that cannot be written is a warning (the run goes on, and tokenizes next time). */
async function saveCache(
  cacheFile: string,
  identity: CacheIdentity,
  stamp: CacheStamp,
  data: CachedTokens,
  spec: SourceSpec,
  opts: SourceOptions,
): Promise<void> {
  try {
    await Deno.mkdir(opts.cacheDir!, { recursive: true });
    await writeCache(cacheFile, identity, stamp, opts.tokenizer.name, data);
  } catch (e) {
    opts.onWarning({
      source: spec.label,
      message: `cannot write the token cache ${cacheFile}: ${(e as Error).message}`,
    });
  }
}

/** What the source's ids depend on, its stamp, and its documents (read only when called). */
async function describe(spec: SourceSpec, opts: SourceOptions): Promise<{
  identity: CacheIdentity;
  stamp: CacheStamp;
  docs: (skip: Skip) => AsyncIterable<Doc> | Iterable<Doc>;
}> {
  const tokenizer = opts.fingerprint;
  if (spec.kind === "tasks") {
    const paragraphs = await taskParagraphs(spec, opts);
    const sampler = new TaskSampler(spec.tasks, opts.seed, paragraphs);
    const identity = {
      kind: "tasks",
      source: spec.label,
      tokenizer,
      seed: opts.seed,
      chat: opts.chat,
      paragraphs: await paragraphsDigest(paragraphs),
    };
    return { identity, stamp: null, docs: () => taskDocs(sampler, spec.count, opts.chat) };
  }
  const path = resolve(spec.path);
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch (e) {
    throw new DataError(`cannot read --data ${spec.path}: ${(e as Error).message}`, "check the path");
  }
  if (!stat.isFile) {
    throw new DataError(`--data ${spec.path} is not a file`, "give each file with its own --data");
  }
  const docSep = spec.kind === "text" ? opts.docSep ?? null : null;
  const identity = { kind: spec.kind, source: path, tokenizer, docSep, maxDocChars: opts.maxDocChars };
  const stamp = { size: stat.size, mtimeMs: stat.mtime?.getTime() ?? 0 };
  return { identity, stamp, docs: (skip) => fileDocs(spec.kind as "text" | "jsonl", spec.path, opts, skip) };
}

async function* fileDocs(
  kind: "text" | "jsonl",
  path: string,
  opts: SourceOptions,
  skip: Skip,
): AsyncGenerator<Doc> {
  const progress = opts.onProgress && ((p: ReadProgress) => opts.onProgress!({ ...p, source: path }));
  const chunks = readChunks(path, opts.chunkBytes, progress);
  if (kind === "text") {
    for await (const piece of textDocuments(chunks, opts.docSep, opts.maxDocChars)) {
      yield { kind: "piece", ...piece };
    }
    return;
  }
  for await (const { line, text } of lines(chunks, opts.maxDocChars)) {
    if (text === null) {
      skip(`the line is longer than ${opts.maxDocChars} characters`, line);
      continue;
    }
    const doc = parseJsonlLine(text);
    if (doc === null) continue;
    if ("problem" in doc) skip(doc.problem, line);
    else if (doc.kind === "text") yield { kind: "piece", text: doc.text, first: true, last: true };
    else yield { kind: "chat", messages: doc.messages, line };
  }
}

function* taskDocs(sampler: TaskSampler, count: number, chat: boolean): Generator<Doc> {
  for (const s of sampler.samples(count)) {
    if (chat) {
      const messages = [{ role: "user", content: s.instruction }, { role: "assistant", content: s.answer }];
      yield { kind: "chat", messages };
    } else {
      // The raw layout buildPrompt gives (instruction, blank line), then the answer.
      yield { kind: "piece", text: `${s.instruction}\n\n${s.answer}`, first: true, last: true };
    }
  }
}

async function tokenizeDocs(
  docs: AsyncIterable<Doc> | Iterable<Doc>,
  tok: TextTokenizer,
  skip: Skip,
  where: string,
): Promise<{ docLens: Uint32Array; tokens: Uint32Array }> {
  const tokens = new U32Buffer();
  const lens = new U32Buffer();
  let docLen = 0;
  for await (const doc of docs) {
    let ids: number[];
    if (doc.kind === "piece") {
      ids = encodePiece(tok, doc.text, doc.first, doc.last);
    } else {
      if (!tok.hasChatTemplate) throw noTemplate(tok, where, doc.line);
      try {
        ids = encodeChatDocument(tok, doc.messages);
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        skip(`the chat template refused it: ${e.message}`, doc.line);
        continue;
      }
    }
    tokens.push(ids);
    docLen += ids.length;
    if (doc.kind === "chat" || doc.last) {
      lens.pushOne(docLen);
      docLen = 0;
    }
  }
  return { docLens: lens.finish(), tokens: tokens.finish() };
}

/** Paragraphs for text tasks: the file after @ (plain text or JSONL `text`), else the bundled ones. */
async function taskParagraphs(
  spec: Extract<SourceSpec, { kind: "tasks" }>,
  opts: SourceOptions,
): Promise<string[]> {
  if (spec.paragraphs === undefined) return [...BUNDLED_PARAGRAPHS];
  if (!spec.tasks.some((t) => t === "copy" || t === "continue")) return [];
  const kind = /\.(jsonl|ndjson)$/i.test(spec.paragraphs) ? "jsonl" : "text";
  const out: string[] = [];
  const skip: Skip = (message, line) =>
    opts.onWarning({ source: spec.label, file: spec.paragraphs, line, message });
  for await (const doc of fileDocs(kind, spec.paragraphs, opts, skip)) {
    if (doc.kind === "piece" && doc.first && doc.last) out.push(doc.text);
    if (out.length >= MAX_TASK_PARAGRAPHS) break;
  }
  return out;
}

function noTemplate(tok: TextTokenizer, where: string, line: number | undefined): DataError {
  return new DataError(
    `${where}${line === undefined ? "" : ` line ${line}`} is a chat, but ${tok.name} has no chat template`,
    'give such lines as {"text": ...}, or train a model whose tokenizer_config.json has a chat_template',
  );
}

function noDocuments(spec: SourceSpec, skipped: number): DataError {
  const why = skipped > 0 ? `all ${skipped} records were skipped (see the warnings)` : "it is empty";
  const fix = spec.kind === "jsonl"
    ? 'give one {"text": "..."} or {"messages": [{"role": ..., "content": ...}]} object per line'
    : "give a text file with documents separated by blank lines (or by --doc-sep)";
  return new DataError(`--data ${spec.label} has no usable document: ${why}`, fix);
}
