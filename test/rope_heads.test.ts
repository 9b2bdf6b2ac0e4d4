/**
 * kernels/rope_heads.wgsl through its op host (src/ops/rope/rope_heads.ts) against its plain-TypeScript
 * reference, on both kernel families, at sizes that fit no workgroup or vector width: Llama's heads (RoPE and the
 * KV write alone), Qwen3's per-head q/k RMSNorm, Qwen2's q/k/v biases, both together, q alone (a routed layer's
 * kept rows) and K/V alone (every row of a routed layer), rows at scattered slots and positions.
 */

import { assertClose, families, testGpu } from "./harness.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { bufferFrom, readBuffer, storageBuffer } from "../src/gpu/buffers.ts";
import { randomNormal } from "../src/util/random.ts";
import { decodeToF32 } from "../src/model/dtype.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { ropeInvFreq } from "../src/model/config.ts";
import { ropeTable } from "../src/ops/rope/table.ts";
import { type HeadWeights, type RopeColumns, RopeHeads } from "../src/ops/rope/rope_heads.ts";
import { type HeadExtras, referenceRopeHeads } from "../src/ops/rope/reference.ts";

const TOL = { atol: 1e-4, rtol: 1e-4 };

interface Case {
  label: string;
  nH: number;
  nKV: number;
  hd: number;
  norm: boolean;
  bias: boolean;
  /** Which parts run: q and K/V, q alone, K/V alone. */
  parts: "qkv" | "q" | "kv";
  /** The cache holds f16 pairs (head size a multiple of 4). */
  kvF16?: boolean;
}

const CASES: Case[] = [
  { label: "llama", nH: 6, nKV: 3, hd: 10, norm: false, bias: false, parts: "qkv" },
  { label: "qwen3 norms", nH: 6, nKV: 3, hd: 10, norm: true, bias: false, parts: "qkv" },
  { label: "qwen2 biases", nH: 6, nKV: 3, hd: 10, norm: false, bias: true, parts: "qkv" },
  // 30 + 2 × 5 heads a row: two workgroups along it.
  {
    label: "norms and biases, two workgroups a row",
    nH: 30,
    nKV: 5,
    hd: 6,
    norm: true,
    bias: true,
    parts: "qkv",
  },
  { label: "q alone", nH: 6, nKV: 2, hd: 14, norm: true, bias: true, parts: "q" },
  { label: "K/V alone", nH: 6, nKV: 2, hd: 14, norm: true, bias: true, parts: "kv" },
  { label: "llama, f16 KV", nH: 6, nKV: 3, hd: 8, norm: false, bias: false, parts: "qkv", kvF16: true },
  {
    label: "norms and biases, f16 KV",
    nH: 6,
    nKV: 3,
    hd: 12,
    norm: true,
    bias: true,
    parts: "qkv",
    kvF16: true,
  },
  { label: "K/V alone, f16 KV", nH: 6, nKV: 2, hd: 20, norm: true, bias: true, parts: "kv", kvF16: true },
];

/**
 * An f16 cache against the reference rounded to f16: the kernel rounds its f32 value once, which may land one
 * f16 step (≤ 2^-10 relative) from the rounded reference where the two f32 values straddle a rounding edge.
 */
const KV16_TOL = { atol: 1e-4, rtol: 1e-3 };

/** The case's q/k norm weights (around 1) and q/k/v biases, from the seeds after `seed`, and buffers. */
function headWeights(
  device: GPUDevice,
  c: Case,
  seed: number,
  eps: number,
): { extras: HeadExtras; weights: HeadWeights } {
  const { nH, nKV, hd } = c, kvDim = nKV * hd, qDim = nH * hd;
  const extras: HeadExtras = { eps };
  if (c.norm) {
    Object.assign(extras, { qNorm: randomNormal(seed + 1, hd, 0.3), kNorm: randomNormal(seed + 2, hd, 0.3) });
  }
  if (c.norm) { for (const w of [extras.qNorm!, extras.kNorm!]) for (let i = 0; i < hd; i++) w[i] += 1; }
  if (c.bias) {
    Object.assign(extras, {
      qBias: randomNormal(seed + 3, qDim),
      kBias: randomNormal(seed + 4, kvDim),
      vBias: randomNormal(seed + 5, kvDim),
    });
  }
  const weights: HeadWeights = {
    qkNorm: c.norm
      ? { q: bufferFrom(device, "qn", extras.qNorm!), k: bufferFrom(device, "kn", extras.kNorm!) }
      : null,
    bias: c.bias
      ? {
        q: bufferFrom(device, "qb", extras.qBias!),
        k: bufferFrom(device, "kb", extras.kBias!),
        v: bufferFrom(device, "vb", extras.vBias!),
      }
      : null,
  };
  return { extras, weights };
}

