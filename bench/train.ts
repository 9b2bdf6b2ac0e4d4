/**
 * `deno task bench --train`: training tokens/s and model FLOP utilisation per stage (pretrain, flexidepth,
 * dmtd) on stories260K's shape and a ~10M-parameter shape, random weights and tokens, on the adapter this
 * machine has; and the GPU objects a step creates (none). MFU is against the adapter's f32 peak where known
 * (H100, H200: 67 TFLOP/s without tensor cores), else against the best f32 matmul measured here.
 */

import { parseArgs } from "node:util";
import { describeAdapter, openGpu } from "../src/gpu/device.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { backendProfile } from "../src/gpu/profile.ts";
import { bufferFrom } from "../src/gpu/buffers.ts";
import { parseConfig } from "../src/model/config.ts";
import { TrainMatmul } from "../src/ops/matmul/train.ts";
import { ropeTable } from "../src/ops/rope/table.ts";
import { TrainContext } from "../src/train/model/context.ts";
import { TrainModel } from "../src/train/model/model.ts";
import { paramSpecs, type Stage } from "../src/train/model/params.ts";
import { defaultRoutedLayers, SHAPE_PRESETS, trainShape } from "../src/train/model/shape.ts";
import { Optimizer } from "../src/train/optimizer.ts";
import { ParamStore } from "../src/train/params.ts";
import { StepRunner } from "../src/train/step.ts";
import { defaultDecodingLayers } from "../src/train/shapes.ts";
import { mulberry32, randomNormal } from "../src/util/random.ts";
import { countAllocations } from "./allocations.ts";
import { trainFlopsPerToken } from "./train_flops.ts";

const CASES = [
  { shape: "stories260K", batch: 8, seq: 256, steps: 4 },
  { shape: "llama-10m", batch: 4, seq: 256, steps: 2 },
];
const STAGES: Stage[] = ["pretrain", "flexidepth", "dmtd"];
const KNOWN_PEAKS: Array<[RegExp, number]> = [[/H100|H200|GH200/i, 67e12]];

export interface TrainBenchRow {
  shape: string;
  stage: Stage;
  params: number;
  trainable: number;
  batch: number;
  seq: number;
  ms_per_step: number;
  tokens_per_s: number;
  model_tflops: number;
  mfu: number;
  allocations_per_step: number;
}

/** The best f32 matmul rate here (GFLOP/s → FLOP/s), when the adapter's peak is not known. */
async function measuredPeak(kernels: KernelCache): Promise<number> {
  const n = 512, device = kernels.gpu.device;
  const b = (seed: number) => bufferFrom(device, "peak", randomNormal(seed, n * n));
  const op = new TrainMatmul(kernels, "nt", { a: b(1), b: b(2), c: b(3) }, { N: n, K: n, M: n }, false);
  let best = 0;
  for (let trial = 0; trial < 4; trial++) {
    const t0 = performance.now();
    const enc = device.createCommandEncoder(), pass = enc.beginComputePass();
    for (let i = 0; i < 4; i++) op.encode(pass);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    if (trial > 0) best = Math.max(best, (4 * 2 * n ** 3) / ((performance.now() - t0) / 1000));
  }
  return best;
}

async function benchCase(kernels: KernelCache, c: typeof CASES[number], stage: Stage, peak: number) {
  const gpu = kernels.gpu;
  const cfg = parseConfig({ ...SHAPE_PRESETS[c.shape], vocab_size: 512, max_position_embeddings: c.seq });
  const s = trainShape(cfg, {
    routed: stage === "flexidepth" ? defaultRoutedLayers(cfg.numLayers) : [],
    dmtd: stage === "dmtd"
      ? { thinking: cfg.numLayers - defaultDecodingLayers(cfg.numLayers), cycle: 4 }
      : null,
  });
  const store = new ParamStore(gpu.device);
  for (const spec of await paramSpecs(stage, s, null, 1)) store.add(spec);
  const cosSin = bufferFrom(gpu.device, "rope", ropeTable(cfg, c.seq));
  const ctx = new TrainContext(kernels, backendProfile(gpu, cfg), s, store, c, cosSin);
  const model = new TrainModel(ctx, 1e-3);
  const opt = new Optimizer(kernels, store, {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.1,
    clip: 1,
  });
  const runner = new StepRunner(gpu.device, model, opt, 1);
  const u = mulberry32(7), N = c.batch * c.seq;
  const tokens = () => Uint32Array.from({ length: N }, () => Math.floor(u() * 512));
  const next = () => ({ inputs: tokens(), targets: tokens(), rows: c.batch });
  await runner.step(1, 1e-3, next); // warm-up: pipelines compiled
  let ms = 0;
  const allocs = await countAllocations(gpu.device, async () => {
    const t0 = performance.now();
    for (let i = 0; i < c.steps; i++) await runner.step(i + 2, 1e-3, next);
    ms = (performance.now() - t0) / c.steps;
  });
  const flops = trainFlopsPerToken(s, stage, c.seq) * N;
  runner.destroy();
  ctx.destroy();
  return {
    shape: c.shape,
    stage,
    params: store.all().reduce((a, p) => a + p.size, 0),
    trainable: store.trainableSize,
    batch: c.batch,
    seq: c.seq,
    ms_per_step: ms,
    tokens_per_s: N / (ms / 1000),
    model_tflops: flops / (ms / 1000) / 1e12,
    mfu: flops / (ms / 1000) / peak,
    allocations_per_step: (allocs.buffers + allocs.bind_groups + allocs.textures) / c.steps,
  };
}

export async function trainBenchMain(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { out: { type: "string" }, shape: { type: "string" } } });
  const gpu = await openGpu({ smallDispatches: true });
  const kernels = new KernelCache(gpu);
  const adapter = describeAdapter(gpu);
  const known = KNOWN_PEAKS.find(([re]) => re.test(adapter))?.[1];
  const peak = known ?? await measuredPeak(kernels);
  const basis = known ? "the adapter's f32 peak" : "the best f32 matmul measured here";
  console.log(`adapter: ${adapter}\nMFU against ${basis}: ${(peak / 1e9).toFixed(1)} GFLOP/s`);
  const rows: TrainBenchRow[] = [];
  for (const c of CASES.filter((c) => !values.shape || c.shape === values.shape)) {
    for (const stage of STAGES) {
      const r = await benchCase(kernels, c, stage, peak);
      rows.push(r);
      console.log(
        `${r.shape.padEnd(12)} ${stage.padEnd(10)} ${(r.trainable / 1e6).toFixed(3)}M of ${
          (r.params / 1e6).toFixed(3)
        }M trained, B ${r.batch} × T ${r.seq}: ${r.ms_per_step.toFixed(0)} ms/step, ${
          r.tokens_per_s.toFixed(0)
        } tokens/s, ${(r.model_tflops * 1e3).toFixed(2)} GFLOP/s, MFU ${
          (100 * r.mfu).toFixed(1)
        }%, ${r.allocations_per_step} GPU objects created per step`,
      );
    }
  }
  const out = values.out ?? "bench-train-results.json";
  const json = { date: new Date().toISOString(), adapter, peak_flops: peak, peak_basis: basis, rows };
  await Deno.writeTextFile(out, JSON.stringify(json, null, 2) + "\n");
  console.log(`wrote ${out}`);
}

if (import.meta.main) await trainBenchMain(Deno.args);
