// Causal grouped-query attention, one invocation per (head, row): a serial online softmax over the
// row's positions 0..pos, no workgroup memory and no barriers. For CPU software GPUs (llvmpipe,
// lavapipe), where barriers are expensive and the SIMD lanes run neighbouring heads; real GPUs use
// attention.wgsl. Same bindings and parameters as attention.wgsl, with head_dim a multiple of 4 and q_stride
// a multiple of 4 (the host uses attention.wgsl otherwise).
// K and V: f32 or f16 words (lib/kv_read.wgsl, KV_F16; f16 needs HD4 even), summed in f32; one vec4 of words
// holds 4 elements (f32) or 8 (f16: half the loads).
// Grid: (ceil(n_heads / WG), n_rows).
//
// Every load is a vec4 and the head is held in registers: HD4 = head_dim / 4 is a pipeline constant, so the
// loops over the head unroll and q, the accumulator and each K/V row stay out of memory (on llvmpipe each
// storage load, and each dynamically indexed private array access, is a loop over the SIMD lanes).

//! use lib/step.wgsl
//! use lib/attention_params.wgsl
//! use lib/kv_read.wgsl

@group(0) @binding(0) var<uniform> params: AttentionParams;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> rows: array<Row>;
@group(0) @binding(3) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> k_cache: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> v_cache: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;

override WG: u32 = 8u; // heads per workgroup
override HD4: u32 = 2u; // head_dim / 4
override KV_F16: u32 = 0u;
const MAX_HD4: u32 = 64u;
const NEG_BIG: f32 = -3.0e38;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let h = gid.x;
  let r = gid.y;
  if (h >= params.n_heads || r >= step.n_rows) { return; }
  let kv4 = params.n_kv * HD4; // vec4s per cache position
  let kvh = h / (params.n_heads / params.n_kv);
  let row = rows[r];
  let base = row.slot * params.ctx * kv4 + kvh * HD4;
  let qb = (r * params.q_stride) / 4u + h * HD4;

  var qv: array<vec4<f32>, MAX_HD4>;
  var acc: array<vec4<f32>, MAX_HD4>;
  for (var d = 0u; d < HD4; d++) {
    qv[d] = q[qb + d] * params.scale;
    acc[d] = vec4<f32>(0.0);
  }
  var m = NEG_BIG;
  var l = 0.0;
  for (var t = 0u; t <= row.pos; t++) {
    let kb = base + t * kv4;
    var s = 0.0;
    if (KV_F16 == 1u) {
      for (var d = 0u; d < HD4; d += 2u) {
        let w = k_cache[(kb + d) / 2u];
        s += dot(qv[d], unpack16x4(w.xy, 1u)) + dot(qv[d + 1u], unpack16x4(w.zw, 1u));
      }
    } else {
      for (var d = 0u; d < HD4; d++) { s += dot(qv[d], kv_f32x4(k_cache[kb + d])); }
    }
    let m_new = max(m, s);
    let corr = exp(m - m_new);
    let p = exp(s - m_new);
    l = l * corr + p;
    if (KV_F16 == 1u) {
      for (var d = 0u; d < HD4; d += 2u) {
        let w = v_cache[(kb + d) / 2u];
        acc[d] = acc[d] * corr + p * unpack16x4(w.xy, 1u);
        acc[d + 1u] = acc[d + 1u] * corr + p * unpack16x4(w.zw, 1u);
      }
    } else {
      for (var d = 0u; d < HD4; d++) { acc[d] = acc[d] * corr + p * kv_f32x4(v_cache[kb + d]); }
    }
    m = m_new;
  }
  let o = (r * params.n_heads + h) * HD4;
  for (var d = 0u; d < HD4; d++) { out[o + d] = acc[d] / l; }
}
