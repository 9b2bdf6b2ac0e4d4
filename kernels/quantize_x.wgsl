// One activation row quantized for gemv_tex.wgsl's integer path (XQ, q8 or q4 weights: Q8 picks the pairing):
// norm(x) (zero past K) in blocks of 32 as lib/quantize_block.wgsl writes them. d a power of two makes v / d
// exact, so the reference (src/ops/matmul/reference.ts `quantizeXRow`, `quantizedXWords`) rounds exactly as
// here. The pairs are what gemv_tex.wgsl multiplies weight pairs by; 8 · Σ q takes q4 nibbles' offset of 8 out
// once per block.
// rmsnorm.wgsl writes the same row for a one-row step's norm into a row texture (QUANT), saving this dispatch.
//
// Bindings: 0 params (MatmulParams through storage, as gemv_tex: K, eps), 2 x_uni (x's first 16384 floats; any
// window under XTEX), 6 norm_uni (the norm weights; any window without NORM), 11 x_tex (x's row under XTEX),
// 13 xq. Grid: x = ceil(ceil(K / 32) / 64), one invocation per block.

requires readonly_and_readwrite_storage_textures;

//! use lib/matmul_params.wgsl
//! use lib/quantize_block.wgsl

override NORM: bool = false;
override XTEX: bool = false;
override Q8: bool = false;

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
  for (var i = 0u; i < 8u; i++) {
    let k = 32u * b + 4u * i;
    var e = x4(k);
    if (NORM) {
      e = e * norm_uni[k >> 2u] * a;
    }
    v[i] = e;
  }
  store_quantized_block(b, nb, v, Q8);
}
