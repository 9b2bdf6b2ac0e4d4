/**
 * Per-kernel GPU timing with timestamp queries (behind --profile). A `ProfilingPass` stands in for a
 * compute pass: every dispatch recorded through it gets its own pass with timestamps at begin and end,
 * labelled by its pipeline, so the same forward code is timed without change.
 */

import type { GpuContext } from "./device.ts";
import { GpuError } from "../errors.ts";

/** The part of a compute pass that kernels record into. */
export type ComputeRecorder = Pick<
  GPUComputePassEncoder,
  "setPipeline" | "setBindGroup" | "dispatchWorkgroups"
>;

export interface KernelTiming {
  kernel: string;
  calls: number;
  totalMs: number;
}

export class GpuProfiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolve: GPUBuffer;
  private readonly readback: GPUBuffer;
  private labels: string[] = [];
  private readonly totals = new Map<string, KernelTiming>();

  /** Label timings by bind group (e.g. the matrix a matmul reads) rather than by kernel. */
  byDispatch = false;

  constructor(private readonly gpu: GpuContext, readonly capacity = 2048) {
    if (!gpu.hasTimestamps) {
      throw new GpuError("this GPU adapter offers no timestamp queries", "run without --profile");
    }
    const device = gpu.device;
    this.querySet = device.createQuerySet({ type: "timestamp", count: capacity * 2 });
    this.resolve = device.createBuffer({
      size: capacity * 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    this.readback = device.createBuffer({
      size: capacity * 16,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  /** A pass stand-in on `encoder`; call `finish(encoder)` before submitting it. */
  pass(encoder: GPUCommandEncoder): ComputeRecorder {
    let pipeline: GPUComputePipeline | null = null;
    let label = "";
    const groups = new Map<number, GPUBindGroup>();
    return {
      setPipeline: (p: GPUComputePipeline) => void (pipeline = p),
      setBindGroup: ((index: number, group: GPUBindGroup | null) => {
        if (group) groups.set(index, group);
        if (group && index === 0) label = group.label;
      }) as GPUComputePassEncoder["setBindGroup"],
      dispatchWorkgroups: (x: number, y?: number, z?: number) => {
        const i = this.labels.length;
        if (i >= this.capacity) throw new GpuError(`profiler capacity ${this.capacity} dispatches exceeded`);
        const p = encoder.beginComputePass({
          timestampWrites: {
            querySet: this.querySet,
            beginningOfPassWriteIndex: 2 * i,
            endOfPassWriteIndex: 2 * i + 1,
          },
        });
        p.setPipeline(pipeline!);
        for (const [idx, g] of groups) p.setBindGroup(idx, g);
        p.dispatchWorkgroups(x, y, z);
        p.end();
        this.labels.push(this.byDispatch ? label || pipeline!.label : pipeline!.label || "unnamed");
      },
    };
  }

  /** Resolves the timestamps recorded so far on `encoder` (call once, before submit). */
  finish(encoder: GPUCommandEncoder): void {
    const n = this.labels.length;
    if (!n) return;
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolve, 0);
    encoder.copyBufferToBuffer(this.resolve, 0, this.readback, 0, 2 * n * 8);
  }

  /** Waits for the submitted work and adds its timings to the totals. */
  async collect(): Promise<void> {
    const n = this.labels.length;
    if (!n) return;
    await this.readback.mapAsync(GPUMapMode.READ, 0, 2 * n * 8);
    const t = new BigUint64Array(this.readback.getMappedRange(0, 2 * n * 8).slice(0));
    this.readback.unmap();
    for (let i = 0; i < n; i++) {
      const ms = Number(t[2 * i + 1] - t[2 * i]) / 1e6;
      const k = this.totals.get(this.labels[i]) ?? { kernel: this.labels[i], calls: 0, totalMs: 0 };
      k.calls++;
      k.totalMs += ms;
      this.totals.set(this.labels[i], k);
    }
    this.labels = [];
  }

  /** Totals per kernel, slowest first. */
  report(): KernelTiming[] {
    return [...this.totals.values()].sort((a, b) => b.totalMs - a.totalMs);
  }

  /** A printable table. */
  table(steps = 1): string {
    const rows = this.report();
    const total = rows.reduce((s, r) => s + r.totalMs, 0);
    const lines = rows.map((r) =>
      `${r.kernel.padEnd(40)} ${String(r.calls).padStart(6)} calls ${
        (r.totalMs / steps).toFixed(3).padStart(9)
      } ms/step ` +
      `${((100 * r.totalMs) / total).toFixed(1).padStart(5)}%`
    );
    return [...lines, `${"total".padEnd(40)} ${(total / steps).toFixed(3).padStart(22)} ms/step`].join("\n");
  }
}
