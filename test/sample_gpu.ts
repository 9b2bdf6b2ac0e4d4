/**
 * Helpers of the GPU sampling tests (test/sample*.test.ts): the GPU sampler run on rows of logits (its
 * result slots checked on the way), sample.wgsl's sort key and the LM head's pairs, random logits of a few
 * shapes, the softmax, and plain assertions.
 */

import { KernelCache } from "../src/gpu/kernels.ts";
import { bufferFrom, readBuffer, storageBuffer } from "../src/gpu/buffers.ts";
import { GpuSampler, type SamplingOptions } from "../src/ops/sample/sampler.ts";
import { kernelFamily, samplerBlocks } from "../src/gpu/profile.ts";
import { gaussian, mulberry32 } from "../src/util/random.ts";
import type { GpuContext } from "../src/gpu/device.ts";

export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

export function assertEquals(actual: unknown, expected: unknown, msg = ""): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${msg ? msg + ": " : ""}got ${a}, expected ${e}`);
}

const STRIDE = 3;
const SENTINEL = 0xdeadbeef;

const caches = new Map<GpuContext, KernelCache>();
export function cacheFor(gpu: GpuContext): KernelCache {
  let c = caches.get(gpu);
  if (!c) {
    c = new KernelCache(gpu);
    caches.set(gpu, c);
  }
  return c;
}

/** Samples every row of `logits` ([rows × vocab]) on the GPU; checks the result slots on the way. */
export async function gpuSample(
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
export function f2key(v: number): number {
  let b = new Uint32Array(new Float32Array([v]).buffer)[0];
  if (b === 0x80000000) b = 0;
  return (b & 0x80000000 ? ~b : b | 0x80000000) >>> 0;
}

/** The pairs an LM head leaves (gemv_tex.wgsl ARGMAX): (max key, lowest index) of consecutive ranges. */
export function headPairsOf(row: Float32Array, range: number): Uint32Array {
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

export type Shape = "normal" | "wide" | "ties" | "peaked";

export function makeLogits(seed: number, vocab: number, shape: Shape): Float32Array {
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

export function rowsOf(logits: Float32Array, vocab: number, j: number): Float32Array {
  return logits.subarray(j * vocab, (j + 1) * vocab);
}

export function softmax(l: number[], t: number): number[] {
  const m = Math.max(...l);
  const e = l.map((v) => Math.exp((v - m) / t));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
