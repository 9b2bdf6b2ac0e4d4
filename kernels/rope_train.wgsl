// RoPE (rotate-half, as Hugging Face Llama) for training, in place: `heads` heads of head_dim values at column
// `offset` of each of n_rows rows of x (`stride` floats a row), row r at position t = r mod seq_len, from the
// cos/sin table [positions, head_dim / 2] of (cos, sin) pairs (ropeTable: Llama-3's scaled frequencies too).
//   forward  (sign = +1): (x1, x2) → (x1 c − x2 s, x2 c + x1 s)
//   backward (sign = −1): the transposed rotation of the gradient, (d1 c + d2 s, d2 c − d1 s): dq / dk are
//                         overwritten by the gradient before RoPE.
// One invocation per (row, head, rotation pair), over a 2-D grid of workgroups (a dimension holds at most 65535).
// Grid: (x, y) with x · y ≥ ceil(n_rows · heads · head_dim / 2 / WG).

struct Params {
  n_rows: u32,
  seq_len: u32,
  head_dim: u32,
  heads: u32,
  stride: u32,
  offset: u32,
  sign: f32,
  pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cos_sin: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let half = params.head_dim / 2u;
  let per_row = params.heads * half;
  let e = (wid.y * groups.x + wid.x) * WG + li;
  let r = e / per_row;
  if (r >= params.n_rows) { return; }
  let j = e - r * per_row;
  let h = j / half;
  let i = j - h * half;
  let cs = cos_sin[(r % params.seq_len) * half + i];
  let s = params.sign * cs.y;
  let a = r * params.stride + params.offset + h * params.head_dim + i;
  let x1 = x[a];
  let x2 = x[a + half];
  x[a] = x1 * cs.x - x2 * s;
  x[a + half] = x2 * cs.x + x1 * s;
}
