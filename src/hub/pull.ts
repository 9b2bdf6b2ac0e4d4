/**
 * `pull`: downloads a Hugging Face model repo into the standard Hugging Face cache, laid out exactly as
 * huggingface_hub lays it out (see ./cache.ts), so Python tools reuse what flexidepth fetched and the
 * other way round.
 *
 * The steps: list the repo at a revision (./api.ts), choose the files flexidepth reads, plan what the
 * cache lacks (./snapshot.ts), download each blob with resume and verification (./download.ts), link it
 * into the snapshot, and write the ref last.
 */

import { join } from "node:path";
import { ProgressBar } from "../ui/progress.ts";
import { hubCacheDir, HubError, repoCacheDir, type RepoType } from "./cache.ts";
import { type FileMeta, fileMeta, type HubContext, hubContext, hubFetch, listRepo } from "./api.ts";
import {
  checkRelativePath,
  existingPointer,
  linkIntoSnapshot,
  prepareStorage,
  type RepoStorage,
  sizeOf,
  writeRef,
} from "./snapshot.ts";
import { downloadBlob } from "./download.ts";
import { formatBytes } from "../util/format.ts";

export interface PullOptions {
  /** "ORG/NAME" */
  repo: string;
  /** a model (default) or a dataset repo (evaluation sets, read as parquet by `flexidepth eval`) */
  type?: RepoType;
  /** branch, tag or commit (default "main") */
  revision?: string;
  /** every file of the repo, not only the ones flexidepth reads */
  all?: boolean;
  /** default: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub */
  cacheDir?: string;
  /** default: $HF_ENDPOINT, else https://huggingface.co */
  endpoint?: string;
  /** default: $HF_TOKEN, else the token file `hf auth login` writes; "" = none */
  token?: string;
  /** times an interrupted file download is resumed automatically before pull gives up (default 3) */
  retries?: number;
  /** status lines (default: none) */
  log?: (line: string) => void;
}

export interface PulledFile {
  path: string;
  size: number;
  /** blob name: sha256 for LFS files, git sha1 for the others */
  etag: string;
  lfs: boolean;
  /** false when it was in the cache already */
  downloaded: boolean;
}

export interface PullResult {
  repo: string;
  revision: string;
  commit: string;
  snapshotDir: string;
  files: PulledFile[];
  /** bytes received over the network by this pull */
  bytesDownloaded: number;
}

/** Top-level files a flexidepth checkpoint folder uses (see src/model/checkpoint.ts), plus its card and licence. */
const NEEDED: RegExp[] = [
  /^config\.json$/,
  /^generation_config\.json$/,
  /^tokenizer\.json$/,
  /^tokenizer_config\.json$/,
  /^[^/]+\.safetensors$/,
  /^model\.safetensors\.index\.json$/,
  /^chat_template\.jinja$/,
  /^README(\.md)?$/i,
  /^LICEN[CS]E(\.[A-Za-z]+)?$/i,
];

export function isNeededFile(path: string): boolean {
  return NEEDED.some((re) => re.test(path));
}

/** Files of a dataset repo that `flexidepth eval` reads: its parquet files, plus the card and licence. */
const DATASET_NEEDED: RegExp[] = [/\.parquet$/, /^README(\.md)?$/i, /^LICEN[CS]E(\.[A-Za-z]+)?$/i];

/** Downloads `repo` at `revision` into the Hugging Face cache; returns its snapshot folder and files. */
export async function pull(opts: PullOptions): Promise<PullResult> {
  const log = opts.log ?? (() => {});
  const ctx = await hubContext(opts);
  const fetcher = hubFetch(ctx);
  const listing = await listRepo(ctx, fetcher);
  const commit = listing.commit;
  const wanted = ctx.type === "dataset"
    ? chooseDatasetFiles(ctx.repo, listing.files, opts.all ?? false)
    : chooseFiles(ctx.repo, listing.files, opts.all ?? false);
  const cacheDir = opts.cacheDir ?? hubCacheDir();
  const storage = await prepareStorage(repoCacheDir(ctx.repo, cacheDir, ctx.type), commit);
  const plan = await planDownloads(ctx, fetcher, storage, commit, wanted);
  log(planLine(ctx.repo, commit, wanted.length, plan));
  const downloaded = await downloadAll(ctx, fetcher, storage, plan, opts.retries ?? 3, log);
  // The ref is written last, so an interrupted pull never makes `--model ORG/NAME` find half a model.
  await writeRef(storage, ctx.revision, commit);
  return {
    repo: ctx.repo,
    revision: ctx.revision,
    commit,
    snapshotDir: storage.snapshotDir,
    files: [...plan.cached, ...downloaded.files],
    bytesDownloaded: downloaded.bytes,
  };
}

