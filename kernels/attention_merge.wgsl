// Decode attention split over the context, second half: combines the n_chunks partial softmax states of
// attention_split.wgsl for head h of row r — out = Σ_c e^(m_c − M) acc_c / Σ_c e^(m_c − M) l_c, M = max m_c.
// An empty chunk (m = −3e38, l = 0) weighs nothing.
// Grid: (n_heads, n_rows). Thread i writes head dims i, i + WG, ...

//! use lib/step.wgsl
//! use lib/attention_params.wgsl

@group(0) @binding(0) var<uniform> params: AttentionParams;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> part: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 128u;
const MAX_CHUNKS: u32 = 128u;

var<workgroup> weight: array<f32, MAX_CHUNKS>; // e^(m_c − M)
var<workgroup> m_s: array<f32, MAX_CHUNKS>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let h = wid.x;
  let r = wid.y;
  if (r >= step.n_rows) { return; }
  let hd = params.head_dim;
  let nc = params.n_chunks; // at most MAX_CHUNKS (the host's SPLIT_CHUNKS)
  let pb = (r * params.n_heads + h) * nc * (hd + 2u);
  // Each chunk's max is loaded once, by one invocation; all then read them from workgroup memory.
  for (var c = lid.x; c < nc; c += WG) { m_s[c] = part[pb + c * (hd + 2u)]; }
  workgroupBarrier();
  var big = -3.0e38;
  for (var c = 0u; c < nc; c++) { big = max(big, m_s[c]); }
  for (var c = lid.x; c < nc; c += WG) { weight[c] = exp(m_s[c] - big); }
  workgroupBarrier();
  var l = 0.0;
  for (var c = 0u; c < nc; c++) { l += weight[c] * part[pb + c * (hd + 2u) + 1u]; }
  for (var d = lid.x; d < hd; d += WG) {
    var a = 0.0;
    for (var c = 0u; c < nc; c++) { a += weight[c] * part[pb + c * (hd + 2u) + 2u + d]; }
    out[(r * params.n_heads + h) * hd + d] = a / l;
  }
}
