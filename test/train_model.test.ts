/**
 * Whole-model gradients, one test per stage: the training graph's loss against the f64 reference
 * (test/train_model_reference.ts), and every trainable tensor's gradient at sampled entries against central
 * finite differences of the reference loss — pretrain (Llama with tied embeddings, Qwen3 with q/k norms),
 * FlexiDepth (routed layers, hard routing, L_skip; and on a BF16 base read from disk, held in BF16) and DMTD
 * (the cycle's mixed input).
 */

import { ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { parseConfig } from "../src/model/config.ts";
import { openCheckpoint } from "../src/model/checkpoint.ts";
import { writeModelFiles } from "../src/model/demo.ts";
import { decodeToF32, encodeFromF32 } from "../src/model/dtype.ts";
import { writeSafetensors } from "../src/model/safetensors.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { backendProfile, type KernelFamily } from "../src/gpu/profile.ts";
import { bufferFrom } from "../src/gpu/buffers.ts";
import { ropeTable } from "../src/ops/rope/table.ts";
import { TrainContext } from "../src/train/model/context.ts";
import { TrainModel } from "../src/train/model/model.ts";
import { paramSpecs, type Stage, tensorSlots, trains } from "../src/train/model/params.ts";
import { type TrainShape, trainShape } from "../src/train/model/shape.ts";
import { type ParamSpec, ParamStore } from "../src/train/params.ts";
import { gaussian, mulberry32 } from "../src/util/random.ts";
import { testGpu } from "./harness.ts";
import { type RefBatch, referenceTrainLoss, type Values } from "./train_model_reference.ts";

const BATCH = 2, SEQ = 5;

function config(arch: "llama" | "qwen3", tied: boolean) {
  return parseConfig(configJson(arch, tied));
}

function configJson(arch: "llama" | "qwen3", tied: boolean) {
  return {
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
  };
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

/** Every tensor from `values`, in f32 (the stages' whole-model tests). */
const specsOf = (stage: Stage, s: TrainShape, values: Values): ParamSpec[] =>
  tensorSlots(s).map((slot) => ({
    name: slot.name,
    shape: slot.shape,
    init: Float32Array.from(values.get(slot.name)!),
    trainable: trains(stage, slot),
  }));

/** The GPU's loss and gradients for the parameters `specs`. */
async function gpuGradients(s: TrainShape, specs: ParamSpec[], b: RefBatch, family: KernelFamily) {
  const gpu = await testGpu("plain");
  const kernels = new KernelCache(gpu);
  const store = new ParamStore(gpu.device);
  for (const spec of specs) store.add(spec);
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
  return { lm, skip, grads, store };
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
  const values = initialValues(s, 11);
  await checkStage(stage, s, family, values, specsOf(stage, s, values));
}

/** The GPU's loss, L_skip and gradients over `specs` against the reference over `values` (the same numbers). */
async function checkStage(
  stage: Stage,
  s: TrainShape,
  family: KernelFamily,
  values: Values,
  specs: ParamSpec[],
) {
  const b = batchOf(s, 5);
  const ref = referenceTrainLoss(values, s, b);
  const gpu = await gpuGradients(s, specs, b, family);
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
  return gpu.store;
}

/**
 * FlexiDepth over a Llama base written in BF16 as a Hugging Face folder (config, tokenizer, model.safetensors)
 * and loaded as `flexidepth train` loads it (paramSpecs): the frozen matrices stay BF16 on the GPU, 2 bytes an
 * element; the reference runs on the same rounded values. Routers and adapters get the other tests' spread.
 */
async function bf16BaseTest(family: KernelFamily) {
  const json = configJson("llama", false), s = trainShape(parseConfig(json), { routed: [1, 2] });
  const values = initialValues(s, 11);
  const dir = await Deno.makeTempDir({ prefix: "flexidepth-train-bf16-" });
  try {
    await writeModelFiles(dir, { "config.json": json });
    const base = tensorSlots(s).filter((t) => !t.routed);
    await writeSafetensors(
      join(dir, "model.safetensors"),
      base.map((t) => ({
        name: t.name,
        dtype: "BF16",
        shape: t.shape,
        data: encodeFromF32("BF16", values.get(t.name)!),
      })),
      { format: "pt" },
    );
    const specs = await paramSpecs("flexidepth", s, await openCheckpoint(dir), 1);
    for (const spec of specs) {
      if (spec.trainable) spec.init = Float32Array.from(values.get(spec.name)!);
      const held = spec.init instanceof Uint8Array ? decodeToF32(spec.dtype!, spec.init) : spec.init;
      values.set(spec.name, Float64Array.from(held));
    }
    const store = await checkStage("flexidepth", s, family, values, specs);
    let matrices = 0;
    for (const p of store.all().filter((p) => p.grad === null)) {
      const bytes = p.shape.length === 2 ? 2 : 4, want = Math.ceil((p.size * bytes) / 16) * 16;
      assert(p.value.size === want, `${p.name}: ${p.value.size} bytes on the GPU, not ${bytes} an element`);
      assert(p.dtype === (bytes === 2 ? "BF16" : "F32"), `${p.name} held in ${p.dtype}`);
      if (bytes === 2) matrices++;
    }
    assert(matrices === 2 + 7 * s.layers, `${matrices} frozen BF16 matrices`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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
  Deno.test(`train graph (${family}): FlexiDepth on a BF16 base held in BF16 — loss, L_skip and gradients`, async () => {
    await bf16BaseTest(family);
  });
  Deno.test(`train graph (${family}): DMTD, τ = 2 after 2 thinking layers — loss and gradients`, async () => {
    await stageTest("dmtd", trainShape(config("llama", false), { dmtd: { thinking: 2, cycle: 2 } }), family);
  });
}
