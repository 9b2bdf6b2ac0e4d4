/**
 * GPU sampling against referenceSample on random cases, for both kernel families: 200 rows of random shapes,
 * temperatures, top-k and top-p over several block counts; top_k = 1 as greedy; the same inputs twice (and
 * another block split) giving the same tokens.
 */

import { families, type Family, testGpu } from "./harness.ts";
import { GREEDY, type SamplingOptions } from "../src/ops/sample/sampler.ts";
import { referenceSample } from "../src/ops/sample/reference.ts";
import { mulberry32 } from "../src/util/random.ts";
import { assert, assertEquals, gpuSample, makeLogits, rowsOf, type Shape } from "./sample_gpu.ts";

for (const family of await families()) {
  const name = (s: string) => `sample [${family}] ${s}`;
  const gpuOf = (f: Family) => testGpu(f);

  Deno.test(name("sampled tokens match referenceSample on 200 random cases"), async () => {
    const gpu = await gpuOf(family);
    const rnd = mulberry32(family === "plain" ? 77 : 78);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
    const shapes: Shape[] = ["normal", "wide", "ties", "peaked"];
    const plan: Array<[number, number]> = [[37, 40], [1000, 48], [32000, 80], [128256, 32]];
    let cases = 0;
    const mismatches: string[] = [];
    for (const [vocab, count] of plan) {
      for (let start = 0; start < count; start += 8) {
        // several block counts: a GPU splits a row over many workgroups, a CPU over a few
        const blocks = [undefined, 1, 3, 8][(start / 8) % 4];
        const n = Math.min(8, count - start);
        const logits = new Float32Array(n * vocab);
        const opts: SamplingOptions[] = [];
        const positions: number[] = [];
        const shapeOf: Shape[] = [];
        for (let j = 0; j < n; j++) {
          const shape = pick(shapes);
          shapeOf.push(shape);
          logits.set(makeLogits(Math.floor(rnd() * 2 ** 31), vocab, shape), j * vocab);
          opts.push({
            temperature: pick([0, 0.3, 0.7, 1, 1, 1.5]),
            topK: pick([0, 0, 1, 5, 40, 1000, vocab + 5]),
            topP: pick([1, 1, 0.5, 0.9, 0.95, 0]),
            seed: Math.floor(rnd() * 2 ** 32),
          });
          positions.push(Math.floor(rnd() * 2 ** 32));
        }
        const got = await gpuSample(gpu, vocab, logits, opts, positions, false, blocks);
        for (let j = 0; j < n; j++) {
          cases++;
          const want = referenceSample(rowsOf(logits, vocab, j), opts[j], positions[j]);
          if (got[j] !== want) {
            mismatches.push(
              `vocab ${vocab} blocks ${blocks} ${shapeOf[j]} ${JSON.stringify(opts[j])} ` +
                `pos ${positions[j]}: gpu ${got[j]} ref ${want}`,
            );
          }
        }
      }
    }
    assertEquals(cases, 200);
    if (mismatches.length) {
      console.log(`[${family}] ${mismatches.length} mismatches:\n  ${mismatches.join("\n  ")}`);
    }
    assert(mismatches.length <= 2, `${mismatches.length} of ${cases} mismatches`);
  });

  Deno.test(name("top_k = 1 equals greedy"), async () => {
    const gpu = await gpuOf(family);
    const vocab = 5000;
    const n = 8;
    const logits = new Float32Array(n * vocab);
    for (let j = 0; j < n; j++) logits.set(makeLogits(900 + j, vocab, j % 2 ? "wide" : "normal"), j * vocab);
    const opts = Array.from({ length: n }, (_, j) => ({
      temperature: [0.5, 1, 2, 10][j % 4],
      topK: 1,
      topP: j < 4 ? 1 : 0.9,
      seed: 31 * j,
    }));
    const got = await gpuSample(gpu, vocab, logits, opts, opts.map((_, j) => 1000 + j));
    const greedy = Array.from({ length: n }, (_, j) => referenceSample(rowsOf(logits, vocab, j), GREEDY, 0));
    assertEquals(got, greedy);
  });

  Deno.test(name("same inputs twice give the same tokens"), async () => {
    const gpu = await gpuOf(family);
    const vocab = 128256;
    const shapes: Shape[] = ["normal", "wide", "ties", "peaked"];
    const n = 8;
    const logits = new Float32Array(n * vocab);
    for (let j = 0; j < n; j++) logits.set(makeLogits(500 + j, vocab, shapes[j % 4]), j * vocab);
    const opts = Array.from({ length: n }, (_, j) => ({
      temperature: 1,
      topK: j < 4 ? 0 : 50,
      topP: j % 2 ? 0.9 : 1,
      seed: j,
    }));
    const positions = opts.map((_, j) => 7 * j);
    const a = await gpuSample(gpu, vocab, logits, opts, positions);
    const b = await gpuSample(gpu, vocab, logits, opts, positions);
    assertEquals(a, b);
    // the block split changes only the order of exact integer sums: the same tokens
    const c = await gpuSample(gpu, vocab, logits, opts, positions, false, 5);
    assertEquals(c, a);
  });
}
