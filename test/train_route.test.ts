/**
 * FlexiDepth's routing in training (src/ops/route/train.ts): the skip loss and its gradient against the
 * plain-TypeScript reference and against central differences of the reference loss, and the hard routing
 * mask, on both kernel families, at row counts that fill no workgroup.
 */

import { assertClose, families, testGpu } from "./harness.ts";
import { checkGradient, sampleIndices } from "./train_fd.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { bufferFrom, readBuffer, storageBuffer } from "../src/gpu/buffers.ts";
import { randomNormal } from "../src/util/random.ts";
import { RouteMask, SkipLoss } from "../src/ops/route/train.ts";
import { referenceRouteMask, referenceSkipLoss } from "../src/ops/route/reference.ts";

async function submit(kernels: KernelCache, encode: (pass: GPUComputePassEncoder) => void) {
  const device = kernels.gpu.device;
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  encode(pass);
  pass.end();
  device.queue.submit([enc.finish()]);
  await kernels.checkErrors();
}

const read = async (device: GPUDevice, b: GPUBuffer, n: number) =>
  new Float32Array(await readBuffer(device, b, n * 4));

/** Gates in (0, 1), a dg buffer holding `prior` (the other terms' gradients), the loss at element 2 of 4. */
async function runSkipLoss(kernels: KernelCache, layers: number, n: number, wg: number, alpha: number) {
  const device = kernels.gpu.device;
  const g = randomNormal(layers * 100 + n, layers * n, 2).map((x) => 1 / (1 + Math.exp(-x)));
  const prior = randomNormal(n, layers * n);
  const io = {
    g: bufferFrom(device, "g", g),
    dg: bufferFrom(device, "dg", prior),
    loss: bufferFrom(device, "loss", new Float32Array([7, 7, 7, 7])),
    lossAt: 2,
  };
  const op = new SkipLoss(kernels, { rows: n, layers, alpha: alpha / 2, workgroup: wg }, io);
  op.setAlpha(alpha);
  await submit(kernels, (pass) => op.encode(pass));
  const dg = await read(device, io.dg, layers * n);
  return { g, prior, delta: dg.map((v, i) => v - prior[i]), dg, loss: await read(device, io.loss, 4) };
}

// [layers, rows, workgroup]; the last makes 978 · 67 + 2 = 65528 loop passes an invocation, just within
// llvmpipe's limit (at 1000 rows it lost the last ~20).
const SKIP_CASES = [[3, 37, 8], [1, 5, 64], [4, 141, 64], [2, 1000, 16], [32, 978, 1]] as const;

for (const family of await families()) {
  Deno.test(`skip loss (${family}): L_skip and dg += α·2s/N against the reference`, async () => {
    const kernels = new KernelCache(await testGpu(family));
    for (const [layers, n, wg] of SKIP_CASES) {
      const alpha = 0.37, label = `${layers} layers × ${n} rows, WG ${wg}`;
      const r = await runSkipLoss(kernels, layers, n, wg, alpha);
      const ref = referenceSkipLoss(r.g, layers, n);
      assertClose(r.loss, [7, 7, ref.loss, 7], { atol: 0, rtol: 1e-5 }, `${label}: loss`);
      const expected = ref.grad.map((d, i) => r.prior[i] + alpha * d);
      assertClose(r.dg, expected, { atol: 1e-6, rtol: 1e-5 }, `${label}: dg (accumulated)`);
    }
  });

  Deno.test(`skip loss (${family}): dg against central differences of α·L_skip`, async () => {
    const kernels = new KernelCache(await testGpu(family));
    for (const [layers, n, wg] of SKIP_CASES) {
      const alpha = 0.37, r = await runSkipLoss(kernels, layers, n, wg, alpha);
      const f = (g: Float64Array) => alpha * referenceSkipLoss(g, layers, n).loss;
      // L_skip is quadratic: central differences are exact but for rounding (~1e-16 / h). The GPU gradient
      // is read back as (prior + d) − prior in f32: an error up to ~1 ulp of |prior| ≈ 3 (2.4e-7), against
      // gradients of 1e-4 to 1e-1 here.
      checkGradient(`${layers} × ${n}`, r.delta, f, Float64Array.from(r.g), {
        h: 1e-3,
        tol: { atol: 1e-6, rtol: 1e-4 },
        at: sampleIndices(layers * n, 400), // every gate of the small cases; 400 spread over the largest
      });
    }
  });

  Deno.test(`route mask (${family}): g > threshold per routed layer, strict`, async () => {
    const kernels = new KernelCache(await testGpu(family));
    const device = kernels.gpu.device;
    const layers = 3, n = 67;
    const g = randomNormal(5, layers * n).map((x) => 1 / (1 + Math.exp(-x)));
    g[3] = 0.5;
    g[n + 4] = Math.fround(0.5 + 1e-7);
    const io = {
      g: bufferFrom(device, "g", g),
      mask: bufferFrom(device, "m", new Float32Array(layers * n).fill(9)),
    };
    const op = new RouteMask(kernels, { rows: n, layers, threshold: 0.5 }, io);
    // Layers 0 and 2 at 0.5, then layer 1 at 0.6 (setThreshold between submits).
    await submit(kernels, (pass) => [0, 2].forEach((l) => op.encode(pass, l)));
    op.setThreshold(0.6);
    await submit(kernels, (pass) => op.encode(pass, 1));
    const expected = new Float32Array(layers * n);
    for (const [l, t] of [[0, 0.5], [1, 0.6], [2, 0.5]]) {
      expected.set(referenceRouteMask(g.subarray(l * n, (l + 1) * n), t), l * n);
    }
    assertClose(await read(device, io.mask, layers * n), expected, { atol: 0, rtol: 0 }, "mask");
    if (expected[3] !== 0 || expected[n + 4] !== 0) throw new Error("the strict comparison is not exercised");
  });
}

Deno.test("skip loss: a workgroup that is not a power of two, or too many rows for its loops, is refused", async () => {
  const kernels = new KernelCache(await testGpu("plain"));
  const device = kernels.gpu.device;
  const b = storageBuffer(device, "b", 64);
  const io = { g: b, dg: storageBuffer(device, "dg", 64), loss: storageBuffer(device, "l", 16) };
  let refused = 0;
  for (const shape of [{ workgroup: 48, rows: 4, layers: 1 }, { workgroup: 1, rows: 979, layers: 32 }]) {
    try {
      new SkipLoss(kernels, { alpha: 1, ...shape }, io);
    } catch {
      refused++;
    }
  }
  if (refused !== 2) throw new Error(`refused ${refused} of 2`);
});
