/**
 * One matmul bound to its buffers (options.ts says what it computes, plan.ts which kernel runs): parameter
 * blocks and bind groups are made once per part of the matrix, `encode` allocates nothing.
 */

import type { KernelCache } from "../../gpu/kernels.ts";
import type { GpuMatrix } from "../../gpu/matrix.ts";
import type { ComputeRecorder } from "../../gpu/profiler.ts";
import type { StepOp } from "../op.ts";
import type { GemvVariant, MatmulIO, MatmulOptions } from "./options.ts";
import {
  fewRowResources,
  oneRowResources,
  partParams,
  partResources,
  type RowWindow,
  windowResources,
} from "./bindings.ts";
import { grid, type Plan, planMatmul } from "./plan.ts";
import { quantizedXTexels, wantsQuantizedX, XQuantizer } from "./quantize_x.ts";

export class Matmul implements StepOp {
  /** "direct" for texture weights. */
  readonly gemvVariant: GemvVariant | "direct";
  readonly gemmVariant: "tiled" | "direct";
  readonly gemvMaxRows: number;
  /** Texture weights: one-row steps take gemv_tex, reading x and the norm weights through uniform windows. */
  readonly uniformX: boolean;
  /** Pairs written to `io.argmax` by a one-row step (0 without it). */
  readonly argmaxPairs: number = 0;
  private readonly one: Plan | null;
  /** gemv_tex_rows's row groups by step rows (2..8; empty where rows of x do not fit the windows). */
  private readonly few: Plan[][];
  private readonly gemv: Plan;
  private readonly gemm: Plan;
  private readonly params: GPUBuffer[] = [];
  /** One-row steps of quantized texture weights under `quantizedX`: quantize_x before gemv_tex (unless io.xq). */
  private readonly xq: XQuantizer | null = null;

  constructor(kernels: KernelCache, readonly w: GpuMatrix, io: MatmulIO, opts: MatmulOptions = {}) {
    checkMatmul(w, io, opts);
    const plans = planMatmul(kernels, w, io, opts);
    this.gemvVariant = plans.gemvVariant;
    this.gemmVariant = plans.gemmVariant;
    this.gemvMaxRows = plans.gemvMaxRows;
    this.one = plans.one;
    this.few = plans.few;
    this.gemv = plans.gemv;
    this.gemm = plans.gemm;
    this.uniformX = this.one !== null;
    // ARGMAX: one pair per invocation that holds rows, parts one after another (rows in increasing order).
    const pairsOf = (rows: number) => Math.ceil(Math.ceil(rows / 4) / plans.groups);
    if (io.argmax && this.one) {
      this.argmaxPairs = w.parts.reduce((n, p) => n + pairsOf(p.rows), 0);
      if (io.argmax.size < this.argmaxPairs * 8) {
        throw new Error(`matmul ${w.name}: argmax buffer holds fewer than ${this.argmaxPairs} pairs`);
      }
    }
    const device = kernels.gpu.device;
    let bestBase = 0;
    let xq: XQuantizer | null = null;
    for (const part of w.parts) {
      const layout = { groups: plans.groups, bestBase };
      bestBase += pairsOf(part.rows);
      // Parameters and bindings (of a gemv_tex_rows row group's rows, where `rows` is given).
      const resourcesFor = (rows?: RowWindow) => {
        const params = partParams(device, w, part, io, opts, { ...layout, rows });
        this.params.push(params);
        return partResources(device, params, part, io, opts);
      };
      const resources = resourcesFor();
      const bind = (plan: Plan, r: typeof resources) =>
        plan.dispatch.push({
          bind: plan.kernel.bind(r, `${plan.kernel.name} ${w.name}`),
          ...grid(Math.ceil(part.rows / plan.rowsPerGroup)),
        });
      bind(this.gemv, resources);
      bind(this.gemm, resources);
      if (!this.one) continue;
      const params = this.params.at(-1)!; // the part's own, pushed by resourcesFor()
      const quantizes = wantsQuantizedX(w, opts);
      if (!xq && quantizes && !io.xq) xq = new XQuantizer(kernels, w, io, opts, params);
      const windowed = windowResources(device, resources, opts);
      bind(
        this.one,
        oneRowResources(windowed, io, device, quantizes ? io.xq?.texture ?? xq?.texture : undefined),
      );
      for (const plan of new Set(this.few.flat())) {
        const rows = plan.rows!;
        const plain = rows.row0 === 0 && rows.xOffset === 0;
        const x = plain ? windowed : windowResources(device, resourcesFor(rows), opts, rows.xOffset);
        bind(plan, fewRowResources(x, io, device));
      }
    }
    this.xq = xq;
  }

