/**
 * Runs the matmul tests' cases (test/matmul_cases.ts) on the GPU and checks them against the TypeScript
 * reference: the weights as the case stores them, x, y and row scales laid out as the engine makes them, the
 * kernels the plan must take, the expected outputs, and the argmax pairs against the outputs stored.
 */

import { Matmul } from "../src/ops/matmul/matmul.ts";
import type { MatmulOptions } from "../src/ops/matmul/options.ts";
import { quantizeXRow, referenceMatmul, referenceSwiglu } from "../src/ops/matmul/reference.ts";
import { referenceRmsNorm } from "../src/ops/norm/reference.ts";
import type { GpuContext } from "../src/gpu/device.ts";
import type { KernelCache } from "../src/gpu/kernels.ts";
import { createMatrix, type GpuMatrix, rowBytesFor, uploadMatrix, writeRows } from "../src/gpu/matrix.ts";
import { bufferFrom, readBuffer, rowTexture, storageBuffer } from "../src/gpu/buffers.ts";
import { FEW_ROW_MAX } from "../src/gpu/profile.ts";
import { decodeToF32, encodeFromF32 } from "../src/model/dtype.ts";
import { quantizeValues } from "../src/model/quant.ts";
import { mulberry32, randomNormal } from "../src/util/random.ts";
import { assertClose, type Tolerance } from "./harness.ts";
import { type Case, nextSeed, textureKernel, TOL, TOL_XQ_NORM } from "./matmul_cases.ts";
import { f2key } from "./sample_gpu.ts";

/**
 * gemv_tex XQ against the unquantized reference: rounding x to its blocks' steps d (quantize_x: d = 2^(E − 6),
 * the block's largest |x| in [2^E, 2^(E+1))) moves an output by at most Σ_b d_b / 2 · Σ_(k in b) |w[m, k]|;
 * the quantized reference must lie within that of the exact one (plus 1e-5 of float error).
 */
function xqBound(x: Float32Array, w: Float32Array, refQ: Float32Array, K: number, c: Case): void {
  const exact = referenceMatmul(x, 1, K, w, c.M);
  for (let m = 0; m < c.M; m++) {
    let bound = 1e-5;
    for (let k0 = 0; k0 < K; k0 += 32) {
      const peak = Math.max(...Array.from(x.subarray(k0, Math.min(K, k0 + 32)), Math.abs));
      const d = peak > 0 ? 2 ** (Math.floor(Math.log2(peak)) - 6) : 0;
      for (let k = k0; k < Math.min(K, k0 + 32); k++) bound += d / 2 * Math.abs(w[m * K + k]);
    }
    if (Math.abs(refQ[m] - exact[m]) > bound) {
      throw new Error(`x quantization moved output ${m} by ${Math.abs(refQ[m] - exact[m])} > ${bound}`);
    }
  }
}

/** A case's output to check, and where its argmax pairs are (argmax cases). */
interface Check {
  label: string;
  y: GPUBuffer;
  expected: Float32Array;
  mm: Matmul;
  tol: Tolerance;
  argmax?: { best: GPUBuffer; first: number; n: number };
}

/** A case's random weights, stored as it asks (split, in textures, in pieces), and dequantized. */
function caseWeights(gpu: GpuContext, c: Case): { w: GpuMatrix; wDec: Float32Array } {
  const { K, M, dtype } = c;
  const device = gpu.device;
  const seed = nextSeed();
  const wVals = randomNormal(seed, M * K, 1 / Math.sqrt(K));
  if (c.dupRows) { for (let m = 1; m < M; m++) wVals.copyWithin(m * K, 0, K); }
  const raw = encodeFromF32(dtype, wVals) as Uint8Array<ArrayBuffer>;
  const quant = c.quant ?? null;
  const wDec = quant ? quantizeValues(quant, decodeToF32(dtype, raw), M, K) : decodeToF32(dtype, raw);
  const maxBinding = c.partRows
    ? c.partRows * rowBytesFor(dtype, K, quant)
    : gpu.limits.maxStorageBufferBindingSize;
  const storage = {
    quant,
    storage: c.texture ? "texture" as const : "buffer" as const,
    // 64 texels per texture row: rows of the matrix wrap across texture rows, writes start mid-row.
    maxTextureDimension: 64,
  };
  let w;
  if (c.pieces) {
    w = createMatrix(device, `w${seed + 1}`, dtype, M, K, maxBinding, storage);
    const rowBytes = raw.byteLength / M, ends = [...c.pieces.slice(1), M];
    c.pieces.forEach((r, i) => writeRows(device, w!, r, raw.slice(r * rowBytes, ends[i] * rowBytes)));
  } else w = uploadMatrix(device, `w${seed + 1}`, dtype, M, K, raw, maxBinding, storage);
  if (c.partRows && w.parts.length < 3) throw new Error(`expected ≥3 parts, got ${w.parts.length}`);
  return { w, wDec };
}

