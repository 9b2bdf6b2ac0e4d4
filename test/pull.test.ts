/**
 * `flexidepth pull` and `--model ORG/NAME` against a local hub (test/hub_server.ts): the Hugging Face
 * cache layout, resume after an interruption, checksum refusal, tokens, errors and the CLI. Model resolution
 * from a cache laid out by hand: test/pull_resolve.test.ts.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { resolveModel } from "../src/cli/resolve.ts";
import { HubError } from "../src/hub/cache.ts";
import { pull, type PullOptions } from "../src/hub/pull.ts";
import { openCheckpoint } from "../src/model/checkpoint.ts";
import { type DemoOptions, writeDemoCheckpoint } from "../src/model/demo.ts";
import { type HubServer, type HubServerOptions, type LoggedRequest, startHubServer } from "./hub_server.ts";
import { SMALL_DEMO } from "./cli_fixtures.ts";
import { NO_HF_ENV, withEnv } from "./pull_fixtures.ts";

const REPO = "test-org/tiny-llama";
const SMALL: DemoOptions = { ...SMALL_DEMO, vocabSize: 2048, shards: 2 };
const EXTRA = {
  "README.md": "# tiny llama\nA test model.\n",
  "original/params.json": '{"dim": 64}\n',
  "pytorch_model.bin": "not needed by flexidepth",
  LICENSE: "",
};
const NEEDED = [
  "LICENSE",
  "README.md",
  "config.json",
  "generation_config.json",
  "model-00001-of-00002.safetensors",
  "model-00002-of-00002.safetensors",
  "model.safetensors.index.json",
  "tokenizer.json",
  "tokenizer_config.json",
];
const SHARD = "model-00001-of-00002.safetensors";

let sourceDir: Promise<string> | null = null;
/** One demo checkpoint for all tests (the repo the hub serves). */
function source(): Promise<string> {
  sourceDir ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "flexidepth-hub-src-" });
    await writeDemoCheckpoint(dir, SMALL);
    return dir;
  })();
  return sourceDir;
}

async function withHub(
  opts: Partial<HubServerOptions>,
  fn: (hub: HubServer, cache: string) => Promise<void>,
): Promise<void> {
  const hub = await startHubServer({ repo: REPO, dir: await source(), extra: EXTRA, ...opts });
  const cache = await Deno.makeTempDir({ prefix: "flexidepth-hf-cache-" });
  try {
    await fn(hub, cache);
  } finally {
    await hub.close();
    await Deno.remove(cache, { recursive: true });
  }
}