/** The files to fetch (all, or those flexidepth reads); a repo that is no checkpoint is refused. */
function chooseFiles(repo: string, files: string[], all: boolean): string[] {
  const wanted = all ? files : files.filter(isNeededFile);
  if (!all && !wanted.some((f) => f.endsWith(".safetensors"))) {
    const listed = files.slice(0, 8).join(", ") + (files.length > 8 ? ", …" : "");
    throw new HubError(
      `${repo} has no .safetensors weights (${files.length} files: ${listed})`,
      "flexidepth runs Hugging Face safetensors checkpoints; pass --all to download the repo anyway",
    );
  }
  if (!all && !wanted.includes("config.json")) {
    throw new HubError(
      `${repo} has no config.json`,
      "flexidepth runs Hugging Face transformers checkpoints; pass --all to download the repo anyway",
    );
  }
  wanted.forEach(checkRelativePath);
  return wanted;
}

/** A dataset's parquet files (or all); one without any is refused with where its parquet copy lives. */
function chooseDatasetFiles(repo: string, files: string[], all: boolean): string[] {
  const wanted = all ? files : files.filter((f) => DATASET_NEEDED.some((re) => re.test(f)));
  if (!all && !wanted.some((f) => f.endsWith(".parquet"))) {
    throw new HubError(
      `dataset ${repo} has no parquet files at this revision`,
      "the hub keeps a parquet copy of script-based datasets: pull --revision refs/convert/parquet",
    );
  }
  wanted.forEach(checkRelativePath);
  return wanted;
}

interface DownloadPlan {
  /** in the cache already */
  cached: PulledFile[];
  /** to download */
  todo: FileMeta[];
  /** bytes of `todo` already in `.incomplete` files (a download resumes from them) */
  partial: number;
}

/** What is there already: a pointer in this snapshot (no request, as huggingface_hub), or the blob. */
async function planDownloads(
  ctx: HubContext,
  fetcher: typeof fetch,
  storage: RepoStorage,
  commit: string,
  wanted: string[],
): Promise<DownloadPlan> {
  const plan: DownloadPlan = { cached: [], todo: [], partial: 0 };
  for (const path of wanted) {
    const pointed = await existingPointer(storage, path);
    if (pointed) {
      plan.cached.push({ path, ...pointed, downloaded: false });
      continue;
    }
    const meta = await fileMeta(ctx, fetcher, commit, path);
    const blob = join(storage.blobs, meta.etag);
    if ((await sizeOf(blob)) === meta.size) {
      await linkIntoSnapshot(blob, join(storage.snapshotDir, path));
      plan.cached.push({ path, size: meta.size, etag: meta.etag, lfs: meta.lfs, downloaded: false });
    } else {
      plan.todo.push(meta);
      plan.partial += Math.min((await sizeOf(`${blob}.incomplete`)) ?? 0, meta.size);
    }
  }
  return plan;
}

const totalSize = (plan: DownloadPlan) => plan.todo.reduce((a, m) => a + m.size, 0);

/** The status line before downloading: how many files, how much is left to fetch. */
function planLine(repo: string, commit: string, fileCount: number, plan: DownloadPlan): string {
  const { todo, partial } = plan;
  return `pull ${repo}@${commit.slice(0, 10)}: ${fileCount} files, ` +
    (todo.length
      ? `${formatBytes(totalSize(plan) - partial)} to download${
        partial ? ` (resuming ${formatBytes(partial)} already here)` : ""
      }`
      : "all in the cache already");
}

/** Downloads the planned files one after another, each linked into the snapshot once verified. */
async function downloadAll(
  ctx: HubContext,
  fetcher: typeof fetch,
  storage: RepoStorage,
  plan: DownloadPlan,
  retries: number,
  log: (line: string) => void,
): Promise<{ files: PulledFile[]; bytes: number }> {
  const bar = new ProgressBar(`pull ${ctx.repo}`, totalSize(plan), "bytes");
  if (plan.partial) bar.advance(plan.partial);
  const files: PulledFile[] = [];
  let bytes = 0;
  for (const meta of plan.todo) {
    log(`  ${meta.path} (${formatBytes(meta.size)})`);
    const blob = join(storage.blobs, meta.etag);
    // (The bar only counts up; after a rare restart from 0 — a server ignoring Range — it runs ahead.)
    bytes += await downloadBlob(ctx, fetcher, meta, blob, retries, (n) => {
      if (n > 0) bar.advance(n);
    }, log);
    await linkIntoSnapshot(blob, join(storage.snapshotDir, meta.path));
    files.push({ path: meta.path, size: meta.size, etag: meta.etag, lfs: meta.lfs, downloaded: true });
  }
  bar.finish();
  return { files, bytes };
}
