// Causal grouped-query attention for training, backward part 1 (FlashAttention-2's, deterministic: no
// atomics): per row i and query head, D_i = dout_i · out_i into delta (overwritten; part 2 reads it), and
//   dq_i = scale · Σ_{j ≤ i} P_ij (dout_i · v_j − D_i) k_j   (overwritten),
// with P_ij = exp(scale · q_i · k_j − lse_i) recomputed from the forward's log-sum-exp. One invocation per
// (two positions, head, sequence) looping over the keys. Layout and scheme: lib/attention_train.wgsl.
// Grid: (ceil(seq_len / (2 WG)), n_heads, sequences).

//! use lib/attention_train.wgsl

@group(0) @binding(0) var<uniform> params: TrainAttentionParams;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> lse: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> delta: array<f32>;

override WG: u32 = 8u;
override HD4: u32 = 2u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let n = params.seq_len;
  let t0 = wid.x * 2u * WG;
  let last = min(t0 + 2u * WG, n) - 1u;
  let tv = min(vec2<u32>(t0 + li, t0 + WG + li), vec2<u32>(n - 1u));
  let h = wid.y;
  let seq = wid.z * n;
  let kvh = h / (params.n_heads / params.n_kv);
  let rows = (vec2<u32>(seq) + tv) * params.n_heads + h;
  let qa = rows.x * HD4;
  let qb = rows.y * HD4;

  var q0: array<vec4<f32>, MAX_HD4>;
  var q1: array<vec4<f32>, MAX_HD4>;
  var do0: array<vec4<f32>, MAX_HD4>;
  var do1: array<vec4<f32>, MAX_HD4>;
  var acc0: array<vec4<f32>, MAX_HD4>;
  var acc1: array<vec4<f32>, MAX_HD4>;
  var dd = vec2<f32>(0.0);
  for (var d = 0u; d < HD4; d++) {
    q0[d] = q[qa + d] * params.scale;
    q1[d] = q[qb + d] * params.scale;
    do0[d] = dout[qa + d];
    do1[d] = dout[qb + d];
    dd += vec2<f32>(dot(do0[d], out[qa + d]), dot(do1[d], out[qb + d]));
    acc0[d] = vec4<f32>(0.0);
    acc1[d] = vec4<f32>(0.0);
  }
  let lse_v = vec2<f32>(lse[rows.x], lse[rows.y]);
  var kj: array<vec4<f32>, MAX_HD4>; // k_j, loaded once
  for (var j = 0u; j <= last; j++) {
    let kb = ((seq + j) * params.n_kv + kvh) * HD4;
    var s = vec2<f32>(0.0);
    var dp = vec2<f32>(0.0);
    for (var d = 0u; d < HD4; d++) {
      kj[d] = k[kb + d];
      let vj = v[kb + d];
      s += vec2<f32>(dot(q0[d], kj[d]), dot(q1[d], kj[d]));
      dp += vec2<f32>(dot(do0[d], vj), dot(do1[d], vj));
    }
    let ds = select(vec2<f32>(0.0), exp(s - lse_v) * (dp - dd), vec2<u32>(j) <= tv);
    for (var d = 0u; d < HD4; d++) {
      acc0[d] += ds.x * kj[d];
      acc1[d] += ds.y * kj[d];
    }
  }
  if (t0 + li < n) {
    for (var d = 0u; d < HD4; d++) { dq[qa + d] = acc0[d] * params.scale; }
    delta[rows.x] = dd.x;
  }
  if (t0 + WG + li < n) {
    for (var d = 0u; d < HD4; d++) { dq[qb + d] = acc1[d] * params.scale; }
    delta[rows.y] = dd.y;
  }
}
