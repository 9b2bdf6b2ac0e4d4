/**
 * A/B timing of two versions of the matmul kernels on this machine's GPU:
 * `deno run -A bench/matmul_ab.ts <kernel dir> [--rounds N] [--only TEXT]`, e.g. with the kernels of a commit
 * unpacked by `git archive <rev> kernels | tar -x -C /tmp/old --strip-components=1`, against `kernels/`.
 *
 * Each case binds one matrix to both versions and alternates them round by round (the order flips every
 * round), one submit of ~0.25 s each; it prints each side's median GB/s of weights and the paired ratio of
 * their times (median and quartiles), by wall and by process CPU time. On a shared machine the paired ratio is
 * the figure to read: drift in the load hits both sides of a round alike.
 */

import process from "node:process";
import { Matmul } from "../src/ops/matmul/matmul.ts";
import type { MatmulOptions } from "../src/ops/matmul/options.ts";
import { describeAdapter, type GpuContext, openGpu } from "../src/gpu/device.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { type GpuMatrix, uploadMatrix, type WeightStorage } from "../src/gpu/matrix.ts";
import { bufferFrom, rowTexture, storageBuffer } from "../src/gpu/buffers.ts";
import { type DType, encodeFromF32 } from "../src/model/dtype.ts";
import type { QuantFormat } from "../src/model/quant.ts";
import { randomNormal } from "../src/util/random.ts";
import { quantile } from "./stats.ts";

interface Case {
  dtype: DType;
  quant?: QuantFormat;
  M: number;
  K: number;
  storage: WeightStorage;
  N: number;
  /** Fusions and variants: RMSNorm in, RoPE or SwiGLU out, x from a row texture, argmax pairs. */
  with?: Array<"norm" | "rope" | "swiglu" | "accumulate" | "xTexture" | "argmax">;
  gemv?: "row" | "coop";
}

const CASES: Case[] = [
  { dtype: "BF16", M: 4096, K: 4096, storage: "texture", N: 1 },
  { dtype: "BF16", M: 4096, K: 4096, storage: "texture", N: 1, with: ["norm", "accumulate"] },
  { dtype: "BF16", M: 128256, K: 128, storage: "texture", N: 1, with: ["xTexture", "argmax"] },
  { dtype: "BF16", quant: "q4", M: 4096, K: 4096, storage: "texture", N: 1 },
  { dtype: "F32", M: 2048, K: 2048, storage: "texture", N: 1 },
  { dtype: "BF16", M: 3072, K: 2048, storage: "texture", N: 1, with: ["rope", "norm"] },
  { dtype: "BF16", M: 8192, K: 2048, storage: "texture", N: 1, with: ["swiglu", "norm"] },
  { dtype: "BF16", M: 4096, K: 4096, storage: "texture", N: 4 },
  { dtype: "BF16", quant: "q8", M: 4096, K: 4096, storage: "texture", N: 4 },
  { dtype: "BF16", M: 3072, K: 2048, storage: "texture", N: 4, with: ["rope", "norm"] },
  { dtype: "BF16", M: 3072, K: 2048, storage: "texture", N: 8, with: ["rope", "norm"] },
  { dtype: "BF16", M: 8192, K: 2048, storage: "texture", N: 8, with: ["swiglu", "norm"] },
  // Short rows: the epilogue's share grows (branches cost both sides on llvmpipe, taken or not).
  { dtype: "BF16", M: 3072, K: 512, storage: "texture", N: 4 },
  { dtype: "BF16", M: 3072, K: 512, storage: "texture", N: 4, with: ["rope"] },
  { dtype: "BF16", M: 3072, K: 512, storage: "texture", N: 8, with: ["rope"] },
  { dtype: "BF16", M: 3072, K: 128, storage: "texture", N: 8 },
  { dtype: "BF16", M: 3072, K: 128, storage: "texture", N: 1, with: ["rope"] },
  { dtype: "F32", M: 2048, K: 2048, storage: "buffer", N: 1, gemv: "row" },
  { dtype: "BF16", M: 3072, K: 2048, storage: "buffer", N: 4, with: ["rope", "norm"], gemv: "row" },
  { dtype: "BF16", M: 8192, K: 1024, storage: "buffer", N: 1, with: ["swiglu", "accumulate"], gemv: "row" },
  { dtype: "BF16", M: 3072, K: 2048, storage: "buffer", N: 1, with: ["rope", "norm"], gemv: "coop" },
  { dtype: "BF16", M: 3072, K: 2048, storage: "buffer", N: 1, gemv: "coop" },
  { dtype: "BF16", M: 3072, K: 2048, storage: "buffer", N: 16, with: ["rope", "norm"] },
  { dtype: "BF16", quant: "q4", M: 2048, K: 2048, storage: "buffer", N: 16 },
];

const caseName = (c: Case) =>
  `${c.dtype}${c.quant ? `→${c.quant}` : ""} ${c.M}×${c.K} ${c.storage} N=${c.N}` +
  `${c.gemv ? ` ${c.gemv}` : ""}${(c.with ?? []).map((w) => ` ${w}`).join("")}`;

function matrix(gpu: GpuContext, c: Case): GpuMatrix {
  const raw = encodeFromF32(c.dtype, randomNormal(7, c.M * c.K, 1 / Math.sqrt(c.K))) as Uint8Array<
    ArrayBuffer
  >;
  return uploadMatrix(gpu.device, "w", c.dtype, c.M, c.K, raw, gpu.limits.maxStorageBufferBindingSize, {
    storage: c.storage,
    quant: c.quant ?? null,
    maxTextureDimension: gpu.limits.maxTextureDimension2D,
  });
}

