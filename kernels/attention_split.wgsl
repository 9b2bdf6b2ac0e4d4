// Decode attention split over the context (flash-decoding), first half: workgroup (h, c, r) attends head h
// of row r over chunk c of its positions 0..pos and writes the chunk's softmax state — running max m, sum l
// and the unnormalised output acc[head_dim] — to `part`; attention_merge.wgsl combines the chunks.
// One workgroup per (head, row), as in attention.wgsl, leaves most of a large GPU idle at decode and walks the
// whole context serially; n_chunks workgroups per head fill it at any context length.
// Within a chunk: tiles of WG positions, one per thread (q · k with vec4 loads), folded into (m, l, acc) by
// online softmax; thread i owns head dims i and i + WG of acc. head_dim: a multiple of 4, at most 2·WG.
// K and V: f32 or f16 words (lib/kv_read.wgsl, KV_F16; f16 needs head_dim a multiple of 8), summed in f32.
// Grid: (n_heads, n_chunks, n_rows). part: [n_rows, n_heads, n_chunks, head_dim + 2] (m, l, acc...).

//! use lib/step.wgsl
//! use lib/attention_params.wgsl
//! use lib/online_softmax.wgsl
//! use lib/kv_read.wgsl

@group(0) @binding(0) var<uniform> params: AttentionParams;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> rows: array<Row>;
@group(0) @binding(3) var<storage, read> q: array<f32>;
@group(0) @binding(4) var<storage, read> k_cache: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read> v_cache: array<u32>;
@group(0) @binding(6) var<storage, read_write> part: array<f32>;

override KV_F16: u32 = 0u;

const WG: u32 = 128u;
const MAX_HD4: u32 = WG / 2u; // head_dim ≤ 2·WG

var<workgroup> q_s: array<vec4<f32>, MAX_HD4>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let h = wid.x;
  let c = wid.y;
  let r = wid.z;
  if (r >= step.n_rows) { return; }
  let hd = params.head_dim;
  let hd4 = hd / 4u;
  let kv_dim = params.n_kv * hd;
  let kvh = h / (params.n_heads / params.n_kv);
  let row = rows[r];
  let n_pos = row.pos + 1u;
  let per = (n_pos + params.n_chunks - 1u) / params.n_chunks;
  let start = min(c * per, n_pos);
  let end = min(start + per, n_pos);
  let base = row.slot * params.ctx * kv_dim + kvh * hd;

  if (lid.x < hd4) {
    let qb = r * params.q_stride + h * hd + lid.x * 4u;
    q_s[lid.x] = vec4<f32>(q[qb], q[qb + 1u], q[qb + 2u], q[qb + 3u]);
  }
  workgroupBarrier();

  var m = NEG_BIG;
  var l = 0.0;
  var acc0 = 0.0;
  var acc1 = 0.0;
  let d0 = lid.x;
  let d1 = lid.x + WG;
  for (var t0 = start; t0 < end; t0 += WG) {
    let t = t0 + lid.x;
    var s = NEG_BIG;
    if (t < end) {
      var dot = vec4<f32>(0.0);
      if (KV_F16 == 1u) {
        let kb = (base + t * kv_dim) / 8u; // 8 elements a vec4 of words
        for (var i = 0u; i < hd4; i += 2u) {
          let w = k_cache[kb + i / 2u];
          dot += q_s[i] * unpack16x4(w.xy, 1u) + q_s[i + 1u] * unpack16x4(w.zw, 1u);
        }
      } else {
        let kb = (base + t * kv_dim) / 4u;
        for (var i = 0u; i < hd4; i++) { dot += q_s[i] * kv_f32x4(k_cache[kb + i]); }
      }
      s = (dot.x + dot.y + dot.z + dot.w) * params.scale;
    }
    let count = min(WG, end - t0);
    let fold = softmax_tile(lid.x, s, t < end, count, m, &l);
    var a0 = acc0 * fold.corr;
    var a1 = acc1 * fold.corr;
    let vb = base + t0 * kv_dim;
    for (var i = 0u; i < count; i++) {
      let p = prob[i];
      let v = vb + i * kv_dim;
      if (d0 < hd) { a0 += p * kv_value(v_cache[kv_word(v + d0)], v + d0); }
      if (d1 < hd) { a1 += p * kv_value(v_cache[kv_word(v + d1)], v + d1); }
    }
    acc0 = a0;
    acc1 = a1;
    m = fold.m_new;
    workgroupBarrier();
  }
  let pb = ((r * params.n_heads + h) * params.n_chunks + c) * (hd + 2u);
  if (lid.x == 0u) {
    part[pb] = m;
    part[pb + 1u] = l;
  }
  if (d0 < hd) { part[pb + 2u + d0] = acc0; }
  if (d1 < hd) { part[pb + 2u + d1] = acc1; }
}
