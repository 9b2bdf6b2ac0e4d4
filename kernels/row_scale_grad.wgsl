// The per-row factor's gradient of row_scale.wgsl: ds[r] (+)= ± Σ_c dy[r, c] · x[r, c], negated with flags
// bit 1 (f(s) = 1 − s). flags bit 0: ds += (the router's g gets gradients from both the MLP and the adapter
// path), else ds =. One workgroup per row, summed in a fixed order (lib/row_reduce.wgsl).
// Bindings: 0 params {rows, width, flags}, 1 x (the forward's input), 2 dy, 3 ds (f32 [rows]).
// Grid: rows workgroups (flat, lib/grid.wgsl).

//! use lib/grid.wgsl
//! use lib/row_reduce.wgsl

struct Params { rows: u32, width: u32, flags: u32, pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> ds: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let r = flat_group(wid, nwg);
  if (r >= params.rows) {
    return;
  }
  let w = params.width;
  var acc = 0.0;
  for (var c = li; c < w; c += WG) {
    acc += dy[r * w + c] * x[r * w + c];
  }
  let total = row_sum(li, acc);
  if (li == 0u) {
    let g = select(total, -total, (params.flags & 2u) != 0u);
    ds[r] = g + select(0.0, ds[r], (params.flags & 1u) != 0u);
  }
}