/** RoPE on [q; k; v] with head_dim 64 and k, v a third of the rows each (rounded to heads). */
function ropeOf(device: GPUDevice, c: Case): MatmulOptions["rope"] {
  const headDim = 64, ctx = 16, kvDim = Math.floor(c.M / 3 / headDim) * headDim;
  const rows = Uint32Array.from(Array.from({ length: c.N }, (_, n) => [0, n + 3]).flat());
  return {
    rows: bufferFrom(device, "rows", rows),
    cosSin: bufferFrom(device, "cos_sin", randomNormal(5, ctx * headDim) as Float32Array<ArrayBuffer>),
    kCache: storageBuffer(device, "k", ctx * kvDim * 4),
    vCache: storageBuffer(device, "v", ctx * kvDim * 4),
    headDim,
    qRows: c.M - 2 * kvDim,
    kvDim,
    ctx,
  };
}

function bind(gpu: GpuContext, kernels: KernelCache, w: GpuMatrix, c: Case): Matmul {
  const device = gpu.device;
  const has = (f: NonNullable<Case["with"]>[number]) => (c.with ?? []).includes(f);
  // Windowed x, as the engine makes it for texture weights: one row takes gemv_tex.
  const x = storageBuffer(device, "x", c.N * c.K * 4, "windowed");
  device.queue.writeBuffer(x, 0, randomNormal(3, c.N * c.K) as Float32Array<ArrayBuffer>);
  const normWeight = bufferFrom(device, "norm_w", new Float32Array(c.K).fill(1.1), "windowed");
  return new Matmul(kernels, w, {
    x,
    y: storageBuffer(device, "y", c.N * c.M * 4),
    yStride: c.M,
    step: bufferFrom(device, "step", new Uint32Array([c.N, 0, 0, 0])),
    xTexture: has("xTexture") ? rowTexture(device, "x_texture", c.K) : undefined,
    argmax: has("argmax") ? storageBuffer(device, "best", 8 * Math.ceil(c.M / 4)) : undefined,
  }, {
    gemv: c.gemv,
    norm: has("norm") ? { weight: normWeight, eps: 1e-5 } : undefined,
    rope: has("rope") ? ropeOf(device, c) : undefined,
    swiglu: has("swiglu"),
    accumulate: has("accumulate"),
  });
}

interface Timing {
  wall: number;
  cpu: number;
}

/** Seconds per call of `reps` calls in one pass and one submit. */
async function time(gpu: GpuContext, mm: Matmul, N: number, reps: number): Promise<Timing> {
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (let i = 0; i < reps; i++) mm.encode(pass, N);
  pass.end();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  gpu.device.queue.submit([enc.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
  const c = process.cpuUsage(c0);
  return { wall: (performance.now() - t0) / 1000 / reps, cpu: (c.user + c.system) / 1e6 / reps };
}

const ratioText = (a: number[], b: number[]) => {
  const r = a.map((t, i) => t / b[i]);
  return `${quantile(r, 0.5).toFixed(3)} [${quantile(r, 0.25).toFixed(3)}–${quantile(r, 0.75).toFixed(3)}]`;
};

/** Alternates A and B `rounds` times on one matrix; prints medians and the paired speed ratio B / A. */
async function compare(gpu: GpuContext, a: KernelCache, b: KernelCache, c: Case, rounds: number) {
  const w = matrix(gpu, c);
  const mms = [bind(gpu, a, w, c), bind(gpu, b, w, c)];
  await a.checkErrors();
  await b.checkErrors();
  for (const mm of mms) await time(gpu, mm, c.N, 1); // compile
  const reps = Math.max(2, Math.round(0.25 / (await time(gpu, mms[0], c.N, 2)).wall));
  // Warm up ~1 s a side: llvmpipe may swap in a variant compiled for the uniform values it has seen.
  for (let i = 0; i < 4; i++) for (const mm of mms) await time(gpu, mm, c.N, reps);
  const runs: Timing[][] = [[], []];
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 === 0 ? [0, 1] : [1, 0]) runs[side].push(await time(gpu, mms[side], c.N, reps));
  }
  const [wallA, wallB] = runs.map((t) => t.map((x) => x.wall));
  const [cpuA, cpuB] = runs.map((t) => t.map((x) => x.cpu));
  const gbs = (t: number[]) => (w.bytes / quantile(t, 0.5) / 1e9).toFixed(2);
  console.log(
    `${caseName(c).padEnd(48)} ${mms[1].describe().split(",")[0].padEnd(22)} A ${gbs(wallA)} B ${
      gbs(wallB)
    } ` +
      `GB/s; speed B/A wall ${ratioText(wallA, wallB)}, cpu ${ratioText(cpuA, cpuB)}`,
  );
  for (const mm of mms) mm.destroy();
  for (const p of w.parts) {
    p.buffer?.destroy();
    p.texture?.destroy();
  }
}

const args = Deno.args;
const option = (name: string) => args.includes(name) ? args[args.indexOf(name) + 1] : undefined;
if (!args[0] || args[0].startsWith("--")) {
  console.error("usage: deno run -A bench/matmul_ab.ts <kernel dir A> [--rounds N] [--only TEXT]");
  Deno.exit(2);
}
const gpu = await openGpu({ features: "auto" });
const dirA = new URL(`${args[0].replace(/\/?$/, "/")}`, `file://${Deno.cwd()}/`);
console.log(
  `${describeAdapter(gpu)}; A: ${dirA.pathname}, B: kernels/; ${navigator.hardwareConcurrency} cores`,
);
const [a, b] = [new KernelCache(gpu, dirA), new KernelCache(gpu)];
for (const c of CASES.filter((c) => caseName(c).includes(option("--only") ?? ""))) {
  await compare(gpu, a, b, c, Number(option("--rounds") ?? 9));
}
