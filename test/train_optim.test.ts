/**
 * The optimizer (src/ops/optim/): the global gradient norm over several buffers (several partial workgroups
 * per buffer), clipping that engages above the limit and not below, AdamW steps with the norm's clip scale
 * against the f64 reference, zeroing, and the learning-rate schedule.
 */

import { ok } from "node:assert/strict";
import { GradNorm, partialGroups } from "../src/ops/optim/grad_norm.ts";
import { AdamW, type AdamWConfig } from "../src/ops/optim/adamw.ts";
import { ZeroFloats } from "../src/ops/optim/zero.ts";
import { learningRate } from "../src/ops/optim/schedule.ts";
import { referenceAdamWStep, referenceGradNorm } from "../src/ops/optim/reference.ts";
import { assertClose, families } from "./harness.ts";
import { asF32, trainGpu, uniform } from "./train_gpu.ts";

const SIZES = [37, 1, 40_000, 16_391]; // 40 000 floats: 3 partial workgroups

Deno.test("learning rate: linear warm-up, cosine to the floor, then the floor", () => {
  const s = { peak: 1e-3, warmup: 10, total: 110, min: 1e-4 };
  assertClose(
    [1, 5, 10, 60, 110, 500].map((t) => learningRate(t, s)),
    [1e-4, 5e-4, 1e-3, 5.5e-4, 1e-4, 1e-4],
    {
      atol: 1e-12,
      rtol: 1e-9,
    },
  );
  ok(learningRate(30, s) > learningRate(31, s));
});

for (const family of await families()) {
  Deno.test(`train grad norm (${family}): two passes over several buffers; clipping above the limit only`, async () => {
    const g = await trainGpu(family);
    ok(partialGroups(40_000) > 1);
    const grads = SIZES.map((n, i) => asF32(uniform(60 + i, n, -0.1, 0.1)));
    const buffers = grads.map((v) => ({ buffer: g.f32(v), n: v.length }));
    const { norm } = referenceGradNorm(grads, 0);
    for (const maxNorm of [0, norm / 3, norm * 3]) {
      const op = new GradNorm(g.kernels, buffers, maxNorm);
      await g.run((pass) => op.encode(pass));
      const ref = referenceGradNorm(grads, maxNorm);
      // Sums of 56 000 squares in f32 (in a tree of partials): ~1e-6 relative.
      assertClose(await g.read(op.norm, 2), [ref.norm, ref.clip], { atol: 0, rtol: 1e-5 }, `max ${maxNorm}`);
      ok(maxNorm === norm / 3 ? ref.clip < 0.34 : ref.clip === 1);
    }
  });

  Deno.test(`train adamw (${family}): steps with decay, without, clipped and not, against the reference`, async () => {
    const g = await trainGpu(family);
    const config: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
    const sizes = [131, 70];
    const decay = [true, false];
    const p0 = sizes.map((n, i) => asF32(uniform(70 + i, n)));
    const gradBufs = sizes.map((n) => g.filled(n));
    const paramBufs = p0.map((p) => g.f32(p));
    const specs = sizes.map((n, i) => ({ param: paramBufs[i], grad: gradBufs[i], n, decay: decay[i] }));
    const ranges = sizes.map((n, i) => ({ buffer: gradBufs[i], n }));
    // A limit the first steps' gradients exceed (clipped) and the last ones' do not.
    const norm = new GradNorm(g.kernels, ranges, 2);
    const adam = new AdamW(g.kernels, specs, config, norm.norm);
    const ref = p0.map((p) => ({
      p: Float64Array.from(p),
      m: new Float64Array(p.length),
      v: new Float64Array(p.length),
    }));
    const schedule = { peak: 1e-2, warmup: 2, total: 4 };
    for (let t = 1; t <= 4; t++) {
      const scale = t <= 2 ? 1 : 0.05;
      const grads = sizes.map((n, i) => asF32(uniform(80 + 10 * t + i, n, -scale, scale)));
      grads.forEach((v, i) => g.device.queue.writeBuffer(gradBufs[i], 0, Float32Array.from(v)));
      const lr = learningRate(t, schedule);
      adam.setStep(g.device.queue, t, lr);
      await g.run((pass) => {
        norm.encode(pass);
        adam.encode(pass);
      });
      const { clip } = referenceGradNorm(grads, 2);
      ok(t <= 2 ? clip < 1 : clip === 1, `step ${t}: clip ${clip}`);
      ref.forEach((r, i) =>
        referenceAdamWStep(r.p, r.m, r.v, grads[i], { ...config, lr, t, clip, decay: decay[i] })
      );
      for (let i = 0; i < sizes.length; i++) {
        const n = sizes[i];
        // f32 state through 4 steps: ~1e-6 relative; m / sqrt(v) can amplify rounding where v is tiny, so
        // atol scales with lr (a step moves p by ≤ lr · ~1).
        const label = `step ${t} parameter ${i}`;
        assertClose(await g.read(adam.moments[i].m, n), ref[i].m, { atol: 1e-8, rtol: 1e-4 }, `m ${label}`);
        assertClose(await g.read(adam.moments[i].v, n), ref[i].v, { atol: 1e-10, rtol: 1e-4 }, `v ${label}`);
        assertClose(await g.read(paramBufs[i], n), ref[i].p, { atol: 1e-6, rtol: 1e-5 }, `p ${label}`);
      }
    }
  });

  Deno.test(`train zero (${family}): n floats zeroed, nothing after them`, async () => {
    const g = await trainGpu(family);
    const a = g.filled(100, 3), b = g.filled(10, 3);
    await g.run((pass) =>
      new ZeroFloats(g.kernels, [{ buffer: a, n: 97 }, { buffer: b, n: 10 }]).encode(pass)
    );
    assertClose(await g.read(a, 100), [...new Array(97).fill(0), 3, 3, 3], { atol: 0, rtol: 0 }, "a");
    assertClose(await g.read(b, 10), new Array(10).fill(0), { atol: 0, rtol: 0 }, "b");
  });
}
