/**
 * Matmul kernel throughput: `deno run -A bench/matmul_bench.ts [--family plain|fast] [--skip-gemm]`.
 *
 * GEMV (N = 1): 4096 × 4096 in BF16 and F16, 2048 × 2048 in F32; 50 dispatches in one submit, one wait at
 * the end; prints GB/s of weight bytes per kernel variant and family. Then GEMV against GEMM for a few
 * activation rows (where the GEMV threshold lies), and GEMM 256 × 4096 × 4096 in GFLOP/s.
 */

import process from "node:process";
import { Matmul, type MatmulOptions } from "../src/engine/matmul.ts";
import { describeAdapter, type GpuContext, isSoftwareGpu, openGpu } from "../src/gpu/device.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import {
  bufferFrom,
  type GpuMatrix,
  storageBuffer,
  uploadMatrix,
  type WeightStorage,
} from "../src/gpu/tensor.ts";
import { type DType, encodeFromF32 } from "../src/model/dtype.ts";
import { randomNormal } from "../src/util/random.ts";

const args = Deno.args;
const only = args.includes("--family") ? args[args.indexOf("--family") + 1] : undefined;
const skipGemm = args.includes("--skip-gemm");

function matrix(gpu: GpuContext, dtype: DType, M: number, K: number, storage?: WeightStorage): GpuMatrix {
  const vals = randomNormal(7, M * K, 1 / Math.sqrt(K));
  const raw = encodeFromF32(dtype, vals) as Uint8Array<ArrayBuffer>;
  return uploadMatrix(gpu.device, `w${dtype}`, dtype, M, K, raw, gpu.limits.maxStorageBufferBindingSize, {
    storage: storage ?? (isSoftwareGpu(gpu) ? "texture" : "buffer"),
    maxTextureDimension: gpu.limits.maxTextureDimension2D,
  });
}

/**
 * Seconds per call: `reps` encodes of `mm` for N rows in one pass and one submit, one wait at the end; the best
 * of `trials` (the machine may be shared), after a one-row warm-up.
 */
async function timeCalls(gpu: GpuContext, mm: Matmul, N: number, reps: number, trials = 2): Promise<Timing> {
  const device = gpu.device;
  const run = async (n: number, rows: number) => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < n; i++) mm.encode(pass, rows);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await run(1, 1);
  const best = { wall: Infinity, cpu: Infinity };
  for (let t = 0; t < trials; t++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await run(reps, N);
    best.wall = Math.min(best.wall, (performance.now() - t0) / 1000 / reps);
    const c = process.cpuUsage(c0);
    best.cpu = Math.min(best.cpu, (c.user + c.system) / 1e6 / reps);
  }
  return best;
}

/** Wall seconds per call, and process CPU seconds per call (all threads: llvmpipe's workers included). */
interface Timing {
  wall: number;
  cpu: number;
}

/**
 * On a software GPU the machine's cores do the work; `cpu / cores` is the wall time the call would take with
 * every core to itself, a steadier figure than wall time when other processes share the machine.
 */
const cores = navigator.hardwareConcurrency;
function rate(amount: number, t: Timing, software: boolean, unit: string): string {
  const wall = `${(amount / t.wall / 1e9).toFixed(2).padStart(6)} ${unit}`;
  if (!software) return wall;
  return `${wall}  (${
    (amount / (t.cpu / cores) / 1e9).toFixed(2).padStart(6)
  } ${unit} by CPU time / ${cores} cores)`;
}

function io(gpu: GpuContext, N: number, K: number, M: number) {
  const device = gpu.device;
  const x = storageBuffer(device, "x", N * K * 4);
  device.queue.writeBuffer(x, 0, randomNormal(3, N * K) as Float32Array<ArrayBuffer>);
  const y = storageBuffer(device, "y", N * M * 4);
  const step = bufferFrom(device, "step", new Uint32Array([N, 0, 0, 0]));
  return { x, y, yStride: M, step };
}

