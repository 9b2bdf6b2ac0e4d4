/**
 * y[n, yOffset + m] (+)= alpha · s(n) · Σ_k x[n, k] · W[m, k] for a weight matrix on the GPU (any dtype, or
 * quantized q8 / q4; split into parts or not), with s(n) = 1, rowScale[n] or 1 − rowScale[n]. Fusions save a kernel each: `norm` reads x
 * through RMSNorm (the norm kernel before a projection disappears), `swiglu` takes a matrix whose rows interleave
 * gate and up and writes silu(gate) · up (the MLP's activation kernel disappears), `rope` rotates q and k and
 * writes k and v into the KV cache (the RoPE kernel disappears).
 *
 * Kernels (`kernels/`), all binding 0 params, 1 step, 2 x, 3 w (one part), 4 y, 5 row_scale, 6 norm_w, and
 * 7-10 the RoPE epilogue's rows, cos_sin, k_cache, v_cache:
 * - `matmul`      GEMV (few activation rows), 4 activation rows per pass over W. TPR threads per output row:
 *                 "coop" = 32 threads striding over K with coalesced vec4<u32> loads, f32 partial sums reduced
 *                 in workgroup memory (8 rows per workgroup of 256); "row" = one row per invocation.
 * - `gemm`        tiled GEMM: 64 × 64 output tiles, 4 × 4 per thread, K staged 32 at a time through workgroup
 *                 memory.
 * - `gemm_tex`    "direct": weights in a texture, NT activation rows × 4 weight rows (× `directGroups` for
 *                 short rows) per invocation straight from memory, no barrier (NT = 4 up to 4 rows, 8
 *                 beyond), any row count.
 * - `gemv_tex`    the same weights, one activation row whose x (and norm weights) it reads through 64 KiB
 *                 uniform windows, or x from a row texture its producer wrote (`xTexture`): every decode
 *                 step. Straight-line code (llvmpipe runs both sides of a branch), parameters through a
 *                 storage binding (lavapipe recompiles on new uniform values). For the LM head it can
 *                 also leave argmax pairs for the sampler (`argmax`).
 *
 * Which kernel follows from where the weights live (see `WeightStorage`):
 * - Storage buffers (real GPUs): GEMV "coop" up to 8 activation rows, tiled GEMM beyond.
 * - Textures (CPU software GPUs: llvmpipe / lavapipe, or any fallback adapter): gemv_tex for one activation row
 *   in a windowed buffer (the engine's decode steps), the direct kernel for every other row count. llvmpipe
 *   turns each storage load whose address it cannot prove uniform into a loop over the SIMD lanes, and
 *   barriers are costly: texel fetches are ~3× faster there, and each weight block fetched serves NT
 *   activation rows (x loads are uniform across the lanes, so cheap). Buffer weights on a software GPU take the
 *   "row" GEMV (no barrier) and the tiled GEMM.
 */

import { isSoftwareGpu } from "../gpu/device.ts";
import type { Kernel, KernelCache } from "../gpu/kernels.ts";
import { type GpuMatrix, isWindowed, UNIFORM_WINDOW, unusedRowTexture, weightCode } from "../gpu/tensor.ts";
import type { ComputeRecorder } from "../gpu/profiler.ts";

/** 0: no row scale; 1: × rowScale[n]; 2: × (1 − rowScale[n]). */
export type ScaleMode = 0 | 1 | 2;
/**
 * GEMV kernels for buffer weights (few activation rows): "coop" 32 threads per output row, coalesced loads,
 * workgroup reduction (`matmul`); "row" one output row per invocation. Texture
 * weights always take the direct kernel (`gemm_tex`).
 */
export type GemvVariant = "auto" | "coop" | "row";

