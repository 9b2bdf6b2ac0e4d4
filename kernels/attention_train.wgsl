// Causal grouped-query attention for training, forward: for each row and query head, softmax(scale · q · k)
// over the sequence's positions 0..t times v, into out (overwritten), and the log-sum-exp of the scaled scores
// into lse (overwritten; the backward recomputes the probabilities from it). One invocation per (two
// positions, head, sequence), an online softmax over the keys with q and the accumulators in registers.
// Layout and scheme: lib/attention_train.wgsl. Grid: (ceil(seq_len / (2 WG)), n_heads, sequences).

//! use lib/attention_train.wgsl

@group(0) @binding(0) var<uniform> params: TrainAttentionParams;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

override WG: u32 = 8u;
override HD4: u32 = 2u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let n = params.seq_len;
  let t0 = wid.x * 2u * WG;
  let last = min(t0 + 2u * WG, n) - 1u; // the workgroup's last position: its keys' bound
  // The invocation's two positions; one past the sequence redoes its last row and stores nothing.
  let tv = min(vec2<u32>(t0 + li, t0 + WG + li), vec2<u32>(n - 1u));
  let h = wid.y;
  let seq = wid.z * n;
  let kvh = h / (params.n_heads / params.n_kv);
  let qa = ((seq + tv.x) * params.n_heads + h) * HD4;
  let qb = ((seq + tv.y) * params.n_heads + h) * HD4;

  var q0: array<vec4<f32>, MAX_HD4>;
  var q1: array<vec4<f32>, MAX_HD4>;
  var acc0: array<vec4<f32>, MAX_HD4>;
  var acc1: array<vec4<f32>, MAX_HD4>;
  for (var d = 0u; d < HD4; d++) {
    q0[d] = q[qa + d] * params.scale;
    q1[d] = q[qb + d] * params.scale;
    acc0[d] = vec4<f32>(0.0);
    acc1[d] = vec4<f32>(0.0);
  }
  var m = vec2<f32>(NEG_BIG);
  var l = vec2<f32>(0.0);
  for (var j = 0u; j <= last; j++) {
    let kb = ((seq + j) * params.n_kv + kvh) * HD4;
    var s = vec2<f32>(0.0);
    for (var d = 0u; d < HD4; d++) {
      let kj = k[kb + d];
      s += vec2<f32>(dot(q0[d], kj), dot(q1[d], kj));
    }
    s = select(vec2<f32>(NEG_BIG), s, vec2<u32>(j) <= tv);
    let m_new = max(m, s);
    let corr = exp(m - m_new);
    let p = exp(s - m_new);
    l = l * corr + p;
    for (var d = 0u; d < HD4; d++) {
      let vj = v[kb + d];
      acc0[d] = acc0[d] * corr.x + p.x * vj;
      acc1[d] = acc1[d] * corr.y + p.y * vj;
    }
    m = m_new;
  }
  let lse_v = m + log(l);
  if (t0 + li < n) {
    for (var d = 0u; d < HD4; d++) { out[qa + d] = acc0[d] / l.x; }
    lse[(seq + tv.x) * params.n_heads + h] = lse_v.x;
  }
  if (t0 + WG + li < n) {
    for (var d = 0u; d < HD4; d++) { out[qb + d] = acc1[d] / l.y; }
    lse[(seq + tv.y) * params.n_heads + h] = lse_v.y;
  }
}
