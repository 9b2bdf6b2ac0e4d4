/**
 * The Hugging Face Hub's HTTP API as `pull` uses it: the token, a fetch that sends it, failed answers as
 * HubErrors with their fix, the repo listing and the metadata of one file.
 *
 * The listing comes from `@huggingface/hub`'s `modelInfo` (`GET /api/models/{repo}/revision/{rev}`:
 * the commit `sha` and the file names). The per-file metadata is fetched with plain `fetch`, because the
 * library's `fileDownloadInfo` follows redirects, so for LFS files it reads the ETag of the CDN's answer
 * instead of the hub's `X-Linked-Etag` (the sha256 we verify against). Like huggingface_hub we HEAD
 * `/{repo}/resolve/{commit}/{file}` without following the redirect to the CDN.
 */

import { join } from "node:path";
import { datasetInfo, HubApiError, modelInfo } from "@huggingface/hub";
import { hfHome, HubError, isCommitHash, isLfsEtag, type RepoType } from "./cache.ts";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

/** Which repo at which revision, on which hub, with which token ("" = none). */
export interface HubContext {
  repo: string;
  type: RepoType;
  revision: string;
  endpoint: string;
  token: string;
}

/** The context of a pull: the defaults for what the caller left out ($HF_ENDPOINT, $HF_TOKEN, "main"). */
export async function hubContext(
  opts: { repo: string; type?: RepoType; revision?: string; endpoint?: string; token?: string },
): Promise<HubContext> {
  return {
    repo: opts.repo,
    type: opts.type ?? "model",
    revision: opts.revision ?? "main",
    endpoint: (opts.endpoint ?? Deno.env.get("HF_ENDPOINT") ?? DEFAULT_ENDPOINT).replace(/\/+$/, ""),
    token: opts.token ?? await defaultToken(),
  };
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

/**
 * fetch for the hub: the token as a Bearer header; network failures become a HubError with the fix.
 * The token goes only to the hub: fetch drops `Authorization` when a redirect leaves its origin.
 */
export function hubFetch(ctx: HubContext): typeof fetch {
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
export function httpError(
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

/** The commit and file list of a repo: `@huggingface/hub`'s modelInfo, or datasetInfo (siblings). */
async function repoInfo(
  ctx: HubContext,
  fetch: typeof globalThis.fetch,
): Promise<{ sha?: unknown; files?: unknown }> {
  const common = { name: ctx.repo, revision: ctx.revision, hubUrl: ctx.endpoint, fetch };
  if (ctx.type === "dataset") {
    // The hub expands `siblings` for datasets as for models; the library's type lists fewer keys.
    const additionalFields = ["sha", "siblings"] as unknown as "sha"[];
    const info = await datasetInfo({ ...common, additionalFields });
    const siblings = (info as { siblings?: { rfilename: string }[] }).siblings;
    return { sha: info.sha, files: Array.isArray(siblings) ? siblings.map((s) => s.rfilename) : undefined };
  }
  const info = await modelInfo({ ...common, additionalFields: ["sha", "filePaths"] });
  return { sha: info.sha, files: info.filePaths };
}

/** The commit and file list of the repo at a revision. */
export async function listRepo(
  ctx: HubContext,
  fetcher: typeof fetch,
): Promise<{ commit: string; files: string[] }> {
  // The library's error has the status but not the headers: the failed answer is kept for X-Error-Code.
  let failed: Response | null = null;
  const recording: typeof fetch = async (input, init) => {
    const res = await fetcher(input, init);
    if (!res.ok) failed = res.clone();
    return res;
  };
  try {
    const info = await repoInfo(ctx, recording);
    if (typeof info.sha !== "string" || !isCommitHash(info.sha) || !Array.isArray(info.files)) {
      throw new HubError(
        `${ctx.endpoint} sent no commit or file list for ${ctx.repo}`,
        "check HF_ENDPOINT points at a Hugging Face hub",
      );
    }
    return { commit: info.sha, files: info.files as string[] };
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

/** One repo file as the hub describes it: where to GET it, its blob name and size. */
export interface FileMeta {
  path: string;
  url: string;
  /** blob name: sha256 for LFS files, git sha1 for the others */
  etag: string;
  size: number;
  lfs: boolean;
}

/** Etags come quoted and maybe weak (`W/"…"`); huggingface_hub names blobs by the bare value. */
function normalizeEtag(etag: string | null): string | null {
  if (!etag) return null;
  return etag.replace(/^W\//, "").replace(/^"|"$/g, "");
}

function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

const isRedirect = (res: Response) => res.status >= 300 && res.status < 400;

/**
 * HEAD `url`, following redirects that stay on the hub (a renamed repo), as huggingface_hub does; the
 * one to the CDN is not followed: the hub's answer carries the X-Linked-* headers.
 */
async function headOnHub(fetcher: typeof fetch, url: string): Promise<Response> {
  const head = (target: string) =>
    fetcher(target, { method: "HEAD", redirect: "manual", headers: { "Accept-Encoding": "identity" } });
  let target = url;
  let res = await head(target);
  for (let hops = 0; hops < 5 && isRedirect(res); hops++) {
    const location = res.headers.get("Location");
    const next = location ? new URL(location, target) : null;
    if (!next || next.origin !== new URL(target).origin) break;
    target = next.href;
    res = await head(target);
  }
  return res;
}

/** HEAD resolve/{commit}/{file}, not following the redirect to the CDN (it carries X-Linked-*). */
export async function fileMeta(
  ctx: HubContext,
  fetcher: typeof fetch,
  commit: string,
  path: string,
): Promise<FileMeta> {
  const prefix = ctx.type === "dataset" ? "datasets/" : "";
  const url = `${ctx.endpoint}/${prefix}${ctx.repo}/resolve/${commit}/${encodePath(path)}`;
  const res = await headOnHub(fetcher, url);
  if (res.status >= 400) {
    throw httpError(ctx, res.status, `${ctx.repo}/${path}`, res.headers.get("X-Error-Code"));
  }
  const linked = normalizeEtag(res.headers.get("X-Linked-Etag"));
  const etag = linked ?? normalizeEtag(res.headers.get("ETag"));
  const size = Number(
    res.headers.get("X-Linked-Size") ?? (isRedirect(res) ? null : res.headers.get("Content-Length")),
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
  return { path, url, etag, size, lfs: isLfsEtag(etag) };
}
