// Rotary position embedding (rotate-half, as Hugging Face Llama) on q in place, and on k while
// writing k and v into this layer's KV cache at (slot, pos) of each row. q, k and v are columns of one
// projection output `qkv` (row stride `stride`; q at q_off, k at k_off, v at v_off).
// DO_Q / DO_KV select the parts: a routed layer writes K/V for every row but rotates q only for the
// rows it keeps (a gathered block with its own rows and count).
// cos/sin come from a host-computed table [ctx, head_dim/2] (exact for any position and scaling).
// Grid: (n_rows, slices): the slices' WG threads stride together over the work of one row (several
// workgroups per row keep a large GPU busy at decode).

//! use lib/step.wgsl

// flags: bit 0 DO_Q, bit 1 DO_KV — runtime flags rather than overrides (fewer distinct pipelines).
struct Params {
  n_heads: u32, n_kv: u32, head_dim: u32, ctx: u32, stride: u32, q_off: u32, k_off: u32, v_off: u32,
  flags: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> rows: array<Row>;
@group(0) @binding(3) var<storage, read> cos_sin: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(5) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(6) var<storage, read_write> v_cache: array<f32>;

const WG: u32 = 128u;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let r = wid.x;
  let first = wid.y * WG + lid.x;
  let stride = nwg.y * WG;
  if (r >= step.n_rows) { return; }
  let hd = params.head_dim;
  let half = hd / 2u;
  let row = rows[r];
  let table = row.pos * half;
  let kv_dim = params.n_kv * hd;
  let base = r * params.stride;
  let do_q = (params.flags & 1u) != 0u;
  let do_kv = (params.flags & 2u) != 0u;
  let cache = (row.slot * params.ctx + row.pos) * kv_dim;

  for (var idx = first; do_q && idx < params.n_heads * half; idx += stride) {
    let i = idx % half;
    let b = base + params.q_off + (idx / half) * hd + i;
    let cs = cos_sin[table + i];
    let x1 = qkv[b];
    let x2 = qkv[b + half];
    qkv[b] = x1 * cs.x - x2 * cs.y;
    qkv[b + half] = x2 * cs.x + x1 * cs.y;
  }
  for (var idx = first; do_kv && idx < params.n_kv * half; idx += stride) {
    let i = idx % half;
    let off = (idx / half) * hd + i;
    let b = base + params.k_off + off;
    let cs = cos_sin[table + i];
    let x1 = qkv[b];
    let x2 = qkv[b + half];
    k_cache[cache + off] = x1 * cs.x - x2 * cs.y;
    k_cache[cache + off + half] = x2 * cs.x + x1 * cs.y;
  }
  for (var idx = first; do_kv && idx < kv_dim; idx += stride) {
    v_cache[cache + idx] = qkv[base + params.v_off + idx];
  }
}