  /**
   * Records the matmul for `nRows` activation rows (≤ the step uniform's n_rows): one dispatch per part (and
   * per row group of a few-row step).
   */
  encode(pass: ComputeRecorder, nRows: number): void {
    if (nRows <= 0) return;
    const plans = this.plansFor(nRows);
    if (plans[0] === this.one && this.xq) this.xq.encode(pass);
    for (const plan of plans) {
      pass.setPipeline(plan.kernel.pipeline);
      // A row group's invocations take all its rows (a workgroup row each beyond it would redo them).
      const gy = plans.length > 1 ? 1 : Math.ceil(nRows / plan.nPerGroup);
      for (const d of plan.dispatch) {
        pass.setBindGroup(0, d.bind);
        pass.dispatchWorkgroups(d.x, gy, d.z);
      }
    }
  }

  /**
   * The kernels that run, for logs: gemv_tex for one row and gemv_tex_rows for 2..n rows where x is windowed,
   * else the GEMV up to gemvMaxRows activation rows and the GEMM beyond.
   */
  describe(): string {
    const counts = this.few.flatMap((groups, n) => groups.length ? [n] : []);
    const split = counts.filter((n) => this.few[n].length > 1).map((n) => `${n}: ${this.rowGroupsFor(n)}`);
    const few = counts.length
      ? `${this.few[counts[0]][0].kernel.name} ${counts[0]}-${counts.at(-1)} rows${
        split.length ? ` (row groups ${split.join(", ")})` : ""
      }, `
      : "";
    const one = this.one ? `${this.xq ? "quantize_x + " : ""}${this.one.kernel.name} 1 row, ` : "";
    return `${one}${few}` +
      `${this.gemv.kernel.name}/${this.gemvVariant} ≤${this.gemvMaxRows} rows, ` +
      `${this.gemm.kernel.name}/${this.gemmVariant}`;
  }

  /** The kernel that a step of `nRows` rows runs (tests, benchmarks). */
  kernelFor(nRows: number): string {
    return this.plansFor(nRows)[0].kernel.name;
  }

  /** gemv_tex_rows's rows per invocation in each row group of a step of `nRows` rows ("4+2"; "" if none). */
  rowGroupsFor(nRows: number): string {
    return (this.few[nRows] ?? []).map((p) => p.nPerGroup).join("+");
  }

  private plansFor(nRows: number): Plan[] {
    if (nRows === 1 && this.one) return [this.one];
    const few = this.few[nRows] ?? [];
    return few.length ? few : [nRows <= this.gemvMaxRows ? this.gemv : this.gemm];
  }

  /** Kernel names (tests, benchmarks). */
  get kernelNames(): { gemv: string; gemm: string } {
    return { gemv: this.gemv.kernel.name, gemm: this.gemm.kernel.name };
  }

  /** Frees the uniforms (bind groups and weights belong to others or to the GC). */
  destroy(): void {
    for (const p of this.params) p.destroy();
    this.xq?.destroy();
  }
}

/** Refuses a matmul its kernels cannot compute as asked (a programming error, not a user's). */
function checkMatmul(w: GpuMatrix, io: MatmulIO, opts: MatmulOptions): void {
  const fail = (why: string) => {
    throw new Error(`matmul ${w.name}: ${why}`);
  };
  const scaleMode = opts.scaleMode ?? 0, yOffset = io.yOffset ?? 0;
  if (scaleMode !== 0 && !io.rowScale) fail(`scaleMode ${scaleMode} needs rowScale`);
  if (io.xq && (!io.xTexture || io.xq.texture.width !== quantizedXTexels(w.cols))) {
    fail(`quantized x needs its x texture and ${quantizedXTexels(w.cols)} texels (${w.cols} values)`);
  }
  if (io.xq && wantsQuantizedX(w, opts) && io.xq.format !== w.quant) {
    fail(`quantized x paired for ${io.xq.format} weights, not ${w.quant}`);
  }
  if (io.xTexture && io.xTexture.width * 4 < w.cols) {
    fail(`x texture holds ${io.xTexture.width * 4} < ${w.cols} values`);
  }
  if (io.argmax && (opts.swiglu || opts.rope || opts.accumulate)) {
    fail("argmax needs the plain store (no swiglu, rope or accumulate)");
  }
  if (io.x.size % 16 !== 0) fail("x buffer size must be a multiple of 16 bytes");
  const outCols = opts.swiglu ? w.rows / 2 : w.rows;
  if (io.yStride < (opts.swiglu ? yOffset / 2 : yOffset) + outCols) {
    fail(`yStride ${io.yStride} < output offset + ${outCols} columns`);
  }
  if (opts.swiglu && [w.rows, yOffset, ...w.parts.map((p) => p.firstRow)].some((v) => v % 2 !== 0)) {
    fail("swiglu needs even rows, yOffset and part boundaries");
  }
  const rope = opts.rope;
  if (rope) {
    const fours = [rope.headDim, rope.qRows, rope.kvDim, ...w.parts.map((p) => p.firstRow)];
    if (yOffset !== 0 || fours.some((v) => v % 4 !== 0)) fail("rope needs yOffset 0 and multiples of 4");
  }
  if (opts.norm && opts.norm.weight.size < w.cols * 4) fail(`norm weights hold fewer than ${w.cols} values`);
}
