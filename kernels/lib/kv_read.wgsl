// Reading the KV cache (kernels/README.md): per layer [slots, ctx, kv_dim] elements in u32 words, one f32 per
// word (its bits) or two f16 per word (element 2i in the low half, as lib/kv_write.wgsl stores them), widened
// to f32 with core WGSL (no shader-f16). The kernel declares `override KV_F16: u32` (1: f16), so the other
// path folds away.

//! use lib/packed16.wgsl

// The word that holds element i.
fn kv_word(i: u32) -> u32 {
  return select(i, i >> 1u, KV_F16 == 1u);
}

// Element i, from `word`, the word that holds it.
fn kv_value(word: u32, i: u32) -> f32 {
  if (KV_F16 == 1u) {
    return unpack16(word, i, 1u);
  }
  return bitcast<f32>(word);
}

// Elements 4i .. 4i + 3 of an f32 cache, from their vec4 of words.
fn kv_f32x4(w: vec4<u32>) -> vec4<f32> {
  return bitcast<vec4<f32>>(w);
}
