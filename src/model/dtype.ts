/** Element types of checkpoint tensors and their conversions (host side). */

export type DType = "F32" | "F16" | "BF16";

export const DTYPE_BYTES: Record<DType, number> = { F32: 4, F16: 2, BF16: 2 };

/** Code passed to kernels through the `W_DTYPE` override constant. */
export const DTYPE_CODE: Record<DType, number> = { F32: 0, F16: 1, BF16: 2 };

export function isDType(s: string): s is DType {
  return s === "F32" || s === "F16" || s === "BF16";
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits → f32 value. */
export function bf16ToF32(bits: number): number {
  u32[0] = bits << 16;
  return f32[0];
}

/** f32 → bf16 bits, round to nearest even (as PyTorch does). */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return 0x7fc0; // NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f16 bits → f32 value. */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** f32 → f16 bits, round to nearest even. */
export function f32ToF16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (r & 1))) r++;
    return sign | r;
  }
  let r = mant >> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

/** Round an f32 value to what the dtype can hold (identity for F32). */
export function roundTo(dtype: DType, x: number): number {
  if (dtype === "BF16") return bf16ToF32(f32ToBf16(x));
  if (dtype === "F16") return f16ToF32(f32ToF16(x));
  return Math.fround(x);
}

/** Decode raw little-endian tensor bytes into f32 values. */
export function decodeToF32(dtype: DType, bytes: Uint8Array): Float32Array<ArrayBuffer> {
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === "F32") {
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  } else if (dtype === "BF16") {
    for (let i = 0; i < n; i++) out[i] = bf16ToF32(view.getUint16(i * 2, true));
  } else {
    for (let i = 0; i < n; i++) out[i] = f16ToF32(view.getUint16(i * 2, true));
  }
  return out;
}

/** Encode f32 values as raw little-endian tensor bytes of the dtype. */
export function encodeFromF32(dtype: DType, values: ArrayLike<number>): Uint8Array<ArrayBuffer> {
  const n = values.length;
  const out = new Uint8Array(n * DTYPE_BYTES[dtype]);
  const view = new DataView(out.buffer);
  if (dtype === "F32") {
    for (let i = 0; i < n; i++) view.setFloat32(i * 4, values[i], true);
  } else if (dtype === "BF16") {
    for (let i = 0; i < n; i++) view.setUint16(i * 2, f32ToBf16(values[i]), true);
  } else {
    for (let i = 0; i < n; i++) view.setUint16(i * 2, f32ToF16(values[i]), true);
  }
  return out;
}