export interface MatmulOptions {
  /** y += result (fused residual add) instead of y = result. */
  accumulate?: boolean;
  /** Per-activation-row scale read from `io.rowScale` (FlexiDepth gates). */
  scaleMode?: ScaleMode;
  /** Read x through RMSNorm with these weights (f32 [K]): x · rsqrt(mean(x²) + eps) · weight. */
  norm?: { weight: GPUBuffer; eps: number };
  /**
   * The matrix's rows interleave gate and up (see `interleaveRows`): output column (yOffset + m) / 2 gets
   * silu(gate) · up, times alpha and the row scale. Needs an even row count, yOffset and part boundaries.
   */
  swiglu?: boolean;
  /**
   * RoPE and the KV write in the epilogue (every kernel; see gemm_tex.wgsl): the matrix is
   * [q; k; v] with each head's q and k rows stored as rotation pairs (`ropePairRows`); q goes to y, k and v
   * into the KV cache, and rows after v (a routed layer's W_enc) to y unrotated.
   */
  rope?: RopeEpilogue;
  /** Constant factor on the result (default 1). */
  alpha?: number;
  /** Force a GEMV variant for buffer weights (tests, benchmarks); "auto" picks by adapter. */
  gemv?: GemvVariant;
  /** Largest activation row count served by the GEMV kernel; more go to the GEMM (default 4, 8 on GPUs). */
  gemvMaxRows?: number;
  /** 4-row groups per invocation of the direct kernel (tests; default by shape, see `directGroups`). */
  directGroups?: number;
}

export interface RopeEpilogue {
  /** {slot, pos} per activation row. */
  rows: GPUBuffer;
  /** [ctx, headDim / 2] (cos, sin). */
  cosSin: GPUBuffer;
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  headDim: number;
  /** Matrix rows before k (0 when the matrix is [k; v]). */
  qRows: number;
  /** Rows of k (0 when the matrix is q alone). */
  kvDim: number;
  ctx: number;
}

/**
 * Reorders the rows of a q or k projection ([heads × headDim, cols], raw bytes) so that each head's rotation
 * pairs are adjacent: new row 2i = old row i, new row 2i + 1 = old row i + headDim / 2 — the layout the ROPE
 * epilogue rotates in place. Attention scores are unchanged when q and k share the order.
 */
export function ropePairRows(raw: Uint8Array, rows: number, headDim: number): Uint8Array<ArrayBuffer> {
  const rowBytes = raw.byteLength / rows, half = headDim / 2;
  const out = new Uint8Array(raw.byteLength);
  for (let h = 0; h < rows / headDim; h++) {
    for (let i = 0; i < half; i++) {
      const src = h * headDim + i, dst = h * headDim + 2 * i;
      out.set(raw.subarray(src * rowBytes, (src + 1) * rowBytes), dst * rowBytes);
      out.set(raw.subarray((src + half) * rowBytes, (src + half + 1) * rowBytes), (dst + 1) * rowBytes);
    }
  }
  return out;
}

export interface MatmulIO {
  /** f32 [N, K] row-major; its size must be a multiple of 16 bytes (as `storageBuffer` makes it). */
  x: GPUBuffer;
  /** f32 [N, yStride]. */
  y: GPUBuffer;
  /** Elements between rows of y. */
  yStride: number;
  /** Column of y that matrix row 0 writes (default 0): several matrices can fill one output row. */
  yOffset?: number;
  /** The shared step uniform; kernels bound activation rows by its n_rows. */
  step: GPUBuffer;
  /** f32 [N]: required when scaleMode ≠ 0. */
  rowScale?: GPUBuffer;
  /**
   * x's row 0 again, as a row texture (rowTexture) that its producer writes too (rmsnorm.wgsl TEXTURE), already
   * normalized when the matmul has `norm` (the producer applied it): one-row steps on texture weights read x
   * there (gemv_tex.wgsl XTEX, without NORM). Ignored by the other kernels.
   */
  xTexture?: GPUTexture;
  /**
   * One-row texture steps (the LM head): each invocation also writes the (key, index) pair of its largest
   * output here (gemv_tex.wgsl ARGMAX), `argmaxPairs` pairs in all, for the sampler (`headParts`).
   */
  argmax?: GPUBuffer;
}