/** A case's x, y and row scales with their values, laid out as the engine makes them. */
function caseInputs(device: GPUDevice, c: Case) {
  const { N, K } = c;
  const xVals = randomNormal(nextSeed(), N * K) as Float32Array<ArrayBuffer>;
  const yOffset = c.yOffset ?? 0;
  const outCols = c.swiglu ? c.M / 2 : c.M, outOffset = c.swiglu ? yOffset / 2 : yOffset;
  const yStride = outOffset + outCols + 3;
  // 8 rows more than the step's: a kernel that computes more rows than the step has must not store them.
  const y0 = randomNormal(nextSeed(), (N + 8) * yStride) as Float32Array<ArrayBuffer>;
  const rnd = mulberry32(nextSeed());
  const scale = new Float32Array(N).map(() => rnd());
  const use = c.windowed ? "windowed" : "storage";
  const x = storageBuffer(device, "x", N * K * 4 + (c.xRoom ?? 0), use);
  const texRows = c.textureRows ?? (N === 1 ? 1 : FEW_ROW_MAX);
  // NaN past the rows (the engine's x buffers hold other rows there): a kernel must not read it.
  device.queue.writeBuffer(x, 0, new Float32Array(x.size / 4).fill(NaN));
  if (!c.xTexture || N === 1 || texRows < N) device.queue.writeBuffer(x, 0, xVals);
  const y = bufferFrom(device, "y", y0);
  const rowScale = bufferFrom(device, "row_scale", scale);
  const step = bufferFrom(device, "step", new Uint32Array([N, 0, 0, 0]));
  const normW = new Float32Array(K).map(() => 0.5 + rnd());
  const opts: MatmulOptions = {
    ...c.opts,
    swiglu: c.swiglu,
    norm: c.norm ? { weight: bufferFrom(device, "norm_w", normW, use), eps: 1e-5 } : undefined,
  };
  const xTexture = c.xTexture ? xRowTexture(device, c, xVals, normW, texRows) : undefined;
  const io = { x, y, yStride, yOffset, step, rowScale, xTexture };
  return { io, opts, xVals, y0, scale, normW, outCols, outOffset };
}

/** x's rows in a row texture of `texRows` rows, NaN past K and past the step's rows. */
function xRowTexture(
  device: GPUDevice,
  c: Case,
  xVals: Float32Array,
  normW: Float32Array,
  texRows: number,
): GPUTexture {
  const { N, K } = c;
  const xTexture = rowTexture(device, "x_tex", K, texRows);
  const texels = xTexture.width * 4, rows = new Float32Array(texels * texRows).fill(NaN);
  // With a norm, the texture's producer applied it (rmsnorm.wgsl TEXTURE): the matmul must not again.
  const xn = c.norm ? referenceRmsNorm(xVals, N, K, normW, 1e-5) : xVals;
  for (let n = 0; n < Math.min(N, texRows); n++) rows.set(xn.subarray(n * K, (n + 1) * K), n * texels);
  device.queue.writeTexture({ texture: xTexture }, rows, { bytesPerRow: texels * 4 }, [
    xTexture.width,
    texRows,
  ]);
  return xTexture;
}

/** Throws where the plan is not the one the case must take (pairs, kernels, row groups, quantize_x). */
function checkPlan(mm: Matmul, c: Case, argmax: GPUBuffer | undefined): void {
  const { N, K } = c;
  if (argmax && mm.argmaxPairs === 0) throw new Error(`argmax planned without pairs: ${mm.describe()}`);
  // One windowed row of x that fits the uniform window takes gemv_tex; anything else gemm_tex.
  if (mm.uniformX !== (!!c.windowed && !!c.texture && K <= 16384)) {
    throw new Error(`one-row kernel ${mm.uniformX ? "planned" : "not planned"}: ${mm.describe()}`);
  }
  const want = textureKernel(c);
  if (want && mm.kernelFor(N) !== want) throw new Error(`N=${N} K=${K}: not ${want}: ${mm.describe()}`);
  if (c.rowGroups !== undefined && mm.rowGroupsFor(N) !== c.rowGroups) {
    throw new Error(`N=${N} K=${K}: row groups ${mm.rowGroupsFor(N)} ≠ ${c.rowGroups}: ${mm.describe()}`);
  }
  const xq = mm.describe().startsWith("quantize_x");
  if (xq !== !!c.quantizedX) {
    throw new Error(`quantize_x ${xq ? "planned" : "not planned"}: ${mm.describe()}`);
  }
}