function pullFrom(hub: HubServer, cache: string, more: Partial<PullOptions> = {}) {
  return pull({ repo: REPO, endpoint: hub.url, cacheDir: cache, token: "", retries: 0, ...more });
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** The GETs that sent a file's bytes (for LFS files, the CDN's answers after the hub's redirect). */
function transfers(log: LoggedRequest[], file: string): LoggedRequest[] {
  return log.filter((r) => r.method === "GET" && r.file === file && (r.status === 200 || r.status === 206));
}

const storageOf = (cache: string) => join(cache, "models--test-org--tiny-llama");

Deno.test("pull lays out the Hugging Face cache; --model ORG/NAME finds it and the checkpoint opens", async () => {
  await withHub({}, async (hub, cache) => {
    const result = await pullFrom(hub, cache);
    const storage = storageOf(cache);
    const snapshot = join(storage, "snapshots", hub.commit);
    assert.equal(result.commit, hub.commit);
    assert.equal(result.snapshotDir, snapshot);
    assert.equal(await Deno.readTextFile(join(storage, "refs", "main")), hub.commit);
    assert.deepEqual(result.files.map((f) => f.path).sort(), NEEDED);
    assert.deepEqual(await listDir(join(storage, "snapshots")), [hub.commit]);
    assert.deepEqual(await listDir(snapshot), NEEDED);
    const expectedBlobs = NEEDED.map((p) => hub.files.get(p)!.etag).sort();
    assert.deepEqual(await listDir(join(storage, "blobs")), expectedBlobs);
    for (const path of NEEDED) {
      const served = hub.files.get(path)!;
      const pointer = join(snapshot, path);
      assert.ok((await Deno.lstat(pointer)).isSymlink, `${path} is a symlink`);
      assert.equal(await Deno.readLink(pointer), `../../blobs/${served.etag}`);
      const bytes = await Deno.readFile(pointer);
      assert.deepEqual(bytes, served.bytes, path);
      // LFS blobs are named by their sha256, as huggingface_hub names them.
      if (path.endsWith(".safetensors")) assert.equal(served.etag, sha256(bytes));
    }
    assert.match(
      await Deno.readTextFile(join(cache, "CACHEDIR.TAG")),
      /^Signature: 8a477f597d28d172789f06886806bc55\n/,
    );
    assert.equal(result.bytesDownloaded, NEEDED.reduce((a, p) => a + hub.files.get(p)!.bytes.length, 0));

    const resolved = await withEnv({ ...NO_HF_ENV, HF_HUB_CACHE: cache }, () => resolveModel(REPO));
    assert.deepEqual(resolved, { dir: snapshot, demo: false });
    const ck = await openCheckpoint(resolved.dir);
    assert.equal(ck.config.numLayers, 2);
    assert.equal(ck.config.hiddenSize, 64);

    // A second pull finds everything in the cache: one listing request, no file requests.
    const before = hub.log.length;
    const again = await pullFrom(hub, cache);
    assert.equal(again.bytesDownloaded, 0);
    assert.deepEqual(hub.log.slice(before).map((r) => r.path), [`/api/models/${REPO}/revision/main`]);

    // --all adds the rest, nested files with ../../../blobs links.
    const all = await pullFrom(hub, cache, { all: true });
    assert.deepEqual(all.files.map((f) => f.path).sort(), [...hub.files.keys()].sort());
    const rest = [...hub.files].filter(([p]) => !NEEDED.includes(p));
    assert.equal(all.bytesDownloaded, rest.reduce((a, [, f]) => a + f.bytes.length, 0));
    const nested = join(snapshot, "original", "params.json");
    assert.equal(
      await Deno.readLink(nested),
      `../../../blobs/${hub.files.get("original/params.json")!.etag}`,
    );
    assert.equal(await Deno.readTextFile(nested), EXTRA["original/params.json"]);
  });
});

Deno.test("an interrupted download fails with the fix, and the next pull resumes it with a Range request", async () => {
  await withHub({}, async (hub, cache) => {
    const shard = hub.files.get(SHARD)!;
    const size = shard.bytes.length;
    const dropAt = Math.floor(size / 2);
    hub.options.dropAfter = { file: SHARD, bytes: dropAt };

    await assert.rejects(pullFrom(hub, cache), (err: Error) => {
      assert.ok(err instanceof HubError, String(err));
      assert.match(err.message, new RegExp(`download of ${REPO}/${SHARD} was interrupted after .* of `));
      assert.match(
        err.message,
        /run the same pull again to resume from there: flexidepth pull test-org\/tiny-llama/,
      );
      return true;
    });
    const storage = storageOf(cache);
    const incomplete = join(storage, "blobs", `${shard.etag}.incomplete`);
    const partial = (await Deno.stat(incomplete)).size;
    assert.ok(partial > 0 && partial <= dropAt, `partial ${partial} of ${dropAt}`);
    // Nothing points at the half-pulled snapshot yet, so --model does not pick it up.
    assert.equal(await exists(join(storage, "refs", "main")), false);
    await withEnv({ ...NO_HF_ENV, HF_HUB_CACHE: cache }, async () => {
      await assert.rejects(resolveModel(REPO), /is not in the Hugging Face cache/);
    });

    const before = hub.log.length;
    const result = await pullFrom(hub, cache);
    const gets = transfers(hub.log, SHARD);
    const resumed = transfers(hub.log.slice(before), SHARD);
    assert.equal(resumed.length, 1);
    assert.equal(resumed[0].range, `bytes=${partial}-`);
    assert.equal(resumed[0].status, 206);
    const transferred = gets.reduce((a, r) => a + r.bytesSent, 0);
    assert.ok(transferred < 2 * size, `transferred ${transferred} bytes for a ${size}-byte file`);
    assert.equal(transferred, size + (dropAt - partial));
    assert.equal(await exists(incomplete), false);
    for (const path of NEEDED) {
      assert.deepEqual(await Deno.readFile(join(result.snapshotDir, path)), hub.files.get(path)!.bytes, path);
    }
    assert.equal(await Deno.readTextFile(join(storage, "refs", "main")), hub.commit);
  });
});

Deno.test("a partial file that is already complete is verified and kept, with no new request", async () => {
  await withHub({}, async (hub, cache) => {
    const shard = hub.files.get(SHARD)!;
    const blobs = join(storageOf(cache), "blobs");
    await Deno.mkdir(blobs, { recursive: true });
    await Deno.writeFile(join(blobs, `${shard.etag}.incomplete`), shard.bytes);
    const result = await pullFrom(hub, cache);
    assert.deepEqual(transfers(hub.log, SHARD), []);
    assert.equal(result.files.find((f) => f.path === SHARD)?.downloaded, true);
    assert.deepEqual(await Deno.readFile(join(blobs, shard.etag)), shard.bytes);
    assert.equal(await exists(join(blobs, `${shard.etag}.incomplete`)), false);
  });
});

Deno.test("with retries, one pull resumes an interrupted file by itself", async () => {
  await withHub({}, async (hub, cache) => {
    const shard = hub.files.get(SHARD)!;
    hub.options.dropAfter = { file: SHARD, bytes: 40000 };
    const lines: string[] = [];
    const result = await pullFrom(hub, cache, { retries: 1, log: (l) => lines.push(l) });
    const gets = transfers(hub.log, SHARD);
    assert.equal(gets.length, 2);
    assert.equal(gets[0].range, null);
    assert.match(gets[1].range ?? "", /^bytes=\d+-$/);
    assert.ok(lines.some((l) => /interrupted at .*resuming/.test(l)), lines.join("\n"));
    assert.deepEqual(await Deno.readFile(join(result.snapshotDir, SHARD)), shard.bytes);
  });
});

Deno.test("a checksum mismatch is refused and leaves no blob behind", async () => {
  await withHub({ corrupt: { file: SHARD } }, async (hub, cache) => {
    const etag = hub.files.get(SHARD)!.etag;
    await assert.rejects(pullFrom(hub, cache), (err: Error) => {
      assert.ok(err instanceof HubError, String(err));
      assert.match(
        err.message,
        new RegExp(`checksum mismatch for ${REPO}/${SHARD}: its sha256 is [0-9a-f]{64}`),
      );
      assert.match(err.message, new RegExp(`the hub says ${etag}; the corrupt download was deleted`));
      return true;
    });
    const storage = storageOf(cache);
    const blobs = await listDir(join(storage, "blobs"));
    assert.ok(!blobs.some((b) => b.startsWith(etag)), blobs.join(", "));
    assert.equal(await exists(join(storage, "snapshots", hub.commit, SHARD)), false);
    assert.equal(await exists(join(storage, "refs", "main")), false);
  });
});

Deno.test("the token goes to the hub as a Bearer header; without it the error says to set HF_TOKEN", async () => {
  await withHub({ token: "hf_secret" }, async (hub, cache) => {
    await assert.rejects(pullFrom(hub, cache), /was not found or needs a login \(HTTP 401\).* set HF_TOKEN/);
    await assert.rejects(
      pullFrom(hub, cache, { token: "hf_wrong" }),
      /refused the token for test-org\/tiny-llama \(HTTP 401\).*check HF_TOKEN/,
    );
    const before = hub.log.length;
    await pullFrom(hub, cache, { token: "hf_secret" });
    const requests = hub.log.slice(before);
    const hubRequests = requests.filter((r) => r.server === "hub");
    assert.ok(hubRequests.length > NEEDED.length);
    for (const r of hubRequests) assert.equal(r.auth, "Bearer hf_secret", `${r.method} ${r.path}`);
    // The CDN is another origin: the token is not sent there.
    const cdnRequests = requests.filter((r) => r.server === "cdn");
    assert.equal(cdnRequests.length, 2);
    for (const r of cdnRequests) assert.equal(r.auth, null, `${r.method} ${r.path}`);
  });
});

Deno.test("a missing repo or revision is a clear error", async () => {
  await withHub({}, async (hub, cache) => {
    await assert.rejects(
      pull({ repo: "test-org/nope", endpoint: hub.url, cacheDir: cache, token: "" }),
      /test-org\/nope not found on http:\/\/127\.0\.0\.1:\d+ \(HTTP 404/,
    );
    await assert.rejects(
      pullFrom(hub, cache, { revision: "v9" }),
      /tiny-llama has no revision "v9" — check --revision/,
    );
    await assert.rejects(
      pull({ repo: REPO, endpoint: "http://127.0.0.1:9", cacheDir: cache, token: "" }),
      /cannot reach http:\/\/127\.0\.0\.1:9 .*HF_ENDPOINT/,
    );
  });
});

Deno.test("pull through the CLI: HF_ENDPOINT, HF_TOKEN and HF_HUB_CACHE from the environment", async () => {
  await withHub({ token: "hf_cli_token" }, async (hub, cache) => {
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_HOME: cache, HF_TOKEN: "hf_cli_token" };
    const run = async (args: string[], extraEnv: Record<string, string> = {}) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "main.ts", ...args],
        env: { ...env, ...extraEnv, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return {
        code: out.code,
        stdout: new TextDecoder().decode(out.stdout),
        stderr: new TextDecoder().decode(out.stderr),
      };
    };

    const ok = await run(["pull", REPO]);
    assert.equal(ok.code, 0, ok.stderr);
    const snapshot = join(storageOf(cache), "snapshots", hub.commit);
    assert.equal(ok.stdout.trim(), snapshot);
    assert.match(ok.stderr, /pulled test-org\/tiny-llama@[0-9a-f]{10}: 9 files \(9 downloaded/);
    assert.match(ok.stderr, /run it: flexidepth run --model test-org\/tiny-llama/);
    assert.deepEqual(await listDir(snapshot), NEEDED);
    assert.ok(
      hub.log.filter((r) => r.server === "hub").every((r) => r.auth === "Bearer hf_cli_token"),
    );

    hub.options.corrupt = { file: SHARD };
    await Deno.remove(storageOf(cache), { recursive: true });
    const corrupt = await run(["pull", `${REPO}@main`]);
    delete hub.options.corrupt;
    assert.equal(corrupt.code, 1);
    const lines = corrupt.stderr.trim().split("\n");
    assert.match(
      lines.at(-1)!,
      /^error: checksum mismatch for test-org\/tiny-llama\/model-00001-of-00002\.safetensors/,
    );
    assert.ok(!corrupt.stderr.includes("    at "), "no stack trace");

    const usage = await run(["pull", "not a repo"]);
    assert.equal(usage.code, 2);
    assert.match(
      usage.stderr,
      /error: pull: "not a repo" is not a Hugging Face repo id — give it as ORG\/NAME/,
    );

    const missing = await run(["run", "hi", "--model", "someone/elses-model"]);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /error: model someone\/elses-model is not in the Hugging Face cache \(.*models--someone--elses-model\) — run: flexidepth pull someone\/elses-model/,
    );
  });
});

Deno.test("cleanup: the shared source checkpoint", async () => {
  if (sourceDir) await Deno.remove(await sourceDir, { recursive: true });
});
