/**
 * Whole-model gradients, one test per stage: the training graph's loss against the f64 reference
 * (test/train_model_reference.ts), and every trainable tensor's gradient at sampled entries against central
 * finite differences of the reference loss — pretrain (Llama with tied embeddings, Qwen3 with q/k norms),
 * FlexiDepth (routed layers, hard routing, L_skip) and DMTD (the cycle's mixed input).
 */

import { ok as assert } from "node:assert/strict";
import { parseConfig } from "../src/model/config.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { backendProfile, type KernelFamily } from "../src/gpu/profile.ts";
import { bufferFrom } from "../src/gpu/buffers.ts";
import { ropeTable } from "../src/ops/rope/table.ts";
import { TrainContext } from "../src/train/model/context.ts";
import { TrainModel } from "../src/train/model/model.ts";
import { type Stage, tensorSlots, trains } from "../src/train/model/params.ts";
import { type TrainShape, trainShape } from "../src/train/model/shape.ts";
import { ParamStore } from "../src/train/params.ts";
import { gaussian, mulberry32 } from "../src/util/random.ts";
import { testGpu } from "./harness.ts";
import { type RefBatch, referenceTrainLoss, type Values } from "./train_model_reference.ts";

const BATCH = 2, SEQ = 5;

function config(arch: "llama" | "qwen3", tied: boolean) {
  return parseConfig({
    model_type: arch,
    hidden_size: 32,
    intermediate_size: 40,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    vocab_size: 19,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: tied,
  });
}

/** Values with enough spread that every path carries gradient (norm weights near 1, routers spread around 0.5). */
function initialValues(s: TrainShape, seed: number): Values {
  const v: Values = new Map();
  const g = gaussian(seed);
  for (const slot of tensorSlots(s)) {
    const n = slot.shape.reduce((a, b) => a * b, 1);
    const std = slot.name.endsWith("router_head.weight") ? 1.5 : 0.4;
    v.set(slot.name, Float64Array.from({ length: n }, () => slot.ones ? 1 + 0.2 * g() : std * g()));
  }
  return v;
}

function batchOf(s: TrainShape, seed: number): RefBatch {
  const u = mulberry32(seed), N = BATCH * SEQ;
  const tok = () => Uint32Array.from({ length: N }, () => Math.floor(u() * s.vocab));
  return { batch: BATCH, seq: SEQ, inputs: tok(), targets: tok(), cosSin: ropeTable(s.cfg, SEQ), alpha: 0.3 };
}