/**
 * Threads per output row of the coop GEMV: enough threads in all to keep a large GPU's memory busy (a
 * matrix of few rows gets more per row), and more for long rows. Measured on an H100 (BF16, GB/s of
 * weights): 28672 × 4096 2137 at 32 (1662 at 8); 4096 × 14336 1900 at 128 (1466 at 32). Workgroups of
 * max(64, 2·TPR) invocations: SWIGLU needs a gate row and its up row in one workgroup.
 */
function coopThreadsPerRow(rows: number, K: number): number {
  const want = Math.max(65536 / Math.max(1, rows), K / 128);
  return Math.min(128, Math.max(32, 2 ** Math.ceil(Math.log2(want))));
}
/** Workgroup size of the one-row-per-invocation GEMV and of the direct kernel. */
const ROW_WG = 8;
/** Activation rows per invocation of the direct kernel: up to 4 rows, and beyond. */
const DIRECT_NT_GEMV = 4;
const DIRECT_NT_GEMM = 8;
/** Activation rows per GEMV workgroup row (coop, row). */
const GEMV_NB = 4;

/**
 * 4-row groups per invocation of the texture kernels (gemm_tex, gemv_tex): as many as leave ≥ 16 workgroups
 * to share the matrix, up to 16. An invocation's set-up (its fused-norm 1 / RMS above all, a pass over x) is
 * then spread over many rows. Measured on lavapipe, BF16 GEMV, 1 → 16 groups: 128256 × 128 4.3 → 7.2 GB/s,
 * 4096 × 4096 5.1 → 9.3 GB/s.
 */
export function directGroups(rows: number): number {
  const fit = Math.floor(rows / (4 * ROW_WG * 16));
  return 2 ** Math.floor(Math.log2(Math.max(1, Math.min(16, fit))));
}

interface Plan {
  kernel: Kernel;
  /** Output rows per workgroup. */
  rowsPerGroup: number;
  /** Activation rows per workgroup row of the grid. */
  nPerGroup: number;
  dispatch: Dispatch[];
}

interface Dispatch {
  bind: GPUBindGroup;
  x: number;
  z: number;
}

const dummies = new WeakMap<GPUDevice, GPUBuffer[]>();

/**
 * Stand-ins for unused bindings: [0] read-only ones, [1] and [2] the two writable cache bindings, [3] a
 * uniform window (gemv_tex's norm weights when it has no RMSNorm: never read then).
 */
function dummyBuffers(device: GPUDevice): GPUBuffer[] {
  let b = dummies.get(device);
  if (!b) {
    b = [0, 1, 2, 4].map((i) =>
      device.createBuffer({ label: `matmul.unused${i}`, size: 16, usage: GPUBufferUsage.STORAGE })
    );
    b.push(
      device.createBuffer({ label: "matmul.unused3", size: UNIFORM_WINDOW, usage: GPUBufferUsage.UNIFORM }),
    );
    dummies.set(device, b);
  }
  return b;
}

/** x workgroups beyond 65535 wrap into z; kernels rebuild the block index from both. */
function grid(blocks: number): { x: number; z: number } {
  const x = Math.max(1, Math.min(blocks, 65535));
  return { x, z: Math.max(1, Math.ceil(blocks / x)) };
}

/** One matmul bound to its buffers: uniforms and bind groups are made once, `encode` allocates nothing. */
export class Matmul {
  /** "direct" for texture weights. */
  readonly gemvVariant: Exclude<GemvVariant, "auto"> | "direct";
  readonly gemmVariant: "tiled" | "direct";
  readonly gemvMaxRows: number;
  /** Texture weights: one-row steps take gemv_tex, reading x and the norm weights through uniform windows. */
  readonly uniformX: boolean;
  private readonly one: Plan | null;
  private readonly gemv: Plan;
  private readonly gemm: Plan;
  private readonly params: GPUBuffer[] = [];
  /** Pairs written to `io.argmax` by a one-row step (0 without it). */
  readonly argmaxPairs: number = 0;

