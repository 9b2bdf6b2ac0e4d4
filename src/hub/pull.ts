/**
 * `pull`: downloads a Hugging Face model repo into the standard Hugging Face cache, laid out exactly as
 * huggingface_hub lays it out (see ./cache.ts), so Python tools reuse what flexidepth fetched and the
 * other way round.
 *
 * The listing comes from `@huggingface/hub`'s `modelInfo` (`GET /api/models/{repo}/revision/{rev}`:
 * the commit `sha` and the file names). The per-file metadata and the bytes are fetched with plain
 * `fetch`, because the library cannot do what a large download needs here:
 *  - its `downloadFile` / `downloadFileToCacheDir` fetch a file whole (no Range request, so no resume of
 *    a partial `.incomplete` file) and verify nothing;
 *  - its `fileDownloadInfo` follows redirects, so for LFS files it reads the ETag of the CDN's answer
 *    instead of the hub's `X-Linked-Etag` (the sha256 we verify against).
 * Like huggingface_hub we HEAD `/{repo}/resolve/{commit}/{file}` without following the redirect to the
 * CDN (its `X-Linked-Etag` / `X-Linked-Size` name the blob), then GET with `Range: bytes=<have>-` into
 * `blobs/<etag>.incomplete`, check size and (for LFS files) sha256, and rename to `blobs/<etag>`.
 * The token goes only to the hub: fetch drops `Authorization` when a redirect leaves its origin.
 */

import { createHash } from "node:crypto";
import { dirname, join, relative } from "node:path";
import { HubApiError, modelInfo } from "@huggingface/hub";
import { ProgressBar } from "../ui/progress.ts";
import { hfHome, hubCacheDir, HubError, isCommitHash, repoCacheDir } from "./cache.ts";
import { formatBytes } from "../util/format.ts";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

export interface PullOptions {
  /** "ORG/NAME" */
  repo: string;
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

/** The token: $HF_TOKEN, else the file `hf auth login` / `huggingface-cli login` saved. */
async function defaultToken(): Promise<string> {
  const env = Deno.env.get("HF_TOKEN") || Deno.env.get("HUGGING_FACE_HUB_TOKEN");
  if (env) return env.trim();
  const path = Deno.env.get("HF_TOKEN_PATH") || join(hfHome(), "token");
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return "";
  }
}

