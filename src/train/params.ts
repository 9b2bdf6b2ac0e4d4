/**
 * A training run's parameters on the GPU: each a named f32 buffer with its shape (Hugging Face's names and
 * `[out, in]` layout), and — when it trains — its gradient and AdamW's two moments, buffers of the same shape.
 * A frozen parameter (FlexiDepth's base) has none of those. The store reads everything back for checkpoints
 * and writes it again on resume.
 */

import { readBuffer, storageBuffer } from "../gpu/buffers.ts";

export interface Param {
  name: string;
  shape: number[];
  /** Elements (the product of the shape). */
  size: number;
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
  /** Initial values (f32, the shape's size). */
  init: Float32Array;
  trainable: boolean;
  /** Default: matrices (2-D) decay, vectors do not. */
  decay?: boolean;
}

export class ParamStore {
  private readonly params = new Map<string, Param>();

  constructor(private readonly device: GPUDevice) {}

  add(spec: ParamSpec): Param {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.init.length !== size) {
      throw new Error(`parameter ${spec.name}: ${spec.init.length} initial values for shape [${spec.shape}]`);
    }
    if (this.params.has(spec.name)) throw new Error(`parameter ${spec.name} added twice`);
    const buffer = (what: string) => storageBuffer(this.device, `${spec.name}.${what}`, size * 4);
    const value = buffer("value");
    this.device.queue.writeBuffer(value, 0, spec.init as Float32Array<ArrayBuffer>);
    const p: Param = {
      name: spec.name,
      shape: spec.shape,
      size,
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

  /** One buffer of a parameter back on the host. */
  async read(p: Param, which: "value" | "m" | "v" = "value"): Promise<Float32Array> {
    const buffer = which === "value" ? p.value : p[which]!;
    return new Float32Array(await readBuffer(this.device, buffer, p.size * 4));
  }

  /** Writes values (a resumed run's, or an optimizer moment) into a parameter's buffer. */
  write(p: Param, which: "value" | "m" | "v", data: Float32Array): void {
    if (data.length !== p.size) throw new Error(`parameter ${p.name}: ${data.length} values for ${p.size}`);
    const buffer = which === "value" ? p.value : p[which]!;
    this.device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer>);
  }
}
