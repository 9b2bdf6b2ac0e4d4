// Embedding gather: x[r, :] = E[tokens[r], :] for the rows of this step.
// The embedding may be split by rows into parts; one dispatch per part, each writing the rows whose
// token falls inside it.
// Grid: (n_rows). Workgroup: WG threads striding over the hidden size.

//! use lib/step.wgsl

struct Params { hidden: u32, first_row: u32, part_rows: u32, row_stride: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read> tokens: array<u32>;
@group(0) @binding(3) var<storage, read> w: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;

override W_DTYPE: u32 = 0u; // 0 f32, 1 f16, 2 bf16
override WG: u32 = 64u;

fn load_w(i: u32) -> f32 {
  if (W_DTYPE == 0u) { return bitcast<f32>(w[i]); }
  let half = (w[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu;
  if (W_DTYPE == 2u) { return bitcast<f32>(half << 16u); }
  return unpack2x16float(half).x;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wid.x;
  if (r >= step.n_rows) { return; }
  let tok = tokens[r];
  if (tok < params.first_row || tok >= params.first_row + params.part_rows) { return; }
  let base = (tok - params.first_row) * params.row_stride;
  for (var i = lid.x; i < params.hidden; i += WG) {
    x[r * params.hidden + i] = load_w(base + i);
  }
}
