/**
 * The bytes of a file of the test hub (test/hub_server.ts), as a full or ranged (`Range: bytes=N-[M]`)
 * response, with its switches applied: `corrupt` flips bytes, `dropAfter` ends the body early (an
 * interrupted download), `chunk` sizes the body's pieces.
 */

import type { HubFile, HubServerOptions, LoggedRequest } from "./hub_server.ts";

/** What serving bytes needs of the hub: its switches, and how often each file's drop has happened. */
export interface ByteSwitches {
  options: HubServerOptions;
  drops: Map<string, number>;
}

/** The file's bytes, with flipped bytes when `corrupt` names it (same length). */
function servedBytes(options: HubServerOptions, path: string, file: HubFile): Uint8Array {
  if (options.corrupt?.file !== path) return file.bytes;
  const bytes = file.bytes.slice();
  for (let i = 0; i < bytes.length; i += 997) bytes[i] ^= 0xff;
  return bytes;
}

/** Body bytes to send before dropping the connection: a number while `dropAfter` has drops left. */
function dropLimit(sw: ByteSwitches, path: string): number {
  const drop = sw.options.dropAfter;
  if (drop?.file === path && (sw.drops.get(path) ?? 0) < (drop.times ?? 1)) {
    sw.drops.set(path, (sw.drops.get(path) ?? 0) + 1);
    return drop.bytes;
  }
  return Infinity;
}

/** `bytes[start, end)` in chunks, stopping after `limit` bytes; counted in `entry.bytesSent`. */
function bodyStream(
  bytes: Uint8Array,
  start: number,
  end: number,
  limit: number,
  chunk: number,
  entry: LoggedRequest,
): ReadableStream<Uint8Array> {
  let pos = start;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      const sent = pos - start;
      if (pos >= end || sent >= limit) {
        c.close(); // short of Content-Length when dropped: the client sees a broken connection
        return;
      }
      const n = Math.min(chunk, end - pos, limit - sent);
      c.enqueue(bytes.slice(pos, pos + n));
      pos += n;
      entry.bytesSent += n;
    },
  });
}

/** The bytes of a file (corrupted if switched on), as a full or ranged response. */
export function serveBytes(
  req: Request,
  sw: ByteSwitches,
  path: string,
  file: HubFile,
  entry: LoggedRequest,
  headers: Headers,
): Response {
  const bytes = servedBytes(sw.options, path, file);
  let start = 0;
  let end = bytes.length; // exclusive
  let status = 200;
  const range = req.headers.get("Range");
  if (range) {
    const m = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (!m || Number(m[1]) >= bytes.length) {
      headers.set("Content-Range", `bytes */${bytes.length}`);
      return new Response(null, { status: 416, headers });
    }
    start = Number(m[1]);
    end = m[2] ? Math.min(bytes.length, Number(m[2]) + 1) : bytes.length;
    status = 206;
    headers.set("Content-Range", `bytes ${start}-${end - 1}/${bytes.length}`);
  }
  headers.set("Accept-Ranges", "bytes");
  headers.set("Content-Length", String(end - start));
  headers.set("Content-Type", "application/octet-stream");
  if (req.method === "HEAD") return new Response(null, { status, headers });
  const limit = dropLimit(sw, path);
  const body = bodyStream(bytes, start, end, limit, sw.options.chunk ?? 16384, entry);
  return new Response(body, { status, headers });
}
