/**
 * The training forward is the inference forward: on the real FlexiDepth model (stories260K-flexidepth, trained
 * routers), the training graph's loss over a text and its routes per position against the engine scoring the
 * same tokens (log-likelihood and layers per token), and for DMTD against the engine at the model's cycle.
 */

import { ok } from "node:assert/strict";
import { join } from "node:path";
import { Model } from "../src/generation/model.ts";
import { createGpuScorer, SCORER_LOAD } from "../src/eval/gpu_scorer.ts";
import { openCheckpoint } from "../src/model/checkpoint.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { backendProfile } from "../src/gpu/profile.ts";
import { bufferFrom, readBuffer } from "../src/gpu/buffers.ts";
import { ropeTable } from "../src/ops/rope/table.ts";
import { TrainContext } from "../src/train/model/context.ts";
import { TrainModel } from "../src/train/model/model.ts";
import { paramSpecs } from "../src/train/model/params.ts";
import { trainShape } from "../src/train/model/shape.ts";
import { ParamStore } from "../src/train/params.ts";
import { testGpu } from "./harness.ts";

const FLEXI = join(import.meta.dirname!, "../../shared/models/stories260K-flexidepth");
const TEXT = "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun.";

Deno.test("train graph = inference: stories260K-flexidepth's loss and routes match the engine's scoring", async () => {
  const gpu = await testGpu("fast");
  const model = await Model.load(FLEXI, { gpu, progress: false, ...SCORER_LOAD });
  const scorer = createGpuScorer(model);
  const ids = [scorer.bos!, ...scorer.encode(TEXT)];
  const S = ids.length - 1;
  const [scored] = await scorer.loglikelihood([{ context: ids.slice(0, 1), continuation: ids.slice(1) }], {
    name: "routed",
    fullDepth: false,
    threshold: 0.5,
  });

  const ck = await openCheckpoint(FLEXI);
  const shape = trainShape(ck.config, { routed: ck.config.routingLayers });
  const store = new ParamStore(gpu.device);
  for (const spec of await paramSpecs("flexidepth", shape, ck, 1)) store.add(spec);
  const kernels = new KernelCache(gpu);
  const cosSin = bufferFrom(gpu.device, "rope", ropeTable(shape.cfg, S));
  const ctx = new TrainContext(
    kernels,
    backendProfile(gpu, shape.cfg),
    shape,
    store,
    { batch: 1, seq: S },
    cosSin,
  );
  const train = new TrainModel(ctx, 0);
  train.setBatch(gpu.device.queue, Uint32Array.from(ids.slice(0, S)), Uint32Array.from(ids.slice(1)));
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  train.encodeForward(pass);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
  const lm = new Float32Array(await readBuffer(gpu.device, train.outputs.lmLoss, 16));
  const gates = new Float32Array(
    await readBuffer(gpu.device, train.outputs.gates!, shape.routed.length * S * 4),
  );

  const nll = -scored.logprob;
  ok(Math.abs(lm[1] - nll) < 1e-3 * nll, `training loss sum ${lm[1]} vs the engine's ${nll}`);
  const plain = shape.layers - shape.routed.length;
  const layers = Array.from(
    { length: S },
    (_, t) => plain + shape.routed.reduce((n, _l, k) => n + (gates[k * S + t] > 0.5 ? 1 : 0), 0),
  );
  const differ = layers.filter((n, t) => n !== scored.layers[t]).length;
  ok(differ === 0, `layers per position: training ${layers} vs engine ${scored.layers}`);
  ok(new Set(layers).size > 1, "the text must exercise both routes");
  ctx.destroy();
});
