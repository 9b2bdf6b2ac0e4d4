// 16-bit floats packed two to a u32 word, element 2i in the low half of word i (safetensors' little-endian
// bytes as they are), decoded to f32 with core WGSL alone, so on every adapter (no shader-f16): BF16 by shifting
// each half into the high half of an f32, F16 by unpack2x16float. `dtype` is src/model/dtype.ts's DTYPE_CODE
// (1 f16, 2 bf16; kernels pass an override constant, so the branch folds away).

// The 4 elements held in words w.x, w.y.
fn unpack16x4(w: vec2<u32>, dtype: u32) -> vec4<f32> {
  if (dtype == 1u) {
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
  }
  return bitcast<vec4<f32>>(vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u));
}

// Element k, from `word`, the word that holds it (word k / 2).
fn unpack16(word: u32, k: u32, dtype: u32) -> f32 {
  let h = select(word & 0xffffu, word >> 16u, (k & 1u) == 1u);
  if (dtype == 1u) {
    return unpack2x16float(h).x;
  }
  return bitcast<f32>(h << 16u);
}
