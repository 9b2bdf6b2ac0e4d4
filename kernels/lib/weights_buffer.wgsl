// Matrix weights in a storage buffer, binding 3 (hardware GPUs): one part of a matrix, rows of
// words_per_row() u32 words, 16-byte aligned. A row is addressed by its first word.

//! use lib/weight_decode.wgsl

@group(0) @binding(3) var<storage, read> w: array<vec4<u32>>;

// Word i of the part.
fn word(i: u32) -> u32 {
  return w[i >> 2u][i & 3u];
}

// Word i of the row whose first word is `row` (lib/weight_element.wgsl).
fn row_word(row: u32, i: u32) -> u32 {
  return word(row + i);
}
