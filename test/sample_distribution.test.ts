/**
 * GPU sampling's distributions, for both kernel families: T = 1 frequencies over 2000 positions follow the
 * softmax (and top-k 2 keeps the top two in their ratio), and a small top_p keeps only the top token.
 */

import { families, type Family, testGpu } from "./harness.ts";
import { GREEDY } from "../src/ops/sample/sampler.ts";
import { referenceSample } from "../src/ops/sample/reference.ts";
import { assert, assertEquals, gpuSample, makeLogits, rowsOf, softmax } from "./sample_gpu.ts";

for (const family of await families()) {
  const name = (s: string) => `sample [${family}] ${s}`;
  const gpuOf = (f: Family) => testGpu(f);

  Deno.test(name("T = 1 frequencies over 2000 positions follow the softmax"), async () => {
    const gpu = await gpuOf(family);
    const base = [1.0, 0.0, -0.5, 2.0];
    const vocab = base.length;
    const n = 2000;
    const logits = new Float32Array(n * vocab);
    for (let j = 0; j < n; j++) logits.set(base, j * vocab);
    const opt = { temperature: 1, topK: 0, topP: 1, seed: 42 };
    const opts = Array.from({ length: n }, () => opt);
    const positions = Array.from({ length: n }, (_, j) => j);
    const got = await gpuSample(gpu, vocab, logits, opts, positions);
    const counts = [0, 0, 0, 0];
    let same = 0;
    for (let j = 0; j < n; j++) {
      counts[got[j]]++;
      if (got[j] === referenceSample(new Float32Array(base), opt, j)) same++;
    }
    const p = softmax(base, 1);
    for (let i = 0; i < vocab; i++) {
      assert(Math.abs(counts[i] / n - p[i]) < 0.03, `id ${i}: ${counts[i] / n} vs ${p[i].toFixed(4)}`);
    }
    assertEquals(same, n);
    // top-k 2 at T = 1: only ids 3 and 0, in the ratio e^2 : e^1
    const k2 = Array.from({ length: n }, () => ({ ...opt, topK: 2 }));
    const got2 = await gpuSample(gpu, vocab, logits, k2, positions);
    const c3 = got2.filter((t) => t === 3).length;
    assertEquals(got2.filter((t) => t !== 3 && t !== 0).length, 0);
    assert(Math.abs(c3 / n - Math.E / (Math.E + 1)) < 0.03, `top-2 share ${c3 / n}`);
  });

  Deno.test(name("a small top_p keeps only the top token"), async () => {
    const gpu = await gpuOf(family);
    const vocab = 1000;
    const n = 16;
    const logits = new Float32Array(n * vocab);
    for (let j = 0; j < n; j++) {
      logits.set(makeLogits(300 + j, vocab, j % 2 ? "normal" : "peaked"), j * vocab);
    }
    const opts = Array.from({ length: n }, (_, j) => ({
      temperature: 1.5,
      topK: j % 4 === 0 ? 20 : 0,
      topP: j % 3 === 0 ? 0 : 0.001,
      seed: j,
    }));
    const got = await gpuSample(gpu, vocab, logits, opts, opts.map((_, j) => j * 13));
    const greedy = Array.from({ length: n }, (_, j) => referenceSample(rowsOf(logits, vocab, j), GREEDY, 0));
    assertEquals(got, greedy);
  });
}