  constructor(kernels: KernelCache, readonly w: GpuMatrix, io: MatmulIO, opts: MatmulOptions = {}) {
    const gpu = kernels.gpu;
    const device = gpu.device;
    const scaleMode = opts.scaleMode ?? 0;
    if (scaleMode !== 0 && !io.rowScale) {
      throw new Error(`matmul ${w.name}: scaleMode ${scaleMode} needs rowScale`);
    }
    if (io.xTexture && io.xTexture.width * 4 < w.cols) {
      throw new Error(`matmul ${w.name}: x texture holds ${io.xTexture.width * 4} < ${w.cols} values`);
    }
    if (io.argmax && (opts.swiglu || opts.rope || opts.accumulate)) {
      throw new Error(`matmul ${w.name}: argmax needs the plain store (no swiglu, rope or accumulate)`);
    }
    if (io.x.size % 16 !== 0) {
      throw new Error(`matmul ${w.name}: x buffer size must be a multiple of 16 bytes`);
    }
    const yOffset = io.yOffset ?? 0;
    const outCols = opts.swiglu ? w.rows / 2 : w.rows;
    if (io.yStride < (opts.swiglu ? yOffset / 2 : yOffset) + outCols) {
      throw new Error(`matmul ${w.name}: yStride ${io.yStride} < output offset + ${outCols} columns`);
    }
    if (opts.swiglu && [w.rows, yOffset, ...w.parts.map((p) => p.firstRow)].some((v) => v % 2 !== 0)) {
      throw new Error(`matmul ${w.name}: swiglu needs even rows, yOffset and part boundaries`);
    }
    const software = isSoftwareGpu(gpu);
    const texture = w.storage === "texture";
    const gv = opts.gemv ?? "auto";
    // Texture weights have one kernel: the direct one.
    this.gemvVariant = texture ? "direct" : gv === "auto" ? (software ? "row" : "coop") : gv;
    this.gemmVariant = texture ? "direct" : "tiled";
    this.gemvMaxRows = opts.gemvMaxRows ?? (texture ? DIRECT_NT_GEMV : 8);

    // Texture weights read one row of x (and the norm weights) through uniform views where it fits.
    const uniformX = this.uniformX = texture && isWindowed(io.x) &&
      (!opts.norm || isWindowed(opts.norm.weight)) && w.cols * 4 <= UNIFORM_WINDOW;
    // Behaviour toggles travel in params.flags, not as override constants: fewer distinct pipelines (and
    // lavapipe recompiles when a step switches between pipelines of one kernel). gemv_tex's NORM is the
    // exception (kernels/README.md).
    const flags = (opts.accumulate ? 1 : 0) | (scaleMode << 1) | (w.cols % 4 === 0 ? 8 : 0) |
      (opts.norm ? 16 : 0) | (opts.swiglu ? 32 : 0) | (opts.rope ? 64 : 0);
    const rope = opts.rope;
    if (rope) {
      const fours = [rope.headDim, rope.qRows, rope.kvDim, ...w.parts.map((p) => p.firstRow)];
      if (yOffset !== 0 || fours.some((v) => v % 4 !== 0)) {
        throw new Error(`matmul ${w.name}: rope needs yOffset 0 and multiples of 4`);
      }
    }
    const dtype = weightCode(w);
    const groups = opts.directGroups ?? directGroups(w.rows);
    const direct = (nt: number): Plan => ({
      kernel: kernels.get("gemm_tex", { W_DTYPE: dtype, WG: ROW_WG, NT: nt }),
      rowsPerGroup: ROW_WG * 4 * groups,
      nPerGroup: nt,
      dispatch: [],
    });
    this.one = uniformX
      ? {
        kernel: kernels.get("gemv_tex", {
          W_DTYPE: dtype,
          WG: ROW_WG,
          NORM: opts.norm && !io.xTexture ? 1 : 0,
          XTEX: io.xTexture ? 1 : 0,
          ARGMAX: io.argmax ? 1 : 0,
        }),
        rowsPerGroup: ROW_WG * 4 * groups,
        nPerGroup: 1,
        dispatch: [],
      }
      : null;

    if (this.gemvVariant === "direct") {
      this.gemv = direct(DIRECT_NT_GEMV);
    } else {
      const tpr = this.gemvVariant === "row" ? 1 : coopThreadsPerRow(w.rows, w.cols);
      const wg = this.gemvVariant === "row" ? ROW_WG : Math.max(64, 2 * tpr);
      this.gemv = {
        kernel: kernels.get("matmul", { W_DTYPE: dtype, TPR: tpr, WG: wg }),
        rowsPerGroup: wg / tpr,
        nPerGroup: GEMV_NB,
        dispatch: [],
      };
    }
    this.gemm = this.gemmVariant === "direct" ? direct(DIRECT_NT_GEMM) : {
      kernel: kernels.get("gemm", { W_DTYPE: dtype }),
      rowsPerGroup: 64,
      nPerGroup: 64,
      dispatch: [],
    };

    const [unused, unusedK, unusedV, unusedBest, unusedWindow] = dummyBuffers(device);
    // ARGMAX: one pair per invocation that holds rows, parts one after another (rows in increasing order).
    const pairsOf = (rows: number) => Math.ceil(Math.ceil(rows / 4) / groups);
    if (io.argmax && this.one) {
      this.argmaxPairs = w.parts.reduce((n, p) => n + pairsOf(p.rows), 0);
      if (io.argmax.size < this.argmaxPairs * 8) {
        throw new Error(`matmul ${w.name}: argmax buffer holds fewer than ${this.argmaxPairs} pairs`);
      }
    }
    let bestBase = 0;
    const rowScale = io.rowScale ?? unused;
    if (opts.norm && opts.norm.weight.size < w.cols * 4) {
      throw new Error(`matmul ${w.name}: norm weights hold fewer than ${w.cols} values`);
    }
    for (const part of w.parts) {
      const data = new ArrayBuffer(64);
      const u = new Uint32Array(data);
      u[0] = w.cols;
      u[1] = part.rows;
      u[2] = w.rowStride;
      u[3] = io.yStride;
      u[4] = yOffset + part.firstRow;
      new Float32Array(data)[5] = opts.alpha ?? 1;
      u[6] = flags;
      new Float32Array(data)[7] = opts.norm?.eps ?? 0;
      u[8] = part.texShift;
      u[9] = rope?.headDim ?? 0;
      u[10] = rope?.qRows ?? 0;
      u[11] = rope?.kvDim ?? 0;
      u[12] = rope?.ctx ?? 0;
      u[13] = groups;
      u[14] = bestBase;
      bestBase += pairsOf(part.rows);
      const params = device.createBuffer({
        label: `${w.name}.params[${part.firstRow}]`,
        size: 64,
        // Storage too: gemv_tex reads its parameters through a storage binding (gemv_tex.wgsl says why).
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      });
      device.queue.writeBuffer(params, 0, data);
      this.params.push(params);
      const weights = part.texture ? part.texture.createView() : part.buffer!;
      const buffers: (GPUBuffer | GPUBufferBinding | GPUTextureView)[] = [
        params,
        io.step,
        io.x,
        weights,
        io.y,
        rowScale,
        opts.norm?.weight ?? rowScale,
        rope?.rows ?? unused,
        rope?.cosSin ?? unused,
        rope?.kCache ?? unusedK,
        rope?.vCache ?? unusedV,
      ];
      const bind = (plan: Plan, resources: typeof buffers) =>
        plan.dispatch.push({
          bind: plan.kernel.bind(resources, `${plan.kernel.name} ${w.name}`),
          ...grid(Math.ceil(part.rows / plan.rowsPerGroup)),
        });
      bind(this.gemv, buffers);
      bind(this.gemm, buffers);
      if (this.one) {
        // gemv_tex: x and the norm weights (a stand-in without NORM) as uniform windows in bindings 2 and 6,
        // x's row texture (a stand-in without XTEX) in binding 11.
        const window = (buffer: GPUBuffer) => ({ buffer, size: UNIFORM_WINDOW });
        const oneBuffers = buffers.slice();
        oneBuffers[2] = window(io.x);
        oneBuffers[6] = window(opts.norm?.weight ?? unusedWindow);
        oneBuffers.push(io.xTexture?.createView() ?? unusedRowTexture(device));
        oneBuffers.push(io.argmax ?? unusedBest);
        bind(this.one, oneBuffers);
      }
    }
  }

