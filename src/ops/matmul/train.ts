/**
 * The training matmuls (kernels/mm_nt.wgsl, mm_nn.wgsl, mm_tn.wgsl over lib/mm_train.wgsl), f32 sums, W
 * row-major [M, K] (out × in): the forward y[N, M] (+)= x · Wᵀ, the input gradient dx[N, K] (+)= dy · W and
 * the weight gradient dW[M, K] += dyᵀ · x. W may be F16 or BF16 in the forward and the input gradient (a frozen
 * weight, whose dW is never computed); everything else is f32. Each is bound once to its buffers; `encode`
 * allocates nothing.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import { type DType, DTYPE_BYTES, DTYPE_CODE } from "../../model/dtype.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import { bindKernel, type Dispatch, record } from "../op.ts";
import { needElements, needFloats, paramsBuffer } from "../train_op.ts";

/** Sizes of one linear layer over a batch: N activation rows, K inputs, M outputs. */
export interface LinearShape {
  N: number;
  K: number;
  M: number;
}

export type TrainMatmulKind = "nt" | "nn" | "tn";

/** c[rows, cols] (+)= Σ_l A(i, l) · B(j, l): what each kind computes in lib/mm_train.wgsl's terms. */
function layout(kind: TrainMatmulKind, s: LinearShape): { rows: number; cols: number; depth: number } {
  if (kind === "nt") return { rows: s.N, cols: s.M, depth: s.K };
  if (kind === "nn") return { rows: s.N, cols: s.K, depth: s.M };
  return { rows: s.M, cols: s.K, depth: s.N };
}

/** Floats each binding is indexed over: a, b, c. */
function extents(kind: TrainMatmulKind, s: LinearShape): [number, number, number] {
  const { N, K, M } = s;
  if (kind === "nt") return [N * K, M * K, N * M];
  if (kind === "nn") return [N * M, M * K, N * K];
  return [N * M, N * K, M * K];
}

/** Whether every stride the kind loads along is a multiple of 4 (vec4 loads: the kernels' ALIGNED). */
function aligned(kind: TrainMatmulKind, s: LinearShape): boolean {
  return s.K % 4 === 0 && (kind === "nt" || s.M % 4 === 0);
}

/**
 * One training matmul bound to a, b and c:
 * - "nt" (forward): a = x [N, K], b = W [M, K], c = y [N, M];
 * - "nn" (input gradient): a = dy [N, M], b = W [M, K], c = dx [N, K];
 * - "tn" (weight gradient): a = dy [N, M], b = x [N, K], c = dW [M, K].
 * `accumulate`: c += result (else c = result). `bType`: b's element type — F16 / BF16 (two to a word, as
 * safetensors stores them) for W in "nt" and "nn"; f32 otherwise. Buffers' sizes are a multiple of 16 bytes.
 */
export class TrainMatmul {
  private readonly dispatch: Dispatch;
  private readonly groups: [number, number];

  constructor(
    kernels: KernelCache,
    readonly kind: TrainMatmulKind,
    io: { a: GPUBuffer; b: GPUBuffer; c: GPUBuffer },
    shape: LinearShape,
    accumulate: boolean,
    bType: DType = "F32",
  ) {
    const { rows, cols, depth } = layout(kind, shape);
    const [na, nb, nc] = extents(kind, shape);
    const op = `matmul ${kind} ${shape.N}×${shape.K}×${shape.M}`;
    if (kind === "tn" && bType !== "F32") throw new Error(`${op}: b is an activation, f32 (not ${bType})`);
    needFloats(op, "a", io.a, na);
    needElements(op, "b", io.b, nb, DTYPE_BYTES[bType]);
    needFloats(op, "c", io.c, nc);
    this.groups = [Math.ceil(cols / 128), Math.ceil(rows / 128)];
    if (this.groups[0] > 65535 || this.groups[1] > 65535) throw new Error(`${op}: too large for one grid`);
    // One loop pass per 16 of depth, and llvmpipe ends a kernel's loops after 65535 iterations in all.
    if (Math.ceil(depth / 16) + 64 > 65535) throw new Error(`${op}: a reduction over more than ~1M`);
    const device = kernels.gpu.device;
    const params = paramsBuffer(device, `mm_${kind}`, [
      ["u32", rows],
      ["u32", cols],
      ["u32", depth],
      ["u32", accumulate ? 1 : 0],
    ]);
    this.dispatch = bindKernel(
      kernels,
      `mm_${kind}`,
      { ALIGNED: aligned(kind, shape) ? 1 : 0, B_DTYPE: DTYPE_CODE[bType] },
      [params, io.a, io.b, io.c],
      op,
    );
  }

  /** One dispatch: a grid of 128 × 128 tiles of c. */
  encode(pass: ComputeRecorder): void {
    record(pass, this.dispatch, this.groups[0], this.groups[1]);
  }
}

/** The buffers of a linear layer y = x · Wᵀ and its gradients. */
export interface LinearIO {
  x: GPUBuffer;
  w: GPUBuffer;
  y: GPUBuffer;
  dy: GPUBuffer;
  /** Input gradient (omit for a layer whose input needs none, e.g. right after the embedding lookup). */
  dx?: GPUBuffer;
  dw: GPUBuffer;
}

export interface LinearOptions {
  /** y += x · Wᵀ (a projection added into the residual stream). */
  accumulateY?: boolean;
  /** dx += dy · W (several projections of one input sum their gradients). */
  accumulateDx?: boolean;
}

/** A linear layer's three matmuls: `forward` writes y; `backward` writes dx (if any) and adds into dW. */
export class Linear {
  private readonly fwd: TrainMatmul;
  private readonly dxOp: TrainMatmul | null;
  private readonly dwOp: TrainMatmul;

  constructor(kernels: KernelCache, io: LinearIO, shape: LinearShape, opts: LinearOptions = {}) {
    this.fwd = new TrainMatmul(kernels, "nt", { a: io.x, b: io.w, c: io.y }, shape, !!opts.accumulateY);
    this.dxOp = io.dx
      ? new TrainMatmul(kernels, "nn", { a: io.dy, b: io.w, c: io.dx }, shape, !!opts.accumulateDx)
      : null;
    this.dwOp = new TrainMatmul(kernels, "tn", { a: io.dy, b: io.x, c: io.dw }, shape, true);
  }

  forward(pass: ComputeRecorder): void {
    this.fwd.encode(pass);
  }

  backward(pass: ComputeRecorder): void {
    this.dxOp?.encode(pass);
    this.dwOp.encode(pass);
  }
}
