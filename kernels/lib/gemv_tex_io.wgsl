// What the texture GEMVs (gemv_tex.wgsl: one activation row; gemv_tex_rows.wgsl: a few) read besides the
// weights (lib/weights_texture.wgsl): their parameters through a storage binding, x and the RMSNorm weights
// through 64 KiB uniform windows (x's first 16384 floats: all the rows it reads), and the f16 scales of a
// 4-row group's quantized blocks.
//
// The parameters come through a storage binding (0) and are copied once into a private variable: lavapipe
// (Mesa 22.3) inlines uniform-buffer values used in loop bounds and branch conditions into the shader and
// recompiles it whenever they change — every dispatch, as each matmul has its own K (measured: 10-15 ms a
// dispatch). Values from storage are never inlined. The kernel copies params_in into params first thing.

//! use lib/matmul_params.wgsl
//! use lib/weights_texture.wgsl

@group(0) @binding(0) var<storage, read> params_in: MatmulParams;
var<private> params: MatmulParams;
@group(0) @binding(2) var<uniform> x_uni: array<vec4<f32>, 4096>;
@group(0) @binding(6) var<uniform> norm_uni: array<vec4<f32>, 4096>;

// f16 scales of quantization block b of the 4 rows of the group at texel t0: the rows' scale words sit in
// consecutive texels.
fn qscale4(t0: u32, b: u32) -> vec4<f32> {
  let i = scale_word(b);
  let t = t0 + 4u * (i >> 2u);
  let u = vec4<u32>(pick(wblock(t), i), pick(wblock(t + 1u), i), pick(wblock(t + 2u), i), pick(wblock(t + 3u), i));
  return unpack4(select(u & vec4<u32>(0xffffu), u >> vec4<u32>(16u), (b & 1u) == 1u));
}

fn unpack4(h: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(h.x).x, unpack2x16float(h.y).x, unpack2x16float(h.z).x, unpack2x16float(h.w).x);
}

// Lanes of x elements k .. k + 3 that lie inside a row of K.
fn inside4(k: u32) -> vec4<bool> {
  return vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.K);
}
