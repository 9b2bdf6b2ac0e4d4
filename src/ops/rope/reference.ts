/** RoPE in plain TypeScript: rotate-half, as Hugging Face Llama, on one head vector in place at `pos`. */
export function referenceRope(
  vec: Float32Array,
  off: number,
  hd: number,
  pos: number,
  invFreq: Float32Array,
) {
  const half = hd / 2;
  for (let i = 0; i < half; i++) {
    const a = Math.fround(pos * invFreq[i]);
    const c = Math.cos(a), s = Math.sin(a);
    const x1 = vec[off + i], x2 = vec[off + i + half];
    vec[off + i] = x1 * c - x2 * s;
    vec[off + i + half] = x2 * c + x1 * s;
  }
}