/** y as the reference leaves it: y0 with the case's (scaled, fused) outputs stored or added at its offset. */
function expectedY(
  c: Case,
  mm: Matmul,
  wDec: Float32Array,
  inputs: ReturnType<typeof caseInputs>,
): Float32Array {
  const { N, K, M } = c;
  const { xVals, normW, y0, scale, outCols, outOffset, io: { yStride } } = inputs;
  const xNormed = c.norm ? referenceRmsNorm(xVals, N, K, normW, 1e-5) : xVals;
  // gemv_tex XQ: x quantized to int8 blocks on the GPU (quantize_x), modelled exactly (TOL) where x reaches
  // the quantizer as the reference has it (no norm, or already normalized in the row texture).
  const xq = mm.describe().startsWith("quantize_x");
  const xRef = xq ? quantizeXRow(xNormed) : xNormed;
  let ref = referenceMatmul(xRef, N, K, wDec, M);
  if (xq) xqBound(xNormed, wDec, ref, K, c);
  if (c.swiglu) ref = referenceSwiglu(ref, N, outCols);
  const expected = y0.slice();
  const alpha = c.opts.alpha ?? 1;
  for (let n = 0; n < N; n++) {
    const s = c.opts.scaleMode === 1 ? scale[n] : c.opts.scaleMode === 2 ? 1 - scale[n] : 1;
    for (let m = 0; m < outCols; m++) {
      const v = ref[n * outCols + m] * alpha * s;
      const i = n * yStride + outOffset + m;
      expected[i] = c.opts.accumulate ? y0[i] + v : v;
    }
  }
  return expected;
}

/** Encodes one case into `pass`, its plan checked; returns what to check after the submit. */
function encodeCase(gpu: GpuContext, kernels: KernelCache, pass: GPUComputePassEncoder, c: Case): Check {
  const { N, K, M, dtype } = c;
  const { w, wDec } = caseWeights(gpu, c);
  const inputs = caseInputs(gpu.device, c);
  const best = c.argmax
    ? storageBuffer(gpu.device, "best", (Math.ceil(M / 4) + w.parts.length) * 8)
    : undefined;
  const mm = new Matmul(kernels, w, { ...inputs.io, argmax: best }, inputs.opts);
  checkPlan(mm, c, best);
  mm.encode(pass, N);
  const quant = c.quant ?? null;
  const fused = `${c.norm ? " norm" : ""}${c.swiglu ? " swiglu" : ""}`;
  const label = `${dtype}${quant ? ` ${quant}` : ""} N=${N} K=${K} M=${M}${fused} ${JSON.stringify(c.opts)}${
    c.partRows ? ` parts=${w.parts.length}` : ""
  } [${mm.describe()}]`;
  const xq = mm.describe().startsWith("quantize_x");
  return {
    label,
    y: inputs.io.y,
    expected: expectedY(c, mm, wDec, inputs),
    mm,
    tol: xq && c.norm && !c.xTexture ? TOL_XQ_NORM : TOL,
    argmax: best ? { best, first: inputs.outOffset, n: inputs.outCols } : undefined,
  };
}

/** The argmax pairs, combined as sample.wgsl does, against the outputs the kernel stored. */
async function checkArgmax(device: GPUDevice, c: Check): Promise<void> {
  const { best, first, n } = c.argmax!;
  const y = new Float32Array(await readBuffer(device, c.y, (first + n) * 4));
  let want = first;
  for (let m = first; m < first + n; m++) if (f2key(y[m]) > f2key(y[want])) want = m;
  const pairs = new Uint32Array(await readBuffer(device, best, c.mm.argmaxPairs * 8));
  let bk = 0, bi = -1;
  for (let q = 0; q < c.mm.argmaxPairs; q++) {
    if (bi < 0 || pairs[2 * q] > bk) [bk, bi] = [pairs[2 * q], pairs[2 * q + 1]];
  }
  if (bi !== want || bk !== f2key(y[want])) {
    throw new Error(`argmax ${bi} (key ${bk}) ≠ ${want} (key ${f2key(y[want])}): ${c.label}`);
  }
}

/** Runs all cases in one submit (reads overlap), then checks each against the reference. */
export async function runCases(gpu: GpuContext, kernels: KernelCache, cases: Case[]): Promise<void> {
  const device = gpu.device;
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  const checks = cases.map((c) => encodeCase(gpu, kernels, pass, c));
  pass.end();
  device.queue.submit([enc.finish()]);
  await kernels.checkErrors();
  const outs = await Promise.all(checks.map((c) => readBuffer(device, c.y, c.expected.byteLength)));
  checks.forEach((c, i) => assertClose(new Float32Array(outs[i]), c.expected, c.tol, c.label));
  for (const c of checks) if (c.argmax) await checkArgmax(device, c);
}
