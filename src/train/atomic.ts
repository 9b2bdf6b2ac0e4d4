/**
 * Files a training run writes so that nothing is ever left half-written: the data goes to a temporary file
 * beside the target, which is synced and then renamed over it (a rename is atomic on one file system), so a run
 * killed at any moment leaves either the old file or the new one.
 */

import { dirname, join } from "node:path";

/** Writes `data` to `path` atomically. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = join(dirname(path), `.${crypto.randomUUID()}.tmp`);
  try {
    using file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
    await file.sync();
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  await Deno.rename(tmp, path);
}

/** A temporary path beside `path`, for writing a file that then replaces it (`commitFile`). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${crypto.randomUUID()}.tmp`);
}

/** Syncs the finished temporary file `tmp` to disk and renames it over `path` (it is removed on failure). */
export async function commitFile(tmp: string, path: string): Promise<void> {
  try {
    using file = await Deno.open(tmp, { write: true });
    await file.sync();
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}
