/**
 * Downloads one blob of the Hugging Face cache, resumably and verified. `@huggingface/hub`'s
 * `downloadFile` / `downloadFileToCacheDir` fetch a file whole (no Range request, so no resume of a
 * partial `.incomplete` file) and verify nothing, so this is plain `fetch`: GET with
 * `Range: bytes=<have>-` into `blobs/<etag>.incomplete`, check the size and (for LFS files) the sha256,
 * and rename to `blobs/<etag>`.
 */

import { createHash } from "node:crypto";
import { HubError } from "./cache.ts";
import { type FileMeta, httpError, type HubContext } from "./api.ts";
import { sizeOf } from "./snapshot.ts";
import { formatBytes } from "../util/format.ts";

type Hash = ReturnType<typeof createHash>;

/** A download cut short in a way that resuming may fix (a dropped connection, a refused resume). */
class Interrupted extends Error {}

/** Downloads one blob with resume and verification; returns the bytes received. */
export async function downloadBlob(
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
      await verify(ctx, meta, incomplete, done.digest);
      await Deno.rename(incomplete, blob);
      return received;
    } catch (err) {
      if (!(err instanceof Interrupted)) throw err;
      const have = (await sizeOf(incomplete)) ?? 0;
      if (attempt >= retries) throw gaveUp(ctx, meta, have, err);
      log(`  ${meta.path}: interrupted at ${formatBytes(have)} (${err.message}); resuming`);
      await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
    }
  }
}

/** Checks a finished download's size and (LFS files) sha256; a bad copy is deleted. */
async function verify(ctx: HubContext, meta: FileMeta, incomplete: string, digest: string): Promise<void> {
  const size = (await sizeOf(incomplete)) ?? 0;
  if (size !== meta.size) {
    await Deno.remove(incomplete);
    throw new HubError(
      `${ctx.repo}/${meta.path} downloaded as ${size} bytes, but the hub says ${meta.size}; the bad copy was deleted`,
      "run the pull again",
    );
  }
  if (meta.lfs && digest !== meta.etag) {
    await Deno.remove(incomplete);
    throw new HubError(
      `checksum mismatch for ${ctx.repo}/${meta.path}: its sha256 is ${digest}, the hub says ${meta.etag}; ` +
        "the corrupt download was deleted",
      "run the pull again; if it keeps failing, the hub or a proxy is serving bad data",
    );
  }
}

/** The error when the retries are spent: the partial file stays, and running the pull again resumes it. */
function gaveUp(ctx: HubContext, meta: FileMeta, have: number, err: Interrupted): HubError {
  const got = `${formatBytes(have)} of ${formatBytes(meta.size)}`;
  return new HubError(
    `download of ${ctx.repo}/${meta.path} was interrupted after ${got} (${err.message})`,
    `run the same pull again to resume from there: flexidepth pull ${
      ctx.type === "dataset" ? "--dataset " : ""
    }${ctx.repo}` +
      (ctx.revision !== "main" ? ` --revision ${ctx.revision}` : ""),
  );
}

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
  const { res, have } = await requestRest(ctx, fetcher, meta, incomplete, onBytes);
  const hash = createHash("sha256");
  // A resumed download is checked whole: the part already here goes into the hash first.
  if (have > 0) await hashPrefix(hash, incomplete);
  using file = await Deno.open(incomplete, { write: true, create: true, append: true });
  const received = res?.body ? await appendBody(res.body, file, hash, onBytes) : 0;
  const total = have + received;
  if (total < meta.size) throw new Interrupted(`the connection closed after ${formatBytes(total)}`);
  return { received, digest: hash.digest("hex") };
}

/**
 * GETs what `incomplete` lacks (a Range from its size). Returns the answer (null when the file is
 * complete already) and how many bytes of the file stay before its body.
 */
async function requestRest(
  ctx: HubContext,
  fetcher: typeof fetch,
  meta: FileMeta,
  incomplete: string,
  onBytes: (n: number) => void,
): Promise<{ res: Response | null; have: number }> {
  let have = (await sizeOf(incomplete)) ?? 0;
  if (have > meta.size) {
    await Deno.remove(incomplete);
    have = 0;
  }
  // Complete already: a pull stopped between the last byte and the rename.
  if (have > 0 && have === meta.size) return { res: null, have };
  const headers: Record<string, string> = { "Accept-Encoding": "identity" };
  if (have > 0) headers.Range = `bytes=${have}-`;
  const res = await fetcher(meta.url, { headers });
  return { res, have: await checkAnswer(ctx, meta, incomplete, res, have, onBytes) };
}

/** Checks the answer to a (ranged) GET; returns the bytes kept before its body (0: it starts over). */
async function checkAnswer(
  ctx: HubContext,
  meta: FileMeta,
  incomplete: string,
  res: Response,
  have: number,
  onBytes: (n: number) => void,
): Promise<number> {
  if (have > 0 && res.status === 200) {
    // The server ignored the Range header: start over.
    onBytes(-have);
    await Deno.truncate(incomplete, 0).catch(() => {});
    return 0;
  }
  if (have > 0 && res.status === 416) {
    await res.body?.cancel();
    await Deno.remove(incomplete);
    throw new Interrupted("the server refused to resume (HTTP 416); the partial file was removed");
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw httpError(ctx, res.status, `${ctx.repo}/${meta.path}`, res.headers.get("X-Error-Code"));
  }
  if (have > 0) {
    const start = Number(/^bytes (\d+)-/.exec(res.headers.get("Content-Range") ?? "")?.[1]);
    if (res.status !== 206 || start !== have) {
      await res.body?.cancel();
      await Deno.remove(incomplete);
      throw new Interrupted(
        `the server answered a resume with the wrong range; the partial file was removed`,
      );
    }
  }
  return have;
}

/** Feeds an existing partial file into the hash, so a resumed download is checked whole. */
async function hashPrefix(hash: Hash, path: string): Promise<void> {
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
}

/** Appends a body to `file` and the hash; returns its length. A failed read is an Interrupted. */
async function appendBody(
  body: ReadableStream<Uint8Array>,
  file: Deno.FsFile,
  hash: Hash,
  onBytes: (n: number) => void,
): Promise<number> {
  const reader = body.getReader();
  let received = 0;
  while (true) {
    let next: ReadableStreamReadResult<Uint8Array>;
    try {
      next = await reader.read();
    } catch (err) {
      // Only a failed read is an interruption to resume; a failed write (disk full) is thrown as is.
      throw new Interrupted((err as Error).message);
    }
    if (next.done) return received;
    await writeAll(file, next.value);
    hash.update(next.value);
    received += next.value.length;
    onBytes(next.value.length);
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}
