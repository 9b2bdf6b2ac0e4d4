// Single weights by row and column (K tails, quantization scales), whatever the storage: through the
// `row_word(row, i)` (word i of a row) of lib/weights_buffer.wgsl or lib/weights_texture.wgsl, which the
// kernel uses beside this file.

//! use lib/weight_decode.wgsl

// The scale of quantization block b of a row.
fn qscale(row: u32, b: u32) -> f32 {
  let u = row_word(row, scale_word(b));
  return unpack2x16float(select(u & 0xffffu, u >> 16u, (b & 1u) == 1u)).x;
}

// Weight k of a row.
fn welem(row: u32, k: u32) -> f32 {
  if (W_DTYPE >= 3u) {
    let d = qscale(row, k >> 5u);
    if (W_DTYPE == 3u) {
      return f32(bitcast<i32>(row_word(row, k >> 2u) << (24u - 8u * (k & 3u))) >> 24u) * d;
    }
    return (f32((row_word(row, k >> 3u) >> (4u * (k & 7u))) & 15u) - 8.0) * d;
  }
  if (W_DTYPE == 0u) {
    return bitcast<f32>(row_word(row, k));
  }
  let u = row_word(row, k >> 1u);
  let h = select(u & 0xffffu, u >> 16u, (k & 1u) == 1u);
  if (W_DTYPE == 1u) {
    return unpack2x16float(h).x;
  }
  return bitcast<f32>(h << 16u);
}
