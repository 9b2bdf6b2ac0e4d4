// Matrix weights in a read-only rgba32uint storage texture, binding 3 (CPU software GPUs; the kernel says
// `requires readonly_and_readwrite_storage_textures;`): one part of a matrix, 2^tex_shift texels per texture
// row, rows padded to 16-byte blocks and to a multiple of 4. Each group of 4 rows interleaves its rows' blocks,
// so block b of row m is texel ((m / 4) · bpr + b) · 4 + m % 4 with bpr blocks per row: an invocation
// computing those 4 rows walks its texels in order (llvmpipe streams that ~20% faster than 4 rows side by
// side). A row is addressed by its index in the part.

//! use lib/weight_decode.wgsl

@group(0) @binding(3) var w: texture_storage_2d<rgba32uint, read>;

// Texel i of the part.
fn wblock(i: u32) -> vec4<u32> {
  let mask = (1u << params.tex_shift) - 1u;
  return textureLoad(w, vec2<u32>(i & mask, i >> params.tex_shift));
}

// Word i of a 16-byte block (a select: llvmpipe is slow at dynamic component indices).
fn pick(q: vec4<u32>, i: u32) -> u32 {
  return select(select(q.x, q.y, (i & 3u) == 1u), select(q.z, q.w, (i & 3u) == 3u), (i & 3u) >= 2u);
}

// 16-byte blocks per row.
fn blocks_per_row() -> u32 {
  return words_per_row() / 4u;
}

// Word i of part row m (lib/weight_element.wgsl).
fn row_word(m: u32, i: u32) -> u32 {
  return pick(wblock(((m >> 2u) * blocks_per_row() + (i >> 2u)) * 4u + (m & 3u)), i);
}

// Weights 8h .. 8h + 3 of a block of quantized weights, unscaled.
fn qlo(q: vec4<u32>, h: u32) -> vec4<f32> {
  if (W_DTYPE == 3u) {
    return q8x4(pick(q, 2u * h));
  }
  return q4x4(pick(q, h), 0u);
}

// Weights 8h + 4 .. 8h + 7 of a block of quantized weights, unscaled.
fn qhi(q: vec4<u32>, h: u32) -> vec4<f32> {
  if (W_DTYPE == 3u) {
    return q8x4(pick(q, 2u * h + 1u));
  }
  return q4x4(pick(q, h), 16u);
}