/** Etags come quoted and maybe weak (`W/"…"`); huggingface_hub names blobs by the bare value. */
function normalizeEtag(etag: string | null): string | null {
  if (!etag) return null;
  return etag.replace(/^W\//, "").replace(/^"|"$/g, "");
}

function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/** A repo file name from the hub, refused if it would escape the snapshot folder (huggingface_hub#4540). */
function checkRelativePath(path: string): void {
  const parts = path.split(/[\\/]/);
  if (!path || path.startsWith("/") || /^[A-Za-z]:/.test(path) || parts.some((p) => p === ".." || p === "")) {
    throw new HubError(`the hub listed a file with an unsafe name: "${path}"`, "refusing to write it");
  }
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

/** A relative symlink snapshots/<commit>/<path> → ../../blobs/<etag>, as huggingface_hub makes it. */
async function linkIntoSnapshot(blob: string, pointer: string): Promise<void> {
  await Deno.mkdir(dirname(pointer), { recursive: true });
  await Deno.remove(pointer).catch(() => {});
  try {
    await Deno.symlink(relative(dirname(pointer), blob), pointer);
  } catch {
    // No symlinks here (Windows without developer mode): a copy, as huggingface_hub falls back to.
    await Deno.copyFile(blob, pointer);
  }
}

/** A CACHEDIR.TAG (https://bford.info/cachedir/) so backup tools skip the cache, as huggingface_hub writes. */
async function tagCacheDir(cacheDir: string): Promise<void> {
  const text = "Signature: 8a477f597d28d172789f06886806bc55\n" +
    "# This file is a cache directory tag (the Hugging Face cache; written by flexidepth pull).\n" +
    "# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n";
  await Deno.writeTextFile(join(cacheDir, "CACHEDIR.TAG"), text, { createNew: true }).catch(() => {});
}

interface HubContext {
  repo: string;
  revision: string;
  endpoint: string;
  token: string;
}

/** fetch for the hub: the token as a Bearer header; network failures become a HubError with the fix. */
function hubFetch(ctx: HubContext): typeof fetch {
  return async (input, init) => {
    const headers = new Headers(init?.headers);
    if (ctx.token) headers.set("Authorization", `Bearer ${ctx.token}`);
    try {
      return await fetch(input, { ...init, headers });
    } catch (err) {
      throw new HubError(
        `cannot reach ${ctx.endpoint} (${(err as Error).message})`,
        "check the network connection, or set HF_ENDPOINT to a reachable hub or mirror",
      );
    }
  };
}

/** A failed hub answer, as the error a user can act on. */
function httpError(
  ctx: HubContext,
  status: number,
  what: string,
  errorCode?: string | null,
  detail?: string,
) {
  const id = ctx.repo;
  const said = detail ? ` (${detail.slice(0, 200)})` : "";
  if (status === 401) {
    return ctx.token
      ? new HubError(
        `${ctx.endpoint} refused the token for ${id} (HTTP 401)${said}`,
        "check HF_TOKEN (a token from https://huggingface.co/settings/tokens) and the repo name",
      )
      : new HubError(
        `${id} was not found or needs a login (HTTP 401)${said}`,
        "check the name; for a gated or private model set HF_TOKEN to a token from https://huggingface.co/settings/tokens",
      );
  }
  if (status === 403) {
    return new HubError(
      `access to ${id} is denied (HTTP 403)${said}`,
      `it is gated: accept its terms on ${ctx.endpoint}/${id} with the account HF_TOKEN belongs to`,
    );
  }
  if (status === 404 && errorCode === "RevisionNotFound") {
    return new HubError(
      `${id} has no revision "${ctx.revision}"`,
      "check --revision (a branch, tag or commit)",
    );
  }
  if (status === 404) {
    return new HubError(`${what} not found on ${ctx.endpoint} (HTTP 404)${said}`, "check the repo name");
  }
  return new HubError(
    `${ctx.endpoint} answered HTTP ${status} for ${what}${said}`,
    "try again later (the pull resumes where it stopped)",
  );
}

/** The commit and file list of the repo at a revision (`@huggingface/hub` modelInfo). */
async function listRepo(
  ctx: HubContext,
  fetcher: typeof fetch,
): Promise<{ commit: string; files: string[] }> {
  let failed: Response | null = null;
  const recording: typeof fetch = async (input, init) => {
    const res = await fetcher(input, init);
    if (!res.ok) failed = res.clone();
    return res;
  };
  try {
    const info = await modelInfo({
      name: ctx.repo,
      revision: ctx.revision,
      hubUrl: ctx.endpoint,
      additionalFields: ["sha", "filePaths"],
      fetch: recording,
    });
    if (typeof info.sha !== "string" || !isCommitHash(info.sha) || !Array.isArray(info.filePaths)) {
      throw new HubError(
        `${ctx.endpoint} sent no commit or file list for ${ctx.repo}`,
        "check HF_ENDPOINT points at a Hugging Face hub",
      );
    }
    return { commit: info.sha, files: info.filePaths };
  } catch (err) {
    if (err instanceof HubApiError) {
      const res = failed as Response | null;
      throw httpError(
        ctx,
        err.statusCode,
        ctx.repo,
        res?.headers.get("X-Error-Code"),
        err.message.split(". URL:")[0],
      );
    }
    if (err instanceof HubError) throw err;
    throw new HubError(
      `${ctx.endpoint} sent an unexpected answer listing ${ctx.repo} (${(err as Error).message})`,
      "check HF_ENDPOINT points at a Hugging Face hub",
    );
  }
}

interface FileMeta {
  path: string;
  url: string;
  etag: string;
  size: number;
  lfs: boolean;
}

/** HEAD resolve/{commit}/{file}, not following the redirect to the CDN (it carries X-Linked-*). */
async function fileMeta(
  ctx: HubContext,
  fetcher: typeof fetch,
  commit: string,
  path: string,
): Promise<FileMeta> {
  const url = `${ctx.endpoint}/${ctx.repo}/resolve/${commit}/${encodePath(path)}`;
  let target = url;
  let res = await fetcher(target, {
    method: "HEAD",
    redirect: "manual",
    headers: { "Accept-Encoding": "identity" },
  });
  // Redirects that stay on the hub (a renamed repo) are followed, as huggingface_hub does; the one to
  // the CDN is not: the hub's answer carries the X-Linked-* headers.
  for (let hops = 0; hops < 5 && res.status >= 300 && res.status < 400; hops++) {
    const location = res.headers.get("Location");
    const next = location ? new URL(location, target) : null;
    if (!next || next.origin !== new URL(target).origin) break;
    target = next.href;
    res = await fetcher(target, {
      method: "HEAD",
      redirect: "manual",
      headers: { "Accept-Encoding": "identity" },
    });
  }
  if (res.status >= 400) {
    throw httpError(ctx, res.status, `${ctx.repo}/${path}`, res.headers.get("X-Error-Code"));
  }
  const linked = normalizeEtag(res.headers.get("X-Linked-Etag"));
  const etag = linked ?? normalizeEtag(res.headers.get("ETag"));
  const redirected = res.status >= 300 && res.status < 400;
  const size = Number(
    res.headers.get("X-Linked-Size") ?? (redirected ? null : res.headers.get("Content-Length")),
  );
  const repoCommit = res.headers.get("X-Repo-Commit");
  if (!etag || !/^[A-Za-z0-9_.-]+$/.test(etag) || !Number.isSafeInteger(size) || size < 0) {
    throw new HubError(
      `${ctx.endpoint} sent no usable ETag/size for ${ctx.repo}/${path}`,
      "check HF_ENDPOINT points at a Hugging Face hub (a proxy may be stripping headers)",
    );
  }
  if (repoCommit && repoCommit !== commit) {
    throw new HubError(
      `${ctx.repo}/${path} came from commit ${repoCommit}, not the listed ${commit}`,
      "the repo changed during the pull: run it again",
    );
  }
  // LFS files are named by their sha256 (64 hex digits); regular files by their git sha1.
  return { path, url, etag, size, lfs: /^[0-9a-f]{64}$/.test(etag) };
}

/** Feeds an existing partial file into the hash, so a resumed download is checked whole. */
async function hashPrefix(hash: ReturnType<typeof createHash>, path: string): Promise<void> {
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
}

class Interrupted extends Error {}

/**
 * One attempt at completing `incomplete` from its current size: GET with Range, append, hash.
 * Returns the bytes received; throws Interrupted when the connection drops before the end.
 */
async function downloadOnce(
  ctx: HubContext,
  fetcher: typeof fetch,
  meta: FileMeta,
  incomplete: string,
  onBytes: (n: number) => void,
): Promise<{ received: number; digest: string }> {
  let have = (await sizeOf(incomplete)) ?? 0;
  if (have > meta.size) {
    await Deno.remove(incomplete);
    have = 0;
  }
  const headers: Record<string, string> = { "Accept-Encoding": "identity" };
  if (have > 0) headers.Range = `bytes=${have}-`;
  const res = have > 0 && have === meta.size
    ? null // complete already (a pull stopped between the last byte and the rename)
    : await fetcher(meta.url, { headers });
  let received = 0;
  const hash = createHash("sha256");
  if (res) {
    if (have > 0 && res.status === 200) {
      // The server ignored the Range header: start over.
      onBytes(-have);
      have = 0;
      await Deno.truncate(incomplete, 0).catch(() => {});
    } else if (have > 0 && res.status === 416) {
      await res.body?.cancel();
      await Deno.remove(incomplete);
      throw new Interrupted("the server refused to resume (HTTP 416); the partial file was removed");
    } else if (!res.ok) {
      await res.body?.cancel();
      throw httpError(ctx, res.status, `${ctx.repo}/${meta.path}`, res.headers.get("X-Error-Code"));
    } else if (have > 0) {
      const start = Number(/^bytes (\d+)-/.exec(res.headers.get("Content-Range") ?? "")?.[1]);
      if (res.status !== 206 || start !== have) {
        await res.body?.cancel();
        await Deno.remove(incomplete);
        throw new Interrupted(
          `the server answered a resume with the wrong range; the partial file was removed`,
        );
      }
    }
  }
  if (have > 0) await hashPrefix(hash, incomplete);
  using file = await Deno.open(incomplete, { write: true, create: true, append: true });
  const reader = res?.body?.getReader();
  while (reader) {
    let next: ReadableStreamReadResult<Uint8Array>;
    try {
      next = await reader.read();
    } catch (err) {
      // Only a failed read is an interruption to resume; a failed write (disk full) is thrown as is.
      throw new Interrupted((err as Error).message);
    }
    if (next.done) break;
    await writeAll(file, next.value);
    hash.update(next.value);
    received += next.value.length;
    onBytes(next.value.length);
  }
  const total = have + received;
  if (total < meta.size) throw new Interrupted(`the connection closed after ${formatBytes(total)}`);
  return { received, digest: hash.digest("hex") };
}

/** Downloads one blob with resume and verification; returns the bytes received. */
async function downloadBlob(
  ctx: HubContext,
  fetcher: typeof fetch,
  meta: FileMeta,
  blob: string,
  retries: number,
  onBytes: (n: number) => void,
  log: (line: string) => void,
): Promise<number> {
  const incomplete = `${blob}.incomplete`;
  let received = 0;
  for (let attempt = 0;; attempt++) {
    try {
      const done = await downloadOnce(ctx, fetcher, meta, incomplete, (n) => {
        if (n > 0) received += n;
        onBytes(n);
      });
      const size = (await sizeOf(incomplete)) ?? 0;
      if (size !== meta.size) {
        await Deno.remove(incomplete);
        throw new HubError(
          `${ctx.repo}/${meta.path} downloaded as ${size} bytes, but the hub says ${meta.size}; the bad copy was deleted`,
          "run the pull again",
        );
      }
      if (meta.lfs && done.digest !== meta.etag) {
        await Deno.remove(incomplete);
        throw new HubError(
          `checksum mismatch for ${ctx.repo}/${meta.path}: its sha256 is ${done.digest}, the hub says ${meta.etag}; ` +
            "the corrupt download was deleted",
          "run the pull again; if it keeps failing, the hub or a proxy is serving bad data",
        );
      }
      await Deno.rename(incomplete, blob);
      return received;
    } catch (err) {
      if (!(err instanceof Interrupted)) throw err;
      const have = (await sizeOf(incomplete)) ?? 0;
      if (attempt >= retries) {
        throw new HubError(
          `download of ${ctx.repo}/${meta.path} was interrupted after ${formatBytes(have)} of ${
            formatBytes(meta.size)
          } ` +
            `(${err.message})`,
          `run the same pull again to resume from there: flexidepth pull ${ctx.repo}` +
            (ctx.revision !== "main" ? ` --revision ${ctx.revision}` : ""),
        );
      }
      log(`  ${meta.path}: interrupted at ${formatBytes(have)} (${err.message}); resuming`);
      await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
    }
  }
}

/** Downloads `repo` at `revision` into the Hugging Face cache; returns its snapshot folder and files. */
export async function pull(opts: PullOptions): Promise<PullResult> {
  const log = opts.log ?? (() => {});
  const ctx: HubContext = {
    repo: opts.repo,
    revision: opts.revision ?? "main",
    endpoint: (opts.endpoint ?? Deno.env.get("HF_ENDPOINT") ?? DEFAULT_ENDPOINT).replace(/\/+$/, ""),
    token: opts.token ?? await defaultToken(),
  };
  const fetcher = hubFetch(ctx);
  const storage = repoCacheDir(ctx.repo, opts.cacheDir ?? hubCacheDir());

  const listing = await listRepo(ctx, fetcher);
  const commit = listing.commit;
  const wanted = opts.all ? listing.files : listing.files.filter(isNeededFile);
  if (!opts.all && !wanted.some((f) => f.endsWith(".safetensors"))) {
    throw new HubError(
      `${ctx.repo} has no .safetensors weights (${listing.files.length} files: ${
        listing.files.slice(0, 8).join(", ")
      }${listing.files.length > 8 ? ", …" : ""})`,
      "flexidepth runs Hugging Face safetensors checkpoints; pass --all to download the repo anyway",
    );
  }
  if (!opts.all && !wanted.includes("config.json")) {
    throw new HubError(
      `${ctx.repo} has no config.json`,
      "flexidepth runs Hugging Face transformers checkpoints; pass --all to download the repo anyway",
    );
  }
  wanted.forEach(checkRelativePath);
  const snapshotDir = join(storage, "snapshots", commit);
  const blobs = join(storage, "blobs");
  await Deno.mkdir(blobs, { recursive: true });
  await Deno.mkdir(snapshotDir, { recursive: true });
  await tagCacheDir(dirname(storage));

  // What is there already: a pointer in this snapshot (no request, as huggingface_hub), or the blob.
  const files: PulledFile[] = [];
  const todo: FileMeta[] = [];
  let partial = 0;
  for (const path of wanted) {
    const pointer = join(snapshotDir, path);
    if ((await sizeOf(pointer)) !== null) {
      const target = await Deno.realPath(pointer);
      const etag = target.startsWith(await Deno.realPath(blobs)) ? target.split(/[\\/]/).pop()! : "";
      files.push({
        path,
        size: (await sizeOf(pointer))!,
        etag,
        lfs: /^[0-9a-f]{64}$/.test(etag),
        downloaded: false,
      });
      continue;
    }
    const meta = await fileMeta(ctx, fetcher, commit, path);
    const blob = join(blobs, meta.etag);
    if ((await sizeOf(blob)) === meta.size) {
      await linkIntoSnapshot(blob, pointer);
      files.push({ path, size: meta.size, etag: meta.etag, lfs: meta.lfs, downloaded: false });
    } else {
      todo.push(meta);
      partial += Math.min((await sizeOf(`${blob}.incomplete`)) ?? 0, meta.size);
    }
  }

  const total = todo.reduce((a, m) => a + m.size, 0);
  log(
    `pull ${ctx.repo}@${commit.slice(0, 10)}: ${wanted.length} files, ` +
      (todo.length
        ? `${formatBytes(total - partial)} to download${
          partial ? ` (resuming ${formatBytes(partial)} already here)` : ""
        }`
        : "all in the cache already"),
  );
  const bar = new ProgressBar(`pull ${ctx.repo}`, total, "bytes");
  if (partial) bar.advance(partial);
  let bytesDownloaded = 0;
  for (const meta of todo) {
    log(`  ${meta.path} (${formatBytes(meta.size)})`);
    const blob = join(blobs, meta.etag);
    // (The bar only counts up; after a rare restart from 0 — a server ignoring Range — it runs ahead.)
    bytesDownloaded += await downloadBlob(ctx, fetcher, meta, blob, opts.retries ?? 3, (n) => {
      if (n > 0) bar.advance(n);
    }, log);
    await linkIntoSnapshot(blob, join(snapshotDir, meta.path));
    files.push({ path: meta.path, size: meta.size, etag: meta.etag, lfs: meta.lfs, downloaded: true });
  }
  bar.finish();

  // The ref is written last, so an interrupted pull never makes `--model ORG/NAME` find half a model.
  if (ctx.revision !== commit) {
    const refPath = join(storage, "refs", ctx.revision);
    await Deno.mkdir(dirname(refPath), { recursive: true });
    await Deno.writeTextFile(refPath, commit);
  }
  return { repo: ctx.repo, revision: ctx.revision, commit, snapshotDir, files, bytesDownloaded };
}
