// Per head of each row of a projection output: the bias added (BIAS: Qwen2's q/k/v biases), the head
// RMS-normalized with its layer's weights (NORM: Qwen3's q_norm / k_norm, one [head_dim] vector shared by
// the layer's heads, weight * x / rms), RoPE (rotate-half, as Hugging Face), then q written back in place
// and k and v (v with its bias) written into this layer's KV cache at (slot, pos) of each row. A matmul's
// ROPE epilogue cannot normalize a head (its dims are spread over invocations), so such models run this.
// q, k and v are columns of one projection output `qkv` (row stride `stride`; q at q_off, k at k_off, v at
// v_off); q and k are biased and normalized in place there, v is only read.
// DO_Q / DO_KV select the parts: a routed layer writes K/V for every row but rotates q only for the rows
// it keeps (a gathered block with its own rows and count).
// cos/sin come from a host-computed table [ctx, head_dim/2] (exact for any position and scaling).
// Grid: (n_rows, ceil(items / WG)), a row's items being its q heads (DO_Q), then its k heads and its v
// heads (DO_KV): one invocation per (row, head) loops over head_dim, with no barriers. Every optional
// pass is a loop whose condition holds the flag, so a pass not asked for costs nothing on llvmpipe (which
// runs both sides of a branch, but ends a loop once no lane is left).

// The cache holds f32 words, or f16 pairs under KV16 (lib/kv_write.wgsl): then k and v are written two
// neighbouring elements at a time, each rounded once (head_dim a multiple of 4).

//! use lib/step.wgsl

// flags: bit 0 DO_Q, bit 1 DO_KV, bit 2 NORM, bit 3 BIAS, bit 4 KV16 — runtime flags rather than overrides
// (fewer distinct pipelines).
struct Params {
  n_heads: u32, n_kv: u32, head_dim: u32, ctx: u32, stride: u32, q_off: u32, k_off: u32, v_off: u32,
  flags: u32, eps: f32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> rows: array<Row>;
@group(0) @binding(3) var<storage, read> cos_sin: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(5) var<storage, read_write> k_cache: array<u32>;
@group(0) @binding(6) var<storage, read_write> v_cache: array<u32>;
// f32: q_norm and k_norm [head_dim]; the biases of q [n_heads × head_dim], k and v [n_kv × head_dim]. Read
// only under their flag (any small buffer stands in otherwise).
@group(0) @binding(7) var<storage, read> q_norm: array<f32>;
@group(0) @binding(8) var<storage, read> k_norm: array<f32>;
@group(0) @binding(9) var<storage, read> q_bias: array<f32>;
@group(0) @binding(10) var<storage, read> k_bias: array<f32>;
@group(0) @binding(11) var<storage, read> v_bias: array<f32>;

override WG: u32 = 32u;

const KIND_Q: u32 = 0u;
const KIND_K: u32 = 1u;
const KIND_V: u32 = 2u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wid.x;
  let item = wid.y * WG + lid.x;
  if (r >= step.n_rows) { return; }
  let norm = (params.flags & 4u) != 0u;
  let bias = (params.flags & 8u) != 0u;
  let f16 = (params.flags & 16u) != 0u;
  let nq = select(0u, params.n_heads, (params.flags & 1u) != 0u);
  let nkv = select(0u, params.n_kv, (params.flags & 2u) != 0u);
  if (item >= nq + 2u * nkv) { return; }
  let kind = select(select(KIND_V, KIND_K, item < nq + nkv), KIND_Q, item < nq);
  let head = item - select(select(nq + nkv, nq, kind == KIND_K), 0u, kind == KIND_Q);
  let hd = params.head_dim;
  let half = hd / 2u;
  let row = rows[r];
  let off = head * hd; // the head's first column within its part (and its bias)
  let part = select(select(params.v_off, params.k_off, kind == KIND_K), params.q_off, kind == KIND_Q);
  let src = r * params.stride + part + off;
  let cache = (row.slot * params.ctx + row.pos) * params.n_kv * hd + off;

  // v: copied into the cache, then its bias added there (f32); or with its bias, a pair at a time (f16).
  for (var i = 0u; !f16 && kind == KIND_V && i < hd; i++) { v_cache[cache + i] = bitcast<u32>(qkv[src + i]); }
  for (var i = 0u; !f16 && bias && kind == KIND_V && i < hd; i++) {
    v_cache[cache + i] = bitcast<u32>(bitcast<f32>(v_cache[cache + i]) + v_bias[off + i]);
  }
  for (var i = 0u; f16 && kind == KIND_V && i < hd; i += 2u) {
    var e = vec2<f32>(qkv[src + i], qkv[src + i + 1u]);
    for (var b = 0u; bias && b < 1u; b++) { e += vec2<f32>(v_bias[off + i], v_bias[off + i + 1u]); }
    v_cache[(cache + i) / 2u] = pack2x16float(e);
  }
  // q and k: the bias, then the head's RMSNorm with its weights, in place.
  for (var i = 0u; bias && kind == KIND_Q && i < hd; i++) { qkv[src + i] += q_bias[off + i]; }
  for (var i = 0u; bias && kind == KIND_K && i < hd; i++) { qkv[src + i] += k_bias[off + i]; }
  var ss = 0.0;
  for (var i = 0u; norm && kind != KIND_V && i < hd; i++) {
    let x = qkv[src + i];
    ss += x * x;
  }
  let inv_rms = inverseSqrt(ss / f32(hd) + params.eps);
  for (var i = 0u; norm && kind == KIND_Q && i < hd; i++) { qkv[src + i] *= inv_rms * q_norm[i]; }
  for (var i = 0u; norm && kind == KIND_K && i < hd; i++) { qkv[src + i] *= inv_rms * k_norm[i]; }
  // RoPE: q rotated in place, k rotated into the cache.
  let table = row.pos * half;
  for (var i = 0u; kind == KIND_Q && i < half; i++) {
    let cs = cos_sin[table + i];
    let x1 = qkv[src + i];
    let x2 = qkv[src + i + half];
    qkv[src + i] = x1 * cs.x - x2 * cs.y;
    qkv[src + i + half] = x2 * cs.x + x1 * cs.y;
  }
  for (var i = 0u; !f16 && kind == KIND_K && i < half; i++) {
    let cs = cos_sin[table + i];
    let x1 = qkv[src + i];
    let x2 = qkv[src + i + half];
    k_cache[cache + i] = bitcast<u32>(x1 * cs.x - x2 * cs.y);
    k_cache[cache + i + half] = bitcast<u32>(x2 * cs.x + x1 * cs.y);
  }
  // f16: dimensions i and i + 1 of each half together, one word each.
  for (var i = 0u; f16 && kind == KIND_K && i < half; i += 2u) {
    let cs = vec4<f32>(cos_sin[table + i], cos_sin[table + i + 1u]);
    let x1 = vec2<f32>(qkv[src + i], qkv[src + i + 1u]);
    let x2 = vec2<f32>(qkv[src + i + half], qkv[src + i + half + 1u]);
    let c = cs.xz;
    let sn = cs.yw;
    k_cache[(cache + i) / 2u] = pack2x16float(x1 * c - x2 * sn);
    k_cache[(cache + i + half) / 2u] = pack2x16float(x2 * c + x1 * sn);
  }
}
