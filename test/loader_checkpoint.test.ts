/**
 * Checkpoint folders that open: the demo checkpoint, single-file or sharded, the real stories260K and
 * stories260K-flexidepth, a missing folder reported with --model advice, and where the EOS ids come from.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { readTensorBytes } from "../src/model/safetensors.ts";
import { openCheckpoint, routerDims, routerTensorNames } from "../src/model/checkpoint.ts";
import { type DemoOptions, writeDemoCheckpoint } from "../src/model/demo.ts";
import { editJson, rejectsWith, SMALL, withTempDir } from "./loader_fixtures.ts";

const STORIES = new URL("../../shared/models/stories260K", import.meta.url).pathname;
const STORIES_FD = new URL("../../shared/models/stories260K-flexidepth", import.meta.url).pathname;

Deno.test("the demo checkpoint opens and every Llama tensor is there", async () => {
  await withTempDir(async (dir) => {
    await writeDemoCheckpoint(dir, SMALL);
    const ck = await openCheckpoint(dir);
    assert.equal(ck.config.modelType, "llama");
    assert.equal(ck.dtype, "BF16");
    assert.deepEqual(ck.eosTokenIds, [128001, 128009]);
    assert.equal(ck.tensors.size, 1 + 2 * 9 + 2);
    assert.equal(ck.totalBytes, [...ck.tensors.values()].reduce((s, t) => s + t.byteLength, 0));
    assert.equal(ck.tokenizerJsonPath, join(dir, "tokenizer.json"));
    assert.equal(typeof ck.tokenizerConfig.chat_template, "string");
  });
});

Deno.test("a sharded demo checkpoint loads the same tensors as a single-file one", async () => {
  await withTempDir(async (dir) => {
    const single = join(dir, "single");
    const sharded = join(dir, "sharded");
    const opts: DemoOptions = { ...SMALL, routingLayers: [1], dtype: "F16" };
    await writeDemoCheckpoint(single, opts);
    await writeDemoCheckpoint(sharded, { ...opts, shards: 3 });
    const files = [...Deno.readDirSync(sharded)].map((e) => e.name).filter((n) => n.endsWith(".safetensors"));
    assert.deepEqual(files.sort(), [1, 2, 3].map((i) => `model-0000${i}-of-00003.safetensors`));
    const a = await openCheckpoint(single);
    const b = await openCheckpoint(sharded);
    assert.deepEqual([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort());
    assert.equal(new Set([...b.tensors.values()].map((t) => t.file)).size, 3);
    for (const [name, t] of a.tensors) {
      assert.deepEqual(await readTensorBytes(b.tensors.get(name)!), await readTensorBytes(t), name);
    }
    assert.equal(b.totalBytes, a.totalBytes);
    assert.equal(b.dtype, "F16");
  });
});

Deno.test("stories260K opens and validates", async () => {
  const ck = await openCheckpoint(STORIES);
  assert.equal(ck.config.numLayers, 5);
  assert.equal(ck.config.tieWordEmbeddings, true);
  assert.equal(ck.tensors.has("lm_head.weight"), false);
  assert.equal(ck.dtype, "F32");
  assert.deepEqual(ck.eosTokenIds, [2]);
  assert.deepEqual(ck.config.routingLayers, []);
});

Deno.test("stories260K-flexidepth opens with routers of bottleneck 4 and adapters of 10", async () => {
  const ck = await openCheckpoint(STORIES_FD);
  assert.equal(ck.config.modelType, "ddllama");
  assert.deepEqual(ck.config.routingLayers, [2, 3, 4]);
  for (const layer of [2, 3, 4]) assert.deepEqual(routerDims(ck, layer), { bottleneck: 4, adapter: 10 });
  assert.ok(ck.tensors.has(routerTensorNames(4).up));
});

Deno.test("a missing folder or a file instead of a folder is reported with --model advice", async () => {
  await withTempDir(async (dir) => {
    await rejectsWith(openCheckpoint(join(dir, "nope")), /model folder .*nope not found/, /--model DIR/);
    await Deno.writeTextFile(join(dir, "file"), "");
    await rejectsWith(openCheckpoint(join(dir, "file")), /is not a folder/);
  });
});

Deno.test("generation_config eos ids extend config.json's; tied checkpoints may still carry lm_head", async () => {
  await withTempDir(async (dir) => {
    await writeDemoCheckpoint(dir, SMALL);
    await editJson(join(dir, "config.json"), (c) => {
      c.eos_token_id = 128001;
      c.tie_word_embeddings = true;
    });
    await editJson(join(dir, "generation_config.json"), (g) => (g.eos_token_id = [128009, 128001, 5]));
    const ck = await openCheckpoint(dir);
    assert.deepEqual(ck.eosTokenIds, [128001, 128009, 5]);
    assert.ok(ck.tensors.has("lm_head.weight"));
    await Deno.remove(join(dir, "generation_config.json"));
    await Deno.remove(join(dir, "tokenizer_config.json"));
    const bare = await openCheckpoint(dir);
    assert.equal(bare.generationConfig, null);
    assert.deepEqual(bare.tokenizerConfig, {});
    assert.deepEqual(bare.eosTokenIds, [128001]);
  });
});
