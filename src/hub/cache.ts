/**
 * The standard Hugging Face cache, as huggingface_hub lays it out (and transformers, huggingface-cli,
 * `@huggingface/hub`, llama.cpp … share it):
 *
 *   <cache>/models--ORG--NAME/blobs/<etag>                 file contents (sha256 for LFS files, git sha1 else)
 *   <cache>/models--ORG--NAME/snapshots/<commit>/<file>    relative symlinks to ../../blobs/<etag>
 *   <cache>/models--ORG--NAME/refs/<revision>              the commit a branch or tag pointed at
 *   <cache>/datasets--ORG--NAME/…                          the same for a dataset repo
 *
 * `<cache>` is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. Reading it needs no
 * network and no npm package, so resolving `--model ORG/NAME` stays cheap for every command.
 */

import { join } from "node:path";
import { FlexiError } from "../errors.ts";

/** A hub download or cache lookup that failed: repo not found, no access, interrupted, corrupt. */
export class HubError extends FlexiError {}

type Env = { get(key: string): string | undefined };

function expandHome(path: string, env: Env): string {
  if (path === "~" || path.startsWith("~/")) {
    return join(env.get("HOME") ?? env.get("USERPROFILE") ?? ".", path.slice(1));
  }
  return path;
}

/** $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (as huggingface_hub). */
export function hfHome(env: Env = Deno.env): string {
  const home = env.get("HF_HOME");
  if (home) return expandHome(home, env);
  const xdg = env.get("XDG_CACHE_HOME");
  return join(xdg ? expandHome(xdg, env) : expandHome("~/.cache", env), "huggingface");
}

/** $HF_HUB_CACHE (or the legacy $HUGGINGFACE_HUB_CACHE), else <hfHome>/hub. */
export function hubCacheDir(env: Env = Deno.env): string {
  const direct = env.get("HF_HUB_CACHE") || env.get("HUGGINGFACE_HUB_CACHE");
  return direct ? expandHome(direct, env) : join(hfHome(env), "hub");
}

export interface RepoRef {
  /** "ORG/NAME" */
  repo: string;
  /** branch, tag or commit; undefined = main */
  revision?: string;
}

// Hub repo names: letters, digits, '-', '_', '.'; no '--' or '..' and not starting/ending with '-' or '.'.
const NAME_PART = "[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?";
const REPO_REF = new RegExp(`^(${NAME_PART}/${NAME_PART})(?:@([^\\s@]+))?$`);

/** "ORG/NAME" or "ORG/NAME@REVISION" → its parts; anything else (a path, a bare name) → null. */
export function parseRepoRef(text: string): RepoRef | null {
  const m = REPO_REF.exec(text);
  if (!m || m[1].includes("--") || m[1].includes("..")) return null;
  return m[2] === undefined ? { repo: m[1] } : { repo: m[1], revision: m[2] };
}

export function isCommitHash(text: string): boolean {
  return /^[0-9a-f]{40}$/.test(text);
}

/** Blob names: LFS files are named by their sha256 (64 hex digits), regular files by their git sha1. */
export function isLfsEtag(etag: string): boolean {
  return /^[0-9a-f]{64}$/.test(etag);
}

/** A model repo (checkpoints) or a dataset repo (evaluation sets: parquet files). */
export type RepoType = "model" | "dataset";

/** "ORG/NAME" → "models--ORG--NAME" (a dataset: "datasets--ORG--NAME") */
export function repoFolderName(repo: string, type: RepoType = "model"): string {
  return `${type}s--${repo.split("/").join("--")}`;
}

/** `<cache>/models--ORG--NAME` (or `datasets--ORG--NAME`) */
export function repoCacheDir(repo: string, cacheDir = hubCacheDir(), type: RepoType = "model"): string {
  return join(cacheDir, repoFolderName(repo, type));
}

async function readRef(path: string): Promise<string | null> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return null;
    throw err;
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/**
 * The snapshot folder of a cached repo at a revision (branch/tag via refs/<revision>, or a commit hash),
 * or null when it is not in the cache. Like huggingface_hub's `try_to_load_from_cache`.
 */
export async function findCachedSnapshot(ref: RepoRef, cacheDir = hubCacheDir()): Promise<string | null> {
  const storage = repoCacheDir(ref.repo, cacheDir);
  const revision = ref.revision ?? "main";
  const commit = (await readRef(join(storage, "refs", revision))) ??
    (isCommitHash(revision) ? revision : null);
  if (!commit) return null;
  const snapshot = join(storage, "snapshots", commit);
  return await isDir(snapshot) ? snapshot : null;
}

/** How to fetch `ref` into the cache, as a command line. */
export function pullCommandLine(ref: RepoRef): string {
  return `flexidepth pull ${ref.repo}${ref.revision ? ` --revision ${ref.revision}` : ""}`;
}

/** `findCachedSnapshot`, but a missing or incomplete snapshot is a HubError naming the pull command. */
export async function requireCachedSnapshot(ref: RepoRef, cacheDir = hubCacheDir()): Promise<string> {
  const id = `${ref.repo}${ref.revision ? `@${ref.revision}` : ""}`;
  const snapshot = await findCachedSnapshot(ref, cacheDir);
  if (!snapshot) {
    throw new HubError(
      `model ${id} is not in the Hugging Face cache (${repoCacheDir(ref.repo, cacheDir)})`,
      `run: ${pullCommandLine(ref)}`,
    );
  }
  try {
    await Deno.stat(join(snapshot, "config.json"));
  } catch {
    // e.g. another tool fetched only some files of this repo
    throw new HubError(
      `the cached snapshot of ${id} (${snapshot}) has no config.json`,
      `run: ${pullCommandLine(ref)}`,
    );
  }
  return snapshot;
}
