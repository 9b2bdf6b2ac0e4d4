/** The training run's files: the state file (atomic, resumable), the exported model. */

import { deepStrictEqual as assertEquals, ok, rejects, throws } from "node:assert/strict";
import { testGpu } from "./harness.ts";
import { ParamStore } from "../src/train/params.ts";
import { loadState, readRunState, saveState, STATE_FILE } from "../src/train/state.ts";
import { exportModel } from "../src/train/export.ts";
import { writeDemoCheckpoint } from "../src/model/demo.ts";
import { openCheckpoint } from "../src/model/checkpoint.ts";
import { decodeToF32 } from "../src/model/dtype.ts";
import { readTensorBytes } from "../src/model/safetensors.ts";
import { progressLine, resumeLog, StepLog, type StepRecord } from "../src/train/log.ts";
import { renderTrainReport } from "../src/train/report.ts";

const tmp = await Deno.makeTempDir({ prefix: "flexidepth-train-io-" });

Deno.test("train: the state file round-trips values and moments, and says where the run was", async () => {
  const gpu = await testGpu("fast");
  const store = new ParamStore(gpu.device);
  const w = store.add({
    name: "w",
    shape: [3, 5],
    init: Float32Array.from({ length: 15 }, (_, i) => i),
    trainable: true,
  });
  store.add({ name: "frozen", shape: [4], init: new Float32Array(4).fill(2), trainable: false });
  store.write(w, "m", new Float32Array(15).fill(0.5));
  store.write(w, "v", new Float32Array(15).fill(0.25));
  const dir = `${tmp}/state`;
  await Deno.mkdir(dir);
  ok((await readRunState(dir)) === null, "no state yet");
  await saveState(dir, store, { step: 7, data: { epoch: 1, index: 3 }, settings: { lr: 1 } });
  assertEquals(await readRunState(dir), { step: 7, data: { epoch: 1, index: 3 }, settings: { lr: 1 } });
  const again = new ParamStore(gpu.device);
  const w2 = again.add({ name: "w", shape: [3, 5], init: new Float32Array(15), trainable: true });
  await loadState(dir, again);
  assertEquals(Array.from(await again.read(w2)), Array.from({ length: 15 }, (_, i) => i));
  assertEquals(Array.from(await again.read(w2, "v")), new Array(15).fill(0.25));
  const wrong = new ParamStore(gpu.device);
  wrong.add({ name: "w", shape: [5, 3], init: new Float32Array(15), trainable: true });
  await rejects(loadState(dir, wrong), /has no tensor w \[5,3\]/);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), [STATE_FILE], "no temporary file left behind");
});

Deno.test("train: an exported model keeps the base's untrained tensors byte for byte (one held in BF16) and adds the trained ones", async () => {
  const gpu = await testGpu("fast");
  const base = `${tmp}/base`;
  await writeDemoCheckpoint(base, {
    seed: 2,
    layers: 2,
    hidden: 32,
    heads: 2,
    kvHeads: 1,
    headDim: 16,
    intermediate: 48,
    vocabSize: 300,
  });
  const ck = await openCheckpoint(base);
  const store = new ParamStore(gpu.device);
  const norm = ck.tensors.get("model.norm.weight")!;
  store.add({
    name: norm.name,
    shape: norm.shape,
    init: decodeToF32(norm.dtype, await readTensorBytes(norm)),
    trainable: false,
  });
  store.add({
    name: "extra.weight",
    shape: [2, 3],
    init: Float32Array.of(1, 2, 3, 4, 5, 6),
    trainable: true,
  });
  // A frozen matrix held in the base's BF16, as paramSpecs keeps one: 2 bytes an element on the GPU, read back
  // widened, never written; a trained parameter is f32.
  const embed = ck.tensors.get("model.embed_tokens.weight")!, bytes = await readTensorBytes(embed);
  assertEquals(embed.dtype, "BF16");
  const e = store.add({ name: embed.name, shape: embed.shape, init: bytes, dtype: "BF16", trainable: false });
  assertEquals(e.value.size, Math.ceil(bytes.byteLength / 16) * 16);
  assertEquals(Array.from(await store.read(e)), Array.from(decodeToF32("BF16", bytes)));
  throws(() => store.write(e, "value", new Float32Array(e.size)), /is BF16, not f32/);
  const twice = { name: "t", shape: [1, 2], init: new Uint8Array(4), dtype: "BF16" as const };
  throws(() => new ParamStore(gpu.device).add({ ...twice, trainable: true }), /a trained parameter is f32/);
  throws(
    () => new ParamStore(gpu.device).add({ ...twice, shape: [1, 3], trainable: false }),
    /2 initial values/,
  );
  const config = JSON.parse(await Deno.readTextFile(`${base}/config.json`));
  await exportModel({ out: `${tmp}/out`, config, store, base: ck, tokenizerDir: base, dtype: "F32" });
  const out = await openCheckpoint(`${tmp}/out`);
  for (const [name, info] of ck.tensors) {
    assertEquals(await readTensorBytes(out.tensors.get(name)!), await readTensorBytes(info), name);
  }
  const extra = out.tensors.get("extra.weight")!;
  assertEquals(Array.from(decodeToF32(extra.dtype, await readTensorBytes(extra))), [1, 2, 3, 4, 5, 6]);
});

Deno.test("train: the step log resumes cut back to the resumed step; the report draws it", async () => {
  const dir = `${tmp}/log`;
  await Deno.mkdir(dir);
  const rec = (step: number): StepRecord => ({
    step,
    loss: 3 - step / 10,
    lm_loss: 3 - step / 10,
    skip_loss: 0.5,
    mean_layers: 4,
    routed_fraction: [0.5, 0.7],
    lr: 1e-3,
    grad_norm: 1,
    tokens_per_s: 100,
    elapsed_s: step,
  });
  const log = await StepLog.open(dir, []);
  for (let s = 0; s < 5; s++) await log.append(rec(s));
  log.close();
  const kept = await resumeLog(dir, 3);
  assertEquals(kept.map((r) => r.step), [0, 1, 2]);
  assertEquals((await Deno.readTextFile(`${dir}/train.jsonl`)).trim().split("\n").length, 3);
  ok(/step 3\/10 loss 2\.8000 L_skip 0\.500/.test(progressLine(rec(2), 10)));
  const html = renderTrainReport("run", { stage: "flexidepth" }, kept);
  ok(html.includes("<svg") && html.includes("routed layer 2") && html.includes("flexidepth"));
});
