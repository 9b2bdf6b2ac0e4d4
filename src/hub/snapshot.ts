/**
 * Writing into the Hugging Face cache layout (see ./cache.ts for the layout and for reading it): the
 * repo's folders, snapshot pointers to blobs, refs, the CACHEDIR.TAG, and what a snapshot holds already.
 */

import { dirname, join, relative } from "node:path";
import { HubError, isLfsEtag } from "./cache.ts";

/** The folders of one repo's cache entry at one commit. */
export interface RepoStorage {
  /** `<cache>/models--ORG--NAME` */
  root: string;
  /** `<root>/blobs` */
  blobs: string;
  /** `<root>/snapshots/<commit>` */
  snapshotDir: string;
}

/** Creates the blobs and snapshot folders of `root` at `commit`, and tags the cache for backup tools. */
export async function prepareStorage(root: string, commit: string): Promise<RepoStorage> {
  const snapshotDir = join(root, "snapshots", commit);
  const blobs = join(root, "blobs");
  await Deno.mkdir(blobs, { recursive: true });
  await Deno.mkdir(snapshotDir, { recursive: true });
  await tagCacheDir(dirname(root));
  return { root, blobs, snapshotDir };
}

/** A CACHEDIR.TAG (https://bford.info/cachedir/) so backup tools skip the cache, as huggingface_hub writes. */
async function tagCacheDir(cacheDir: string): Promise<void> {
  const text = "Signature: 8a477f597d28d172789f06886806bc55\n" +
    "# This file is a cache directory tag (the Hugging Face cache; written by flexidepth pull).\n" +
    "# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n";
  await Deno.writeTextFile(join(cacheDir, "CACHEDIR.TAG"), text, { createNew: true }).catch(() => {});
}

/** A repo file name from the hub, refused if it would escape the snapshot folder (huggingface_hub#4540). */
export function checkRelativePath(path: string): void {
  const parts = path.split(/[\\/]/);
  if (!path || path.startsWith("/") || /^[A-Za-z]:/.test(path) || parts.some((p) => p === ".." || p === "")) {
    throw new HubError(`the hub listed a file with an unsafe name: "${path}"`, "refusing to write it");
  }
}

/** The size of a file, or null when there is none. */
export async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** A file the snapshot already points at: its size, and its blob name when the pointer leads to a blob. */
export async function existingPointer(
  storage: RepoStorage,
  path: string,
): Promise<{ size: number; etag: string; lfs: boolean } | null> {
  const pointer = join(storage.snapshotDir, path);
  if ((await sizeOf(pointer)) === null) return null;
  const target = await Deno.realPath(pointer);
  const etag = target.startsWith(await Deno.realPath(storage.blobs)) ? target.split(/[\\/]/).pop()! : "";
  return { size: (await sizeOf(pointer))!, etag, lfs: isLfsEtag(etag) };
}

/** A relative symlink snapshots/<commit>/<path> → ../../blobs/<etag>, as huggingface_hub makes it. */
export async function linkIntoSnapshot(blob: string, pointer: string): Promise<void> {
  await Deno.mkdir(dirname(pointer), { recursive: true });
  await Deno.remove(pointer).catch(() => {});
  try {
    await Deno.symlink(relative(dirname(pointer), blob), pointer);
  } catch {
    // No symlinks here (Windows without developer mode): a copy, as huggingface_hub falls back to.
    await Deno.copyFile(blob, pointer);
  }
}

/** refs/<revision> → commit, for a branch or tag (a commit needs no ref). */
export async function writeRef(storage: RepoStorage, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const refPath = join(storage.root, "refs", revision);
  await Deno.mkdir(dirname(refPath), { recursive: true });
  await Deno.writeTextFile(refPath, commit);
}