  /** Records the matmul for `nRows` activation rows (≤ the step uniform's n_rows): one dispatch per part. */
  encode(pass: ComputeRecorder, nRows: number): void {
    if (nRows <= 0) return;
    const plan = nRows === 1 && this.one ? this.one : nRows <= this.gemvMaxRows ? this.gemv : this.gemm;
    pass.setPipeline(plan.kernel.pipeline);
    const gy = Math.ceil(nRows / plan.nPerGroup);
    for (const d of plan.dispatch) {
      pass.setBindGroup(0, d.bind);
      pass.dispatchWorkgroups(d.x, gy, d.z);
    }
  }

  /** The kernels that run, for logs: GEMV up to gemvMaxRows activation rows, GEMM beyond. */
  describe(): string {
    return `${this.one ? `${this.one.kernel.name} 1 row, ` : ""}` +
      `${this.gemv.kernel.name}/${this.gemvVariant} ≤${this.gemvMaxRows} rows, ` +
      `${this.gemm.kernel.name}/${this.gemmVariant}`;
  }

  /** Kernel names (tests, benchmarks). */
  get kernelNames(): { gemv: string; gemm: string } {
    return { gemv: this.gemv.kernel.name, gemm: this.gemm.kernel.name };
  }

  /** Frees the uniforms (bind groups and weights belong to others or to the GC). */
  destroy(): void {
    for (const p of this.params) p.destroy();
  }

