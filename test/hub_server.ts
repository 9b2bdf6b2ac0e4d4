/**
 * A small Hugging Face Hub for tests, on 127.0.0.1 (port 0). It serves one model repo (or, with
 * `type: "dataset"`, one dataset repo: `/api/datasets/…` and `/datasets/{repo}/resolve/…`, parquet files
 * as LFS) from a folder with the endpoints huggingface_hub (and `flexidepth pull`) use:
 *
 *   GET  /api/models/{repo}/revision/{rev}   → {id, sha, siblings: [{rfilename}], …}
 *   GET  /api/models/{repo}/tree/{rev}       → [{type, path, size, oid, lfs?}] (?recursive=true)
 *   HEAD /{repo}/resolve/{rev}/{file}         → X-Repo-Commit, ETag; LFS files (*.safetensors) answer
 *                                               302 to the CDN with X-Linked-Etag / X-Linked-Size,
 *                                               as the real hub redirects them to its CDN
 *   GET  /{repo}/resolve/{rev}/{file}         → the bytes (LFS files: via the redirect); Range supported
 *   GET  {cdnUrl}/cdn/{sha256}                → LFS bytes, from a second server (another origin, as the
 *                                               real CDN is, so clients must not send it the token)
 *
 * Switches: `dropAfter` closes the connection after N body bytes of a file (an interrupted download),
 * `corrupt` serves a file with flipped bytes (same length; a checksum mismatch), `token` requires
 * `Authorization: Bearer <token>` on the hub endpoints. Every request is logged.
 */

import { createHash } from "node:crypto";
import { join, relative } from "node:path";

export interface HubFile {
  bytes: Uint8Array;
  /** sha256 for LFS files, git blob sha1 for the others (what the hub uses as their ETags) */
  etag: string;
  lfs: boolean;
}

export interface LoggedRequest {
  method: string;
  path: string;
  /** the Range header, if any */
  range: string | null;
  /** the Authorization header, if any */
  auth: string | null;
  status: number;
  /** body bytes actually sent */
  bytesSent: number;
  /** the repo file this request served (resolve or CDN), if any */
  file?: string;
  server: "hub" | "cdn";
}

export interface HubServerOptions {
  /** "ORG/NAME" */
  repo: string;
  /** a model repo (default) or a dataset repo */
  type?: "model" | "dataset";
  /** files of the repo: a folder (read recursively) and/or extra entries by path */
  dir?: string;
  extra?: Record<string, Uint8Array | string>;
  /** branches/tags → commit; "main" always points at `commit` */
  commit?: string;
  token?: string;
  /** close the connection after `bytes` body bytes of `file`, for the next `times` GETs (default 1) */
  dropAfter?: { file: string; bytes: number; times?: number };
  /** serve `file` with flipped bytes */
  corrupt?: { file: string };
  /** the CDN's host (default 127.0.0.1; huggingface_hub tells hub from CDN by host name, not port) */
  cdnHostname?: string;
  /** body chunk size (default 16 KiB), so a drop lands mid-file */
  chunk?: number;
}

export interface HubServer {
  url: string;
  /** the CDN's origin (LFS bytes) */
  cdnUrl: string;
  commit: string;
  files: Map<string, HubFile>;
  log: LoggedRequest[];
  /** switches can be changed between pulls */
  options: HubServerOptions;
  close(): Promise<void>;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function gitBlobSha1(bytes: Uint8Array): string {
  return createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
}

async function readFolder(dir: string, root = dir, out = new Map<string, Uint8Array>()) {
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) await readFolder(path, root, out);
    else out.set(relative(root, path).split("\\").join("/"), await Deno.readFile(path));
  }
  return out;
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

