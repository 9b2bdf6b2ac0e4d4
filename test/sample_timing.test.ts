/**
 * GPU sampling's time per call at vocab 128256, for both kernel families (a printout, no check): greedy, and
 * the full sampler with temperature, top-k and top-p on wide and flat logits.
 */

import { families, type Family, testGpu } from "./harness.ts";
import { bufferFrom, readBuffer, storageBuffer } from "../src/gpu/buffers.ts";
import { GpuSampler, GREEDY, type SamplingOptions } from "../src/ops/sample/sampler.ts";
import { kernelFamily, samplerBlocks } from "../src/gpu/profile.ts";
import { cacheFor, makeLogits } from "./sample_gpu.ts";

for (const family of await families()) {
  const name = (s: string) => `sample [${family}] ${s}`;
  const gpuOf = (f: Family) => testGpu(f);

  Deno.test(name("timing at vocab 128256 (printout)"), async () => {
    const gpu = await gpuOf(family);
    const device = gpu.device;
    const vocab = 128256;
    const kernels = cacheFor(gpu);
    const sampler = new GpuSampler(kernels, {
      vocab,
      maxRows: 1,
      resultStride: 1,
      blocksPerRow: samplerBlocks(kernelFamily(gpu), vocab),
    });
    const lb = bufferFrom(device, "logits", makeLogits(1, vocab, "wide"));
    const flatb = bufferFrom(device, "logits", makeLogits(2, vocab, "normal"));
    const pb = storageBuffer(device, "sample params", 16);
    const posb = storageBuffer(device, "positions", 4);
    const tb = storageBuffer(device, "tokens", 4);
    const rb = storageBuffer(device, "result", 4);
    const calls = 20;
    const time = async (label: string, opts: SamplingOptions, logits: GPUBuffer, greedyOnly = false) => {
      device.queue.writeBuffer(pb, 0, GpuSampler.paramsBytes([opts]));
      sampler.bind(logits, pb, posb, tb, rb);
      const once = () => {
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        sampler.encode(pass, 1, greedyOnly);
        pass.end();
        device.queue.submit([enc.finish()]);
      };
      once();
      await readBuffer(device, tb, 4);
      const t0 = performance.now();
      await readBuffer(device, tb, 4);
      const readback = performance.now() - t0;
      const t1 = performance.now();
      for (let i = 0; i < calls; i++) once();
      await readBuffer(device, tb, 4);
      const total = performance.now() - t1;
      console.log(
        `[${family}] ${label}: ${((total - readback) / calls).toFixed(3)} ms/call ` +
          `(${calls} calls + 1 readback = ${total.toFixed(1)} ms; a readback alone ${
            readback.toFixed(1)
          } ms)`,
      );
    };
    await time("greedy (greedyOnly)", GREEDY, lb, true);
    await time("greedy (all passes recorded)", GREEDY, lb);
    await time("T=1 top-p 0.9, logits N(0,3^2)", { temperature: 1, topK: 0, topP: 0.9, seed: 1 }, lb);
    await time(
      "T=0.8 top-k 40 top-p 0.95, N(0,3^2)",
      { temperature: 0.8, topK: 40, topP: 0.95, seed: 1 },
      lb,
    );
    await time(
      "T=1 top-p 0.9, flat N(0,1) (worst case)",
      { temperature: 1, topK: 0, topP: 0.9, seed: 1 },
      flatb,
    );
    await time("T=1 no top-k/top-p, flat N(0,1)", { temperature: 1, topK: 0, topP: 1, seed: 1 }, flatb);
    for (const b of [lb, flatb, pb, posb, tb, rb]) b.destroy();
    sampler.destroy();
  });
}
