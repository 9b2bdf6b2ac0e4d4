/**
 * The training data pipeline (src/train/data/), order and position: seeded batches, a new order of every
 * window each epoch, a saved position that resumes exactly (and only on the same data), and the held-out
 * validation batches.
 */

import assert from "node:assert/strict";
import { UsageError } from "../src/errors.ts";
import { DataError } from "../src/train/data/mod.ts";
import { open, storiesFile, storyDocs, take, withTempDir } from "./train_data_fixtures.ts";

// ------------------------------------------------------------------------------- order and position

Deno.test("batches: the same seed gives the same batches; each epoch is a new order of every window", async () => {
  await withTempDir(async (dir) => {
    const path = await storiesFile(dir, storyDocs(30));
    const a = await open(path, 11);
    const b = await open(path, 11);
    const c = await open(path, 12);
    const perEpoch = a.windows;
    assert.ok(perEpoch > 20, `${perEpoch} windows`);
    const seqA = take(a, 3 * perEpoch, 1);
    assert.deepEqual(take(b, 3 * perEpoch, 1), seqA);
    assert.notDeepEqual(take(c, 10, 1), seqA.slice(0, 10));
    const all = [...Array(perEpoch).keys()].map((w) => JSON.stringify([...a.trainWindow(w).subarray(0, 8)]))
      .sort();
    const epochs = [0, 1, 2].map((e) =>
      seqA.slice(e * perEpoch, (e + 1) * perEpoch).map((r) => JSON.stringify(r))
    );
    for (const e of epochs) assert.deepEqual([...e].sort(), all);
    assert.notDeepEqual(epochs[0], epochs[1]);
    assert.deepEqual(a.position, { ...a.position, epoch: 3, index: 0 });
    // The arrays are reused: no allocation per step.
    const first = a.batch(4);
    const second = a.batch(4);
    assert.ok(first === second && first.inputs === second.inputs && first.targets === second.targets);
  });
});

Deno.test("batches: a saved position continues exactly where an uninterrupted run goes", async () => {
  await withTempDir(async (dir) => {
    const path = await storiesFile(dir, storyDocs(30));
    const straight = await open(path, 21);
    const n = straight.windows;
    take(straight, 3, 7); // across no epoch end yet
    const saved = JSON.parse(JSON.stringify(straight.position));
    const rest = take(straight, Math.ceil(2 * n / 7), 7); // across two epoch ends
    const resumed = await open(path, 21);
    resumed.restore(saved);
    assert.deepEqual(take(resumed, rest.length, 7), rest);
    assert.deepEqual(resumed.position, straight.position);
    // A position of other data, or a damaged one, is refused with the fix.
    const other = await open(path, 22);
    assert.throws(
      () => other.restore(saved),
      (e: unknown) => e instanceof DataError && e.message.includes("—"),
    );
    assert.throws(() => resumed.restore({ ...saved, index: -1 }), DataError);
    const otherSeq = await open(path, 21, { seq: 9 });
    assert.throws(() => otherSeq.restore(saved), DataError);
  });
});

Deno.test("batches: a saved position follows the data's content, not its path or file time", async () => {
  await withTempDir(async (dir) => {
    const docs = storyDocs(30);
    const path = await storiesFile(dir, docs);
    const first = await open(path, 21);
    take(first, 2, 7);
    const saved = JSON.parse(JSON.stringify(first.position));
    // The same text re-copied elsewhere, with another modification time, resumes.
    const copy = await storiesFile(dir, docs, "copied.txt");
    await Deno.utime(copy, new Date(2001, 1, 1), new Date(2001, 1, 1));
    const moved = await open(copy, 21);
    moved.restore(saved);
    assert.deepEqual(moved.position, first.position);
    // Changed text does not.
    const edited = await storiesFile(dir, [...docs.slice(1), docs[0]], "edited.txt");
    const other = await open(edited, 21);
    assert.throws(() => other.restore(saved), DataError);
  });
});

Deno.test("validation: the held-out windows in order, the last batch short; none without a split", async () => {
  await withTempDir(async (dir) => {
    const path = await storiesFile(dir, storyDocs(40));
    const data = await open(path, 5, { heldOut: 8 });
    const n = data.validationWindows;
    assert.ok(n > 5, `${n} validation windows`);
    const rows: number[][] = [];
    for (const b of data.validation(4)) {
      assert.equal(b.inputs.length, b.rows * 8);
      for (let r = 0; r < b.rows; r++) {
        rows.push([...b.inputs.subarray(r * 8, r * 8 + 8), b.targets[r * 8 + 7]]);
      }
    }
    assert.equal(rows.length, n);
    rows.forEach((row, w) => assert.deepEqual(row, [...data.validationWindow(w)]));
    const before = data.position;
    [...data.validation(3)];
    assert.deepEqual(data.position, before, "validation leaves the training order alone");
    const noSplit = await open(path, 5, { heldOut: 0 });
    assert.equal([...noSplit.validation(4)].length, 0);
    await assert.rejects(open(path, 5, { heldOut: 40 }), UsageError); // everything held out: nothing to train on
    await assert.rejects(open(path, 5, { heldOut: 1.5 }), UsageError);
  });
});