async function benchFamily(family: "plain" | "fast"): Promise<void> {
  const gpu = await openGpu({ features: family === "fast" ? "auto" : "none" });
  const kernels = new KernelCache(gpu);
  const software = isSoftwareGpu(gpu);
  console.log(`\n== ${family} family: ${describeAdapter(gpu)}${software ? " (software GPU)" : ""}`);

  console.log("GEMV, N = 1, 50 calls per submit (best of 2):");
  const shapes: Array<[DType, number]> = [["BF16", 4096], ["F16", 4096], ["F32", 2048]];
  for (const [dtype, size] of shapes) {
    const inBuffer = matrix(gpu, dtype, size, size, "buffer"),
      inTexture = matrix(gpu, dtype, size, size, "texture");
    const buffers = io(gpu, 1, size, size);
    const variants: MatmulOptions[] = [{ gemv: "coop" }, { gemv: "row" }];
    for (const [w, opts] of [...variants.map((v) => [inBuffer, v] as const), [inTexture, {}] as const]) {
      const mm = new Matmul(kernels, w, buffers, opts);
      await kernels.checkErrors();
      const t = await timeCalls(gpu, mm, 1, 50);
      const name = `${mm.kernelNames.gemv.padEnd(10)} ${mm.gemvVariant.padEnd(6)}`;
      console.log(
        `  ${dtype.padEnd(4)} ${size}×${size}  ${name} ` +
          `${(t.wall * 1e3).toFixed(2).padStart(7)} ms  ${rate(w.bytes, t, software, "GB/s")}`,
      );
    }
  }

  console.log("Few activation rows, BF16 4096×4096 (ms per call; auto variants):");
  {
    const w = matrix(gpu, "BF16", 4096, 4096);
    const buffers = io(gpu, 16, 4096, 4096);
    const gemv = new Matmul(kernels, w, buffers, { gemvMaxRows: 16 });
    const gemm = new Matmul(kernels, w, buffers, { gemvMaxRows: 0 });
    for (const N of [1, 2, 4, 8, 16]) {
      gpu.device.queue.writeBuffer(buffers.step, 0, new Uint32Array([N, 0, 0, 0]));
      const a = (await timeCalls(gpu, gemv, N, 10)).wall;
      const b = (await timeCalls(gpu, gemm, N, 10)).wall;
      console.log(
        `  N=${String(N).padStart(2)}  ${gemv.kernelNames.gemv}/${gemv.gemvVariant} ${
          (a * 1e3).toFixed(1).padStart(7)
        }  ` +
          `${gemm.kernelNames.gemm}/${gemm.gemmVariant} ${(b * 1e3).toFixed(1).padStart(7)}`,
      );
    }
  }

  if (skipGemm) return;
  console.log("GEMM 256 × 4096 × 4096 (N × K × M), one call:");
  for (const dtype of ["BF16", "F16", "F32"] as DType[]) {
    const buffers = io(gpu, 256, 4096, 4096);
    const storages: WeightStorage[] = dtype === "BF16" ? ["texture", "buffer"] : ["texture"];
    for (const storage of storages) {
      const w = matrix(gpu, dtype, 4096, 4096, storage);
      const mm = new Matmul(kernels, w, buffers, { gemvMaxRows: 0 });
      await kernels.checkErrors();
      const t = await timeCalls(gpu, mm, 256, 1, 1);
      console.log(
        `  ${dtype.padEnd(4)} ${mm.kernelNames.gemm.padEnd(8)} ${mm.gemmVariant.padEnd(6)} ` +
          `${(t.wall * 1e3).toFixed(0).padStart(6)} ms  ${
            rate(2 * 256 * 4096 * 4096, t, software, "GFLOP/s")
          }`,
      );
    }
  }
}

for (const family of ["plain", "fast"] as const) {
  if (!only || only === family) await benchFamily(family);
}
