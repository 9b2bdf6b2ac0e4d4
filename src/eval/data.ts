/**
 * Where evaluation documents come from: a folder of local files (the layouts of shared/data/eval: JSON, JSON
 * Lines, CSV), or a Hugging Face dataset repo in the standard cache, whose splits are parquet files
 * (`datasets--ORG--NAME/snapshots/REV/**.parquet`, read with hyparquet). The folder is --data, else
 * $FLEXIDEPTH_DATA, else ../shared/data/eval when it exists; a task whose file is not there is looked up in
 * the cache (except under an explicit --data, which must hold it).
 */

import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { parquetReadObjects } from "hyparquet";
import { parse as parseCsv } from "csv-parse/sync";
import { hubCacheDir, repoCacheDir } from "../hub/cache.ts";
import { EvalError } from "./errors.ts";

export type Row = Record<string, unknown>;

export interface DataLocator {
  /** Folder of local evaluation files; null when none was given or found. */
  dir: string | null;
  /** Given by --data or $FLEXIDEPTH_DATA: a file missing there is an error, not a hub lookup. */
  explicit: boolean;
  /** The Hugging Face cache (datasets--ORG--NAME folders). */
  cacheDir: string;
}

/** One split of a hub dataset: `config` names a subset folder (ARC-Easy, winogrande_xl, main, all). */
export interface HubSplit {
  repo: string;
  config?: string;
  split: string;
}

/** The default folder, relative to where the command runs (never a path of one machine). */
export const DEFAULT_DATA_DIR = "../shared/data/eval";

async function isDir(path: string): Promise<boolean> {
  return await Deno.stat(path).then((s) => s.isDirectory, () => false);
}

async function isFile(path: string): Promise<boolean> {
  return await Deno.stat(path).then((s) => s.isFile, () => false);
}

export async function locateData(flag?: string, cacheDir = hubCacheDir()): Promise<DataLocator> {
  const given = flag ?? Deno.env.get("FLEXIDEPTH_DATA");
  if (given !== undefined && given !== "") {
    if (!(await isDir(given))) {
      throw new EvalError(
        `the data folder ${given} (${flag !== undefined ? "--data" : "$FLEXIDEPTH_DATA"}) does not exist`,
        "give a folder holding the evaluation files, or leave it out to read datasets from the Hugging Face cache",
      );
    }
    return { dir: given, explicit: true, cacheDir };
  }
  return { dir: (await isDir(DEFAULT_DATA_DIR)) ? DEFAULT_DATA_DIR : null, explicit: false, cacheDir };
}

/** A local file of the data folder, or null when the task should come from the hub. */
export async function localFile(loc: DataLocator, name: string, hub: HubSplit): Promise<string | null> {
  if (loc.dir === null) return null;
  const path = join(loc.dir, name);
  if (await isFile(path) || await isDir(path)) return path;
  if (loc.explicit) {
    throw new EvalError(
      `${name} is not in the data folder ${loc.dir}`,
      `put it there (layouts: ../shared/data/README.md), or leave out --data to read ${hub.repo} from the Hugging Face cache`,
    );
  }
  return null;
}

async function listFiles(dir: string, root = dir, out: string[] = []): Promise<string[]> {
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    // Snapshot entries are symlinks into blobs/: follow them.
    const st = await Deno.stat(path).catch(() => null);
    if (st?.isDirectory) await listFiles(path, root, out);
    else if (st?.isFile) out.push(relative(root, path).split("\\").join("/"));
  }
  return out;
}

/**
 * The parquet files of one split in a snapshot: `CONFIG/SPLIT-00000-of-00001.parquet` (the datasets
 * library's layout), `CONFIG/SPLIT/0000.parquet` (the hub's refs/convert/parquet branch) or
 * `data/SPLIT-….parquet` (no config folder).
 */
