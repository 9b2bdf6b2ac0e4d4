// One activation row quantized for gemv_tex.wgsl's integer path (XQ, q4 weights): per block of 32 values of
// norm(x) (zero past K), d = 2^(E − 6) for the largest magnitude in [2^E, 2^(E + 1)) and q = round(v / d)
// (halves to even, clamped to ±127; d = 0 and q = 0 where the largest is below 2^-120). d a power of two makes
// v / d exact, so the reference (src/ops/matmul/reference.ts `quantizeXRow`) rounds exactly as here.
// Block b writes texels 4b .. 4b + 3 of `xq` (texel g: words i = 0..3 hold q[8g + i + 4] + 2^16 · q[8g + i]
// modulo 2^32: the pairs gemv_tex.wgsl multiplies q4 nibble pairs by) and
// texel 4 · ceil(K / 32) + b: (d's bits, 8 · Σ q, 0, 0), the nibbles' offset of 8 taken out once per block.
//
// Bindings: 0 params (MatmulParams through storage, as gemv_tex: K, eps), 2 x_uni (x's first 16384 floats; any
// window under XTEX), 6 norm_uni (the norm weights; any window without NORM), 11 x_tex (x's row under XTEX),
// 13 xq. Grid: x = ceil(ceil(K / 32) / 64), one invocation per block.

requires readonly_and_readwrite_storage_textures;

//! use lib/matmul_params.wgsl

override NORM: bool = false;
override XTEX: bool = false;

@group(0) @binding(0) var<storage, read> params: MatmulParams;
@group(0) @binding(2) var<uniform> x_uni: array<vec4<f32>, 4096>;
@group(0) @binding(6) var<uniform> norm_uni: array<vec4<f32>, 4096>;
@group(0) @binding(11) var x_tex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(13) var xq: texture_storage_2d<rgba32uint, write>;

// x elements k .. k + 3 (k a multiple of 4), zero past K.
fn x4(k: u32) -> vec4<f32> {
  var v = x_uni[k >> 2u];
  if (XTEX) {
    v = textureLoad(x_tex, vec2<u32>(k >> 2u, 0u));
  }
  return select(vec4<f32>(0.0), v, vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.K));
}

fn inv_rms() -> f32 {
  var ss = vec4<f32>(0.0);
  for (var k = 0u; k < params.K; k += 4u) {
    let v = x4(k);
    ss += v * v;
  }
  return inverseSqrt(((ss.x + ss.y) + (ss.z + ss.w)) / f32(params.K) + params.eps);
}

// q of 4 values at the block's inverse scale.
fn q4(v: vec4<f32>, inv: f32) -> vec4<i32> {
  return vec4<i32>(clamp(round(v * inv), vec4<f32>(-127.0), vec4<f32>(127.0)));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let nb = (params.K + 31u) / 32u;
  let b = gid.x;
  if (b >= nb) {
    return;
  }
  var a = 1.0;
  if (NORM) {
    a = inv_rms();
  }
  var v: array<vec4<f32>, 8>;
  var peak = vec4<f32>(0.0);
  for (var i = 0u; i < 8u; i++) {
    let k = 32u * b + 4u * i;
    var e = x4(k);
    if (NORM) {
      e = e * norm_uni[k >> 2u] * a;
    }
    v[i] = e;
    peak = max(peak, abs(e));
  }
  let e = bitcast<u32>(max(max(peak.x, peak.y), max(peak.z, peak.w))) >> 23u;
  let live = e >= 7u;
  let inv = select(0.0, bitcast<f32>((260u - min(e, 254u)) << 23u), live);
  let d = select(0.0, bitcast<f32>((max(e, 7u) - 6u) << 23u), live);
  var sum = vec4<i32>(0);
  for (var g = 0u; g < 4u; g++) {
    let lo = q4(v[2u * g], inv);
    let hi = q4(v[2u * g + 1u], inv);
    sum += lo + hi;
    // hi + lo · 2^16 modulo 2^32 (not a masked OR: a negative hi borrows from the high field).
    let words = bitcast<vec4<u32>>(hi) + (bitcast<vec4<u32>>(lo) << vec4<u32>(16u));
    textureStore(xq, vec2<u32>(4u * b + g, 0u), words);
  }
  let corr = 8 * ((sum.x + sum.y) + (sum.z + sum.w));
  textureStore(xq, vec2<u32>(4u * nb + b, 0u), vec4<u32>(bitcast<u32>(d), bitcast<u32>(corr), 0u, 0u));
}
