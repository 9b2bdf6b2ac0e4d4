/**
 * Model resolution (src/cli/resolve.ts) from Hugging Face caches laid out by hand: HF_HUB_CACHE, HF_HOME,
 * FLEXIDEPTH_MODEL, revisions, incomplete snapshots, local folders first, and the bundled or demo model when
 * none is given.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveModel } from "../src/cli/resolve.ts";
import { HubError } from "../src/hub/cache.ts";
import { NO_HF_ENV, withEnv } from "./pull_fixtures.ts";

/** A cache laid out by hand, as another tool would leave it. */
async function fakeCache(root: string, repo: string, refs: Record<string, string>, commits: string[]) {
  const storage = join(root, `models--${repo.replace("/", "--")}`);
  for (const c of commits) {
    await Deno.mkdir(join(storage, "snapshots", c), { recursive: true });
    await Deno.writeTextFile(join(storage, "snapshots", c, "config.json"), "{}");
  }
  for (const [ref, c] of Object.entries(refs)) {
    await Deno.mkdir(join(storage, "refs", ref, ".."), { recursive: true });
    await Deno.writeTextFile(join(storage, "refs", ref), c + "\n");
  }
  return storage;
}

Deno.test("resolveModel: HF_HUB_CACHE, HF_HOME, FLEXIDEPTH_MODEL, revisions, local folders first", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "flexidepth-resolve-" });
  const cwd = Deno.cwd();
  try {
    const c1 = "1".repeat(40);
    const c2 = "2".repeat(40);
    const hubCache = join(tmp, "hub-cache");
    const storage = await fakeCache(hubCache, "org/model", { main: c1, v1: c2, "refs/pr/1": c2 }, [c1, c2]);
    const homeStorage = await fakeCache(join(tmp, "hf-home", "hub"), "org/model", { main: c2 }, [c2]);

    await withEnv({ ...NO_HF_ENV, HF_HUB_CACHE: hubCache, HF_HOME: join(tmp, "hf-home") }, async () => {
      // HF_HUB_CACHE wins over HF_HOME.
      assert.equal((await resolveModel("org/model")).dir, join(storage, "snapshots", c1));
      assert.equal((await resolveModel("org/model@v1")).dir, join(storage, "snapshots", c2));
      assert.equal((await resolveModel("org/model@refs/pr/1")).dir, join(storage, "snapshots", c2));
      assert.equal((await resolveModel(`org/model@${c2}`)).dir, join(storage, "snapshots", c2));
      await assert.rejects(resolveModel("org/model@v2"), (err: Error) => {
        assert.ok(err instanceof HubError);
        assert.equal(
          err.message,
          `model org/model@v2 is not in the Hugging Face cache (${storage}) — run: flexidepth pull org/model --revision v2`,
        );
        return true;
      });
      await assert.rejects(resolveModel("x/missing"), (err: Error) => {
        assert.equal(
          err.message,
          `model x/missing is not in the Hugging Face cache (${join(hubCache, "models--x--missing")}) — ` +
            "run: flexidepth pull x/missing",
        );
        return true;
      });
      // $FLEXIDEPTH_MODEL takes repo ids too; --model wins over it.
      await withEnv({ FLEXIDEPTH_MODEL: "org/model@v1" }, async () => {
        assert.deepEqual(await resolveModel(undefined), { dir: join(storage, "snapshots", c2), demo: false });
        assert.equal((await resolveModel("org/model")).dir, join(storage, "snapshots", c1));
      });
    });

    await withEnv({ ...NO_HF_ENV, HF_HOME: join(tmp, "hf-home") }, async () => {
      assert.equal((await resolveModel("org/model")).dir, join(homeStorage, "snapshots", c2));
    });

    // An incomplete snapshot (another tool fetched only some files) says to pull.
    const partial = await fakeCache(hubCache, "org/partial", { main: c1 }, [c1]);
    await Deno.remove(join(partial, "snapshots", c1, "config.json"));
    await withEnv({ ...NO_HF_ENV, HF_HUB_CACHE: hubCache }, async () => {
      await assert.rejects(
        resolveModel("org/partial"),
        /has no config.json — run: flexidepth pull org\/partial/,
      );
    });

    // A folder that exists wins over a repo id spelled the same; other missing paths pass through.
    await Deno.mkdir(join(tmp, "work", "org", "model"), { recursive: true });
    Deno.chdir(join(tmp, "work"));
    await withEnv({ ...NO_HF_ENV, HF_HUB_CACHE: hubCache }, async () => {
      assert.deepEqual(await resolveModel("org/model"), { dir: "org/model", demo: false });
      assert.deepEqual(await resolveModel("./no/such/folder"), { dir: "./no/such/folder", demo: false });
    });
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("resolveModel: no model given — the bundled model when it is there, else the demo model", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "flexidepth-bundled-" });
  try {
    await withEnv({ FLEXIDEPTH_MODEL: undefined }, async () => {
      const missing = join(tmp, "flexidepth-tiny");
      const demo = await resolveModel(undefined, missing);
      assert.equal(demo.demo, true);
      assert.notEqual(demo.dir, missing);
      await Deno.mkdir(missing);
      await Deno.writeTextFile(join(missing, "config.json"), "{}");
      assert.deepEqual(await resolveModel(undefined, missing), { dir: missing, demo: false });
      assert.deepEqual(await resolveModel(tmp, missing), { dir: tmp, demo: false });
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