  /** Plain-TypeScript reference of the NORM fusion's input: x · rsqrt(mean(x²) + eps) · weight per row. */
  static referenceRmsNorm(
    x: Float32Array,
    N: number,
    K: number,
    weight: Float32Array,
    eps: number,
  ): Float32Array {
    const out = new Float32Array(N * K);
    for (let n = 0; n < N; n++) {
      let ss = 0;
      for (let k = 0; k < K; k++) ss += x[n * K + k] ** 2;
      const inv = 1 / Math.sqrt(ss / K + eps);
      for (let k = 0; k < K; k++) out[n * K + k] = x[n * K + k] * inv * weight[k];
    }
    return out;
  }

  /** Plain-TypeScript reference of the SWIGLU fusion: [N, 2I] with interleaved (gate, up) → [N, I]. */
  static referenceSwiglu(gu: Float32Array, N: number, I: number): Float32Array {
    const out = new Float32Array(N * I);
    for (let n = 0; n < N; n++) {
      for (let i = 0; i < I; i++) {
        const g = gu[n * 2 * I + 2 * i], u = gu[n * 2 * I + 2 * i + 1];
        out[n * I + i] = g / (1 + Math.exp(-g)) * u;
      }
    }
    return out;
  }

  /** Plain-TypeScript reference: x [N, K] · wᵀ with w [M, K] (decoded f32 values) → [N, M], f64 sums. */
  static referenceMatmul(x: Float32Array, N: number, K: number, w: Float32Array, M: number): Float32Array {
    const out = new Float32Array(N * M);
    for (let n = 0; n < N; n++) {
      const xo = n * K;
      for (let m = 0; m < M; m++) {
        const wo = m * K;
        let s = 0;
        for (let k = 0; k < K; k++) s += x[xo + k] * w[wo + k];
        out[n * M + m] = s;
      }
    }
    return out;
  }
}
