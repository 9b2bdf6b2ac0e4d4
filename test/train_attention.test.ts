/**
 * Causal grouped-query attention in training (src/ops/attention/train.ts): forward (out, lse) and backward (dq,
 * dk, dv) against the plain-TypeScript reference, and the backward against central differences of the reference
 * forward, on both kernel families, with the software GPUs' workgroup (8 positions) and the GPUs' (64): odd
 * sequence lengths that fill no workgroup, a length of 1, grouped, multi-head and multi-query heads, and the
 * largest shape the op takes in training (T = 512, head_dim 128).
 */

import { assertClose, families, testGpu } from "./harness.ts";
import { checkGradient } from "./train_fd.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { bufferFrom, readBuffer } from "../src/gpu/buffers.ts";
import { randomNormal } from "../src/util/random.ts";
import { TrainAttention, type TrainAttentionShape } from "../src/ops/attention/train.ts";
import {
  referenceTrainAttention,
  referenceTrainAttentionBackward,
  type TrainAttentionDims,
} from "../src/ops/attention/reference.ts";

interface Inputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  dout: Float32Array;
}

function inputs(d: TrainAttentionDims, seed: number): Inputs {
  const n = d.batch * d.seqLen, qn = n * d.numHeads * d.headDim, kn = n * d.numKvHeads * d.headDim;
  return {
    q: randomNormal(seed, qn, 1.5),
    k: randomNormal(seed + 1, kn, 1.5),
    v: randomNormal(seed + 2, kn),
    dout: randomNormal(seed + 3, qn),
  };
}

/** Forward and backward on the GPU (outputs pre-filled with 7s: every kernel overwrites). */
async function runGpu(kernels: KernelCache, d: TrainAttentionDims, wg: number, x: Inputs) {
  const device = kernels.gpu.device;
  const n = d.batch * d.seqLen, qn = x.q.length, kn = x.k.length;
  const filled = (label: string, floats: number) =>
    bufferFrom(device, label, new Float32Array(floats).fill(7));
  const io = {
    q: bufferFrom(device, "q", x.q),
    k: bufferFrom(device, "k", x.k),
    v: bufferFrom(device, "v", x.v),
    dout: bufferFrom(device, "dout", x.dout),
    out: filled("out", qn),
    lse: filled("lse", n * d.numHeads),
    dq: filled("dq", qn),
    dk: filled("dk", kn),
    dv: filled("dv", kn),
  };
  const shape: TrainAttentionShape = { ...d, workgroup: wg };
  const op = new TrainAttention(kernels, shape, io);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  op.encodeForward(pass);
  op.encodeBackward(pass);
  pass.end();
  device.queue.submit([enc.finish()]);
  await kernels.checkErrors();
  const read = async (b: GPUBuffer, floats: number) =>
    new Float32Array(await readBuffer(device, b, floats * 4));
  return {
    out: await read(io.out, qn),
    lse: await read(io.lse, n * d.numHeads),
    dq: await read(io.dq, qn),
    dk: await read(io.dk, kn),
    dv: await read(io.dv, kn),
  };
}

const dims = (batch: number, seqLen: number, numHeads: number, numKvHeads: number, headDim: number) => ({
  batch,
  seqLen,
  numHeads,
  numKvHeads,
  headDim,
});

const SHAPES: TrainAttentionDims[] = [
  dims(3, 7, 6, 2, 8), // groups of 3 query heads, T under any workgroup
  dims(2, 37, 4, 1, 12), // multi-query, T over several workgroups of 8
  dims(2, 67, 3, 3, 4), // multi-head, T over two workgroups of 64
  dims(2, 1, 2, 2, 4), // one position: every row attends to itself alone
];

