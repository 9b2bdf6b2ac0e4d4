/**
 * The repo the test hub (test/hub_server.ts) serves: its files, read from a folder and extra entries, with
 * the ETags the hub gives them (sha256 for LFS files, git blob sha1 for the others), its commit, and the
 * tree listing of a folder.
 */

import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import type { HubFile, HubServerOptions } from "./hub_server.ts";

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

/** The repo's files by path (sorted), and its commit: `options.commit`, else a hash of the files. */
export async function loadRepo(
  options: HubServerOptions,
): Promise<{ files: Map<string, HubFile>; commit: string }> {
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
  return { files, commit };
}

/** The entries of `folder` (the repo's root when empty), as /api/{kind}/{repo}/tree lists them. */
export function treeEntries(files: Map<string, HubFile>, folder: string, recursive: boolean): unknown[] {
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
