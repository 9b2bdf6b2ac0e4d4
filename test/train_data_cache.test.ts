/**
 * The training data pipeline (src/train/data/), the token cache: a second run reads the ids, a changed
 * source or another seed for generated tasks is tokenized again, a damaged file is rebuilt, and a cache that
 * cannot be written is only a warning.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { DataError, type DataWarning } from "../src/train/data/mod.ts";
import {
  joinWindows,
  open,
  stories,
  storiesFile,
  storyDocs,
  take,
  withTempDir,
} from "./train_data_fixtures.ts";

// ----------------------------------------------------------------------------------- token cache

Deno.test("cache: a second run reads the ids; a changed source is tokenized again", async () => {
  await withTempDir(async (dir) => {
    const cacheDir = join(dir, "run");
    const path = await storiesFile(dir, storyDocs(20));
    const first = await open([path, "tasks:sum:5"], 3, { cacheDir });
    assert.deepEqual(first.sources.map((s) => s.fromCache), [false, false]);
    const files = [...Deno.readDirSync(cacheDir)].map((e) => e.name).sort();
    assert.equal(files.length, 2);
    assert.ok(files.every((f) => f.endsWith(".tokens")));
    const again = await open([path, "tasks:sum:5"], 3, { cacheDir });
    assert.deepEqual(again.sources.map((s) => s.fromCache), [true, true]);
    assert.deepEqual(take(again, 5, 3), take(first, 5, 3));
    // The header names the source, the tokenizer and (for generated tasks) the seed.
    const bytes = await Deno.readFile(first.sources[1].cacheFile!);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), "FDTOKENS");
    const h = JSON.parse(
      new TextDecoder().decode(bytes.subarray(12, 12 + new DataView(bytes.buffer).getUint32(8, true))),
    );
    assert.deepEqual([h.identity.source, h.identity.seed, h.tokenizer, h.docs], [
      "tasks:sum:5",
      3,
      "stories260K",
      5,
    ]);
    // Another seed: the text file's cache still serves, the tasks are generated again.
    const seed4 = await open([path, "tasks:sum:5"], 4, { cacheDir });
    assert.deepEqual(seed4.sources.map((s) => s.fromCache), [true, false]);

    await Deno.writeTextFile(path, "\n\nA new story about a frog.", { append: true });
    const grown = await open(path, 3, { cacheDir });
    assert.deepEqual(grown.sources.map((s) => [s.fromCache, s.docs]), [[false, 21]]);
    // Same size, later modification time: tokenized again.
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, text.replace("Story 0:", "Story X:"));
    await Deno.utime(path, new Date(), new Date(Date.now() + 5000));
    const edited = await open(path, 3, { cacheDir, heldOut: 0 });
    assert.equal(edited.sources[0].fromCache, false);
    assert.match(
      stories.decode(joinWindows(edited.windows, (w) => edited.trainWindow(w))),
      /^Story X: the cat/,
    );
  });
});

Deno.test("cache: a damaged or foreign file is rebuilt, never trusted", async () => {
  await withTempDir(async (dir) => {
    const cacheDir = join(dir, "run");
    const path = await storiesFile(dir, storyDocs(10));
    const first = await open(path, 1, { cacheDir });
    const file = first.sources[0].cacheFile!;
    const bytes = await Deno.readFile(file);
    await Deno.writeFile(file, bytes.subarray(0, bytes.length - 4)); // cut short
    const cut = await open(path, 1, { cacheDir });
    assert.equal(cut.sources[0].fromCache, false);
    assert.deepEqual(take(cut, 4, 2), take(first, 4, 2));
    await Deno.writeTextFile(file, "not a cache");
    assert.equal((await open(path, 1, { cacheDir })).sources[0].fromCache, false);
    // Another separator is another identity: another file beside it.
    const sep = await open(path, 1, { cacheDir, docSep: "\n\n\n" });
    assert.ok(sep.sources[0].cacheFile !== file && !sep.sources[0].fromCache);
  });
});

Deno.test("cache: a cache that cannot be written is a warning, and the run goes on; a folder is no source", async () => {
  await withTempDir(async (dir) => {
    const path = await storiesFile(dir, storyDocs(10));
    const blocked = join(dir, "blocked");
    await Deno.writeTextFile(blocked, "a file where the cache folder should be");
    const warnings: DataWarning[] = [];
    const data = await open(path, 1, { cacheDir: blocked, onWarning: (w) => warnings.push(w) });
    assert.ok(data.windows > 0);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0].message, /cannot write the token cache/);
    await assert.rejects(
      open(dir, 1),
      (e: unknown) => e instanceof DataError && e.message.includes("is not a file"),
    );
  });
});
