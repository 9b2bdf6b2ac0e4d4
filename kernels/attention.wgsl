// Causal grouped-query attention of each row over its sequence's KV cache, positions 0..pos.
// One workgroup per (head, row). Positions are processed in tiles of WG: each thread scores one
// position, then the tile is folded into a running (max, sum, accumulator) — online softmax — with
// each thread owning head dims d = lid, lid + WG, ... of the accumulator. K and V are read once.
// K and V: f32 or f16 words (lib/kv_read.wgsl, KV_F16), summed in f32.
// Grid: (n_heads, n_rows).

//! use lib/step.wgsl
//! use lib/attention_params.wgsl
//! use lib/online_softmax.wgsl
//! use lib/kv_read.wgsl

@group(0) @binding(0) var<uniform> params: AttentionParams;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> rows: array<Row>;
@group(0) @binding(3) var<storage, read> q: array<f32>;
@group(0) @binding(4) var<storage, read> k_cache: array<u32>;
@group(0) @binding(5) var<storage, read> v_cache: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

override KV_F16: u32 = 0u;

const WG: u32 = 64u;
const MAX_HEAD_DIM: u32 = 256u;
const DIMS_PER_THREAD: u32 = MAX_HEAD_DIM / WG;

var<workgroup> q_s: array<f32, MAX_HEAD_DIM>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let h = wid.x;
  let r = wid.y;
  if (r >= step.n_rows) { return; }
  let hd = params.head_dim;
  let kv_dim = params.n_kv * hd;
  let kvh = h / (params.n_heads / params.n_kv);
  let row = rows[r];
  let n_pos = row.pos + 1u;
  let base = row.slot * params.ctx * kv_dim + kvh * hd;

  for (var d = lid.x; d < hd; d += WG) { q_s[d] = q[r * params.q_stride + h * hd + d]; }
  workgroupBarrier();

  var m = NEG_BIG;
  var l = 0.0;
  var acc: array<f32, DIMS_PER_THREAD>;
  for (var t0 = 0u; t0 < n_pos; t0 += WG) {
    let t = t0 + lid.x;
    var s = NEG_BIG;
    if (t < n_pos) {
      let kb = base + t * kv_dim;
      var dot = 0.0;
      for (var d = 0u; d < hd; d++) { dot += q_s[d] * kv_value(k_cache[kv_word(kb + d)], kb + d); }
      s = dot * params.scale;
    }
    let count = min(WG, n_pos - t0);
    let fold = softmax_tile(lid.x, s, t < n_pos, count, m, &l);
    let corr = fold.corr;
    for (var j = 0u; j < DIMS_PER_THREAD; j++) {
      let d = lid.x + j * WG;
      if (d < hd) {
        var a = acc[j] * corr;
        for (var i = 0u; i < count; i++) {
          let e = base + (t0 + i) * kv_dim + d;
          a += prob[i] * kv_value(v_cache[kv_word(e)], e);
        }
        acc[j] = a;
      }
    }
    m = fold.m_new;
    workgroupBarrier();
  }
  for (var j = 0u; j < DIMS_PER_THREAD; j++) {
    let d = lid.x + j * WG;
    if (d < hd) { out[(r * params.n_heads + h) * hd + d] = acc[j] / l; }
  }
}
