/**
 * GPU sampling (kernels/sample.wgsl, src/ops/sample/sampler.ts) against the TypeScript reference, for
 * both kernel families.
 */

import { families, type Family, testGpu } from "./harness.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { bufferFrom, readBuffer, storageBuffer } from "../src/gpu/buffers.ts";
import { GpuSampler, GREEDY, type SamplingOptions } from "../src/ops/sample/sampler.ts";
import { referenceSample, rngUniform } from "../src/ops/sample/reference.ts";
import { kernelFamily, samplerBlocks } from "../src/gpu/profile.ts";
import { gaussian, mulberry32 } from "../src/util/random.ts";
import type { GpuContext } from "../src/gpu/device.ts";

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function assertEquals(actual: unknown, expected: unknown, msg = ""): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${msg ? msg + ": " : ""}got ${a}, expected ${e}`);
}

const STRIDE = 3;
const SENTINEL = 0xdeadbeef;

const caches = new Map<GpuContext, KernelCache>();
function cacheFor(gpu: GpuContext): KernelCache {
  let c = caches.get(gpu);
  if (!c) {
    c = new KernelCache(gpu);
    caches.set(gpu, c);
  }
  return c;
}

/** Samples every row of `logits` ([rows × vocab]) on the GPU; checks the result slots on the way. */
async function gpuSample(
  gpu: GpuContext,
  vocab: number,
  logits: Float32Array,
  opts: SamplingOptions[],
  positions: number[],
  greedyOnly = false,
  blocksPerRow?: number,
  /** The LM head's (key, index) pairs for a one-row step: the sampler starts from them (`fromHead`). */
  headPairs?: Uint32Array,
): Promise<number[]> {
  const rows = opts.length;
  const device = gpu.device;
  const kernels = cacheFor(gpu);
  const headParts = headPairs ? headPairs.length / 2 : undefined;
  const sampler = new GpuSampler(kernels, {
    vocab,
    maxRows: rows,
    resultStride: STRIDE,
    blocksPerRow: blocksPerRow ?? samplerBlocks(kernelFamily(gpu), vocab),
    headParts,
  });
  const lb = bufferFrom(device, "logits", logits);
  const pb = bufferFrom(device, "sample params", new Uint8Array(GpuSampler.paramsBytes(opts)));
  const posb = bufferFrom(device, "positions", new Uint32Array(positions));
  const tb = storageBuffer(device, "tokens", rows * 4);
  const rb = bufferFrom(device, "result", new Uint32Array(rows * STRIDE).fill(SENTINEL));
  const hb = headPairs ? bufferFrom(device, "head pairs", headPairs) : undefined;
  sampler.bind(lb, pb, posb, tb, rb, hb);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  sampler.encode(pass, rows, greedyOnly, !!headPairs);
  pass.end();
  device.queue.submit([enc.finish()]);
  await kernels.checkErrors();
  const tokens = Array.from(new Uint32Array(await readBuffer(device, tb, rows * 4)));
  const result = new Uint32Array(await readBuffer(device, rb, rows * STRIDE * 4));
  for (let j = 0; j < rows; j++) {
    assertEquals(result[j * STRIDE], tokens[j], `row ${j}: result slot != tokens`);
    for (let w = 1; w < STRIDE; w++) {
      assertEquals(result[j * STRIDE + w], SENTINEL, `row ${j}: word ${w} touched`);
    }
  }
  for (const b of [lb, pb, posb, tb, rb, hb]) b?.destroy();
  sampler.destroy();
  return tokens;
}

/** sample.wgsl's key: the f32 bit pattern as a u32 that sorts like the value, -0 as +0. */
function f2key(v: number): number {
  let b = new Uint32Array(new Float32Array([v]).buffer)[0];
  if (b === 0x80000000) b = 0;
  return (b & 0x80000000 ? ~b : b | 0x80000000) >>> 0;
}

/** The pairs an LM head leaves (gemv_tex.wgsl ARGMAX): (max key, lowest index) of consecutive ranges. */
function headPairsOf(row: Float32Array, range: number): Uint32Array {
  const n = Math.ceil(row.length / range);
  const pairs = new Uint32Array(2 * n);
  for (let q = 0; q < n; q++) {
    let bi = q * range;
    for (let i = bi; i < Math.min(row.length, (q + 1) * range); i++) {
      if (f2key(row[i]) > f2key(row[bi])) bi = i;
    }
    pairs[2 * q] = f2key(row[bi]);
    pairs[2 * q + 1] = bi;
  }
  return pairs;
}

type Shape = "normal" | "wide" | "ties" | "peaked";

function makeLogits(seed: number, vocab: number, shape: Shape): Float32Array {
  const g = gaussian(seed);
  const u = mulberry32(seed ^ 0x5bd1e995);
  const out = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) {
    const z = g();
    if (shape === "normal") out[i] = z;
    else if (shape === "wide") out[i] = 3 * z;
    else if (shape === "ties") out[i] = Math.round(z * 2) / 2;
    else out[i] = 2 * z;
  }
  if (shape === "peaked") {
    for (let n = 0; n < 5; n++) out[Math.floor(u() * vocab)] = 8 + 4 * u();
  }
  return out;
}

function rowsOf(logits: Float32Array, vocab: number, j: number): Float32Array {
  return logits.subarray(j * vocab, (j + 1) * vocab);
}

function softmax(l: number[], t: number): number[] {
  const m = Math.max(...l);
  const e = l.map((v) => Math.exp((v - m) / t));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

const FAMILIES = await families();

for (const family of FAMILIES) {
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
