// The weight formats of the matmul kernels (kernels/README.md), selected by `override W_DTYPE`: 0 f32, 1 f16,
// 2 bf16 (two 16-bit values per u32 word, element 2i in the low half), 3 q8, 4 q4. Quantized rows
// (src/model/quant.ts) hold ceil(K / 32) blocks of 32 weights — signed bytes (q8) or nibbles offset by 8 (q4) —
// then one f16 scale per block; weight = q · scale. Decoders of stored words into f32 values, whatever the
// storage (lib/weights_buffer.wgsl or lib/weights_texture.wgsl).

//! use lib/matmul_params.wgsl

override W_DTYPE: u32 = 0u;
// Weight elements per 16-byte block.
override EPV: u32 = select(select(8u, 4u, W_DTYPE == 0u), select(32u, 16u, W_DTYPE == 3u), W_DTYPE >= 3u);

// u32 words per weight row: row_stride counts elements (f32, 16-bit) or bytes (quantized).
fn words_per_row() -> u32 {
  if (W_DTYPE >= 3u) {
    return params.row_stride / 4u;
  }
  return select(params.row_stride / 2u, params.row_stride, W_DTYPE == 0u);
}

// Elements 0..3 of a 16-byte block of f32 weights, or 0..3 of 16-bit ones (element 2i in the low half of word i).
fn lo4(q: vec4<u32>) -> vec4<f32> {
  if (W_DTYPE == 0u) {
    return bitcast<vec4<f32>>(q);
  }
  if (W_DTYPE == 1u) {
    return vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y));
  }
  return bitcast<vec4<f32>>(vec4<u32>(q.x << 16u, q.x & 0xffff0000u, q.y << 16u, q.y & 0xffff0000u));
}

// Elements 4..7 of a 16-byte block of 16-bit weights (zeros for f32).
fn hi4(q: vec4<u32>) -> vec4<f32> {
  if (W_DTYPE == 0u) {
    return vec4<f32>(0.0);
  }
  if (W_DTYPE == 1u) {
    return vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w));
  }
  return bitcast<vec4<f32>>(vec4<u32>(q.z << 16u, q.z & 0xffff0000u, q.w << 16u, q.w & 0xffff0000u));
}

// The 4 signed bytes of u (q8).
fn q8x4(u: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(u) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}

// Nibbles shift / 4 .. shift / 4 + 3 of u, less 8 (q4).
fn q4x4(u: u32, shift: u32) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(u) >> (vec4<u32>(0u, 4u, 8u, 12u) + shift)) & vec4<u32>(15u)) - 8.0;
}

// The word of a quantized row that holds the f16 scale of block b (in its low half for even b).
fn scale_word(b: u32) -> u32 {
  return ((params.K + 31u) / 32u) * select(4u, 8u, W_DTYPE == 3u) + (b >> 1u);
}