export async function startHubServer(options: HubServerOptions): Promise<HubServer> {
  const raw = options.dir ? await readFolder(options.dir) : new Map<string, Uint8Array>();
  for (const [path, content] of Object.entries(options.extra ?? {})) {
    raw.set(path, typeof content === "string" ? new TextEncoder().encode(content) : content);
  }
  const files = new Map<string, HubFile>();
  for (const [path, bytes] of [...raw].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const lfs = path.endsWith(".safetensors") || path.endsWith(".parquet");
    files.set(path, { bytes, etag: lfs ? sha256(bytes) : gitBlobSha1(bytes), lfs });
  }
  const commit = options.commit ??
    createHash("sha1").update([...files].map(([p, f]) => `${p}:${f.etag}`).join("\n")).digest("hex");
  const log: LoggedRequest[] = [];
  const drops = new Map<string, number>();

  function treeEntries(folder: string, recursive: boolean) {
    const prefix = folder ? `${folder.replace(/\/$/, "")}/` : "";
    const entries: unknown[] = [];
    const dirs = new Set<string>();
    for (const [path, f] of files) {
      if (!path.startsWith(prefix)) continue;
      const rest = path.slice(prefix.length).split("/");
      for (let i = 1; i < rest.length && (recursive || i === 1); i++) {
        dirs.add(prefix + rest.slice(0, i).join("/"));
      }
      if (!recursive && rest.length > 1) continue;
      entries.push({
        type: "file",
        oid: gitBlobSha1(f.bytes),
        size: f.bytes.length,
        path,
        ...(f.lfs ? { lfs: { oid: f.etag, size: f.bytes.length, pointerSize: 134 } } : {}),
      });
    }
    for (const d of dirs) entries.push({ type: "directory", oid: "0".repeat(40), size: 0, path: d });
    return entries;
  }

  function authorized(req: Request): boolean {
    return !options.token || req.headers.get("Authorization") === `Bearer ${options.token}`;
  }

  function knownRevision(rev: string): boolean {
    return rev === "main" || rev === "HEAD" || rev === commit;
  }

  /** The bytes of a file (corrupted if switched on), as a full or ranged response. */
  function serveBytes(req: Request, path: string, file: HubFile, entry: LoggedRequest, headers: Headers) {
    let bytes = file.bytes;
    if (options.corrupt?.file === path) {
      bytes = bytes.slice();
      for (let i = 0; i < bytes.length; i += 997) bytes[i] ^= 0xff;
    }
    let start = 0;
    let end = bytes.length; // exclusive
    let status = 200;
    const range = req.headers.get("Range");
    if (range) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!m || Number(m[1]) >= bytes.length) {
        entry.status = 416;
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
    entry.status = status;
    if (req.method === "HEAD") return new Response(null, { status, headers });

    let limit = Infinity;
    const drop = options.dropAfter;
    if (drop?.file === path && (drops.get(path) ?? 0) < (drop.times ?? 1)) {
      drops.set(path, (drops.get(path) ?? 0) + 1);
      limit = drop.bytes;
    }
    const chunk = options.chunk ?? 16384;
    let pos = start;
    const body = new ReadableStream<Uint8Array>({
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
    return new Response(body, { status, headers });
  }

  function handle(req: Request, server: "hub" | "cdn"): Response {
    const url = new URL(req.url);
    const path = decodeURIComponent(url.pathname);
    const entry: LoggedRequest = {
      method: req.method,
      path,
      range: req.headers.get("Range"),
      auth: req.headers.get("Authorization"),
      status: 0,
      bytesSent: 0,
      server,
    };
    log.push(entry);
    const answer = (res: Response) => {
      entry.status = res.status;
      return res;
    };

    if (server === "cdn") {
      const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
      const found = cdn && [...files].find(([, f]) => f.lfs && f.etag === cdn[1]);
      if (!found) return answer(new Response("no such object", { status: 404 }));
      entry.file = found[0];
      return serveBytes(
        req,
        found[0],
        found[1],
        entry,
        new Headers({ ETag: `"cdn-${found[1].etag.slice(0, 8)}"` }),
      );
    }

    if (!authorized(req)) {
      return answer(json({ error: "Invalid credentials in Authorization header" }, 401));
    }

    const kind = options.type === "dataset" ? "datasets" : "models";
    const api = new RegExp(`^/api/${kind}/([^/]+/[^/]+)/revision/(.+)$`).exec(path);
    if (api) {
      if (api[1] !== options.repo) return answer(json({ error: "Repository not found" }, 404));
      if (!knownRevision(api[2])) {
        return answer(
          json({ error: "Invalid rev id: " + api[2] }, 404, { "X-Error-Code": "RevisionNotFound" }),
        );
      }
      return answer(json({
        _id: "0123456789abcdef01234567",
        id: options.repo,
        modelId: options.repo,
        private: false,
        gated: false,
        downloads: 0,
        likes: 0,
        lastModified: "2025-01-01T00:00:00.000Z",
        pipeline_tag: "text-generation",
        sha: commit,
        siblings: [...files.keys()].map((rfilename) => ({ rfilename })),
      }));
    }

    // The listing huggingface_hub's snapshot_download and @huggingface/hub's listFiles use.
    const tree = new RegExp(`^/api/${kind}/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?$`).exec(path);
    if (tree) {
      if (tree[1] !== options.repo) return answer(json({ error: "Repository not found" }, 404));
      if (!knownRevision(tree[2])) {
        return answer(json({ error: "Invalid rev id" }, 404, { "X-Error-Code": "RevisionNotFound" }));
      }
      return answer(json(treeEntries(tree[3] ?? "", url.searchParams.get("recursive") === "true")));
    }

    const resolve =
      (options.type === "dataset"
        ? /^\/datasets\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/
        : /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/).exec(path);
    if (resolve && (req.method === "GET" || req.method === "HEAD")) {
      const [, repo, rev, filePath] = resolve;
      if (repo !== options.repo) return answer(json({ error: "Repository not found" }, 404));
      if (!knownRevision(rev)) {
        return answer(json({ error: "Invalid rev id" }, 404, { "X-Error-Code": "RevisionNotFound" }));
      }
      const file = files.get(filePath);
      if (!file) return answer(json({ error: "Entry not found" }, 404, { "X-Error-Code": "EntryNotFound" }));
      entry.file = filePath;
      const headers = new Headers({ "X-Repo-Commit": commit, ETag: `"${file.etag}"` });
      if (file.lfs) {
        headers.set("X-Linked-Etag", `"${file.etag}"`);
        headers.set("X-Linked-Size", String(file.bytes.length));
        headers.set("Location", `${cdnUrl}/cdn/${file.etag}`);
        return answer(new Response(null, { status: 302, headers }));
      }
      return serveBytes(req, filePath, file, entry, headers);
    }
    return answer(json({ error: "not found" }, 404));
  }

  const cdnHostname = options.cdnHostname ?? "127.0.0.1";
  const cdnServer = Deno.serve(
    { hostname: cdnHostname, port: 0, onListen() {} },
    (req) => handle(req, "cdn"),
  );
  const cdnUrl = `http://${cdnHostname}:${cdnServer.addr.port}`;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => handle(req, "hub"));
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    commit,
    files,
    log,
    options,
    cdnUrl,
    close: async () => {
      await server.shutdown();
      await cdnServer.shutdown();
    },
  };
}