/** The GPU's loss and gradients for `values`. */
async function gpuGradients(stage: Stage, s: TrainShape, values: Values, b: RefBatch, family: KernelFamily) {
  const gpu = await testGpu("plain");
  const kernels = new KernelCache(gpu);
  const store = new ParamStore(gpu.device);
  for (const slot of tensorSlots(s)) {
    store.add({
      name: slot.name,
      shape: slot.shape,
      init: Float32Array.from(values.get(slot.name)!),
      trainable: trains(stage, slot),
    });
  }
  const profile = backendProfile(gpu, s.cfg, { family });
  const ctx = new TrainContext(
    kernels,
    profile,
    s,
    store,
    { batch: BATCH, seq: SEQ },
    bufferFrom(gpu.device, "rope", b.cosSin),
  );
  const model = new TrainModel(ctx, b.alpha);
  model.setBatch(gpu.device.queue, b.inputs, b.targets);
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  model.encodeStep(pass);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
  await kernels.checkErrors();
  const read = async (buf: GPUBuffer, n: number) => {
    const st = gpu.device.createBuffer({
      size: n * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const e = gpu.device.createCommandEncoder();
    e.copyBufferToBuffer(buf, 0, st, 0, n * 4);
    gpu.device.queue.submit([e.finish()]);
    await st.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(st.getMappedRange().slice(0));
    st.destroy();
    return out;
  };
  const lm = (await read(model.outputs.lmLoss, 1))[0];
  const skip = model.outputs.skipLoss ? (await read(model.outputs.skipLoss, 1))[0] : 0;
  const grads = new Map<string, Float32Array>();
  for (const p of store.trainable()) grads.set(p.name, await read(p.grad!, p.size));
  ctx.destroy();
  return { lm, skip, grads };
}

const sameRoutes = (a: Float64Array[], b: Float64Array[]) =>
  a.every((g, l) => g.every((x, t) => (x > 0.5) === (b[l][t] > 0.5)));

/** Checks sampled entries of every trainable tensor against central differences of the reference. */
function checkGradients(
  stage: Stage,
  s: TrainShape,
  values: Values,
  b: RefBatch,
  grads: Map<string, Float32Array>,
) {
  const base = referenceTrainLoss(values, s, b), u = mulberry32(7), h = 1e-4;
  let checked = 0, flipped = 0;
  for (const slot of tensorSlots(s)) {
    if (!trains(stage, slot)) continue;
    const w = values.get(slot.name)!, grad = grads.get(slot.name)!;
    for (let k = 0; k < 4; k++) {
      const i = Math.floor(u() * w.length), saved = w[i];
      w[i] = saved + h;
      const plus = referenceTrainLoss(values, s, b);
      w[i] = saved - h;
      const minus = referenceTrainLoss(values, s, b);
      w[i] = saved;
      if (!sameRoutes(plus.gates, base.gates) || !sameRoutes(minus.gates, base.gates)) {
        flipped++;
        continue;
      }
      const fd = (plus.loss - minus.loss) / (2 * h);
      const err = Math.abs(grad[i] - fd);
      assert(
        err <= 2e-4 + 2e-3 * Math.abs(fd),
        `${stage} ${slot.name}[${i}]: GPU ${grad[i]}, finite differences ${fd}`,
      );
      checked++;
    }
  }
  assert(checked >= 8 && flipped <= checked / 5, `${checked} entries checked, ${flipped} flipped a route`);
  return checked;
}

async function stageTest(stage: Stage, s: TrainShape, family: KernelFamily) {
  const values = initialValues(s, 11), b = batchOf(s, 5);
  const ref = referenceTrainLoss(values, s, b);
  const gpu = await gpuGradients(stage, s, values, b, family);
  assert(Math.abs(gpu.lm - ref.lm) <= 1e-4 * Math.abs(ref.lm), `LM loss ${gpu.lm} vs reference ${ref.lm}`);
  assert(
    Math.abs(gpu.skip - ref.skip) <= 1e-4 * (1 + ref.skip),
    `L_skip ${gpu.skip} vs reference ${ref.skip}`,
  );
  if (s.routed.length) {
    const kept = ref.gates.flat().reduce((a, g) => a + [...g].filter((x) => x > 0.5).length, 0);
    const all = ref.gates.length * BATCH * SEQ;
    assert(kept > 0 && kept < all, `the routes must mix kept and skipped rows (${kept} of ${all} kept)`);
  }
  checkGradients(stage, s, values, b, gpu.grads);
}

for (const family of ["software", "hardware"] as KernelFamily[]) {
  Deno.test(`train graph (${family}): pretrain Llama, tied embeddings — loss and gradients`, async () => {
    await stageTest("pretrain", trainShape(config("llama", true)), family);
  });
  Deno.test(`train graph (${family}): pretrain Qwen3 (q/k norms) — loss and gradients`, async () => {
    await stageTest("pretrain", trainShape(config("qwen3", false)), family);
  });
  Deno.test(`train graph (${family}): FlexiDepth, routed layers 1-2 — loss, L_skip and gradients`, async () => {
    await stageTest("flexidepth", trainShape(config("llama", false), { routed: [1, 2] }), family);
  });
  Deno.test(`train graph (${family}): DMTD, τ = 2 after 2 thinking layers — loss and gradients`, async () => {
    await stageTest("dmtd", trainShape(config("llama", false), { dmtd: { thinking: 2, cycle: 2 } }), family);
  });
}
