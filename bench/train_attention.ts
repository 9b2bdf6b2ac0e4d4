/**
 * Times the training attention (src/ops/attention/train.ts) on this machine's GPU:
 * `deno run -A bench/train_attention.ts [--rounds N] [--workgroup W,...] [B T Hq Hkv hd]` (default the
 * shape kernels/README.md quotes: B=4, T=128, Hq=8, Hkv=2, hd=32). Each round submits `REPS` forwards, then
 * `REPS` backwards, and waits for each; it prints the median ms per call of each (and the range over rounds)
 * with the causal FLOPs that make them GFLOP/s.
 */

import { describeAdapter, openGpu } from "../src/gpu/device.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { bufferFrom, storageBuffer } from "../src/gpu/buffers.ts";
import { randomNormal } from "../src/util/random.ts";
import { TrainAttention, type TrainAttentionShape } from "../src/ops/attention/train.ts";
import { median } from "./stats.ts";

const REPS = 10;

function option(name: string, fallback: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
}

const positional = Deno.args.filter((a, i) => !a.startsWith("--") && !Deno.args[i - 1]?.startsWith("--"));
const [B, T, Hq, Hkv, hd] = positional.length === 5 ? positional.map(Number) : [4, 128, 8, 2, 32];
const rounds = Number(option("--rounds", "7"));
const workgroups = option("--workgroup", "8").split(",").map(Number);

const gpu = await openGpu({ features: "none" });
const kernels = new KernelCache(gpu);
const device = gpu.device;
const N = B * T, qn = N * Hq * hd, kn = N * Hkv * hd;
const io = {
  q: bufferFrom(device, "q", randomNormal(1, qn)),
  k: bufferFrom(device, "k", randomNormal(2, kn)),
  v: bufferFrom(device, "v", randomNormal(3, kn)),
  dout: bufferFrom(device, "dout", randomNormal(4, qn)),
  out: storageBuffer(device, "out", qn * 4),
  lse: storageBuffer(device, "lse", N * Hq * 4),
  dq: storageBuffer(device, "dq", qn * 4),
  dk: storageBuffer(device, "dk", kn * 4),
  dv: storageBuffer(device, "dv", kn * 4),
};
// Score pairs (i, j ≤ i) per head: forward 4·hd FLOPs each (q·k, p·v), backward 14·hd (q·k and dout·v twice,
// ds·k, p·dout, ds·q).
const pairs = B * Hq * (T * (T + 1)) / 2;
const flops = { forward: pairs * 4 * hd, backward: pairs * 14 * hd };

async function time(encode: (pass: GPUComputePassEncoder) => void): Promise<number> {
  const t0 = performance.now();
  const enc = device.createCommandEncoder();
  for (let r = 0; r < REPS; r++) {
    const pass = enc.beginComputePass();
    encode(pass);
    pass.end();
  }
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  return (performance.now() - t0) / REPS;
}

console.log(
  `${describeAdapter(gpu)}; B=${B} T=${T} Hq=${Hq} Hkv=${Hkv} hd=${hd}, ${rounds} rounds of ${REPS}`,
);
for (const wg of workgroups) {
  const shape: TrainAttentionShape = {
    batch: B,
    seqLen: T,
    numHeads: Hq,
    numKvHeads: Hkv,
    headDim: hd,
    workgroup: wg,
  };
  const op = new TrainAttention(kernels, shape, io);
  await time((p) => op.encodeForward(p)); // compile and warm up
  await time((p) => op.encodeBackward(p));
  await kernels.checkErrors();
  const ms = { forward: [] as number[], backward: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    ms.forward.push(await time((p) => op.encodeForward(p)));
    ms.backward.push(await time((p) => op.encodeBackward(p)));
  }
  for (const part of ["forward", "backward"] as const) {
    const m = median(ms[part]);
    const range = `${Math.min(...ms[part]).toFixed(2)}–${Math.max(...ms[part]).toFixed(2)}`;
    console.log(
      `WG ${wg} ${part}: ${m.toFixed(2)} ms (${range}), ${(flops[part] / m / 1e6).toFixed(2)} GFLOP/s`,
    );
  }
}
