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
 *
 * The repo's files and listing are in hub_repo.ts, the routes in hub_routes.ts, the byte serving (ranges,
 * drops, corruption) in hub_bytes.ts.
 */

import { loadRepo } from "./hub_repo.ts";
import { handle, type HubState } from "./hub_routes.ts";

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

export async function startHubServer(options: HubServerOptions): Promise<HubServer> {
  const { files, commit } = await loadRepo(options);
  const hub: HubState = { options, files, commit, log: [], drops: new Map(), cdnUrl: "" };
  const cdnHostname = options.cdnHostname ?? "127.0.0.1";
  const cdnServer = Deno.serve(
    { hostname: cdnHostname, port: 0, onListen() {} },
    (req) => handle(hub, req, "cdn"),
  );
  hub.cdnUrl = `http://${cdnHostname}:${cdnServer.addr.port}`;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => handle(hub, req, "hub"),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    commit,
    files,
    log: hub.log,
    options,
    cdnUrl: hub.cdnUrl,
    close: async () => {
      await server.shutdown();
      await cdnServer.shutdown();
    },
  };
}
