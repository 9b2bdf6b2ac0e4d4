/**
 * What a matmul binds per part: its 80-byte parameter block (the `MatmulParams` of the kernels) and the
 * resources in binding order, with stand-ins where a fusion is off.
 */

import type { GpuMatrix, WeightPart } from "../../gpu/matrix.ts";
import { UNIFORM_WINDOW, unusedQuantizedRow, unusedRowTexture } from "../../gpu/buffers.ts";
import type { Resource } from "../op.ts";
import type { MatmulIO, MatmulOptions } from "./options.ts";

/** Bytes of a matmul's parameter block. */
const PARAMS_BYTES = 80;

/**
 * Behaviour toggles travel in params.flags, not as override constants: fewer distinct pipelines (lavapipe
 * recompiles when a step switches between pipelines of one kernel). gemv_tex's NORM is the exception.
 */
export function matmulFlags(w: GpuMatrix, opts: MatmulOptions): number {
  return (opts.accumulate ? 1 : 0) | ((opts.scaleMode ?? 0) << 1) | (w.cols % 4 === 0 ? 8 : 0) |
    (opts.norm ? 16 : 0) | (opts.swiglu ? 32 : 0) | (opts.rope ? 64 : 0) | (opts.rope?.kvF16 ? 128 : 0);
}

/**
 * A gemv_tex_rows row group's rows: the first (row0), x's window from `xOffset` bytes (a multiple of 256) and
 * row0's x from element xBase of it.
 */
export interface RowWindow {
  row0: number;
  xOffset: number;
  xBase: number;
}

/**
 * Part `part`'s parameters: sizes, output columns, flags, the RoPE epilogue's, groups, its first pair and (a
 * row group's) first row and where its x starts.
 */
export function partParams(
  device: GPUDevice,
  w: GpuMatrix,
  part: WeightPart,
  io: MatmulIO,
  opts: MatmulOptions,
  layout: { groups: number; bestBase: number; rows?: RowWindow },
): GPUBuffer {
  const data = new ArrayBuffer(PARAMS_BYTES);
  const u = new Uint32Array(data), f = new Float32Array(data);
  const rope = opts.rope;
  u.set([w.cols, part.rows, w.rowStride, io.yStride, (io.yOffset ?? 0) + part.firstRow]);
  f[5] = opts.alpha ?? 1;
  u[6] = matmulFlags(w, opts);
  f[7] = opts.norm?.eps ?? 0;
  u.set([part.texShift, rope?.headDim ?? 0, rope?.qRows ?? 0, rope?.kvDim ?? 0, rope?.ctx ?? 0], 8);
  u[13] = layout.groups;
  u[14] = layout.bestBase;
  u.set([layout.rows?.row0 ?? 0, layout.rows?.xBase ?? 0], 15);
  const params = device.createBuffer({
    label: `${w.name}.params[${part.firstRow}]`,
    size: PARAMS_BYTES,
    // Storage too: gemv_tex reads its parameters through a storage binding (gemv_tex.wgsl says why).
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(params, 0, data);
  return params;
}

const standIns = new WeakMap<GPUDevice, StandIns>();

/** Buffers for bindings a dispatch does not use (never read or written then). */
interface StandIns {
  read: GPUBuffer;
  kCache: GPUBuffer;
  vCache: GPUBuffer;
  best: GPUBuffer;
  /** A uniform window: gemv_tex's norm weights without NORM. */
  window: GPUBuffer;
}

function standInsFor(device: GPUDevice): StandIns {
  let s = standIns.get(device);
  if (!s) {
    const storage = (i: number) =>
      device.createBuffer({ label: `matmul.unused${i}`, size: 16, usage: GPUBufferUsage.STORAGE });
    s = {
      read: storage(0),
      kCache: storage(1),
      vCache: storage(2),
      best: storage(4),
      window: device.createBuffer({
        label: "matmul.unused3",
        size: UNIFORM_WINDOW,
        usage: GPUBufferUsage.UNIFORM,
      }),
    };
    standIns.set(device, s);
  }
  return s;
}

/** Bindings 0-10, shared by every kernel. */
export function partResources(
  device: GPUDevice,
  params: GPUBuffer,
  part: WeightPart,
  io: MatmulIO,
  opts: MatmulOptions,
): Resource[] {
  const unused = standInsFor(device);
  const rope = opts.rope;
  const rowScale = io.rowScale ?? unused.read;
  return [
    params,
    io.step,
    io.x,
    part.texture ? part.texture.createView() : part.buffer!,
    io.y,
    rowScale,
    opts.norm?.weight ?? rowScale,
    rope?.rows ?? unused.read,
    rope?.cosSin ?? unused.read,
    rope?.kCache ?? unused.kCache,
    rope?.vCache ?? unused.vCache,
  ];
}

/**
 * The texture GEMVs' bindings 0-10 (gemv_tex, gemv_tex_rows): x and the norm weights (a stand-in without
 * NORM) as uniform windows in bindings 2 and 6, x's from `xOffset` bytes (a multiple of 256: RowWindow).
 */
export function windowResources(
  device: GPUDevice,
  shared: Resource[],
  opts: MatmulOptions,
  xOffset = 0,
): Resource[] {
  const window = (buffer: GPUBuffer, offset = 0) => ({ buffer, offset, size: UNIFORM_WINDOW });
  const resources = shared.slice();
  resources[2] = window(resources[2] as GPUBuffer, xOffset);
  resources[6] = window(opts.norm?.weight ?? standInsFor(device).window);
  return resources;
}

/** gemv_tex_rows's bindings: windowResources, then x's row texture (a stand-in without XTEX) in 11. */
export function fewRowResources(windowed: Resource[], io: MatmulIO, device: GPUDevice): Resource[] {
  return [...windowed, io.xTexture?.createView() ?? unusedRowTexture(device)];
}

/**
 * gemv_tex's bindings: fewRowResources, then the argmax pairs (a stand-in without ARGMAX) in 12 and x
 * quantized (`xq`, a stand-in without XQ) in 13.
 */
export function oneRowResources(
  windowed: Resource[],
  io: MatmulIO,
  device: GPUDevice,
  xq?: GPUTexture,
): Resource[] {
  return [
    ...fewRowResources(windowed, io, device),
    io.argmax ?? standInsFor(device).best,
    xq?.createView() ?? unusedQuantizedRow(device),
  ];
}
