/**
 * Training matmul throughput: `deno run -A bench/train_matmul.ts [N K M] [--family plain|fast]`.
 * Each kind (nt forward, nn input gradient, tn weight gradient) at N × K × M (default 256 × 256 × 256), and nt
 * and nn over a BF16 W (a frozen weight held in its checkpoint's dtype): `reps` dispatches in one submit, one
 * wait; the best of 5 trials after a warm-up, in GFLOP/s (2·N·K·M a call).
 */

import { openGpu } from "../src/gpu/device.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { bufferFrom } from "../src/gpu/buffers.ts";
import { TrainMatmul, type TrainMatmulKind } from "../src/ops/matmul/train.ts";
import { randomNormal } from "../src/util/random.ts";
import { encodeFromF32 } from "../src/model/dtype.ts";

const nums = Deno.args.filter((a) => /^\d+$/.test(a)).map(Number);
const [N, K, M] = nums.length === 3 ? nums : [256, 256, 256];
const fi = Deno.args.indexOf("--family");
const family = fi >= 0 ? Deno.args[fi + 1] : "plain";
const gpu = await openGpu({ features: family === "fast" ? "auto" : "none" });
const device = gpu.device;
const kernels = new KernelCache(gpu);
const buf = (n: number, seed: number) => bufferFrom(device, "m", randomNormal(seed, n));
const x = buf(N * K, 1), w = buf(M * K, 2), y = buf(N * M, 3), dy = buf(N * M, 4), dx = buf(N * K, 5);
const dw = buf(M * K, 6);
const w16 = bufferFrom(device, "W bf16", encodeFromF32("BF16", randomNormal(2, M * K + (M * K) % 2)));
const io: Record<TrainMatmulKind, { a: GPUBuffer; b: GPUBuffer; c: GPUBuffer }> = {
  nt: { a: x, b: w, c: y },
  nn: { a: dy, b: w, c: dx },
  tn: { a: dy, b: x, c: dw },
};
const cases: Array<[TrainMatmulKind, "F32" | "BF16"]> = [["nt", "F32"], ["nt", "BF16"], ["nn", "F32"], [
  "nn",
  "BF16",
], ["tn", "F32"]];
const reps = Math.max(1, Math.round(2e8 / (2 * N * K * M)));

async function run(op: TrainMatmul, n: number): Promise<number> {
  const t0 = performance.now();
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (let i = 0; i < n; i++) op.encode(pass);
  pass.end();
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  return (performance.now() - t0) / 1000;
}

console.log(
  `${gpu.adapterInfo.description || gpu.adapterInfo.vendor}, ${family}: ${N} × ${K} × ${M}, ${reps} a trial`,
);
for (const [kind, wType] of cases) {
  const ops = wType === "F32" ? io[kind] : { ...io[kind], b: w16 };
  const op = new TrainMatmul(kernels, kind, ops, { N, K, M }, kind === "tn", wType);
  await run(op, 1);
  let best = Infinity;
  for (let t = 0; t < 5; t++) best = Math.min(best, (await run(op, reps)) / reps);
  console.log(
    `${kind} ${wType}: ${(best * 1e3).toFixed(2)} ms, ${(2 * N * K * M / best / 1e9).toFixed(2)} GFLOP/s`,
  );
}
