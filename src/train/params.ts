/**
 * A training run's parameters on the GPU: each a named buffer with its shape (Hugging Face's names and
 * `[out, in]` layout), and — when it trains — its gradient and AdamW's two moments, f32 buffers of the same
 * shape. A frozen parameter (FlexiDepth's base) has none of those, and may keep its checkpoint's 16-bit dtype
 * (F16 or BF16, two bytes an element, as safetensors stores them; the kernels that read it widen it as they
 * load). The store reads everything back for checkpoints and writes trained values again on resume.
 */

import { readBuffer, storageBuffer } from "../gpu/buffers.ts";
import { decodeToF32, type DType, DTYPE_BYTES } from "../model/dtype.ts";

export interface Param {
  name: string;
  shape: number[];
  /** Elements (the product of the shape). */
  size: number;
  /** The element type of `value`: F32, or F16 / BF16 for a frozen parameter kept as its checkpoint has it. */
  dtype: DType;
  value: GPUBuffer;
  /** Gradient, and AdamW's first and second moments (null when frozen). */
  grad: GPUBuffer | null;
  m: GPUBuffer | null;
  v: GPUBuffer | null;
  /** AdamW's weight decay applies (matrices; not norm weights). */
  decay: boolean;
}

export interface ParamSpec {
  name: string;
  shape: number[];
  /**
   * Initial values: f32 (the shape's size), or for a 16-bit `dtype` the checkpoint's little-endian bytes (two
   * per element).
   */
  init: Float32Array | Uint8Array;
  /** The element type on the GPU (default F32). F16 and BF16 only for a frozen parameter. */
  dtype?: DType;
  trainable: boolean;
  /** Default: matrices (2-D) decay, vectors do not. */
  decay?: boolean;
}

export class ParamStore {
  private readonly params = new Map<string, Param>();

  constructor(private readonly device: GPUDevice) {}

  add(spec: ParamSpec): Param {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const dtype = spec.dtype ?? "F32";
    if (this.params.has(spec.name)) throw new Error(`parameter ${spec.name} added twice`);
    const init = initialBytes(spec, size, dtype);
    const buffer = (what: string, bytes = size * 4) =>
      storageBuffer(this.device, `${spec.name}.${what}`, bytes);
    const value = buffer("value", init.byteLength);
    this.device.queue.writeBuffer(value, 0, init);
    const p: Param = {
      name: spec.name,
      shape: spec.shape,
      size,
      dtype,
      value,
      grad: spec.trainable ? buffer("grad") : null,
      m: spec.trainable ? buffer("m") : null,
      v: spec.trainable ? buffer("v") : null,
      decay: spec.decay ?? spec.shape.length === 2,
    };
    this.params.set(spec.name, p);
    return p;
  }

  get(name: string): Param {
    const p = this.params.get(name);
    if (!p) throw new Error(`no parameter ${name}`);
    return p;
  }

  has(name: string): boolean {
    return this.params.has(name);
  }

  /** Every parameter, in the order added. */
  all(): Param[] {
    return [...this.params.values()];
  }

  /** The parameters that train. */
  trainable(): Param[] {
    return this.all().filter((p) => p.grad !== null);
  }

  /** Trainable elements in all. */
  get trainableSize(): number {
    return this.trainable().reduce((s, p) => s + p.size, 0);
  }

  /** GPU bytes the parameters' values hold (padding included). */
  get valueBytes(): number {
    return this.all().reduce((s, p) => s + p.value.size, 0);
  }

  /** One buffer of a parameter back on the host, as f32 (a 16-bit value widened). */
  async read(p: Param, which: "value" | "m" | "v" = "value"): Promise<Float32Array> {
    if (which === "value" && p.dtype !== "F32") {
      const bytes = await readBuffer(this.device, p.value, p.size * DTYPE_BYTES[p.dtype]);
      return decodeToF32(p.dtype, new Uint8Array(bytes));
    }
    const buffer = which === "value" ? p.value : p[which]!;
    return new Float32Array(await readBuffer(this.device, buffer, p.size * 4));
  }

  /** Writes values (a resumed run's, or an optimizer moment) into a parameter's f32 buffer. */
  write(p: Param, which: "value" | "m" | "v", data: Float32Array): void {
    if (data.length !== p.size) throw new Error(`parameter ${p.name}: ${data.length} values for ${p.size}`);
    if (which === "value" && p.dtype !== "F32") throw new Error(`parameter ${p.name} is ${p.dtype}, not f32`);
    const buffer = which === "value" ? p.value : p[which]!;
    this.device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer>);
  }
}

/** A spec's initial values as the bytes its buffer holds, padded to whole words (the queue writes words). */
function initialBytes(spec: ParamSpec, size: number, dtype: DType): Uint8Array<ArrayBuffer> {
  const { name, init } = spec;
  if (dtype !== "F32" && spec.trainable) {
    throw new Error(`parameter ${name}: a trained parameter is f32 (${dtype} only for a frozen one)`);
  }
  if (dtype === "F32" ? !(init instanceof Float32Array) : !(init instanceof Uint8Array)) {
    throw new Error(`parameter ${name}: ${dtype} values come as ${dtype === "F32" ? "f32" : "bytes"}`);
  }
  const bytes = size * DTYPE_BYTES[dtype], elements = init.byteLength / DTYPE_BYTES[dtype];
  if (init.byteLength !== bytes) {
    throw new Error(`parameter ${name}: ${elements} initial values for shape [${spec.shape}]`);
  }
  const out = new Uint8Array(Math.ceil(bytes / 4) * 4);
  out.set(new Uint8Array(init.buffer, init.byteOffset, bytes));
  return out;
}
