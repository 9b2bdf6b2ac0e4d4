// Causal grouped-query attention for training, backward part 2 (after attention_train_dq, whose delta it
// reads): per key row j and query head h, over the rows i ≥ j of its sequence, in order,
//   dv_j += P_ij dout_i,   dk_j += scale · P_ij (dout_i · v_j − D_i) q_i,
// with P_ij = exp(scale · q_i · k_j − lse_i) recomputed — the share of query head h in the gradient of its KV
// head, written (overwritten) to dk_part / dv_part [rows, n_heads · head_dim]. With one query head per KV head
// those are dk and dv themselves; otherwise attention_train_dkv_sum adds each group's shares in order
// (deterministic: no atomics). One invocation per (two positions, query head, sequence) looping over the
// later positions. Layout and scheme: lib/attention_train.wgsl.
// Grid: (ceil(seq_len / (2 WG)), n_heads, sequences).

//! use lib/attention_train.wgsl

@group(0) @binding(0) var<uniform> params: TrainAttentionParams;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk_part: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> dv_part: array<vec4<f32>>;

override WG: u32 = 8u;
override HD4: u32 = 2u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let n = params.seq_len;
  let t0 = wid.x * 2u * WG; // the workgroup's first key: its queries' start
  let tv = min(vec2<u32>(t0 + li, t0 + WG + li), vec2<u32>(n - 1u));
  let h = wid.y;
  let seq = wid.z * n;
  let kvh = h / (params.n_heads / params.n_kv);
  let ka = ((seq + tv.x) * params.n_kv + kvh) * HD4;
  let kb = ((seq + tv.y) * params.n_kv + kvh) * HD4;

  var k0: array<vec4<f32>, MAX_HD4>;
  var k1: array<vec4<f32>, MAX_HD4>;
  var v0: array<vec4<f32>, MAX_HD4>;
  var v1: array<vec4<f32>, MAX_HD4>;
  var dk0: array<vec4<f32>, MAX_HD4>;
  var dk1: array<vec4<f32>, MAX_HD4>;
  var dv0: array<vec4<f32>, MAX_HD4>;
  var dv1: array<vec4<f32>, MAX_HD4>;
  for (var d = 0u; d < HD4; d++) {
    k0[d] = k[ka + d] * params.scale;
    k1[d] = k[kb + d] * params.scale;
    v0[d] = v[ka + d];
    v1[d] = v[kb + d];
    dk0[d] = vec4<f32>(0.0);
    dk1[d] = vec4<f32>(0.0);
    dv0[d] = vec4<f32>(0.0);
    dv1[d] = vec4<f32>(0.0);
  }
  var qi: array<vec4<f32>, MAX_HD4>; // q_i and dout_i, loaded once
  var doi: array<vec4<f32>, MAX_HD4>;
  for (var i = t0; i < n; i++) {
    let row = (seq + i) * params.n_heads + h;
    let qb = row * HD4;
    var s = vec2<f32>(0.0);
    var dp = vec2<f32>(0.0);
    for (var d = 0u; d < HD4; d++) {
      qi[d] = q[qb + d];
      doi[d] = dout[qb + d];
      s += vec2<f32>(dot(qi[d], k0[d]), dot(qi[d], k1[d]));
      dp += vec2<f32>(dot(doi[d], v0[d]), dot(doi[d], v1[d]));
    }
    let p = select(vec2<f32>(0.0), exp(s - lse[row]), vec2<u32>(i) >= tv);
    let ds = p * (dp - delta[row]);
    for (var d = 0u; d < HD4; d++) {
      dv0[d] += p.x * doi[d];
      dv1[d] += p.y * doi[d];
      dk0[d] += ds.x * qi[d];
      dk1[d] += ds.y * qi[d];
    }
  }
  // Each position's share of its KV head's gradient, in query-head columns.
  let oa = ((seq + tv.x) * params.n_heads + h) * HD4;
  let ob = ((seq + tv.y) * params.n_heads + h) * HD4;
  if (t0 + li < n) {
    for (var d = 0u; d < HD4; d++) {
      dk_part[oa + d] = dk0[d] * params.scale;
      dv_part[oa + d] = dv0[d];
    }
  }
  if (t0 + WG + li < n) {
    for (var d = 0u; d < HD4; d++) {
      dk_part[ob + d] = dk1[d] * params.scale;
      dv_part[ob + d] = dv1[d];
    }
  }
}
