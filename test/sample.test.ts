/**
 * GPU sampling (kernels/sample.wgsl, src/ops/sample/sampler.ts) against the TypeScript reference, for
 * both kernel families: the random draw, greedy argmax (exact, ties to the lowest id), and one row sampled
 * from the LM head's (key, index) pairs. Random cases, distributions and timing: test/sample_*.test.ts.
 */

import { families, type Family, testGpu } from "./harness.ts";
import { GREEDY, type SamplingOptions } from "../src/ops/sample/sampler.ts";
import { referenceSample, rngUniform } from "../src/ops/sample/reference.ts";
import { mulberry32 } from "../src/util/random.ts";
import { assert, assertEquals, gpuSample, headPairsOf, makeLogits } from "./sample_gpu.ts";

for (const family of await families()) {
  const name = (s: string) => `sample [${family}] ${s}`;
  const gpuOf = (f: Family) => testGpu(f);

  Deno.test(name("rngUniform is in [0, 1) and spread"), () => {
    let sum = 0;
    for (let p = 0; p < 10000; p++) {
      const u = rngUniform(1234, p);
      assert(u >= 0 && u < 1);
      sum += u;
    }
    assert(Math.abs(sum / 10000 - 0.5) < 0.02, `mean ${sum / 10000}`);
  });

  Deno.test(name("greedy argmax is exact, ties to the lowest id"), async () => {
    const gpu = await gpuOf(family);
    for (const vocab of [37, 1000, 128256]) {
      const rows: Float32Array[] = [];
      rows.push(makeLogits(vocab + 1, vocab, "normal"));
      rows.push(makeLogits(vocab + 2, vocab, "ties"));
      const flat = new Float32Array(vocab).fill(0.25); // every id ties
      rows.push(flat);
      const twice = makeLogits(vocab + 3, vocab, "normal");
      twice[vocab - 1] = 100; // the max twice: the lower id wins
      twice[Math.floor(vocab / 2)] = 100;
      rows.push(twice);
      const masked = makeLogits(vocab + 4, vocab, "normal").map((v, i) => (i % 3 === 0 ? v : -Infinity));
      rows.push(masked);
      const zeros = new Float32Array(vocab).fill(-1);
      zeros[5] = -0;
      zeros[3] = 0; // -0 == +0: id 3 wins
      rows.push(zeros);
      const logits = new Float32Array(rows.length * vocab);
      rows.forEach((r, j) => logits.set(r, j * vocab));
      const opts = rows.map((_, j) => ({ ...GREEDY, seed: j }));
      const expected = rows.map((r) => referenceSample(r, GREEDY, 0));
      assertEquals(expected[2], 0);
      assertEquals(expected[3], Math.floor(vocab / 2));
      assertEquals(expected[5], 3);
      for (const [greedyOnly, blocks] of [[true, undefined], [false, undefined], [true, 7]] as const) {
        const got = await gpuSample(gpu, vocab, logits, opts, rows.map((_, j) => j), greedyOnly, blocks);
        assertEquals(got, expected, `vocab ${vocab} greedyOnly=${greedyOnly} blocks=${blocks}`);
      }
    }
  });

  Deno.test(name("one row from the LM head's pairs: the tokens of the full sampler"), async () => {
    const gpu = await gpuOf(family);
    const rnd = mulberry32(family === "plain" ? 91 : 92);
    let i = 0;
    for (const vocab of [37, 1000, 128256]) {
      for (const shape of ["normal", "ties", "peaked", "last"] as const) {
        const row = makeLogits(vocab * 7 + i, vocab, shape === "last" ? "normal" : shape);
        if (shape === "ties") row[vocab - 1] = row[Math.floor(vocab / 3)] = 50; // the max in two ranges
        if (shape === "last") row[vocab - 1] = 6; // the max in the last range
        for (const range of [1, 7, 64, 1000]) {
          const opts: SamplingOptions = i % 3 === 0 ? { ...GREEDY, seed: i } : {
            temperature: 0.8,
            topK: [0, 5, 40][i % 3],
            topP: [1, 0.9][i % 2],
            seed: Math.floor(rnd() * 2 ** 32),
          };
          const pos = Math.floor(rnd() * 2 ** 32);
          // The same token as the sampler's own first pass gives (the GPU's exp may differ from the host's in
          // a rare sampled case, not between these two paths), and greedy exactly the reference's.
          const greedy = i % 3 === 0;
          const want = await gpuSample(gpu, vocab, row, [opts], [pos], greedy);
          if (greedy) assertEquals(want, [referenceSample(row, opts, pos)], `vocab ${vocab} ${shape} greedy`);
          const got = await gpuSample(
            gpu,
            vocab,
            row,
            [opts],
            [pos],
            greedy,
            undefined,
            headPairsOf(row, range),
          );
          assertEquals(got, want, `vocab ${vocab} ${shape} range ${range} ${JSON.stringify(opts)}`);
          i++;
        }
      }
    }
  });
}
