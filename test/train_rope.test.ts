/**
 * RoPE in training (src/ops/rope/train.ts): forward and backward against the plain-TypeScript reference, the
 * backward against central differences of the reference forward, on both kernel families: q and k in buffers of
 * their own, and side by side in a fused [q | k | v] output (v and the padding untouched), Llama-3 scaled
 * frequencies, head sizes with an odd half, a grid past 65535 workgroups.
 */

import { assertClose, families, testGpu } from "./harness.ts";
import { checkGradient } from "./train_fd.ts";
import { KernelCache } from "../src/gpu/kernels.ts";
import { bufferFrom, readBuffer } from "../src/gpu/buffers.ts";
import { randomNormal } from "../src/util/random.ts";
import { type ModelConfig, ropeInvFreq } from "../src/model/config.ts";
import { ropeTable } from "../src/ops/rope/table.ts";
import { type RopePart, RopeTrain } from "../src/ops/rope/train.ts";
import { referenceRope, referenceRopeRows, type RopeRows } from "../src/ops/rope/reference.ts";

const TOL = { atol: 1e-5, rtol: 1e-5 };

/** Llama-3 scaling with a short original context, so that the frequencies it scales turn at these positions. */
function llama3Config(hd: number): ModelConfig {
  const ropeScaling = {
    type: "llama3",
    factor: 8,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositions: 16,
  };
  return { headDim: hd, ropeTheta: 500000, ropeScaling } as unknown as ModelConfig;
}

async function rotate(
  kernels: KernelCache,
  rows: RopeRows,
  table: Float32Array,
  x: Float32Array,
  inverse: boolean,
) {
  const device = kernels.gpu.device;
  const buf = bufferFrom(device, "x", x);
  const part: RopePart = { x: buf, stride: rows.stride, offset: rows.offset, heads: rows.heads };
  const shape = { rows: rows.rows, seqLen: rows.seqLen, headDim: rows.headDim };
  const op = new RopeTrain(kernels, shape, bufferFrom(device, "cs", table), [part], inverse);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  op.encode(pass);
  pass.end();
  device.queue.submit([enc.finish()]);
  await kernels.checkErrors();
  return new Float32Array(await readBuffer(device, buf, x.length * 4));
}

/** B = 3 sequences of T = 7: q alone (3 heads), k alone (1 head), and q + k of a fused [q | k | v | pad] row. */
function layouts(hd: number): Array<[string, RopeRows]> {
  const base = { rows: 21, seqLen: 7, headDim: hd, offset: 0 };
  return [
    ["q", { ...base, heads: 3, stride: 3 * hd }],
    ["k", { ...base, heads: 1, stride: hd }],
    ["fused q|k of [q|k|v|pad]", { ...base, heads: 4, stride: 5 * hd + 3 }],
    ["k of [q|k|v|pad]", { ...base, heads: 1, stride: 5 * hd + 3, offset: 3 * hd }],
  ];
}

for (const family of await families()) {
  Deno.test(`rope train (${family}): forward and backward against the reference, Llama-3 scaling`, async () => {
    const kernels = new KernelCache(await testGpu(family));
    for (const hd of [10, 16]) {
      const cfg = llama3Config(hd), table = ropeTable(cfg, 9);
      for (const [label, rows] of layouts(hd)) {
        const x = randomNormal(hd, rows.rows * rows.stride);
        for (const inverse of [false, true]) {
          const expected = x.slice();
          referenceRopeRows(expected, table, rows, inverse);
          const got = await rotate(kernels, rows, table, x, inverse);
          assertClose(got, expected, TOL, `hd ${hd} ${label} inverse=${inverse}`);
          // The backward undoes the forward (a rotation's transpose is its inverse).
          assertClose(
            await rotate(kernels, rows, table, got, !inverse),
            x,
            TOL,
            `hd ${hd} ${label} round trip`,
          );
        }
        // The table's rotation is the inference reference's (its scaled frequencies, per head at t = r mod T).
        const inference = x.slice();
        for (let r = 0; r < rows.rows; r++) {
          for (let h = 0; h < rows.heads; h++) {
            const off = r * rows.stride + rows.offset + h * hd;
            referenceRope(inference, off, hd, r % rows.seqLen, ropeInvFreq(cfg));
          }
        }
        const trained = x.slice();
        referenceRopeRows(trained, table, rows);
        assertClose(trained, inference, { atol: 1e-6, rtol: 1e-6 }, `hd ${hd} ${label}: table vs inference`);
      }
    }
  });

  Deno.test(`rope train (${family}): the backward against central differences`, async () => {
    const kernels = new KernelCache(await testGpu(family));
    const hd = 10, table = ropeTable(llama3Config(hd), 7);
    for (const [label, rows] of layouts(hd)) {
      const x = Float64Array.from(randomNormal(3, rows.rows * rows.stride));
      const w = randomNormal(4, x.length); // dL/d(rope(x)): L = Σ w ∘ rope(x)
      const f = (v: Float64Array) => {
        const y = v.slice();
        referenceRopeRows(y, table, rows);
        return y.reduce((a, yi, i) => a + w[i] * yi, 0);
      };
      // L is linear in x: central differences are exact but for rounding (~1e-16·|L| / h ≈ 1e-13); the GPU
      // rotates in f32 (≤ ~2 ulp of |w| ≤ 4). Columns outside the part get the gradient w itself.
      checkGradient(label, await rotate(kernels, rows, table, w, true), f, x, { h: 1e-2, tol: TOL });
    }
  });
}

Deno.test("rope train: more than 65535 workgroups of pairs take a second grid row", async () => {
  const kernels = new KernelCache(await testGpu("plain"));
  const hd = 64, table = ropeTable(llama3Config(hd), 128);
  const rows: RopeRows = { rows: 4099, seqLen: 128, headDim: hd, heads: 32, stride: 32 * hd, offset: 0 };
  const x = randomNormal(9, rows.rows * rows.stride);
  const expected = x.slice();
  referenceRopeRows(expected, table, rows);
  assertClose(await rotate(kernels, rows, table, x, false), expected, TOL, "4099 rows × 32 heads");
});