for (const family of await families()) {
  Deno.test(`train attention (${family}): forward and backward against the reference`, async () => {
    const kernels = new KernelCache(await testGpu(family));
    let seed = 10;
    for (const d of SHAPES) {
      const x = inputs(d, seed += 10);
      const fwd = referenceTrainAttention(x.q, x.k, x.v, d);
      const bwd = referenceTrainAttentionBackward(x.q, x.k, x.v, x.dout, d);
      for (const wg of [8, 64]) {
        const got = await runGpu(kernels, d, wg, x);
        const label =
          `B${d.batch} T${d.seqLen} ${d.numHeads}/${d.numKvHeads} heads of ${d.headDim}, WG ${wg}`;
        assertClose(got.out, fwd.out, { atol: 1e-5, rtol: 1e-4 }, `${label}: out`);
        assertClose(got.lse, fwd.lse, { atol: 1e-5, rtol: 1e-5 }, `${label}: lse`);
        for (const g of ["dq", "dk", "dv"] as const) {
          assertClose(got[g], bwd[g], { atol: 1e-4, rtol: 1e-4 }, `${label}: ${g}`);
        }
      }
    }
  });

  Deno.test(`train attention (${family}): the backward against central differences`, async () => {
    const kernels = new KernelCache(await testGpu(family));
    for (const d of [dims(2, 5, 6, 2, 8), dims(1, 9, 2, 1, 4)]) {
      const x = inputs(d, 77);
      const got = await runGpu(kernels, d, 8, x);
      const q = Float64Array.from(x.q), k = Float64Array.from(x.k), v = Float64Array.from(x.v);
      // L = Σ dout ∘ out(q, k, v), so dL/dq, dk, dv are the backward's outputs for this dout.
      const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) =>
        referenceTrainAttention(qq, kk, vv, d).out.reduce((a, o, i) => a + x.dout[i] * o, 0);
      // h = 1e-4 on inputs of size ~1: the truncation error h²·|L'''|/6 is ~1e-8, rounding ~1e-16·|L|/h ~1e-11,
      // so the differences stand for the exact gradient; the GPU sums ≤ 9 keys × 8 dims in f32 (measured within
      // 0.05 of this tolerance). Gradients here are 0.01–6: one element off by 1% of the largest fails by far.
      const tol = { atol: 1e-5, rtol: 1e-4 }, h = 1e-4;
      const label = `B${d.batch} T${d.seqLen} ${d.numHeads}/${d.numKvHeads} heads of ${d.headDim}`;
      checkGradient(`${label} dq`, got.dq, (z) => loss(z, k, v), q, { h, tol });
      checkGradient(`${label} dk`, got.dk, (z) => loss(q, z, v), k, { h, tol });
      checkGradient(`${label} dv`, got.dv, (z) => loss(q, k, z), v, { h, tol });
    }
  });
}

// The longest T the kernels take at head_dim 128 (976: llvmpipe would stop a loop any longer), grouped heads.
Deno.test("train attention: the longest sequence at head_dim 128, grouped heads, deterministic", async () => {
  const kernels = new KernelCache(await testGpu("plain"));
  const d = dims(1, TrainAttention.maxSeqLen(128), 2, 1, 128), x = inputs(d, 5);
  const fwd = referenceTrainAttention(x.q, x.k, x.v, d);
  const bwd = referenceTrainAttentionBackward(x.q, x.k, x.v, x.dout, d);
  const got = await runGpu(kernels, d, 8, x);
  for (const [wg, run] of [[8, got], [64, await runGpu(kernels, d, 64, x)]] as const) {
    assertClose(run.out, fwd.out, { atol: 1e-5, rtol: 1e-4 }, `WG ${wg}: out`);
    assertClose(run.lse, fwd.lse, { atol: 1e-5, rtol: 1e-5 }, `WG ${wg}: lse`);
    for (const g of ["dq", "dk", "dv"] as const) {
      assertClose(run[g], bwd[g], { atol: 1e-4, rtol: 1e-4 }, `WG ${wg}: ${g}`);
    }
  }
  // No atomics: the same inputs give the same bits.
  const again = await runGpu(kernels, d, 8, x);
  for (const g of ["dq", "dk", "dv"] as const) {
    assertClose(again[g], got[g], { atol: 0, rtol: 0 }, `${g} rerun`);
  }
});

Deno.test("train attention: shapes it cannot run are refused", async () => {
  const kernels = new KernelCache(await testGpu("plain"));
  const b = bufferFrom(kernels.gpu.device, "b", new Float32Array(4));
  const io = { q: b, k: b, v: b, out: b, lse: b, dout: b, dq: b, dk: b, dv: b };
  const bad = [
    dims(1, 4, 2, 1, 6),
    dims(1, 4, 2, 1, 132),
    dims(1, 4, 3, 2, 8),
    dims(1, 0, 2, 1, 8),
    dims(1, TrainAttention.maxSeqLen(128) + 1, 2, 1, 128),
  ];
  for (const d of bad) {
    let refused = false;
    try {
      new TrainAttention(kernels, d, io);
    } catch {
      refused = true;
    }
    if (!refused) throw new Error(`not refused: ${JSON.stringify(d)}`);
  }
});
