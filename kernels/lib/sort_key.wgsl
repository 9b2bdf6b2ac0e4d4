// The order-preserving key of an f32 (sample.wgsl, and gemv_tex.wgsl's ARGMAX pairs for it): the bit pattern
// as a u32 that sorts like the value, -0 as +0, so every comparison of logits is an exact integer one.

fn f2key(v: f32) -> u32 {
  var b = bitcast<u32>(v);
  if (b == 0x80000000u) {
    b = 0u;
  }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// The f32 of a key (-0 comes back as +0).
fn key2f(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}
