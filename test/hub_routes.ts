/**
 * The requests the test hub (test/hub_server.ts) answers, each logged: the CDN's `/cdn/{sha256}`, and the
 * hub's revision info, tree listing and `resolve` (LFS files redirected to the CDN), behind the token check.
 */

import { type ByteSwitches, serveBytes } from "./hub_bytes.ts";
import { treeEntries } from "./hub_repo.ts";
import type { HubFile, LoggedRequest } from "./hub_server.ts";

/** The hub's state: its switches, the repo, the request log and the CDN's origin. */
export interface HubState extends ByteSwitches {
  files: Map<string, HubFile>;
  commit: string;
  log: LoggedRequest[];
  cdnUrl: string;
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

const repoNotFound = () => json({ error: "Repository not found" }, 404);
const revisionNotFound = (message = "Invalid rev id") =>
  json({ error: message }, 404, { "X-Error-Code": "RevisionNotFound" });

function knownRevision(hub: HubState, rev: string): boolean {
  return rev === "main" || rev === "HEAD" || rev === hub.commit;
}

/** GET /api/{kind}/{repo}/revision/{rev}: the repo's info, its commit and files. */
function revisionInfo(hub: HubState, repo: string, rev: string): Response {
  const { options } = hub;
  if (repo !== options.repo) return repoNotFound();
  if (!knownRevision(hub, rev)) return revisionNotFound("Invalid rev id: " + rev);
  return json({
    _id: "0123456789abcdef01234567",
    id: options.repo,
    modelId: options.repo,
    private: false,
    gated: false,
    downloads: 0,
    likes: 0,
    lastModified: "2025-01-01T00:00:00.000Z",
    pipeline_tag: "text-generation",
    sha: hub.commit,
    siblings: [...hub.files.keys()].map((rfilename) => ({ rfilename })),
  });
}

/** HEAD/GET {repo}/resolve/{rev}/{file}: small files' bytes; LFS files redirect to the CDN. */
function resolveFile(
  hub: HubState,
  req: Request,
  entry: LoggedRequest,
  [repo, rev, filePath]: string[],
): Response {
  if (repo !== hub.options.repo) return repoNotFound();
  if (!knownRevision(hub, rev)) return revisionNotFound();
  const file = hub.files.get(filePath);
  if (!file) return json({ error: "Entry not found" }, 404, { "X-Error-Code": "EntryNotFound" });
  entry.file = filePath;
  const headers = new Headers({ "X-Repo-Commit": hub.commit, ETag: `"${file.etag}"` });
  if (file.lfs) {
    headers.set("X-Linked-Etag", `"${file.etag}"`);
    headers.set("X-Linked-Size", String(file.bytes.length));
    headers.set("Location", `${hub.cdnUrl}/cdn/${file.etag}`);
    return new Response(null, { status: 302, headers });
  }
  return serveBytes(req, hub, filePath, file, entry, headers);
}

/** The hub's endpoints, for an authorized request. */
function hubAnswer(hub: HubState, req: Request, entry: LoggedRequest, url: URL): Response {
  const { options } = hub;
  if (options.token && req.headers.get("Authorization") !== `Bearer ${options.token}`) {
    return json({ error: "Invalid credentials in Authorization header" }, 401);
  }
  const path = entry.path;
  const kind = options.type === "dataset" ? "datasets" : "models";
  const api = new RegExp(`^/api/${kind}/([^/]+/[^/]+)/revision/(.+)$`).exec(path);
  if (api) return revisionInfo(hub, api[1], api[2]);

  // The listing huggingface_hub's snapshot_download and @huggingface/hub's listFiles use.
  const tree = new RegExp(`^/api/${kind}/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?$`).exec(path);
  if (tree) {
    if (tree[1] !== options.repo) return repoNotFound();
    if (!knownRevision(hub, tree[2])) return revisionNotFound();
    return json(treeEntries(hub.files, tree[3] ?? "", url.searchParams.get("recursive") === "true"));
  }

  const resolve =
    (options.type === "dataset"
      ? /^\/datasets\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/
      : /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/).exec(path);
  if (resolve && (req.method === "GET" || req.method === "HEAD")) {
    return resolveFile(hub, req, entry, resolve.slice(1));
  }
  return json({ error: "not found" }, 404);
}

/** GET {cdnUrl}/cdn/{sha256}: an LFS file's bytes. */
function cdnAnswer(hub: HubState, req: Request, entry: LoggedRequest, url: URL): Response {
  const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
  const found = cdn && [...hub.files].find(([, f]) => f.lfs && f.etag === cdn[1]);
  if (!found) return new Response("no such object", { status: 404 });
  entry.file = found[0];
  const headers = new Headers({ ETag: `"cdn-${found[1].etag.slice(0, 8)}"` });
  return serveBytes(req, hub, found[0], found[1], entry, headers);
}

/** Answers a request to the hub or the CDN, and logs it with its status. */
export function handle(hub: HubState, req: Request, server: "hub" | "cdn"): Response {
  const url = new URL(req.url);
  const entry: LoggedRequest = {
    method: req.method,
    path: decodeURIComponent(url.pathname),
    range: req.headers.get("Range"),
    auth: req.headers.get("Authorization"),
    status: 0,
    bytesSent: 0,
    server,
  };
  hub.log.push(entry);
  const res = server === "cdn" ? cdnAnswer(hub, req, entry, url) : hubAnswer(hub, req, entry, url);
  entry.status = res.status;
  return res;
}
