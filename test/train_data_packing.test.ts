/**
 * The training data pipeline (src/train/data/), packing and the held-out split: windows of seq + 1 with BOS
 * and EOS at document boundaries, targets one token on, held-out documents by count or fraction and seed,
 * source weights, and the TinyStories excerpt packed whole.
 */

import assert from "node:assert/strict";
import { openTrainingData, parseSource } from "../src/train/data/mod.ts";
import { loadSource } from "../src/train/data/sources.ts";
import { heldOutMasks, trainingStream, validationStream } from "../src/train/data/split.ts";
import {
  BOS,
  EOS,
  joinWindows,
  packed,
  sourceOptions,
  stories,
  storiesFile,
  storyDocs,
  TINYSTORIES,
  withTempDir,
} from "./train_data_fixtures.ts";

// ------------------------------------------------------------------------------ packing and split

Deno.test("packing: windows of seq + 1 over the kept documents, BOS/EOS exactly at their boundaries", async () => {
  await withTempDir(async (dir) => {
    const docs = storyDocs(40);
    const path = await storiesFile(dir, docs);
    const seq = 8;
    const opts = await sourceOptions();
    const s = await loadSource(parseSource(path), opts);
    const masks = heldOutMasks([s], 0.25, 9);
    assert.equal(masks[0].reduce((a, b) => a + b, 0), 10);
    const kept = docs.filter((_, d) => !masks[0][d]);
    const held = docs.filter((_, d) => masks[0][d]);
    const stream = kept.flatMap((d) => packed(stories, d));
    const train = trainingStream([s], masks, 9);
    assert.equal(train.length, stream.length);
    const validation = validationStream([s], masks);
    assert.equal(validation.length, held.flatMap((d) => packed(stories, d)).length);
    // The same through openTrainingData: every window, in packing order.
    const data = await openTrainingData({ sources: [path], tokenizer: stories, seq, seed: 9, heldOut: 0.25 });
    assert.equal(data.windows, Math.floor((stream.length - 1) / seq));
    for (let w = 0; w < data.windows; w++) {
      const win = [...data.trainWindow(w)];
      assert.deepEqual(win, stream.slice(w * seq, w * seq + seq + 1), `window ${w}`);
    }
    // BOS exactly where a document starts, EOS exactly where one ends (the stream as the windows give it).
    const fromWindows = joinWindows(data.windows, (w) => data.trainWindow(w));
    assert.deepEqual(fromWindows, stream.slice(0, fromWindows.length));
    let at = 0;
    for (const d of kept) {
      const n = packed(stories, d).length;
      if (at + n > fromWindows.length) break;
      assert.equal(fromWindows[at], BOS);
      assert.equal(fromWindows[at + n - 1], EOS);
      assert.ok(!fromWindows.slice(at + 1, at + n - 1).some((id) => id === BOS || id === EOS));
      at += n;
    }
    // No held-out document's marker in the training windows; the held-out ones in the validation windows.
    const trainText = stories.decode(fromWindows);
    const validText = stories.decode(joinWindows(data.validationWindows, (w) => data.validationWindow(w)));
    for (const d of held) assert.ok(!trainText.includes(d.slice(0, d.indexOf(":") + 1)), d);
    for (const d of kept.slice(0, -1)) assert.ok(trainText.includes(d), d);
    for (const d of held.slice(0, -1)) assert.ok(validText.includes(d), d);
    assert.deepEqual(data.sources.map((x) => [x.docs, x.heldOutDocs]), [[40, 10]]);
  });
});

Deno.test("packing: a batch's targets are its inputs moved on by one token", async () => {
  await withTempDir(async (dir) => {
    const path = await storiesFile(dir, storyDocs(30));
    const data = await openTrainingData({ sources: [path], tokenizer: stories, seq: 12, seed: 2 });
    const b = data.batch(5);
    assert.equal(b.inputs.length, 60);
    for (let r = 0; r < 5; r++) {
      const ins = b.inputs.subarray(r * 12, r * 12 + 12);
      const tgt = b.targets.subarray(r * 12, r * 12 + 12);
      assert.deepEqual([...tgt.subarray(0, 11)], [...ins.subarray(1)]);
      const w = [...Array(data.windows).keys()].find((k) =>
        data.trainWindow(k).subarray(0, 12).every((v, j) => v === ins[j])
      );
      assert.ok(w !== undefined);
      assert.equal(tgt[11], data.trainWindow(w!)[12]);
    }
  });
});

Deno.test("split: a count over all sources; the same documents for the same seed; weights repeat documents", async () => {
  await withTempDir(async (dir) => {
    const a = await loadSource(
      parseSource(await storiesFile(dir, storyDocs(20), "a.txt")),
      await sourceOptions(),
    );
    const b = await loadSource(
      parseSource(await storiesFile(dir, storyDocs(5), "b.txt")),
      await sourceOptions(),
    );
    const masks = heldOutMasks([a, b], 6, 4);
    assert.equal(masks.flatMap((m) => [...m]).reduce((x, y) => x + y, 0), 6);
    assert.deepEqual(heldOutMasks([a, b], 6, 4), masks);
    assert.notDeepEqual(heldOutMasks([a, b], 6, 5), masks);
    // The fraction is per source, and b's choice does not depend on a being there.
    assert.deepEqual(heldOutMasks([a, b], 0.4, 4)[1], heldOutMasks([b], 0.4, 4)[0]);
    const none = heldOutMasks([a, b], 0, 4);
    const twice = trainingStream([{ ...a, spec: { ...a.spec, weight: 2 } }, b], none, 4);
    assert.equal(twice.length, 2 * a.tokens.length + b.tokens.length);
    const half = trainingStream([{ ...a, spec: { ...a.spec, weight: 0.5 } }], none, 4);
    const kept = [...a.docLens].length;
    assert.ok(
      half.length > 0.2 * a.tokens.length && half.length < 0.8 * a.tokens.length,
      `${half.length} of ${kept}`,
    );
  });
});

// -------------------------------------------------------------------------------------- real data

Deno.test("real data: the TinyStories excerpt, read in 64 KiB chunks, packs every story with held-out ones apart", async () => {
  const text = await Deno.readTextFile(TINYSTORIES);
  const stories_ = text.split(/\n[ \t\r]*\n/).map((d) => d.replace(/^(?:[ \t\r]*\n)+/, "").trimEnd())
    .filter((d) => d !== "");
  let chunks = 0;
  const data = await openTrainingData({
    sources: [TINYSTORIES],
    tokenizer: stories,
    seq: 64,
    seed: 1,
    heldOut: 0.05,
    chunkBytes: 64 << 10,
    onProgress: () => chunks++,
  });
  assert.ok(chunks >= 12, `${chunks} chunks`);
  const [info] = data.sources;
  assert.equal(info.docs, stories_.length);
  assert.equal(info.heldOutDocs, Math.round(0.05 * stories_.length));
  const total = stories_.reduce((n, d) => n + packed(stories, d).length, 0);
  assert.equal(info.tokens, total);
  const b = data.batch(16);
  assert.ok(b.inputs.every((id) => id < stories.vocabSize));
  assert.ok(data.validationWindows > 0);
  const sampleText = stories.decode([...b.inputs.subarray(0, 64)]);
  assert.ok(/[a-z]+ [a-z]+/.test(sampleText), sampleText);
});
