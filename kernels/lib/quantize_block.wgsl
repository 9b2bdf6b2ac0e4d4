// One block of 32 values of a row quantized for gemv_tex.wgsl's integer path (XQ, q8 and q4 weights), as
// quantize_x.wgsl describes: d = 2^(E − 6) for the block's largest magnitude in [2^E, 2^(E + 1)), q = round(v / d)
// (halves to even, clamped to ±127; d = 0 and q = 0 where the largest is below 2^-120). Block b of a row of nb
// blocks writes texels 4b .. 4b + 3 of `xq`, values 8g .. 8g + 7 in texel g as pairs v + 2^16 · u (modulo
// 2^32) in the order the weights' words pair them: for q4 (nibbles i and i + 4 of a word) word i holds
// (u, v) = (q[8g + i], q[8g + i + 4]); for q8 (bytes j and j + 2 of a word of 4) words 0 .. 3 hold
// (q[8g], q[8g + 2]), (q[8g + 1], q[8g + 3]), (q[8g + 4], q[8g + 6]), (q[8g + 5], q[8g + 7]). Texel 4 · nb + b
// holds (d's bits, 8 · Σ q, 0, 0). The including kernel declares `xq` (texture_storage_2d<rgba32uint, write>).

// q of 4 values at the block's inverse scale.
fn quantize4(v: vec4<f32>, inv: f32) -> vec4<i32> {
  return vec4<i32>(clamp(round(v * inv), vec4<f32>(-127.0), vec4<f32>(127.0)));
}

fn store_quantized_block(b: u32, nb: u32, values: array<vec4<f32>, 8>, q8: bool) {
  var v = values;
  var peak = vec4<f32>(0.0);
  for (var i = 0u; i < 8u; i++) {
    peak = max(peak, abs(v[i]));
  }
  let e = bitcast<u32>(max(max(peak.x, peak.y), max(peak.z, peak.w))) >> 23u;
  let live = e >= 7u;
  let inv = select(0.0, bitcast<f32>((260u - min(e, 254u)) << 23u), live);
  let d = select(0.0, bitcast<f32>((max(e, 7u) - 6u) << 23u), live);
  var sum = vec4<i32>(0);
  for (var g = 0u; g < 4u; g++) {
    let lo = quantize4(v[2u * g], inv);
    let hi = quantize4(v[2u * g + 1u], inv);
    sum += lo + hi;
    let top = select(lo, vec4<i32>(lo.xy, hi.xy), q8);
    let bottom = select(hi, vec4<i32>(lo.zw, hi.zw), q8);
    // bottom + top · 2^16 modulo 2^32 (not a masked OR: a negative bottom borrows from the high field).
    let words = bitcast<vec4<u32>>(bottom) + (bitcast<vec4<u32>>(top) << vec4<u32>(16u));
    textureStore(xq, vec2<u32>(4u * b + g, 0u), words);
  }
  let corr = 8 * ((sum.x + sum.y) + (sum.z + sum.w));
  textureStore(xq, vec2<u32>(4u * nb + b, 0u), vec4<u32>(bitcast<u32>(d), bitcast<u32>(corr), 0u, 0u));
}