export function splitFiles(files: string[], split: HubSplit): string[] {
  const ofSplit = files.filter((f) => {
    if (!f.endsWith(".parquet")) return false;
    const parts = f.split("/");
    const name = parts[parts.length - 1];
    return parts.slice(0, -1).includes(split.split) || name === `${split.split}.parquet` ||
      name.startsWith(`${split.split}-`);
  });
  const config = split.config;
  if (config) {
    const inConfig = ofSplit.filter((f) => f.split("/").slice(0, -1).includes(config));
    // "default" is the config of datasets with only one, often not a folder of its own.
    if (inConfig.length > 0 || config !== "default") return inConfig.sort();
  }
  return ofSplit.sort();
}

/** Snapshot folders of a cached dataset, the one refs/main points at first. */
async function snapshots(repo: string, cacheDir: string): Promise<string[]> {
  const root = repoCacheDir(repo, cacheDir, "dataset");
  const main = await Deno.readTextFile(join(root, "refs", "main")).then((s) => s.trim(), () => null);
  const all: string[] = [];
  try {
    for await (const e of Deno.readDir(join(root, "snapshots"))) all.push(e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  all.sort((a, b) => (a === main ? -1 : b === main ? 1 : a < b ? -1 : 1));
  return all.map((c) => join(root, "snapshots", c));
}

/** The parquet files of a split in the cache, or null when the dataset (or that split) is not there. */
export async function findHubSplit(split: HubSplit, cacheDir: string): Promise<string[] | null> {
  for (const snap of await snapshots(split.repo, cacheDir)) {
    const found = splitFiles(await listFiles(snap), split);
    if (found.length > 0) return found.map((f) => join(snap, f));
  }
  return null;
}

export function hubLabel(split: HubSplit): string {
  return `${split.repo}${split.config ? `/${split.config}` : ""} (${split.split})`;
}

/** Rows of a split from the cache; a missing one is an EvalError with the pull command. */
export async function readHubSplit(split: HubSplit, loc: DataLocator, localName?: string): Promise<Row[]> {
  const files = await findHubSplit(split, loc.cacheDir);
  if (!files) {
    const local = localName && loc.dir === null
      ? `, or give --data DIR holding ${localName}`
      : localName
      ? ` (or put ${localName} in ${loc.dir})`
      : "";
    throw new EvalError(
      `${hubLabel(split)} is not in the Hugging Face cache (${loc.cacheDir})`,
      `run: flexidepth pull --dataset ${split.repo}${local}`,
    );
  }
  const rows: Row[] = [];
  for (const f of files) rows.push(...await readParquet(f));
  return rows;
}

/** INT64 columns come as BigInt, which JSON and templates cannot take: as numbers (ids, labels, counts). */
function plain(v: unknown): unknown {
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object" && !(v instanceof Date) && !(v instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

export async function readParquet(path: string): Promise<Row[]> {
  const bytes = await Deno.readFile(path);
  try {
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    return (await parquetReadObjects({ file })).map(plain) as Row[];
  } catch (e) {
    throw new EvalError(
      `${path} is not a readable parquet file (${(e as Error).message})`,
      "download it again",
    );
  }
}

export async function readJson(path: string): Promise<unknown> {
  const text = await Deno.readTextFile(path);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new EvalError(`${path} is not valid JSON (${(e as Error).message})`, "fix or replace the file");
  }
}

export async function readJsonl(path: string): Promise<Row[]> {
  const lines = (await Deno.readTextFile(path)).split("\n");
  const rows: Row[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      rows.push(JSON.parse(line));
    } catch {
      throw new EvalError(
        `${path} line ${i + 1} is not valid JSON`,
        "fix that line (one JSON object a line)",
      );
    }
  });
  return rows;
}

/** CSV: rows as arrays (MMLU's files have no header), or as objects keyed by the header row. */
export async function readCsv(path: string, header: boolean): Promise<string[][] | Row[]> {
  try {
    return parseCsv(await Deno.readTextFile(path), { columns: header, relax_column_count: false });
  } catch (e) {
    throw new EvalError(
      `${path} is not a readable CSV file (${(e as Error).message})`,
      "fix or replace the file",
    );
  }
}

/** sha256 of the documents as JSON: what run.json keeps so a resumed run cannot mix data. */
export function digestOf(docs: unknown): string {
  return createHash("sha256").update(JSON.stringify(docs)).digest("hex");
}
