// Causal grouped-query attention, one invocation per (head, row): a serial online softmax over the
// row's positions 0..pos, no workgroup memory and no barriers. For CPU software GPUs (llvmpipe,
// lavapipe), where barriers are expensive and the SIMD lanes run neighbouring heads; real GPUs use
// attention.wgsl. Same bindings and parameters as attention.wgsl.
// Grid: (ceil(n_heads / WG), n_rows).

struct Params { n_heads: u32, n_kv: u32, head_dim: u32, ctx: u32, scale: f32, q_stride: u32, pad1: u32, pad2: u32 }
struct Step { n_rows: u32, n_out: u32, pad0: u32, pad1: u32 }
struct Row { slot: u32, pos: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> rows: array<Row>;
@group(0) @binding(3) var<storage, read> q: array<f32>;
@group(0) @binding(4) var<storage, read> k_cache: array<f32>;
@group(0) @binding(5) var<storage, read> v_cache: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

override WG: u32 = 8u; // heads per workgroup
const MAX_HEAD_DIM: u32 = 256u;
const NEG_BIG: f32 = -3.0e38;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let h = gid.x;
  let r = gid.y;
  if (h >= params.n_heads || r >= step.n_rows) { return; }
  let hd = params.head_dim;
  let kv_dim = params.n_kv * hd;
  let kvh = h / (params.n_heads / params.n_kv);
  let row = rows[r];
  let base = row.slot * params.ctx * kv_dim + kvh * hd;
  let qb = r * params.q_stride + h * hd;

  var acc: array<f32, MAX_HEAD_DIM>;
  var m = NEG_BIG;
  var l = 0.0;
  for (var t = 0u; t <= row.pos; t++) {
    let kb = base + t * kv_dim;
    var s = 0.0;
    for (var d = 0u; d < hd; d++) { s += q[qb + d] * k_cache[kb + d]; }
    s *= params.scale;
    let m_new = max(m, s);
    let corr = exp(m - m_new);
    let p = exp(s - m_new);
    l = l * corr + p;
    for (var d = 0u; d < hd; d++) { acc[d] = acc[d] * corr + p * v_cache[kb + d]; }
    m = m_new;
  }
  let o = (r * params.n_heads + h) * hd;
  for (var d = 0u; d < hd; d++) { out[o + d] = acc[d] / l; }
}