/** The rows' q (where the case runs it) and the K/V caches against the reference's. */
async function checkHeads(
  device: GPUDevice,
  c: Case,
  at: RopeColumns,
  io: { qkv: GPUBuffer; kCache: GPUBuffer; vCache: GPUBuffer },
  expected: { qkv: Float32Array; k: Float32Array; v: Float32Array },
  n: number,
): Promise<void> {
  const qDim = c.nH * c.hd, cacheFloats = expected.k.length;
  const read = async (b: GPUBuffer, floats: number) =>
    new Float32Array(await readBuffer(device, b, floats * 4));
  const gotQkv = await read(io.qkv, expected.qkv.length);
  if (at.q !== undefined) {
    for (let r = 0; r < n; r++) {
      const q = (a: Float32Array) => a.subarray(r * at.stride, r * at.stride + qDim);
      assertClose(q(gotQkv), q(expected.qkv), TOL, `${c.label}: q of row ${r}`);
    }
  }
  const readCache = async (b: GPUBuffer) =>
    c.kvF16
      ? decodeToF32("F16", new Uint8Array(await readBuffer(device, b, cacheFloats * 2)))
      : read(b, cacheFloats);
  const want = (a: Float32Array) => c.kvF16 ? new Float32Array(new Float16Array(a)) : a;
  const tol = c.kvF16 ? KV16_TOL : TOL;
  assertClose(await readCache(io.kCache), want(expected.k), tol, `${c.label}: k cache`);
  assertClose(await readCache(io.vCache), want(expected.v), tol, `${c.label}: v cache`);
}

async function runCase(kernels: KernelCache, c: Case, seed: number) {
  const device = kernels.gpu.device;
  const { nH, nKV, hd } = c, ctx = 40, slots = 2, eps = 1e-6;
  const rows = [[0, 0], [0, 1], [1, 39], [1, 7], [0, 20]] as const, n = rows.length;
  const kvDim = nKV * hd, qDim = nH * hd;
  // Columns as the layer units lay them out: [q | k | v | pad], q alone, or [k | v | pad].
  const at: RopeColumns = c.parts === "q"
    ? { stride: qDim, q: 0 }
    : c.parts === "kv"
    ? { stride: 2 * kvDim + 3, k: 0, v: kvDim }
    : { stride: qDim + 2 * kvDim + 3, q: 0, k: qDim, v: qDim + kvDim };
  const qkv = randomNormal(seed, n * at.stride, 2);
  const { extras, weights } = headWeights(device, c, seed, eps);
  const cfg = { headDim: hd, ropeTheta: 10000, ropeScaling: null } as unknown as ModelConfig;
  const cacheFloats = slots * ctx * kvDim;
  const io = {
    step: bufferFrom(device, "step", new Uint32Array([n, 0, 0, 0])),
    rows: bufferFrom(device, "rows", Uint32Array.from(rows.flat())),
    cosSin: bufferFrom(device, "cs", ropeTable(cfg, ctx)),
    qkv: bufferFrom(device, "qkv", qkv),
    kCache: storageBuffer(device, "kc", cacheFloats * (c.kvF16 ? 2 : 4)),
    vCache: storageBuffer(device, "vc", cacheFloats * (c.kvF16 ? 2 : 4)),
  };
  const op = new RopeHeads(
    kernels,
    { numHeads: nH, numKvHeads: nKV, headDim: hd, context: ctx, eps, kvF16: c.kvF16 },
    at,
    io,
    weights,
  );
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  op.encode(pass, n);
  pass.end();
  device.queue.submit([enc.finish()]);
  await kernels.checkErrors();

  const expected = { qkv: qkv.slice(), k: new Float32Array(cacheFloats), v: new Float32Array(cacheFloats) };
  const shape = { numHeads: nH, numKvHeads: nKV, headDim: hd, ctx };
  referenceRopeHeads(shape, at, expected.qkv, rows, ropeInvFreq(cfg), expected, extras);
  await checkHeads(device, c, at, io, expected, n);
}

for (const family of await families()) {
  Deno.test(`rope_heads (${family}): biases, q/k norms, RoPE and the KV write per head, every part`, async () => {
    const kernels = new KernelCache(await testGpu(family));
    let seed = 40;
    for (const c of CASES) await runCase(kernels, c, seed += 10);
  });
}
