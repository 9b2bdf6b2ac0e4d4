// RMSNorm: y[j] = x[src] * rsqrt(mean(x[src]^2) + eps) * weight, computed in f32.
// GATHER = false: every row of the step (src = j, j < n_rows).
// GATHER = true:  only the rows that need logits (src = out_rows[j], j < n_out).
// Grid: (rows). Workgroup: WG threads (a power of two), tree reduction in workgroup memory. WG = 8 on CPU
// software GPUs (one SIMD pass on lavapipe, few barriers): the demo model decoded 13.2 ms/token with 64,
// 9.0–9.4 with 8, 10.6–11.9 with 1.

//! use lib/step.wgsl
//! use lib/quantize_block.wgsl

// TEXTURE (flags bit 1): row j of y also goes to row j of x_tex, for the rows it has, as texels of 4 floats
// (zero past hidden), for the matmuls that read their x there (gemv_tex.wgsl and gemv_tex_rows.wgsl XTEX).
// Any rgba32float texture is bound otherwise.
// QUANT (flags bit 2): row 0 of y also goes to xq quantized in int8 blocks (lib/quantize_block.wgsl), for
// quantized matmuls whose integer path reads it (gemv_tex.wgsl XQ): quantize_x.wgsl's work, without its
// dispatch; paired for q8 weights with bit 3 (Q8), else for q4. Any rgba32uint texture is bound otherwise.
// flags: bit 0 GATHER, bit 1 TEXTURE, bit 2 QUANT, bit 3 Q8 — runtime flags rather than overrides (fewer
// pipelines).
struct Params { hidden: u32, eps: f32, flags: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> out_rows: array<u32>;
@group(0) @binding(6) var x_tex: texture_storage_2d<rgba32float, write>;
@group(0) @binding(7) var xq: texture_storage_2d<rgba32uint, write>;

override WG: u32 = 64u;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let j = wid.x;
  var n = step.n_rows;
  let gather = (params.flags & 1u) != 0u;
  if (gather) { n = step.n_out; }
  if (j >= n) { return; }
  var src = j;
  if (gather) { src = out_rows[j]; }
  let h = params.hidden;
  let xb = src * h;
  var s = 0.0;
  for (var i = lid.x; i < h; i += WG) {
    let v = x[xb + i];
    s += v * v;
  }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lid.x < stride) { partial[lid.x] += partial[lid.x + stride]; }
    workgroupBarrier();
  }
  let scale = inverseSqrt(partial[0] / f32(h) + params.eps);
  for (var i = lid.x; i < h; i += WG) {
    y[j * h + i] = x[xb + i] * scale * weight[i];
  }
  // A loop rather than an `if`: llvmpipe runs both sides of a branch, but skips a loop no lane enters.
  let texels = select(0u, (h + 3u) / 4u, j < textureDimensions(x_tex).y && (params.flags & 2u) != 0u);
  for (var t = lid.x; t < texels; t += WG) {
    var v = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) {
      let i = min(4u * t + c, h - 1u);
      v[c] = select(0.0, x[xb + i] * scale * weight[i], 4u * t + c < h);
    }
    textureStore(x_tex, vec2<u32>(t, j), v);
  }
  let nb = (h + 31u) / 32u;
  let blocks = select(0u, nb, j == 0u && (params.flags & 4u) != 0u);
  for (var b = lid.x; b < blocks; b += WG) {
    var v: array<vec4<f32>, 8>;
    for (var t = 0u; t < 8u; t++) {
      for (var c = 0u; c < 4u; c++) {
        let k = 32u * b + 4u * t + c;
        let i = min(k, h - 1u);
        v[t][c] = select(0.0, x[xb + i] * scale * weight[i], k < h);
      }
    }
    store_quantized_block(b, nb, v, (params.flags & 8u) != 0u);
  }
}
