/**
 * FlexiDepth's routing in training (src/ops/route/train.ts): the skip loss and its gradient against the
 * plain-TypeScript reference and against central differences of the reference loss, and the gate with its
 * hard route and branch scales, on both kernel families, at row counts that fill no workgroup.
 */

import { assertClose, families, testGpu } from "./harness.ts";
import { checkGradient, sampleIndices } from "./train_fd.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { bufferFrom, readBuffer, storageBuffer } from "../src/gpu/buffers.ts";
import { randomNormal } from "../src/util/random.ts";
import { SkipLoss } from "../src/ops/route/train.ts";
import { RouteGateTrain } from "../src/ops/route/gate_train.ts";
import {
  referenceRouteGate,
  referenceRouteGateBackward,
  referenceSkipLoss,
} from "../src/ops/route/reference.ts";

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

  Deno.test(`route gate (${family}): g, the strict route and the scales; dlogit against the reference and finite differences`, async () => {
    const kernels = new KernelCache(await testGpu(family));
    const device = kernels.gpu.device;
    const layers = 3, n = 67, layer = 1;
    const logit = randomNormal(5, n, 2);
    logit[3] = 0; // g exactly 0.5: skipped (strict)
    const dgAll = randomNormal(6, layers * n), dsm = randomNormal(7, n), dsa = randomNormal(8, n);
    const f = (name: string, data: Float32Array | number) =>
      typeof data === "number" ? storageBuffer(device, name, data * 4) : bufferFrom(device, name, data);
    const io = {
      logit: f("logit", logit),
      gates: f("gates", new Float32Array(layers * n).fill(9)),
      dgates: f("dgates", dgAll),
      m: f("m", n),
      sm: f("sm", n),
      sa: f("sa", n),
      dsm: f("dsm", dsm),
      dsa: f("dsa", dsa),
      dlogit: f("dlogit", new Float32Array(n).fill(9)),
    };
    const op = new RouteGateTrain(kernels, io, n, layer);
    await submit(kernels, (pass) => {
      op.forward(pass);
      op.backward(pass);
    });
    const want = referenceRouteGate(logit, 0.5);
    const gates = await read(device, io.gates, layers * n);
    assertClose(gates.subarray(layer * n, (layer + 1) * n), want.g, { atol: 1e-6, rtol: 1e-6 }, "g");
    assertClose(
      gates.subarray(0, n),
      new Float32Array(n).fill(9),
      { atol: 0, rtol: 0 },
      "other layers' gates",
    );
    assertClose(await read(device, io.m, n), want.m, { atol: 0, rtol: 0 }, "m");
    assertClose(await read(device, io.sm, n), want.sm, { atol: 1e-6, rtol: 1e-6 }, "sm");
    assertClose(await read(device, io.sa, n), want.sa, { atol: 1e-6, rtol: 1e-6 }, "sa");
    if (want.m[3] !== 0 || !want.m.includes(1)) {
      throw new Error("both routes and the strict comparison must be exercised");
    }
    const dg = dgAll.subarray(layer * n, (layer + 1) * n);
    const dlogit = await read(device, io.dlogit, n);
    assertClose(
      dlogit,
      referenceRouteGateBackward(want.g, want.m, dg, dsm, dsa),
      { atol: 1e-6, rtol: 1e-5 },
      "dlogit",
    );
    // L = Σ_t dg·g + dsm·sm + dsa·sa with the routes held: its gradient in the logits is dlogit.
    const loss = (x: Float64Array) => {
      const r = referenceRouteGate(x, 0.5);
      return r.g.reduce(
        (acc, g, t) => acc + dg[t] * g + dsm[t] * want.m[t] * g + dsa[t] * (1 - want.m[t]) * (1 - g),
        0,
      );
    };
    checkGradient("route gate", dlogit, loss, Float64Array.from(logit), {
      h: 1e-4,
      tol: { atol: 1e-6, rtol: 1e-4 },
    });
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
